package props

import (
	"math"

	"github.com/attnvet/attnvet/internal/problem"
)

// Fast paths of expOverflows. A score x = scale·Σ_d q_d k_d (dot64: exact
// products, a float64 sum) is at most scale·Σ_d|q_d|·max|k| times
// 1 + (D+2)·2^-53 for the float64 roundings; scoreBelow allows a factor
// 1 + 10^-6, so where it holds no score of the row can exceed the limit
// and the scan of the row's keys cannot return true. The verdict is the
// scan's in every case (TestExpOverflowsShortcut).

// keyMaxAbs is max |k| over the tensors every attended key comes from,
// +Inf if one holds NaN or ±Inf; ok is false when the family's keys do
// not come from a fixed set of tensors.
func keyMaxAbs(in *problem.Inputs) (m float64, ok bool) {
	ks, _, ok := in.KeySources()
	if !ok {
		return 0, false
	}
	const expMask, mask = 0x7f800000, 0x7fffffff
	var top uint32
	for _, t := range ks {
		for _, x := range t {
			b := math.Float32bits(x) & mask
			top = max(top, b)
		}
	}
	if top >= expMask {
		return math.Inf(1), true
	}
	return float64(math.Float32frombits(top)), true
}

// sumAbs is Σ|q_d| in float64.
func sumAbs(q []float32) float64 {
	s := 0.0
	for _, x := range q {
		s += math.Abs(float64(x))
	}
	return s
}

// scoreBelow reports whether scale·sq·kmax, with room for the roundings,
// is below limit (false for NaN and ±Inf).
func scoreBelow(scale, sq, kmax, limit float64) bool {
	return scale*sq*kmax*(1+1e-6) < limit
}

// maxRowAbs is max over query rows of Σ_d|q_d|.
func maxRowAbs(in *problem.Inputs) float64 {
	m := 0.0
	for r := 0; r < in.T*in.H; r++ {
		s := sumAbs(in.Q[r*in.D : (r+1)*in.D])
		if !(s <= m) { // NaN wins
			m = s
		}
	}
	return m
}
