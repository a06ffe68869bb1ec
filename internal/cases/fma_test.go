package cases

import (
	"math"
	"testing"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

// fmaSinkCase builds a case whose random sink is normal·Scale + Offset with
// the product inexact and the rounded sum exactly halfway between two
// float32 values, so that a fused multiply-add (which the Go compiler may
// emit on arm64 or amd64/v3 for an unconverted a*b+c) lands on the other
// side of the tie than the separately rounded product does. It returns the
// case and the sink value the portable arithmetic gives.
func fmaSinkCase(t *testing.T) (Case, float32) {
	for seed := uint64(0); seed < 10000; seed++ {
		// The draw order of a window case with T = H = D = Dv = 1: one
		// normal each for q, k and v, then the sink's.
		r := newRNG(seed)
		for range 3 {
			r.normal()
		}
		n := r.normal()
		if n < 0.5 {
			continue
		}
		const scale = 0.1
		p := float64(n * scale)
		e := math.FMA(n, scale, -p) // exact rounding error of the product
		// m: a float32 halfway point in the binade below p, so m − p is
		// exact (Sterbenz) and ulp64(m) = ulp64(p)/2.
		_, ex := math.Frexp(p)
		m := math.Ldexp(1, ex-2) + math.Ldexp(1, ex-2-24)
		if e <= 0.75*math.Ldexp(1, ex-2-52) {
			continue // the fused sum m + e would round back to m, or down to the even neighbour
		}
		off := m - p
		if float64(p)+off != m || math.FMA(n, scale, off) == m {
			continue
		}
		c := Case{Family: problem.Window, Seed: seed, T: 1, H: 1, D: 1, DType: "fp32",
			Sink: &Sink{Kind: "random", Scale: scale, Offset: off}}
		return c, float32(num.Round64(num.FP32, m, num.RNE))
	}
	t.Fatal("no seed found")
	return Case{}, 0
}

// TestSinkNotFused pins the sink of a case on an exact float32 tie. Before
// the product in the sink draw was wrapped in float64(), arm64 builds fused
// it into an FMADD and drew the neighbouring float32 (seen under
// qemu-aarch64 with scripts/crossarch.sh).
func TestSinkNotFused(t *testing.T) {
	c, want := fmaSinkCase(t)
	in, err := Generate(c, num.FP32)
	if err != nil {
		t.Fatal(err)
	}
	if in.Sink[0] != want {
		t.Errorf("seed %d: sink = %v (bits %#x), portable arithmetic gives %v (bits %#x)",
			c.Seed, in.Sink[0], math.Float32bits(in.Sink[0]), want, math.Float32bits(want))
	}
}
