package tolerance

import (
	"math"

	"github.com/attnvet/attnvet/internal/num"
)

// isExp2 reports whether the kernel takes the exp2 path (impl.Exp2, and
// impl.Lazy, which is that path with lazy rescaling).
func (m *Model) isExp2() bool { return m.Shape.Kind == "exp2" || m.Shape.Kind == "lazy" }

// LazyThreshold is τ of impl.Lazy (log2 units): a tile raises the running
// max only when it exceeds it by more than τ.
const LazyThreshold = 6

// lazyGap bounds how far below the row's max, in natural units, the lazy
// kernel's running max may stay: τ·ln 2 with the rounding of the test
// fl(fl(m_t − m)·ls) > τ (two roundings and the folded constant's three),
// plus the scores' own errors on both sides. 0 for other kernels.
func (m *Model) lazyGap(dxMax float64) float64 {
	if m.Shape.Kind != "lazy" {
		return 0
	}
	u := num.UnitRoundoff(num.FP32)
	return LazyThreshold*math.Ln2*math.Pow(1+u, 6) + 2*dxMax
}

// exp2Exponent is the exponent perturbation of a key on the exp2 path
// (docs/tolerance.md, "The exp2 path"): Δ_i ≤ c_A a_i + c_X |x_i| +
// c_M (m − x_i) + c_1, from the score error (c_A', c_X', c_0', which
// already carry the folded constant's roundings) and, in natural units,
// the per-key chain's 2u(1+u)|x̃_i| + (4u + 2u²)(m̃ − x̃_i): the products
// fl(S·ls) and fl(m_t·ls) (|m_t| ≤ |x̃_i| + (m̃ − x̃_i)), their difference,
// and each rescale's difference and product, telescoping to m̃ − x̃_i.
func (m *Model) exp2Exponent(cAp, cXp, c0p, dxMax, exps float64) (cA, cX, cM, c1 float64) {
	u := num.UnitRoundoff(num.FP32)
	cM = 4*u + 2*u*u
	rel := 2 * u * (1 + u)
	f := 1 + rel + cM // |x̃_i| ≤ |x_i| + Δx_i and m̃ − x̃_i ≤ (m − x_i) + Δx_i + Δx_max
	cA, cX = f*cAp, f*cXp+rel
	c1 = f*c0p + cM*(dxMax+m.lazyGap(dxMax)) + 3*(exps+1)*m.ea
	return cA, cX, cM, c1
}

// exp2Shift bounds ζ = |m·scale − m·ls·ln 2|, the gap between the natural
// max the kernel adds to ln l (and sets the sink against), fl(m·fl(scale)),
// and the max its weights are relative to, fl(m·ls) in log2 units: at
// most ((1+u)³ − 1 + u)·|m̂| with |m̂| ≤ |M| + Δx_max.
func (m *Model) exp2Shift(rowM, dxMax float64) float64 {
	if !m.isExp2() || math.IsInf(rowM, 0) || math.IsNaN(rowM) {
		return 0
	}
	u := num.UnitRoundoff(num.FP32)
	return (math.Pow(1+u, 3) - 1 + u) * (math.Abs(rowM) + dxMax + m.lazyGap(dxMax))
}
