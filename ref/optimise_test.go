package ref

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

// bitCase draws a case for the bit-identity test: every size regime (tiny,
// n not a multiple of the unrolling, large enough for the worker pool),
// every value regime including NaN and ±Inf inputs, and ±Inf sinks.
func bitCase(r *rand.Rand, i int) cases.Case {
	dists := []string{"normal", "uniform", "wide", "zeroq", "dominant"}
	c := cases.Case{Seed: r.Uint64(), DType: []string{"bf16", "fp16", "fp32"}[r.IntN(3)],
		Values: cases.Values{Dist: dists[r.IntN(len(dists))]}}
	big := i%10 == 0
	if i%2 == 0 {
		c.Family = problem.Sparse
		c.H, c.D = 1+r.IntN(6), 1+r.IntN(40)
		c.B, c.S = 1+r.IntN(3), 1+r.IntN(2)
		c.Win, c.IdxTopK, c.BlockSize = r.IntN(12), r.IntN(20), 1+r.IntN(8)
		if big {
			c.H, c.D, c.B, c.Win, c.IdxTopK = 16+r.IntN(16), 64+r.IntN(64), 4, 32, 100
		}
		if c.Win+c.IdxTopK == 0 {
			c.Win = 3
		}
		for range c.B {
			c.Seqused = append(c.Seqused, r.IntN(2*(c.Win+c.IdxTopK)+2))
		}
		c.Indices = []string{"sorted", "shuffled"}[r.IntN(2)]
		if r.IntN(3) == 0 {
			c.Plant = []string{[]string{"duplicate", problem.VPadInPrefix, problem.VValidAfter, problem.VWindowSlot, problem.VBlockTable}[r.IntN(5)]}
		}
	} else {
		c.Family = problem.Window
		c.T = 1 + r.IntN(12)
		hkv := 1 + r.IntN(3)
		c.Hkv, c.H = hkv, hkv*(1+r.IntN(3))
		c.D, c.Dv, c.Window = 1+r.IntN(40), 1+r.IntN(40), r.IntN(6)
		if big {
			c.T, c.H, c.Hkv, c.D, c.Dv = 120, 8, 2, 64, 48
		}
	}
	switch r.IntN(5) {
	case 1:
		c.Sink = &cases.Sink{Kind: "random", Scale: 4}
	case 2:
		c.Sink = &cases.Sink{Kind: "const", Value: cases.F(math.Inf(1))}
	case 3:
		c.Sink = &cases.Sink{Kind: "const", Value: cases.F(math.Inf(-1))}
	case 4:
		c.Sink = &cases.Sink{Kind: "random", Scale: 1, Offset: 800} // every key underflows
	}
	for range r.IntN(3) {
		v := []cases.Float{cases.F(math.NaN()), cases.F(math.Inf(1)), cases.F(math.Inf(-1)), {Name: "max"}, {Name: "-minsub"}, cases.F(math.Copysign(0, -1))}[r.IntN(6)]
		sp := cases.Special{Token: r.IntN(c.Tokens()), Value: v}
		switch {
		case r.IntN(2) == 0:
			sp.Tensor, sp.Head, sp.Dim = "q", r.IntN(c.H), r.IntN(c.D)
		case c.Family == problem.Sparse:
			sp.Tensor, sp.Key, sp.Dim = "kv", r.IntN(c.Win+c.IdxTopK), r.IntN(c.D)
		default:
			sp.Tensor, sp.Key, sp.Head = []string{"k", "v"}[r.IntN(2)], r.IntN(c.T), r.IntN(c.Hkv)
			sp.Dim = r.IntN(c.D)
			if sp.Tensor == "v" {
				sp.Dim = r.IntN(c.Dv)
			}
		}
		c.Specials = append(c.Specials, sp)
	}
	return c
}

// same compares bits, except that all NaNs are one: Go leaves NaN signs
// and payloads to the hardware and the compiler's operand order (amd64's
// default NaN is negative, arm64's positive).
func same(x, y float64) bool {
	return math.Float64bits(x) == math.Float64bits(y) || math.IsNaN(x) && math.IsNaN(y)
}

