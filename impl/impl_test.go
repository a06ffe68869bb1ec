package impl_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/ref"
)

func gen(t testing.TB, c cases.Case, f num.Format) *problem.Inputs {
	t.Helper()
	in, err := cases.Generate(c, f)
	if err != nil {
		t.Fatalf("%v\ncase: %s", err, c)
	}
	return in
}

func run(t testing.TB, e impl.Kernel, in *problem.Inputs) *impl.Output {
	t.Helper()
	out, err := e.Run(in)
	if err != nil {
		t.Fatalf("%s: %v", e.Name(), err)
	}
	if len(out.O) != in.OutLen() || len(out.Pre) != in.OutLen() {
		t.Fatalf("%s: output lengths %d, %d, want %d", e.Name(), len(out.O), len(out.Pre), in.OutLen())
	}
	return out
}

// smallCases have tokens with n = 0, 1, 2 keys. Sparse: seqused 0, 1, 2
// (S = 1, and S = 2 where the earlier token of each entry sees one key
// fewer) with WIN = 4 ≥ 2; window: tokens 0 and 1 see 1 and 2 keys. H = 3
// is not a multiple of the 16-head tile.
func smallCases(seed uint64, sink *cases.Sink) []cases.Case {
	return []cases.Case{
		{Family: problem.Sparse, Seed: seed, H: 3, D: 4, B: 3, Win: 4, IdxTopK: 4, BlockSize: 2,
			Seqused: []int{0, 1, 2}, Sink: sink},
		{Family: problem.Sparse, Seed: seed, H: 3, D: 4, B: 3, S: 2, Win: 4, IdxTopK: 4, BlockSize: 2,
			Seqused: []int{1, 2, 0}, Indices: "shuffled", Sink: sink},
		{Family: problem.Window, Seed: seed, T: 2, H: 4, Hkv: 2, D: 4, Dv: 3, Sink: sink},
		{Family: problem.Window, Seed: seed, T: 3, H: 2, Hkv: 1, D: 5, Dv: 2, Window: 2, Sink: sink},
	}
}

var sinks = []*cases.Sink{
	nil,
	{Kind: "random", Scale: 2},
	{Kind: "random", Scale: 1, Offset: 4}, // the sink dominates
	{Kind: "const", Value: cases.F(math.Inf(1))},
	{Kind: "const", Value: cases.F(math.Inf(-1))},
}

// bound is a first-order error bound for one output element of kernel
// profile pf against the exact result (DESIGN.md's model, made coarse:
// per-row maxima for the score error, a factor 2 for second-order terms),
// plus one ulp of the output format for the final cast.
func bound(in *problem.Inputs, r *ref.Result, pf profile.Profile, e int) float64 {
	row := r.Rows[e/in.Dv]
	ua := num.UnitRoundoff(pf.Acc)
	us, up := num.UnitRoundoff(pf.Score), num.UnitRoundoff(pf.P)
	if pf.Score == num.FP32 {
		us = 0
	}
	if pf.P == num.FP32 {
		up = 0
	}
	n, D := float64(row.N), float64(in.D)
	dx := (D+2)*ua*row.MaxA + (2*ua+us)*row.MaxAbsX + 2*ua*row.MaxDiff + (pf.ExpError()+2)*ua
	pre := dx*r.Dev1[e] + (up+(3*n+4)*ua)*r.AbsV[e] + (2*n+4)*ua*math.Abs(r.O[e])
	return 2*pre + num.Ulp(pf.Out, r.O[e])
}

