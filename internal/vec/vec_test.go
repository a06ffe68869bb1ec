package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// specials32 and specials64 are the values the kernels must treat exactly
// as the scalar code: NaNs of both signs with distinct payloads, ±Inf, ±0,
// subnormals, the extremes, values whose sums cancel or overflow.
var specials32 = []float32{
	float32(math.NaN()), math.Float32frombits(0x7fc00123), math.Float32frombits(0xffc00456),
	math.Float32frombits(0x7f800001), // signalling NaN
	float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)),
	math.Float32frombits(1), math.Float32frombits(0x807fffff), math.MaxFloat32, -math.MaxFloat32,
	math.SmallestNonzeroFloat32, 1, -1, 0.5, 3e38, -3e38, 1e-30,
}

var specials64 = []float64{
	math.NaN(), math.Float64frombits(0x7ff8000000000abc), math.Float64frombits(0xfff8000000000def),
	math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1),
	math.Float64frombits(1), math.Float64frombits(0x800fffffffffffff), math.MaxFloat64, -math.MaxFloat64,
	1e308, -1e308, 1e-310, 1, -1, 0.25,
}

// draw fills a vector: mostly random, with a share of special values (none,
// some or many, chosen per vector).
func draw32(r *rand.Rand, n int, special float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		if r.Float64() < special {
			v[i] = specials32[r.IntN(len(specials32))]
		} else {
			v[i] = float32(r.NormFloat64() * math.Exp2(float64(r.IntN(20)-10)))
		}
	}
	return v
}

func draw64(r *rand.Rand, n int, special float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		if r.Float64() < special {
			v[i] = specials64[r.IntN(len(specials64))]
		} else {
			v[i] = r.NormFloat64() * math.Exp2(float64(r.IntN(40)-20))
		}
	}
	return v
}

// same compares bit patterns; any NaN matches any NaN. Go does not pin
// NaN payloads: when both operands of an add or multiply are NaN the
// hardware keeps the first one's, and the compiler commutes operands as it
// allocates registers (the same source line gives different payloads in
// dot2Go and in Dot2x4's tail). Nothing downstream reads a NaN's payload
// or sign, and internal/determinism hashes NaN as one value.
func same(t *testing.T, what string, got, want []float64) {
	t.Helper()
	for i := range want {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) && !(math.IsNaN(got[i]) && math.IsNaN(want[i])) {
			t.Fatalf("%s[%d]: asm %v (%#016x), Go %v (%#016x)", what, i, got[i], math.Float64bits(got[i]), want[i], math.Float64bits(want[i]))
		}
	}
}

var specialShares = []float64{0, 0, 0.02, 0.2, 0.7}

// TestKernelsMatchGo: Dot2x4 gives the pure-Go loop's bits for each key, on
// random lengths (tails included) and inputs with and without NaN, ±Inf,
// ±0 and subnormals, 4000 trials.
func TestKernelsMatchGo(t *testing.T) {
	if !useAsm {
		t.Skip("no assembly kernels on this CPU/architecture (the pure-Go path is the reference)")
	}
	r := rand.New(rand.NewPCG(15, 3))
	for trial := range 4000 {
		n := r.IntN(70)
		if trial%10 == 0 {
			n = 4 * r.IntN(140)
		}
		sp := specialShares[trial%len(specialShares)]
		name := fmt.Sprintf("trial %d n %d special %.2f", trial, n, sp)

		q := draw64(r, n, sp)
		var ks [4][]float32
		for i := range ks {
			ks[i] = draw32(r, n, sp)
		}
		if trial%7 == 0 {
			ks[3] = ks[1] // repeated keys
		}
		if off := r.IntN(3); off <= len(ks[0]) { // unaligned starts too
			if got, want := MaxAbsBits32(ks[0][off:]), maxAbsBits32Go(ks[0][off:]); got != want {
				t.Fatalf("%s: MaxAbsBits32 %#x, want %#x", name, got, want)
			}
		}
		var dot, abs [4]float64
		Dot2x4(q, &ks, &dot, &abs)
		for i := range ks {
			wd, wa := dot2Go(q, ks[i])
			same(t, name+" dot", []float64{dot[i], abs[i]}, []float64{wd, wa})
		}

	}
}