func sameBits(a, b *Result) error {
	for _, f := range []struct {
		name string
		x, y []float64
	}{{"O", a.O, b.O}, {"AbsV", a.AbsV, b.AbsV}, {"Dev1", a.Dev1, b.Dev1}, {"DevA", a.DevA, b.DevA},
		{"DevX", a.DevX, b.DevX}, {"DevM", a.DevM, b.DevM}} {
		if len(f.x) != len(f.y) {
			return fmt.Errorf("%s: lengths %d, %d", f.name, len(f.x), len(f.y))
		}
		for e := range f.x {
			if !same(f.x[e], f.y[e]) {
				return fmt.Errorf("%s[%d]: %v (%#x) vs %v (%#x)", f.name, e, f.x[e], math.Float64bits(f.x[e]), f.y[e], math.Float64bits(f.y[e]))
			}
		}
	}
	for i := range a.Rows {
		x, y := a.Rows[i], b.Rows[i]
		fx := []float64{x.M, x.Sink, x.PSink, x.MaxA, x.MaxQK, x.MaxAbsX, x.MaxDiff, x.MaxAbsV, x.MaxAbsQ, x.PMax, x.ZeroA, x.ZeroX}
		fy := []float64{y.M, y.Sink, y.PSink, y.MaxA, y.MaxQK, y.MaxAbsX, y.MaxDiff, y.MaxAbsV, y.MaxAbsQ, y.PMax, y.ZeroA, y.ZeroX}
		for k := range fx {
			if !same(fx[k], fy[k]) || x.N != y.N {
				return fmt.Errorf("row %d: %+v vs %+v", i, x, y)
			}
		}
	}
	return nil
}

// TestOptimisedMatchesLegacy: the optimised reference gives the same bits
// (NaNs aside, see same) as the implementation it replaced, on every
// field, for 500 cases (2000 with ATTNVET_LONG=1, as .ci/run's long step).
func TestOptimisedMatchesLegacy(t *testing.T) {
	r := rand.New(rand.NewPCG(77, 1))
	n := 500
	if os.Getenv("ATTNVET_LONG") != "" {
		n = 2000
	}
	if testing.Short() {
		n = 200
	}
	for i := range n {
		c := bitCase(r, i)
		in, err := cases.Generate(c, num.BF16)
		if err != nil {
			t.Fatalf("case %d: %v\n%s", i, err, c)
		}
		want := legacyCompute(in, Options{})
		for _, w := range []int{0, 1, 3} {
			if err := sameBits(want, Compute(in, Options{Workers: w})); err != nil {
				t.Fatalf("case %d, %d workers: %v\ncase: %s", i, w, err, c)
			}
		}
	}
}

// BenchmarkLegacySmall is BenchmarkRefSmall on the pre-optimisation code,
// for the speed-up (same process, same machine load).
func BenchmarkLegacySmall(b *testing.B) {
	c := cases.Case{Family: problem.Sparse, Seed: 1, H: 4, D: 32, B: 1, S: 1,
		Win: 32, IdxTopK: 0, Seqused: []int{32}, Sink: &cases.Sink{Kind: "random", Scale: 1}}
	in, err := cases.Generate(c, num.BF16)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		legacyCompute(in, Options{})
	}
}

// TestComputeIntoReuses: ComputeInto on a result of an earlier, larger or
// smaller case gives Compute's bits on every field, whatever that result
// held (rows without keys and +Inf sinks rely on o starting at 0).
func TestComputeIntoReuses(t *testing.T) {
	r := rand.New(rand.NewPCG(77, 2))
	var reuse *Result
	for i := range 300 {
		c := bitCase(r, i)
		in, err := cases.Generate(c, num.BF16)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		want := Compute(in, Options{Workers: 1})
		reuse = ComputeInto(in, Options{Workers: i % 3}, reuse)
		if err := sameBits(want, reuse); err != nil || reuse.T != want.T || reuse.H != want.H || reuse.Dv != want.Dv || len(reuse.Rows) != len(want.Rows) {
			t.Fatalf("case %d: %v\ncase: %s", i, err, c)
		}
		for k := range want.Rows {
			if a, b := want.Rows[k], reuse.Rows[k]; !same(a.PeakScore, b.PeakScore) || !same(a.LSE, b.LSE) {
				t.Fatalf("case %d row %d: %+v vs %+v", i, k, a, b)
			}
		}
	}
}

// TestLazyDevMatches: a LazyDev result has no deviation sums until asked,
// and then, row by row in any order or all at once, Compute's bits on
// every field.
func TestLazyDevMatches(t *testing.T) {
	r := rand.New(rand.NewPCG(77, 3))
	var reuse *Result
	for i := range 300 {
		c := bitCase(r, i)
		in, err := cases.Generate(c, num.BF16)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		want := Compute(in, Options{Workers: 1})
		lz := ComputeInto(in, Options{Workers: i % 3, LazyDev: true}, reuse)
		if !lz.Lazy() || (lz.Dev1 != nil && len(lz.O) > 0) {
			t.Fatalf("case %d: a lazy result with its sums", i)
		}
		for range r.IntN(4) {
			if len(lz.Rows) > 0 {
				lz.EnsureDev(r.IntN(len(lz.Rows)))
			}
		}
		lz.EnsureAllDev()
		if err := sameBits(want, lz); err != nil || lz.Lazy() {
			t.Fatalf("case %d: %v (lazy %v)\ncase: %s", i, err, lz.Lazy(), c)
		}
		reuse = lz
	}
}