// TestSmallKeySets runs every registry configuration on tokens with 0, 1
// and 2 keys: n = 0 gives exactly +0, a sink of +Inf gives ±0; n = 1 is v·sigmoid(x − σ) within a
// few ulps of the output format; n = 1, 2 are within the error bound.
func TestSmallKeySets(t *testing.T) {
	const maxULPs1 = 8 // n = 1: observed at most 4.9 (fp16acc; fp32 4.9: its ulp is tiny)
	for _, name := range impl.Names() {
		e, err := impl.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		pf := e.Profile()
		worst1 := 0.0
		seen := [3]int{}
		for seed := range uint64(12) {
			for _, sink := range sinks {
				for _, c := range smallCases(seed, sink) {
					in := gen(t, c, pf.In)
					out := run(t, e, in)
					r := ref.Compute(in, ref.Options{})
					for i, row := range r.Rows {
						if row.N > 2 {
							t.Fatalf("%s: case has a row with n = %d", name, row.N)
						}
						seen[row.N]++
						for j := 0; j < in.Dv; j++ {
							el := i*in.Dv + j
							got, want := float64(out.O[el]), r.O[el]
							if row.N == 0 {
								if math.Float32bits(out.O[el]) != 0 || math.Float32bits(out.Pre[el]) != 0 {
									t.Fatalf("%s: n=0: o = %v (pre %v), want +0\ncase: %s", name, got, out.Pre[el], c)
								}
								continue
							}
							if math.IsInf(row.Sink, 1) {
								// o/∞: a zero with the sign of the accumulator.
								if out.O[el] != 0 || out.Pre[el] != 0 {
									t.Fatalf("%s: n=%d sink +Inf: o = %v (pre %v), want 0\ncase: %s", name, row.N, got, out.Pre[el], c)
								}
								continue
							}
							if b := bound(in, r, pf, el); !(math.Abs(got-want) <= b) {
								t.Fatalf("%s: token %d head %d (n=%d) dim %d: o = %v, ref %v, error %g > bound %g\ncase: %s",
									name, i/in.H, i%in.H, row.N, j, got, want, math.Abs(got-want), b, c)
							}
							if row.N == 1 {
								u := math.Abs(got-want) / num.Ulp(pf.Out, want)
								worst1 = math.Max(worst1, u)
								if u > maxULPs1 {
									t.Fatalf("%s: n=1: o = %v, v·sigmoid(x−σ) = %v: %.2f ulps\ncase: %s", name, got, want, u, c)
								}
							}
						}
					}
				}
			}
		}
		if seen[0] == 0 || seen[1] == 0 || seen[2] == 0 {
			t.Fatalf("rows per n: %v", seen)
		}
		if testing.Verbose() {
			t.Logf("%-28s n=1 worst %.2f ulps", name, worst1)
		}
	}
}

// TestSinkMinusInfIsNoSink: for every emulation a sink of −Inf gives the
// same bits as no sink.
func TestSinkMinusInfIsNoSink(t *testing.T) {
	for _, name := range impl.Names() {
		e, _ := impl.Lookup(name)
		for _, c := range []cases.Case{
			{Family: problem.Sparse, Seed: 3, H: 5, D: 8, B: 2, S: 2, Win: 8, IdxTopK: 40, BlockSize: 8, Seqused: []int{20, 47}, Indices: "shuffled"},
			{Family: problem.Window, Seed: 3, T: 40, H: 2, D: 8, Window: 35},
		} {
			a := run(t, e, gen(t, c, e.Profile().In))
			c.Sink = &cases.Sink{Kind: "const", Value: cases.F(math.Inf(-1))}
			b := run(t, e, gen(t, c, e.Profile().In))
			for i := range a.O {
				if math.Float32bits(a.O[i]) != math.Float32bits(b.O[i]) {
					t.Fatalf("%s %s: o[%d] = %v without sink, %v with −Inf", name, c.Family, i, a.O[i], b.O[i])
				}
			}
		}
	}
}

// TestFP32AgreesWithRef: stream, tiled and splitkv with the fp32 profile
// agree with the reference within 1e-5·Σp|v|, over key counts that cross
// every tile size (n up to 300 with Bc = 16..128).
func TestFP32AgreesWithRef(t *testing.T) {
	es, err := impl.Match("*/fp32")
	if err != nil {
		t.Fatal(err)
	}
	es2, _ := impl.Match("*/*/fp32")
	es = append(es, es2...)
	es3, _ := impl.Match("*/*/*/fp32")
	es = append(es, es3...)
	if len(es) != 10 { // stream, 5 tiled, 2 splitkv, exp2, lazy
		t.Fatalf("%d fp32 emulations, want 10", len(es))
	}
	r := rand.New(rand.NewPCG(9, 9))
	var cs []cases.Case
	for i := range 12 {
		sink := sinks[r.IntN(3)]
		dist := []string{"normal", "uniform", "dominant"}[r.IntN(3)]
		if i%2 == 0 {
			u := []int{r.IntN(300), 15 + r.IntN(3), 31 + r.IntN(3), 127 + r.IntN(3), 64 + r.IntN(200)}
			cs = append(cs, cases.Case{Family: problem.Sparse, Seed: r.Uint64(), H: 1 + r.IntN(20), D: 8 << r.IntN(3),
				B: len(u), S: 1 + r.IntN(2), Win: 32, IdxTopK: 256, BlockSize: 16, Seqused: u, Indices: "shuffled",
				BlockTable: "permuted", Sink: sink, Values: cases.Values{Dist: dist}})
		} else {
			cs = append(cs, cases.Case{Family: problem.Window, Seed: r.Uint64(), T: 140, H: 4, Hkv: 1 + r.IntN(2),
				D: 16, Dv: 8 + r.IntN(9), Window: []int{0, 129, 33}[r.IntN(3)], Sink: sink, Values: cases.Values{Dist: dist}})
		}
	}
	for _, e := range es {
		worst := 0.0
		for _, c := range cs {
			in := gen(t, c, num.FP32)
			out := run(t, e, in)
			res := ref.Compute(in, ref.Options{})
			for el, want := range res.O {
				d := math.Abs(float64(out.O[el]) - want)
				if !(d <= 1e-5*res.AbsV[el]) {
					row := res.Rows[el/in.Dv]
					t.Fatalf("%s: element %d (n=%d): o = %v, ref %v, |diff| %g > 1e-5·Σp|v| = %g\ncase: %s",
						e.Name(), el, row.N, out.O[el], want, d, 1e-5*res.AbsV[el], c)
				}
				if res.AbsV[el] > 0 {
					worst = math.Max(worst, d/res.AbsV[el])
				}
			}
		}
		if testing.Verbose() {
			t.Logf("%-24s worst |o − ref|/Σp|v| = %.3g", e.Name(), worst)
		}
	}
}

