package campaign

import (
	"context"
	"encoding/json"
	"flag"
	"math"
	"os"
	"runtime/debug"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/cputime"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/pipeline"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/targets"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/props"
	"github.com/attnvet/attnvet/ref"
)

// Fuzz-size cases (docs/benchmarks-fuzz.md): H ≤ 16, D ≤ 64, n ≤ 256
// keys per row, inputs that keep the contract.
const (
	fuzzMaxH, fuzzMaxD, fuzzMaxN = 16, 64, 256
	benchSeed                    = 1
	benchCases                   = 400
	benchKernel                  = "tiled/bc32/bf16"
)

// fuzzShape is what scripts/fuzz_numpy.py needs to run the same problem.
type fuzzShape struct {
	Family string  `json:"family"`
	T      int     `json:"t"`
	H      int     `json:"h"`
	Hkv    int     `json:"hkv"`
	D      int     `json:"d"`
	Dv     int     `json:"dv"`
	Sink   bool    `json:"sink"`
	Scale  float64 `json:"scale"`
	W      int     `json:"window,omitempty"` // window family: W (0 = full causal)
	N      []int   `json:"n"`                // keys per (token, KV head), row-major
}

// fuzzSizeCases returns the first k fuzz-size cases of props.CaseAt(seed, ·).
func fuzzSizeCases(tb testing.TB, seed uint64, k int) ([]cases.Case, []fuzzShape) {
	var cs []cases.Case
	var shapes []fuzzShape
	for i := 0; len(cs) < k && i < 100*k; i++ {
		c := props.CaseAt(seed, i, "")
		if c.Format(num.BF16) != num.BF16 {
			continue // pins another dtype: the BF16 kernel does not take it
		}
		in, err := cases.Generate(c, num.BF16)
		if err != nil || in.H > fuzzMaxH || in.D > fuzzMaxD || in.Dv > fuzzMaxD || len(in.Violations()) > 0 {
			continue
		}
		sh, ok := shapeOf(in, fuzzMaxN)
		if ok {
			cs = append(cs, c)
			shapes = append(shapes, sh)
		}
	}
	if len(cs) < k {
		tb.Fatalf("only %d fuzz-size cases among the first %d", len(cs), 100*k)
	}
	return cs, shapes
}

// shapeOf is the shape of in for the Python loops; ok is false when a
// row attends more than maxN keys.
func shapeOf(in *problem.Inputs, maxN int) (sh fuzzShape, ok bool) {
	sh = fuzzShape{Family: string(in.Family), T: in.T, H: in.H, Hkv: in.Hkv, D: in.D, Dv: in.Dv,
		Sink: in.Sink != nil, Scale: in.Scale, W: in.W}
	var keys []problem.Key
	for t := 0; t < in.T; t++ {
		for g := 0; g < in.Hkv; g++ {
			keys = in.RefKeys(t, g, keys)
			if len(keys) > maxN {
				return sh, false
			}
			sh.N = append(sh.N, len(keys))
		}
	}
	return sh, true
}

var (
	shapesOut = flag.String("shapes", "", "TestWriteFuzzShapes: write the benchmark's case shapes (JSON) to this file for scripts/fuzz_numpy.py")
	verifyOut = flag.String("verify", "", "TestWriteFuzzShapes: write inputs and "+benchKernel+" outputs of window cases (JSON) for scripts/fuzz_numpy.py --verify")
)

// verifyCase is one window-family problem with the Go emulation's output,
// for checking that the NumPy loop computes the same bits.
type verifyCase struct {
	T, H, Hkv, D, Dv, W int
	Scale               float64
	Sink                []float32 // nil: none
	Q, K, V, Out        []float32
}

