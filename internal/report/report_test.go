package report

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/tolerance"
)

func TestBinEdges(t *testing.T) {
	tests := []struct {
		name string
		x    float64
	}{
		{"one", 1},
		{"just below one", math.Nextafter(1, 0)},
		{"just above one", math.Nextafter(1, 2)},
		{"sub-bin edge", 1 + 1.0/SubBins},
		{"below sub-bin edge", math.Nextafter(1+1.0/SubBins, 0)},
		{"half", 0.5},
		{"large", 3e38},
		{"max float64", math.MaxFloat64},
		{"smallest normal", 0x1p-1022},
		{"subnormal", 0x1.8p-1060},
		{"bf16 ulp-ish", 0x1.8p-9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := binOf(tt.x)
			lo, hi := binUpper(b-1), binUpper(b)
			if !(lo <= tt.x && tt.x < hi) {
				t.Errorf("x = %v in bin %d = [%v, %v)", tt.x, b, lo, hi)
			}
			if hi > tt.x*(1+1.0/SubBins)*(1+1e-15) && !math.IsInf(hi, 1) {
				t.Errorf("bin upper edge %v more than 1/%d above %v", hi, SubBins, tt.x)
			}
		})
	}
}

func TestHistQuantile(t *testing.T) {
	var s Stat
	// 1000 values 1..1000 and 10 zeros.
	for i := 1; i <= 1000; i++ {
		s.Add(float64(i))
	}
	for range 10 {
		s.Add(0)
	}
	tests := []struct {
		p     float64
		exact float64
	}{{0, 0}, {0.005, 0}, {0.5, 495}, {0.99, 990}, {0.999, 999}, {1, 1000}}
	for _, tt := range tests {
		got := s.Quantile(tt.p)
		if got < tt.exact || got > tt.exact*(1+1.0/SubBins) {
			t.Errorf("Quantile(%v) = %v, want in [%v, %v]", tt.p, got, tt.exact, tt.exact*(1+1.0/SubBins))
		}
	}
	if s.Max != 1000 || s.N() != 1010 {
		t.Errorf("max %v n %d, want 1000 and 1010", s.Max, s.N())
	}
	var empty Hist
	if q := empty.Quantile(0.5); !math.IsNaN(q) {
		t.Errorf("empty Quantile = %v, want NaN", q)
	}
	var inf Hist
	inf.Add(math.Inf(1))
	if q := inf.Quantile(0.5); !math.IsInf(q, 1) {
		t.Errorf("Quantile of {+Inf} = %v, want +Inf", q)
	}
}

func TestHistAddPanics(t *testing.T) {
	for _, x := range []float64{-1, math.NaN(), math.Inf(-1)} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Add(%v) did not panic", x)
				}
			}()
			var h Hist
			h.Add(x)
		}()
	}
}

// TestHistMergeJSON: splitting values in two histograms and merging, or
// round-tripping through JSON, gives the histogram of all values.
func TestHistMergeJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var all, a, b Stat
	for i := range 5000 {
		x := math.Ldexp(r.Float64(), r.IntN(200)-150)
		switch i % 97 {
		case 0:
			x = 0
		case 1:
			x = math.Inf(1)
		}
		all.Add(x)
		if i%3 == 0 {
			a.Add(x)
		} else {
			b.Add(x)
		}
	}
	a.Merge(&b)
	if !histEqual(&a.Hist, &all.Hist) || a.Max != all.Max {
		t.Fatalf("merged histogram differs from the histogram of all values")
	}
	js, err := json.Marshal(&all)
	if err != nil {
		t.Fatal(err)
	}
	var back Stat
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if !histEqual(&back.Hist, &all.Hist) || back.Max != all.Max {
		t.Fatalf("JSON round trip changed the histogram: %s", js)
	}
	for _, bad := range []string{`{"bins":[1]}`, `{"bins":[1,2,0,3]}`, `{"bins":[1,-2]}`, `{"zero":-1,"bins":[]}`} {
		var h Hist
		if err := json.Unmarshal([]byte(bad), &h); err == nil {
			t.Errorf("Unmarshal(%s) accepted a malformed histogram", bad)
		}
	}
}

