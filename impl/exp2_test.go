package impl_test

import (
	"math"
	"slices"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/props"
)

// TestExp2AndLazyPaths: the exp2 kind is a rounding path of its own (its
// output differs from tiled/bc64's on some case), lazy rescaling changes
// the output (the stale max is taken on some case) but never max_logit,
// which both report as fl(max S · fl(scale)) bit for bit.
func TestExp2AndLazyPaths(t *testing.T) {
	tiled, _ := impl.Lookup("tiled/bc64/bf16")
	exp2, _ := impl.Lookup("exp2/bc64/bf16")
	lazy, _ := impl.Lookup("lazy/bc64/bf16")
	exp2Differs, lazyDiffers := 0, 0
	for i := 0; i < 24; i++ {
		c := props.CaseAt(3, i, []problem.Family{problem.Window, problem.Dense, problem.MLA}[i%3])
		c.MaxLogit = &cases.MaxLogitSpec{Base: "e"}
		if c.Format(exp2.Profile().In) != exp2.Profile().In {
			continue
		}
		in, err := cases.Generate(c, exp2.Profile().In)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := tiled.Run(in)
		b, _ := exp2.Run(in)
		l, _ := lazy.Run(in)
		if !slices.Equal(bits(a.O), bits(b.O)) {
			exp2Differs++
		}
		if !slices.Equal(bits(b.O), bits(l.O)) {
			lazyDiffers++
		}
		if !slices.Equal(bits(b.MaxLogit), bits(l.MaxLogit)) || !slices.Equal(bits(a.MaxLogit), bits(b.MaxLogit)) {
			t.Errorf("max_logit differs between tiled, exp2 and lazy\ncase: %s", c)
		}
	}
	if exp2Differs == 0 || lazyDiffers == 0 {
		t.Errorf("exp2 differs from tiled on %d cases, lazy from exp2 on %d: want both > 0", exp2Differs, lazyDiffers)
	}
	t.Logf("exp2 ≠ tiled on %d cases, lazy ≠ exp2 on %d", exp2Differs, lazyDiffers)
}

func bits(x []float32) []uint32 {
	b := make([]uint32, len(x))
	for i, v := range x {
		b[i] = math.Float32bits(v)
	}
	return b
}