// TestKernelsAgreeWithBound: every configuration, on random cases of its
// own input format, stays within the (coarse) first-order bound.
func TestKernelsAgreeWithBound(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	var cs []cases.Case
	for i := range 6 {
		if i%2 == 0 {
			cs = append(cs, cases.Case{Family: problem.Sparse, Seed: r.Uint64(), H: 1 + r.IntN(18), D: 16,
				B: 4, S: 2, Win: 16, IdxTopK: 160, BlockSize: 16, Seqused: []int{r.IntN(200), 17, 33 + r.IntN(3), 129},
				Indices: "shuffled", Sink: sinks[r.IntN(len(sinks))]})
		} else {
			cs = append(cs, cases.Case{Family: problem.Window, Seed: r.Uint64(), T: 70, H: 4, Hkv: 2, D: 8, Dv: 8,
				Window: []int{0, 65}[r.IntN(2)], Sink: sinks[r.IntN(len(sinks))]})
		}
	}
	for _, name := range impl.Names() {
		e, _ := impl.Lookup(name)
		pf := e.Profile()
		for _, c := range cs {
			in := gen(t, c, pf.In)
			out := run(t, e, in)
			res := ref.Compute(in, ref.Options{})
			for el, want := range res.O {
				if b := bound(in, res, pf, el); !(math.Abs(float64(out.O[el])-want) <= b) {
					t.Fatalf("%s: element %d (n=%d): o = %v, ref %v, error %g > bound %g\ncase: %s",
						name, el, res.Rows[el/in.Dv].N, out.O[el], want, math.Abs(float64(out.O[el])-want), b, c)
				}
			}
		}
	}
}

// TestFormatMismatch: inputs stored in a format the profile does not take
// are an error (FP32 profiles take any input format).
func TestFormatMismatch(t *testing.T) {
	c := smallCases(1, nil)[0]
	for _, tc := range []struct {
		kernel string
		in     num.Format
		ok     bool
	}{
		{"tiled/bc32/bf16", num.BF16, true},
		{"tiled/bc32/bf16", num.FP16, false},
		{"tiled/bc32/bf16", num.FP32, false},
		{"stream/fp16", num.BF16, false},
		{"stream/fp16acc", num.FP32, false},
		{"splitkv/p2/bc32/fp16", num.FP16, true},
		{"stream/fp32", num.BF16, true},
		{"stream/fp32", num.FP16, true},
		{"tiled/bc128/fp32", num.FP32, true},
	} {
		e, err := impl.Lookup(tc.kernel)
		if err != nil {
			t.Fatal(err)
		}
		in := gen(t, c, tc.in)
		out, err := e.Run(in)
		if tc.ok != (err == nil) {
			t.Errorf("%s on %s inputs: err = %v, want ok = %v", tc.kernel, tc.in, err, tc.ok)
		}
		if err != nil && (out != nil || !strings.Contains(err.Error(), tc.kernel) || !strings.Contains(err.Error(), tc.in.String())) {
			t.Errorf("%s on %s: error %q should name the kernel and the format", tc.kernel, tc.in, err)
		}
		if impl.Compatible(tc.in, e.Profile()) != tc.ok {
			t.Errorf("Compatible(%s, %s) != %v", tc.in, e.Profile().Name, tc.ok)
		}
	}
	// Malformed inputs are an error too, not a panic.
	e, _ := impl.Lookup("stream/bf16")
	in := gen(t, c, num.BF16)
	in.Q = in.Q[1:]
	if _, err := e.Run(in); err == nil {
		t.Error("malformed inputs accepted")
	}
}

