package num

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestRound64Fast: Round64's fast path gives roundBinary's bits (ties to
// even) for random float64 values over the whole exponent range, every
// halfway case and its float64 neighbours, and the binade edges of every
// format.
func TestRound64Fast(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	check := func(f Format, x float64) {
		fi := infos[f]
		y, ok := round64Normal(x, fi)
		if !ok {
			return
		}
		want := roundBinary(x, fi, RNE)
		if math.Float64bits(y) != math.Float64bits(want) {
			t.Fatalf("%s: x = %b: fast %b, roundBinary %b", f, x, y, want)
		}
	}
	fast := 0
	for _, f := range []Format{FP32, FP16, BF16} {
		fi := infos[f]
		for i := 0; i < 300000; i++ {
			var x float64
			switch i % 4 {
			case 0: // any float64
				x = math.Float64frombits(r.Uint64())
			case 1: // the format's range
				x = math.Ldexp(1+r.Float64(), fi.emin-2+r.IntN(int(math.Log2(fi.max))-fi.emin+4))
			case 2: // a halfway point of the format and its neighbours
				e := fi.emin + r.IntN(int(math.Log2(fi.max))-fi.emin+1)
				m := r.Int64N(1 << (fi.prec - 1))
				x = math.Ldexp(float64(1<<(fi.prec-1)+m)+0.5, e-fi.prec+1)
				x = []float64{x, below(x), above(x)}[i%3]
			default: // near the edges: the smallest normal, the largest finite, overflow
				edge := []float64{math.Ldexp(1, fi.emin), fi.max, fi.max + math.Ldexp(1, int(math.Log2(fi.max))-fi.prec)}[r.IntN(3)]
				x = edge
				for k := r.IntN(4); k > 0; k-- {
					x = []func(float64) float64{below, above}[r.IntN(2)](x)
				}
			}
			if r.IntN(2) == 0 {
				x = -x
			}
			if _, ok := round64Normal(x, fi); ok {
				fast++
			}
			check(f, x)
		}
	}
	if fast < 500000 {
		t.Fatalf("only %d values took the fast path", fast)
	}
}