// TestNKernelsMatchGo: AxpyN and DevN give the bits of the pure-Go loops
// run key after key (Axpy2 and Dev4 per key, in key order), for 0-40 keys
// and lengths with every remainder mod 8.
func TestNKernelsMatchGo(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 4))
	for trial := range 3000 {
		n := r.IntN(45)
		if trial%10 == 0 {
			n = 8 * r.IntN(70)
		}
		nk := r.IntN(41)
		sp := specialShares[trial%len(specialShares)]
		name := fmt.Sprintf("trial %d n %d keys %d special %.2f", trial, n, nk, sp)
		c := make([][4]float64, nk)
		v := make([][]float32, nk)
		for i := range c {
			copy(c[i][:], draw64(r, 4, sp))
			v[i] = draw32(r, n+r.IntN(3), sp) // rows may be longer than o
		}
		o := draw64(r, n, sp)
		var acc [6][]float64
		for i := range acc {
			acc[i] = draw64(r, n, sp)
		}
		clone := func() [6][]float64 {
			var d [6][]float64
			for i := range d {
				d[i] = slices.Clone(acc[i])
			}
			return d
		}
		got, want := clone(), clone()
		AxpyN(c, v, got[0], got[1])
		DevN(c, v, o, got[2], got[3], got[4], got[5])
		for i := range c {
			axpy2Go(c[i][0], v[i], want[0], want[1])
			dev4Go(&c[i], v[i], o, want[2], want[3], want[4], want[5])
		}
		for i := range got {
			same(t, fmt.Sprintf("%s acc %d", name, i), got[i], want[i])
		}
	}
}

// TestKernelsSeeTheirInputs: the kernels read every element and every key
// (one that skipped a lane, a block or the tail would agree with Go on
// zeros only).
func TestKernelsSeeTheirInputs(t *testing.T) {
	for n := range 21 {
		q := make([]float64, n)
		k := make([]float32, n)
		for i := range n {
			q[i], k[i] = 1, float32(i+1)
		}
		ks := [4][]float32{k, k, k, k}
		for j := range n { // the largest magnitude in every position
			v := append([]float32(nil), k...)
			v[j] = -1e30
			if got := MaxAbsBits32(v); got != math.Float32bits(1e30) {
				t.Fatalf("n %d: MaxAbsBits32 missed element %d: %#x", n, j, got)
			}
		}
		var dot, abs [4]float64
		Dot2x4(q, &ks, &dot, &abs)
		want := float64(n * (n + 1) / 2)
		for i := range dot {
			if dot[i] != want || abs[i] != want {
				t.Errorf("n=%d: Dot2x4 %v %v, want %v", n, dot, abs, want)
			}
		}
		o, absV := make([]float64, n), make([]float64, n)
		AxpyN([][4]float64{{1}, {-2}, {0.5}}, [][]float32{k, k, k}, o, absV)
		c := [4]float64{1, 2, 3, 4}
		d1, da, dx, dm := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
		DevN([][4]float64{c, c, c}, [][]float32{k, k, k}, make([]float64, n), d1, da, dx, dm)
		for j := range n {
			kj := float64(j + 1)
			if o[j] != -0.5*kj || absV[j] != 3.5*kj || d1[j] != 3*kj || da[j] != 6*kj || dx[j] != 9*kj || dm[j] != 12*kj {
				t.Fatalf("n=%d j=%d: o %v absV %v d %v %v %v %v", n, j, o[j], absV[j], d1[j], da[j], dx[j], dm[j])
			}
		}
	}
}
