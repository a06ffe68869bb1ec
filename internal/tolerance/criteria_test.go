package tolerance

import (
	"math"
	"testing"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/ref"
)

// The anchors' per-element rules, each against hand-computed rows that
// include NaN, ±Inf, ±0 and subnormals. Output format BF16 throughout
// (ulp(1) = 2^-7, ulp(0.3) = 2^-9; torch's bf16 tolerances rtol 1.6e-2,
// atol 1e-5).

var (
	nan  = math.NaN()
	inf  = math.Inf(1)
	nan3 = float32(math.NaN())
	inf3 = float32(math.Inf(1))
)

func anchorInput(want []float64, got []float32, same []float32) *Input {
	return &Input{
		Ref:      &ref.Result{O: want, Dv: max(len(want), 1), T: 1, H: 1},
		Out:      got,
		Profile:  profile.Profile{Name: "test", Out: num.BF16},
		SamePrec: same,
	}
}

type anchorRow struct {
	name      string
	want      []float64
	got       []float32
	same      []float32 // fa2x only
	pass      bool
	failed    int
	worstElem int // -1: do not check
}

func runAnchorRows(t *testing.T, c Criterion, rows []anchorRow) {
	t.Helper()
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			v := c.Judge(anchorInput(r.want, r.got, r.same))
			if v.Pass != r.pass || v.Failed != r.failed {
				t.Fatalf("%s: pass=%v failed=%d, want pass=%v failed=%d (%s)", c.Name(), v.Pass, v.Failed, r.pass, r.failed, v.Detail)
			}
			if r.worstElem >= 0 && v.WorstElem != r.worstElem {
				t.Fatalf("%s: worst element %d, want %d", c.Name(), v.WorstElem, r.worstElem)
			}
			if v.Criterion != c.Name() {
				t.Fatalf("verdict names %q, want %q", v.Criterion, c.Name())
			}
		})
	}
}

// ones is n copies of 1 with bad[i] replaced at the given positions.
func ones(n int, bad map[int]float32) ([]float64, []float32) {
	want, got := make([]float64, n), make([]float32, n)
	for i := range want {
		want[i], got[i] = 1, 1
		if b, ok := bad[i]; ok {
			got[i] = b
		}
	}
	return want, got
}

func TestAllcloseRows(t *testing.T) {
	runAnchorRows(t, Allclose{}, []anchorRow{
		{"equal", []float64{1, -2, 0.5}, []float32{1, -2, 0.5}, nil, true, 0, -1},
		{"signed zeros", []float64{0, math.Copysign(0, -1)}, []float32{float32(math.Copysign(0, -1)), 0}, nil, true, 0, -1},
		{"NaN on both sides", []float64{nan}, []float32{nan3}, nil, true, 0, -1},
		{"NaN output", []float64{0.5, 1}, []float32{0.5, nan3}, nil, false, 1, 1},
		{"NaN reference only", []float64{nan}, []float32{1}, nil, false, 1, 0},
		{"same infinity", []float64{inf, -inf}, []float32{inf3, -inf3}, nil, true, 0, -1},
		{"opposite infinity", []float64{inf}, []float32{-inf3}, nil, false, 1, 0},
		{"infinite output of a finite reference", []float64{3e38}, []float32{inf3}, nil, false, 1, 0},
		{"subnormal reference, zero output", []float64{1e-40}, []float32{0}, nil, true, 0, -1},
		// 1e-5 + 1.6e-2·1 = 0.01601 allowed at 1.
		{"inside rtol", []float64{1}, []float32{1.0156}, nil, true, 0, -1},
		{"outside rtol", []float64{1}, []float32{1.0171}, nil, false, 1, 0},
		// At 0 only atol 1e-5 remains.
		{"atol at zero, inside", []float64{0}, []float32{5e-6}, nil, true, 0, -1},
		{"atol at zero, outside", []float64{0}, []float32{2e-5}, nil, false, 1, 0},
		{"worst of two", []float64{1, 1}, []float32{1.02, 1.05}, nil, false, 2, 1},
		{"no elements", nil, nil, nil, true, 0, -1},
	})
}

func TestRatioRows(t *testing.T) {
	r := Ratio{ATol: 1e-4, RTol: 1.0 / 128, MaxBad: 0.005}
	// 200 points: 1 bad point is 0.5% (allowed), 2 are 1%. A bad point
	// at 1 is one beyond 1e-4 + 1/128 = 0.0079125.
	w1, g1 := ones(200, map[int]float32{7: 1.01})
	w2, g2 := ones(200, map[int]float32{7: 1.01, 9: 0.99})
	wIn, gIn := ones(200, map[int]float32{7: 1.0078, 9: 0.9922})
	// pypto-lib's ratio_allclose fails on any NaN or Inf, whatever the ratio.
	wN, gN := ones(200, map[int]float32{3: nan3})
	wI, gI := ones(200, map[int]float32{3: inf3})
	wR, gR := ones(200, nil)
	wR[5] = inf
	gR[5] = inf3
	runAnchorRows(t, r, []anchorRow{
		{"one bad point in 200", w1, g1, nil, true, 1, -1},
		{"two bad points in 200", w2, g2, nil, false, 2, -1},
		{"inside the point tolerance", wIn, gIn, nil, true, 0, -1},
		{"one NaN in 200", wN, gN, nil, false, 1, -1},
		{"one Inf in 200", wI, gI, nil, false, 1, -1},
		{"matching Inf in the expected values", wR, gR, nil, false, 1, -1},
		{"signed zeros", []float64{0}, []float32{float32(math.Copysign(0, -1))}, nil, true, 0, -1},
	})
}

