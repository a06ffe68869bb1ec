package cases

import (
	"math"
	"testing"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/vec"
)

// TestFastNormalsMatchScalar: fill's BF16 normal draws through
// vec.NormalsBF16 are the scalar loop's values, bit for bit, and leave the
// stream where it does: for scales that keep every value in range, and for
// those that send some or all of them to the slow path (zero, subnormal,
// overflow and saturation, NaN), at lengths around the batch and group sizes.
func TestFastNormalsMatchScalar(t *testing.T) {
	if !vec.Accelerated() {
		t.Skip("no vector path on this machine")
	}
	defer func(v bool) { fastNormals = v }(fastNormals)
	scales := []float64{1, 0.3, 1e-3, 3e38, 1e38, 1e-38, 1e-39, 2e-45, 0, math.Inf(1), math.NaN(), -2.5}
	lens := []int{0, 1, 3, 4, 5, 63, 64, 65, 130, 1000}
	for si, scale := range scales {
		for _, n := range lens {
			run := func(on bool) ([]float32, uint64) {
				fastNormals = on
				g := valueGen{r: newRNG(uint64(1000*si + n)), f: num.BF16}
				out := g.fill(n, scale, false)
				return out, g.r.src.Uint64()
			}
			want, wantNext := run(false)
			got, gotNext := run(true)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("scale %g, n %d: value %d is %v (%#x), the scalar loop's %v (%#x)",
						scale, n, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
				}
			}
			if gotNext != wantNext {
				t.Fatalf("scale %g, n %d: the stream moved on differently", scale, n)
			}
		}
	}
	// The kernel itself takes the in-range groups and stops at the first
	// group with a value outside: a scale of 1 takes all of them, 0 none.
	var d [64]uint64
	r := newRNG(7)
	for i := range d {
		d[i] = r.src.Uint64()
	}
	out := make([]float32, 16)
	if g := vec.NormalsBF16(out, d[:], 1); g != 4 {
		t.Errorf("scale 1: %d groups of 4 written, want 4", g)
	}
	if g := vec.NormalsBF16(out, d[:], 0); g != 0 {
		t.Errorf("scale 0: %d groups written, want 0 (zero is the slow path)", g)
	}
}