// TestOutputInFormat: every output value is a value of the output format,
// and Pre rounds to O with the profile's rounding.
func TestOutputInFormat(t *testing.T) {
	c := cases.Case{Family: problem.Sparse, Seed: 2, H: 4, D: 16, B: 3, S: 2, Win: 8, IdxTopK: 40, BlockSize: 4,
		Seqused: []int{3, 30, 48}, Sink: &cases.Sink{Kind: "random"}}
	for _, name := range impl.Names() {
		e, _ := impl.Lookup(name)
		pf := e.Profile()
		out := run(t, e, gen(t, c, pf.In))
		for i, o := range out.O {
			if num.Round32(pf.Out, out.Pre[i], pf.OutRound) != o {
				t.Fatalf("%s: o[%d] = %v is not Round(%v)", name, i, o, out.Pre[i])
			}
			if float64(o) != num.Round64(pf.Out, float64(o), num.RNE) {
				t.Fatalf("%s: o[%d] = %v is not a %s value", name, i, o, pf.Out)
			}
		}
	}
}

// TestParallelRunAgrees: Run's worker pool (large problems) gives the same
// bits as one worker.
func TestParallelRunAgrees(t *testing.T) {
	c := cases.Case{Family: problem.Sparse, Seed: 5, H: 32, D: 64, B: 8, Win: 32, IdxTopK: 224, BlockSize: 32,
		Seqused: []int{0, 1, 33, 100, 256, 500, 129, 64}, Indices: "shuffled", Sink: &cases.Sink{Kind: "random"}}
	in := gen(t, c, num.BF16)
	e, _ := impl.Lookup("splitkv/p2/bc32/bf16")
	old := runtime.GOMAXPROCS(1)
	a := run(t, e, in)
	runtime.GOMAXPROCS(max(old, 4))
	b := run(t, e, in)
	runtime.GOMAXPROCS(old)
	if !slices.Equal(a.O, b.O) {
		t.Error("outputs differ between 1 and 4 workers")
	}
}

func TestRegistry(t *testing.T) {
	names := impl.Names()
	if len(names) != 8*len(profile.Names())+2+2*6 {
		t.Errorf("%d names, want 8 shapes × %d profiles, pypto/bf16rne, fa3/bc128/fp8bf16, and exp2 and lazy on the 6 FP32-score profiles", len(names), len(profile.Names()))
	}
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Error("names not sorted and unique")
	}
	for _, n := range names {
		e, err := impl.Lookup(n)
		if err != nil || e.Name() != n {
			t.Errorf("Lookup(%q) = %v, %v", n, e, err)
		}
		if !strings.HasSuffix(n, "/"+e.Profile().Name) {
			t.Errorf("%s: profile %s", n, e.Profile().Name)
		}
	}
	for glob, want := range map[string]int{"all": len(names), "": len(names), "tiled/*/bf16": 5, "stream/*": 8, "splitkv/*/*/fp16": 2, "*/fp32": 1} {
		es, err := impl.Match(glob)
		if err != nil || len(es) != want {
			t.Errorf("Match(%q): %d, %v; want %d", glob, len(es), err, want)
		}
	}
	if _, err := impl.Match("nope/*"); err == nil {
		t.Error("Match of nothing succeeded")
	}
	if _, err := impl.Match("[bad"); err == nil {
		t.Error("Match of a bad pattern succeeded")
	}
	if _, err := impl.Lookup("tiled/bc7/bf16"); err == nil {
		t.Error("Lookup of an unknown kernel succeeded")
	}
	e := impl.New(impl.Config{Kind: impl.Tiled, Bc: 32, Profile: profile.MustLookup("bf16")}).WithName("mutant-x")
	if e.Name() != "mutant-x" {
		t.Errorf("WithName: %s", e.Name())
	}
}

// An unknown kernel kind is refused where the emulation is built, not
// silently run as another kind.
func TestUnknownKindRefused(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), `unknown kernel kind "eager"`) {
			t.Fatalf("New with an unknown kind: recover() = %v, want an 'unknown kernel kind' panic", r)
		}
	}()
	impl.New(impl.Config{Kind: "eager", Bc: 16})
}