// histEqual compares the non-empty bins (the dense slice may differ in
// its zero padding).
func histEqual(a, b *Hist) bool {
	bins := func(h *Hist) [][2]float64 {
		var out [][2]float64
		h.Bins(func(lo, hi float64, n int64) { out = append(out, [2]float64{hi, float64(n)}) })
		return out
	}
	return a.Zero == b.Zero && a.Inf == b.Inf && slices.Equal(bins(a), bins(b))
}

func TestHistEqualHelper(t *testing.T) {
	var a, b Hist
	a.Add(1)
	b.Add(1)
	if !histEqual(&a, &b) {
		t.Errorf("equal histograms compare unequal")
	}
	b.Add(2)
	if histEqual(&a, &b) {
		t.Errorf("different histograms compare equal")
	}
}

func TestFloatJSON(t *testing.T) {
	for _, x := range []float64{0, 1, -2.5, 0x1p-1074, math.MaxFloat64, math.Inf(1), math.Inf(-1), 0.1} {
		b, err := json.Marshal(Float(x))
		if err != nil {
			t.Fatal(err)
		}
		var y Float
		if err := json.Unmarshal(b, &y); err != nil {
			t.Fatal(err)
		}
		if float64(y) != x {
			t.Errorf("%v → %s → %v", x, b, y)
		}
	}
	var y Float
	if err := json.Unmarshal([]byte(`"nan"`), &y); err != nil || !math.IsNaN(float64(y)) {
		t.Errorf(`"nan" → %v, %v`, y, err)
	}
	if err := json.Unmarshal([]byte(`"big"`), &y); err == nil {
		t.Errorf(`"big" accepted`)
	}
}

func TestNeedPareto(t *testing.T) {
	grid := []Float{0, 0.01, 0.1, 1}
	n := NewNeed(grid)
	// Elements (err, |o|): a small value with a small error, a large one
	// with a larger error.
	n.Add(grid, 0.001, 0.001)
	n.Add(grid, 0.05, 1)
	want := []float64{0.05, 0.04, 0.0009, 0}
	for i, w := range want {
		if math.Abs(float64(n[i])-w) > 1e-12 {
			t.Errorf("atol(%v) = %v, want %v", grid[i], n[i], w)
		}
	}
	// Every grid point with its atol passes every element, in floating
	// point as allclose computes it.
	for i, r := range grid {
		for _, el := range [][2]float64{{0.001, 0.001}, {0.05, 1}} {
			if el[0] > float64(n[i])+float64(r)*el[1] {
				t.Errorf("allclose(%v, %v) fails element %v", n[i], r, el)
			}
		}
	}
	ps := n.Pareto(grid)
	if len(ps) != 4 {
		t.Fatalf("Pareto = %v, want 4 points", ps)
	}
	// atol + rtol: 0.05, 0.05, 0.1009, 1: the tie goes to the smaller rtol.
	k, ok := Knee(ps)
	if !ok || k.RTol != 0 {
		t.Errorf("Knee = %v, %v; want the rtol 0 point", k, ok)
	}
	if k, _ := Knee(ps[1:]); k.RTol != 0.01 {
		t.Errorf("Knee without rtol 0 = %v, want the rtol 0.01 point", k)
	}
	// A finiteness mismatch: no tolerance passes.
	m := NewNeed(grid)
	m.Add(grid, math.Inf(1), 0)
	if ps := m.Pareto(grid); len(ps) != 0 {
		t.Errorf("Pareto with a mismatch = %v, want none", ps)
	}
	if _, ok := Knee(nil); ok {
		t.Errorf("Knee(nil) ok")
	}
	// Merge is the element-wise maximum.
	m2 := NewNeed(grid)
	m2.Merge(n)
	m2.Merge(NewNeed(grid))
	if !slices.Equal(m2, n) {
		t.Errorf("Merge: %v, want %v", m2, n)
	}
}

