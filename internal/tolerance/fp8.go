package tolerance

import (
	"math"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

// fp8Terms are the bound's terms for a dense problem with FP8 inputs
// (problem.DenseFP8; docs/tolerance.md "FP8 dense"). They depend on what
// the problem declares (p_dtype=e4m3, acc_bits), not on the kernel: a
// kernel more precise than declared passes.
type fp8Terms struct {
	on bool
	// uDot is the unit of one accumulation step of the FP8 GEMMs:
	// 2^(1−acc_bits) (truncation; 0 without acc_bits: the accumulator's u).
	// Truncation errors are one-signed, so these sums stay rigorous (γ)
	// in prob mode too.
	uDot float64
	// divExtra: the finish's roundings beyond the division the model
	// counts: FP32(1/l), its product with v_descale, the product with O.
	divExtra float64
	// vdMax: the largest v descale; the accumulator's absolute underflow
	// terms, in code units, grow by it in output units.
	vdMax float64
	// divAbs: FP32(1/l)·v_descale may be subnormal (v_descale ≥ 2^−126,
	// 1/l ≤ 2^−8): an absolute error ≤ 2^−150 times |O| ≤ l·448, with
	// l ≤ 2^8·n: 448·2^8·n·2^−150 < n·2^−132.
	divAbs float64
}

func (f fp8Terms) eaScale() float64 {
	if !f.on {
		return 1
	}
	return math.Max(1, f.vdMax)
}

// fp8Setup sets the model's FP8 terms for in (nothing without FP8 inputs).
//
//   - The operands are e4m3 codes (4 significant bits): their products are
//     exact in FP32, so the dot product has D−1 rounded adds.
//   - The exponent scale is FP32(FP32(FP32(scale)·q_descale)·k_descale),
//     and a device folds log2 e in too: three roundings beyond float32(scale).
//   - p_dtype=e4m3: P = e4m3(2^8·p) with p = e^{x−m} ≤ 1, so u_p = 2^−4
//     (3 fraction bits, RN) above e4m3's smallest normal 2^−6, and below it
//     an absolute error of half the smallest subnormal 2^−9, that is
//     2^−10·2^−8 = 2^−18 in units of p. The satfinite cast never clips:
//     2^8·p ≤ 256 < 448.
//   - acc_bits: every add of Q·Kᵀ and of P·V errs by < 2^(1−acc_bits)
//     relatively (truncation), γ_k of that unit on both sums.
func (m *Model) fp8Setup(in *problem.Inputs) {
	f := in.FP8
	if f == nil {
		return
	}
	u32 := num.UnitRoundoff(num.FP32)
	t := fp8Terms{on: true, divExtra: 2}
	scale, vd := in.MaxDescales()
	t.vdMax = vd
	m.scale = scale
	m.scaleErr = (1+m.scaleErr)*math.Pow(1+u32, 3) - 1
	m.prodExact = true
	if f.AccBits > 0 && f.AccBits < 24 {
		t.uDot = math.Max(m.ua, math.Ldexp(1, 1-f.AccBits))
	}
	if f.PE4M3 {
		m.up = math.Max(m.up, math.Ldexp(1, -4))
		m.ep = math.Max(m.ep, math.Ldexp(1, -18))
	}
	t.divAbs = float64(max(in.TopK, in.T, 1)) * math.Ldexp(1, -132)
	m.fp8 = t
}

// dotAcc is the score dot product's accumulated relative error over k
// rounded adds.
func (m *Model) dotAcc(k float64) float64 {
	if m.fp8.uDot > 0 {
		return gamma(k, m.fp8.uDot)
	}
	return m.acc(k, m.ua)
}

// pvAcc is the P·V accumulation's relative error over k roundings, chain
// being the mode's accumulation rule.
func (m *Model) pvAcc(chain func(k, u float64) float64, k float64) float64 {
	if m.fp8.uDot > 0 {
		return gamma(k, m.fp8.uDot)
	}
	return chain(k, m.ua)
}