func TestFlashMLARows(t *testing.T) {
	// FlashMLA's check_is_allclose (tests/kernelkit/compare.py): a point
	// passes iff |a−r| < 1e-3 or |a−r|/(|r|+1e-6) < 2.01/128 (strict), the
	// ±Inf/NaN positions must match, and the cosine distance, 0 when
	// Σr² < 1e-12, must stay ≤ 5e-6. At 1 the rel limit is 0.0157032.
	small := make([]float64, 100)
	smallGot := make([]float32, 100)
	for i := range small {
		small[i], smallGot[i] = 1e-3, 1.9e-3 // each within abs 1e-3, cosine distance 0.176
	}
	w1000, g1000 := ones(1000, map[int]float32{0: 1.0156}) // cosine distance 1.2e-7
	runAnchorRows(t, FlashMLA{}, []anchorRow{
		{"equal", []float64{1, -2}, []float32{1, -2}, nil, true, 0, -1},
		{"inside rel", w1000, g1000, nil, true, 0, -1},
		{"outside rel", []float64{1, 1}, []float32{1.0158, 1}, nil, false, 1, 0},
		{"abs at zero, inside", []float64{0, 1}, []float32{9e-4, 1}, nil, true, 0, -1},
		{"abs at zero, outside", []float64{0, 1}, []float32{1.1e-3, 1}, nil, false, 1, 0},
		{"NaN positions match", []float64{nan, 1}, []float32{nan3, 1}, nil, true, 0, -1},
		{"NaN output only", []float64{0.5, 1}, []float32{nan3, 1}, nil, false, 1, 0},
		{"Inf positions match", []float64{-inf, 1}, []float32{-inf3, 1}, nil, true, 0, -1},
		{"all zeros: cosine distance 0", []float64{0, 0, 0}, []float32{0, 0, float32(math.Copysign(0, -1))}, nil, true, 0, -1},
		{"no elements", nil, nil, nil, true, 0, -1},
		{"subnormal outputs of a zero reference", []float64{0, 0}, []float32{1e-40, -1e-40}, nil, true, 0, -1},
		{"cosine distance", small, smallGot, nil, false, 0, -1},
	})
}

func TestULPRows(t *testing.T) {
	u := 0.0078125 // ulp(1) in BF16
	minSub := math.Ldexp(1, -133)
	runAnchorRows(t, ULP{N: 2}, []anchorRow{
		{"two ulps", []float64{1}, []float32{float32(1 + 2*u)}, nil, true, 0, -1},
		{"three ulps", []float64{1}, []float32{float32(1 + 3*u)}, nil, false, 1, 0},
		{"same infinity", []float64{inf}, []float32{inf3}, nil, true, 0, -1},
		{"finite output of an infinite reference", []float64{inf}, []float32{3e38}, nil, false, 1, 0},
		{"NaN on both sides", []float64{nan}, []float32{nan3}, nil, true, 0, -1},
		{"NaN output", []float64{1}, []float32{nan3}, nil, false, 1, 0},
		{"signed zeros", []float64{0}, []float32{float32(math.Copysign(0, -1))}, nil, true, 0, -1},
		{"two subnormal ulps at zero", []float64{0}, []float32{float32(2 * minSub)}, nil, true, 0, -1},
		{"three subnormal ulps at zero", []float64{0}, []float32{float32(3 * minSub)}, nil, false, 1, 0},
	})
}

func TestFA2xRows(t *testing.T) {
	// allowed = 2·max|same − ref| + ulp(0.3) = 2·0.01 + 2^-9 = 0.02195.
	runAnchorRows(t, FA2x{}, []anchorRow{
		{"within twice the same-precision error", []float64{1, 2}, []float32{1.02, 2}, []float32{1.01, 2}, true, 0, -1},
		{"beyond it", []float64{1, 2}, []float32{1.03, 2}, []float32{1.01, 2}, false, 1, 0},
		{"exact same-precision reference: one ulp(0.3) of slack", []float64{1}, []float32{1.0019}, []float32{1}, true, 0, -1},
		{"exact same-precision reference, beyond the slack", []float64{1}, []float32{1.0021}, []float32{1}, false, 1, 0},
		{"NaN output", []float64{1, 2}, []float32{nan3, 2}, []float32{1, 2}, false, 1, 0},
		{"NaN on both sides", []float64{nan, 2}, []float32{nan3, 2}, []float32{nan3, 2}, true, 0, -1},
		{"signed zeros", []float64{0}, []float32{float32(math.Copysign(0, -1))}, []float32{0}, true, 0, -1},
	})
}