func TestIndentShallow(t *testing.T) {
	in := `{"a":[1,2,{"b":"x,[y]\"{"}],"c":{},"d":[],"e":{"f":[3,4]}}`
	out := indentShallow([]byte(in), 2)
	var x, y any
	if err := json.Unmarshal([]byte(in), &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &y); err != nil {
		t.Fatalf("indented JSON does not parse: %v\n%s", err, out)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	if !bytes.Equal(xb, yb) {
		t.Errorf("indentShallow changed the value:\n%s", out)
	}
	if !strings.Contains(string(out), `"f": [3,4]`) || !strings.Contains(string(out), `{"b":"x,[y]\"{"}`) {
		t.Errorf("depth-3 value was broken into lines:\n%s", out)
	}
}

// tinyOptions runs few cases on two kernels: fast enough for go test.
func tinyOptions(t *testing.T) Options {
	t.Helper()
	opt := DefaultOptions()
	opt.Cases = 6
	opt.Seed = 7
	opt.Kernels = nil
	for _, name := range []string{"stream/bf16", "tiled/bc32/fp16"} {
		e, err := impl.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		opt.Kernels = append(opt.Kernels, e.Config)
	}
	// Two mutants of stream/bf16: one scales every head-0 output by
	// 1 + 2^−5, one changes nothing (never triggered).
	scaled := opt.Kernels[0]
	scaled.Hooks = &impl.Hooks{Row: func(in *problem.Inputs, t, h int, keys []problem.Key, pre []float32) {
		if h == 0 {
			for j := range pre {
				pre[j] *= 1 + 0x1p-5
			}
		}
	}}
	noop := opt.Kernels[0]
	noop.Hooks = &impl.Hooks{Row: func(*problem.Inputs, int, int, []problem.Key, []float32) {}}
	opt.Mutants = []Mutant{
		{Name: "test-scaled", BugClass: "test", Base: "stream/bf16", Kernel: impl.New(scaled).WithName("mutant/test-scaled"), Shape: tolerance.Shape{Kind: "stream"}},
		{Name: "test-noop", BugClass: "test", Base: "stream/bf16", Kernel: impl.New(noop).WithName("mutant/test-noop"), Shape: tolerance.Shape{Kind: "stream"}},
	}
	return opt
}

func TestRunWriteMerge(t *testing.T) {
	opt := tinyOptions(t)
	full, err := Run(opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Entries) != 4 {
		t.Fatalf("%d entries, want 2 kernels × 2 families", len(full.Entries))
	}
	measured := int64(0)
	for _, e := range full.Entries {
		measured += e.Cases
		if e.Cases > 0 && (e.Abs.N() == 0 || len(e.Points) != int(e.Cases)) {
			t.Errorf("%s/%s: %d cases but %d abs values, %d points", e.Kernel, e.Family, e.Cases, e.Abs.N(), len(e.Points))
		}
	}
	if measured == 0 {
		t.Fatalf("no case was measured")
	}
	if len(full.Mutants) != 2 {
		t.Fatalf("%d mutants, want 2", len(full.Mutants))
	}
	if m := full.Mutants[0]; m.Triggered == 0 || m.Criteria["bound"].Fail == 0 {
		t.Errorf("the scaling mutant: triggered %d, caught by bound %d; want both > 0", m.Triggered, m.Criteria["bound"].Fail)
	}
	if m := full.Mutants[1]; m.Triggered != 0 || m.Cases == 0 {
		t.Errorf("the no-op mutant: triggered %d of %d cases, want 0 of some", m.Triggered, m.Cases)
	}

	// Files.
	dir := t.TempDir()
	paths, err := Write(dir, full, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 3 {
		t.Fatalf("wrote %v, want 3 files", paths)
	}
	for _, f := range []string{FileJSON, FileMarkdown, FileHTML} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	back, err := Load(filepath.Join(dir, FileJSON))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.JSON(), full.JSON()) {
		t.Errorf("report.json does not round-trip")
	}
	htm, _ := os.ReadFile(filepath.Join(dir, FileHTML))
	for _, want := range []string{"<svg", "stream/bf16", "Family window", "</html>"} {
		if !bytes.Contains(htm, []byte(want)) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "<?xml", "http://", "https://"} {
		if bad == "http://" {
			// The SVG namespace is the one URL allowed (it is not fetched).
			htm = bytes.ReplaceAll(htm, []byte(`xmlns="http://www.w3.org/2000/svg"`), nil)
			htm = bytes.ReplaceAll(htm, []byte(`xmlns:xlink="http://www.w3.org/1999/xlink"`), nil)
		}
		if bytes.Contains(htm, []byte(bad)) {
			t.Errorf("report.html contains %q: not self-contained", bad)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, FileMarkdown))
	for _, want := range []string{"| stream/bf16 |", "| test-scaled | test | stream/bf16 |", "not exercised", "## Verdict", "PASS: 1 kernel × ", "<details><summary>"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	// No internal names for the reader: say what they mean.
	for _, bad := range []string{"props.CaseAt", "SPEC.md", "§"} {
		if bytes.Contains(md, []byte(bad)) || bytes.Contains(htm, []byte(bad)) {
			t.Errorf("the report names %q", bad)
		}
	}
	if !bytes.Contains(htm, []byte("<details><summary>")) || !bytes.Contains(htm, []byte(`<figure class="wide">`)) {
		t.Errorf("report.html: want collapsed details and page-wide figures")
	}

	// Shards 0/2 and 1/2 merge to the unsharded run.
	var shards []*Report
	for i := range 2 {
		o := opt
		o.Shard, o.Shards = i, 2
		r, err := Run(o)
		if err != nil {
			t.Fatal(err)
		}
		// Through JSON, as --merge reads them.
		if r, err = Parse(r.JSON()); err != nil {
			t.Fatal(err)
		}
		shards = append(shards, r)
	}
	merged, err := Merge(shards[1], shards[0])
	if err != nil {
		t.Fatal(err)
	}
	if !merged.Complete() || !slices.Equal(merged.ShardIDs, []int{0, 1}) {
		t.Errorf("merged shards %v of %d, want complete", merged.ShardIDs, merged.Shards)
	}
	for i, e := range full.Entries {
		m := merged.Entries[i]
		type cmp struct {
			what      string
			got, want float64
		}
		for _, c := range []cmp{
			{"cases", float64(m.Cases), float64(e.Cases)},
			{"elements", float64(m.Elements), float64(e.Elements)},
			{"abs count", float64(m.Abs.N()), float64(e.Abs.N())},
			{"ulp count", float64(m.ULP.N()), float64(e.ULP.N())},
			{"ratio count", float64(m.Ratio.N()), float64(e.Ratio.N())},
			{"abs max", float64(m.Abs.Max), float64(e.Abs.Max)},
			{"rel max", float64(m.Rel.Max), float64(e.Rel.Max)},
			{"ulp max", float64(m.ULP.Max), float64(e.ULP.Max)},
			{"ratio max", float64(m.Ratio.Max), float64(e.Ratio.Max)},
			{"abs p99", m.Abs.Quantile(0.99), e.Abs.Quantile(0.99)},
			{"bound passes", float64(m.Criteria["bound"].Pass), float64(e.Criteria["bound"].Pass)},
		} {
			if c.got != c.want && !(math.IsNaN(c.got) && math.IsNaN(c.want)) {
				t.Errorf("%s/%s %s: merged %v, unsharded %v", e.Kernel, e.Family, c.what, c.got, c.want)
			}
		}
	}
	// Beyond counts and maxima: apart from the shard fields, the merged
	// report is the unsharded one, byte for byte.
	merged.Shards, merged.ShardIDs = full.Shards, full.ShardIDs
	if !bytes.Equal(merged.JSON(), full.JSON()) {
		t.Errorf("merge(shard 0/2, shard 1/2) differs from the unsharded report")
	}

	// Merging a shard twice, or reports of different runs, is refused.
	if _, err := Merge(shards[0], shards[0]); err == nil {
		t.Errorf("merging a shard with itself was accepted")
	}
	other := *shards[1]
	other.Seed++
	if _, err := Merge(shards[0], &other); err == nil {
		t.Errorf("merging shards of different seeds was accepted")
	}
}

func TestRunWorkersIndependent(t *testing.T) {
	opt := tinyOptions(t)
	opt.Cases = 4
	opt.Families = []problem.Family{problem.Window}
	opt.Workers = 1
	a, err := Run(opt)
	if err != nil {
		t.Fatal(err)
	}
	opt.Workers = 3
	b, err := Run(opt)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.JSON(), b.JSON()) {
		t.Errorf("the report depends on the number of workers")
	}
}

func TestRunOptionErrors(t *testing.T) {
	bad := []func(*Options){
		func(o *Options) { o.Cases = -1 },
		func(o *Options) { o.Shard, o.Shards = 2, 2 },
		func(o *Options) { o.Shards = 0 },
		func(o *Options) { o.Kernels = nil },
		func(o *Options) { o.Families = nil },
	}
	for i, f := range bad {
		opt := tinyOptions(t)
		f(&opt)
		if _, err := Run(opt); err == nil {
			t.Errorf("options %d: no error", i)
		}
	}
}

func TestParseRejects(t *testing.T) {
	opt := tinyOptions(t)
	opt.Cases = 1
	r, err := Run(opt)
	if err != nil {
		t.Fatal(err)
	}
	good := string(r.JSON())
	tests := []struct{ name, from, to string }{
		{"newer version", `"version": 1`, `"version": 99`},
		{"unknown field", `"seed": 7`, `"seed": 7, "colour": 1`},
		{"other bins", `"sub_bins": 16`, `"sub_bins": 8`},
		{"truncated", good[len(good)/2:], ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := strings.Replace(good, tt.from, tt.to, 1)
			if s == good {
				t.Fatalf("test edit %q did not apply", tt.from)
			}
			if _, err := Parse([]byte(s)); err == nil {
				t.Errorf("Parse accepted it")
			}
		})
	}
}

