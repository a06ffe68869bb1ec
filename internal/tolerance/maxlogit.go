package tolerance

import (
	"fmt"
	"math"
	"strings"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/ref"
)

// maxLogitRoundings is κ, the roundings a kernel of shape sh may add to
// its natural max_logit beyond the score path: 0 for the emulations (their
// max is a score as the bound's step 1 computes it), 4 for an unknown
// kernel (FlashMLA's prefill keeps the max in log2 units,
// fl(max S·fl(fl(scale)·fl(log2 e))), and writes fl(m·fl(ln 2)):
// fl(log2 e), the folded product, the product by S, fl(ln 2) and the last
// product replace the one scale product).
func maxLogitRoundings(sh Shape) float64 {
	if sh.Kind == "" {
		return 4
	}
	return 0
}

// MaxLogitAllowed is the allowed |max_logit^ − max_logit| of row r, whose
// exact max_logit in the declared convention is want. ok is false when the
// row is outside the domain (step 6's score conditions: a score may
// overflow, or reach the tiled kernels' −1e20 mask bias, which then wins
// the max). With Δx the score
// error of step 1 taken over every attended key (zero weights included:
// any of them may be the kernel's max) and κ the shape's extra roundings,
//
//	|m̂ − M| ≤ E = (1+u_32)^κ·(c_A'·max_i a_i + c_X'·max_i |x_i| + c_0') + ((1+u_32)^κ − 1)·|M| + η_32
//	base 2:  E₂ = E·log2 e·(1+u_32)² + ((1+u_32)² − 1)·|M₂| + η_32
//
// since max_i x̂_i − max_i x_i lies in [−Δx_{i*}, max_j Δx_j − (M − x_j)]
// (the max is exact: no rounding), and base 2 multiplies by float32(log2 e).
// A row with no key must give −∞ exactly.
func (m *Model) MaxLogitAllowed(r *ref.Row, want float64) (allowed float64, ok bool) {
	if r.N == 0 {
		return 0, true
	}
	gd := gamma(float64(m.d), m.ua)
	if r.MaxQK*(1+gd) >= m.maxAcc/2 || r.PeakScore*(1+gd) >= m.maxScore/2 || r.AllAbsX*(1+gd) >= math.Min(m.maxScore/2, 1e18) {
		return math.Inf(1), false
	}
	if math.IsInf(want, 0) || math.IsNaN(want) {
		return 0, true
	}
	u32 := num.UnitRoundoff(num.FP32)
	eta := num.MinSubnormal(num.FP32) / 2
	cA, cX, c0 := m.scoreErr()
	g := math.Pow(1+u32, maxLogitRoundings(m.Shape))
	nat := want
	if m.maxLogitBase2 {
		nat = want * math.Ln2
	}
	e := g*(cA*r.AllA+cX*r.AllAbsX+c0) + (g-1)*math.Abs(nat) + eta
	if m.maxLogitBase2 {
		g2 := (1 + u32) * (1 + u32)
		e = e*math.Log2E*g2 + (g2-1)*math.Abs(want) + eta
	}
	return e, true
}

// JudgeMaxLogit judges the kernel's max_logit against the reference's,
// row by row (MaxLogitAllowed). A missing max_logit output (nil or empty)
// fails every row.
func JudgeMaxLogit(x *Input, mode Mode) LSEVerdict {
	m := NewModel(x.Profile, x.Shape, x.In, mode)
	conv := *x.In.MaxLogit
	return judgeRows(x, x.OutMaxLogit, func(r *ref.Row) float64 { return ref.MaxLogitOf(r, conv) },
		func(_ int, r *ref.Row, want float64) (float64, bool) { return m.MaxLogitAllowed(r, want) })
}

// judgeMaxLogitInto adds the max_logit judgement to v when the problem
// declares a max_logit output and the caller passes the kernel's
// (x.OutMaxLogit non-nil; a kernel that returned none passes an empty
// slice, and every row fails).
func judgeMaxLogitInto(v *Verdict, x *Input, mode Mode) {
	if x.In.MaxLogit == nil || x.OutMaxLogit == nil {
		return
	}
	mv := JudgeMaxLogit(x, mode)
	v.MaxLogit = &mv
	if mv.Failed > 0 {
		v.Pass = false
		v.FailedOutputs = append(v.FailedOutputs, "max_logit")
		d := fmt.Sprintf("max_logit: %d of %d rows beyond their allowance (worst %.3gx)", mv.Failed, mv.Checked, mv.Worst)
		v.Detail = strings.TrimPrefix(v.Detail+"; "+d, "; ")
	}
}