// TestWriteFuzzShapes writes the shapes of the benchmark's cases, so the
// NumPy loop runs the same problems:
//
//	go test ./internal/campaign -run WriteFuzzShapes -shapes /tmp/shapes.json
func TestWriteFuzzShapes(t *testing.T) {
	if *shapesOut == "" {
		t.Skip("no -shapes FILE")
	}
	_, shapes := fuzzSizeCases(t, benchSeed, benchCases)
	b, err := json.Marshal(shapes)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(*shapesOut, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if *verifyOut == "" {
		return
	}
	cs, _ := fuzzSizeCases(t, benchSeed, benchCases)
	k, err := impl.Lookup(benchKernel)
	if err != nil {
		t.Fatal(err)
	}
	var vs []verifyCase
	for _, c := range cs {
		in, err := cases.Generate(c, num.BF16)
		if err != nil || in.Family != problem.Window || in.T*in.H*in.D > 1<<14 || !finite(in.Sink) {
			continue
		}
		out, err := k.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		if !finite(in.Q) || !finite(in.K) || !finite(in.V) || !finite(out.O) {
			continue // JSON carries finite numbers only
		}
		vs = append(vs, verifyCase{T: in.T, H: in.H, Hkv: in.Hkv, D: in.D, Dv: in.Dv, W: in.W, Scale: in.Scale,
			Sink: in.Sink, Q: in.Q, K: in.K, V: in.V, Out: out.O})
		if len(vs) == 40 {
			break
		}
	}
	if b, err = json.Marshal(vs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(*verifyOut, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func finite(xs []float32) bool {
	for _, x := range xs {
		if math.IsInf(float64(x), 0) || math.IsNaN(float64(x)) {
			return false
		}
	}
	return true
}

// BenchmarkFuzzLoop is the fuzz hot loop on one core: per case, generate
// the inputs, check the contract, compute the float64 reference, run one
// BF16 emulation, judge it with bound, count edge classes. One op is one
// case; cases/s is the figure docs/benchmarks-fuzz.md compares with NumPy.
func BenchmarkFuzzLoop(b *testing.B) {
	cs, _ := fuzzSizeCases(b, benchSeed, benchCases)
	ts, err := targets.Select(benchKernel, targets.Options{})
	if err != nil {
		b.Fatal(err)
	}
	crit, _ := tolerance.Lookup(tolerance.NameBound)
	ev := &evaluator{targets: ts, crit: crit}
	defer debug.SetGCPercent(debug.SetGCPercent(400)) // as attnvet fuzz runs (GOGC=400)
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		co := ev.eval(cs[i%len(cs)])
		if co.checks[0].status != Pass {
			b.Fatalf("case %d: %s %s", i%len(cs), co.checks[0].status, co.checks[0].err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cases/s")
	b.ReportMetric(float64(b.N)/(cpuSeconds()-cpu0), "cases/cpu-s")
}

// cpuSeconds is the process's user + system CPU time: a throughput figure
// that holds on a busy machine (the NumPy script reports the same).
func cpuSeconds() float64 { return cputime.Process().Seconds() }

// BenchmarkFuzzCore is BenchmarkFuzzLoop without the contract check and
// the edge classes: generate, reference, one BF16 emulation, bound. It is
// the work the NumPy loop does (docs/benchmarks-fuzz.md).
func BenchmarkFuzzCore(b *testing.B) {
	cs, _ := fuzzSizeCases(b, benchSeed, benchCases)
	ts, err := targets.Select(benchKernel, targets.Options{})
	if err != nil {
		b.Fatal(err)
	}
	crit, _ := tolerance.Lookup(tolerance.NameBound)
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		in, err := cases.Generate(cs[i%len(cs)], num.BF16)
		if err != nil {
			b.Fatal(err)
		}
		p := &pipeline.Prepared{In: in, Ref: ref.Compute(in, ref.Options{Workers: 1})} // no contract check
		if _, v, err := runAndJudge(ts[0], crit, p, false); err != nil || !v.Pass {
			b.Fatalf("case %d: %v %+v", i%len(cs), err, v)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cases/s")
	b.ReportMetric(float64(b.N)/(cpuSeconds()-cpu0), "cases/cpu-s")
}

// BenchmarkFuzzCampaign is a whole campaign on every core (generation by
// props.CaseAt included, unfiltered sizes): one op is one case.
func BenchmarkFuzzCampaign(b *testing.B) {
	ts, err := targets.Select(benchKernel, targets.Options{})
	if err != nil {
		b.Fatal(err)
	}
	o := DefaultOptions()
	o.Seed, o.Cases, o.Targets, o.Save = benchSeed, b.N, ts, 0
	b.ResetTimer()
	r, err := Run(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	if r.Cases != b.N {
		b.Fatalf("%d cases run, want %d", r.Cases, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cases/s")
}