func TestFewPoints(t *testing.T) {
	var ps []TolPoint
	for i := range 12 {
		ps = append(ps, TolPoint{ATol: Float(12 - i), RTol: Float(i), idx: i})
	}
	got := fewPoints(ps, ps[7], 5)
	var idx []int
	for _, p := range got {
		idx = append(idx, p.idx)
	}
	if len(got) > 6 || !slices.Contains(idx, 0) || !slices.Contains(idx, 11) || !slices.Contains(idx, 7) || !sort.IntsAreSorted(idx) {
		t.Errorf("fewPoints = %v", idx)
	}
}

func TestRunPanicIsError(t *testing.T) {
	opt := tinyOptions(t)
	opt.Cases = 2
	bad := opt.Kernels[0]
	bad.Hooks = &impl.Hooks{Row: func(*problem.Inputs, int, int, []problem.Key, []float32) { panic("boom") }}
	opt.Mutants = []Mutant{{Name: "test-panic", BugClass: "test", Base: "stream/bf16", Kernel: impl.New(bad), Shape: tolerance.Shape{Kind: "stream"}}}
	_, err := Run(opt)
	if err == nil || !strings.Contains(err.Error(), "mutant test-panic") || !strings.Contains(err.Error(), "boom") {
		t.Errorf("Run with a panicking mutant: %v; want an error naming it", err)
	}
}

func TestTypical(t *testing.T) {
	tests := []struct {
		name string
		c    cases.Case
		want bool
	}{
		{"plain", cases.Case{Family: problem.Sparse}, true},
		{"uniform window", cases.Case{Family: problem.Window, Values: cases.Values{Dist: "uniform"}}, true},
		{"dominant window", cases.Case{Family: problem.Window, Values: cases.Values{Dist: "dominant"}}, true},
		{"dominant sparse: the key is the value", cases.Case{Family: problem.Sparse, Values: cases.Values{Dist: "dominant"}}, false},
		{"wide", cases.Case{Family: problem.Window, Values: cases.Values{Dist: "wide"}}, false},
		{"v rescaled", cases.Case{Family: problem.Window, Values: cases.Values{VScale: 100}}, false},
		{"q·k rescaled", cases.Case{Family: problem.Sparse, Values: cases.Values{Scale: 16}}, false},
		{"unit scale spelled out", cases.Case{Family: problem.Sparse, Values: cases.Values{Scale: 1, VScale: 1}}, true},
		{"special planted", cases.Case{Family: problem.Window, Specials: []cases.Special{{Tensor: "q"}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Typical(tt.c); got != tt.want {
				t.Errorf("Typical = %v, want %v", got, tt.want)
			}
		})
	}
}
