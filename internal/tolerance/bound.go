package tolerance

import (
	"math"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/ref"
)

// Shape is the loop structure of the kernel under test; it sets how many
// roundings and rescales an accumulated term can see. The zero Shape means
// unknown (an external kernel): the counts of the worst structure are used.
type Shape struct {
	Kind  string // stream, tiled, splitkv, or "" for unknown
	Bc    int    // keys per tile
	Parts int    // partitions
	// ExpGradual: the kernel's exp rounds results below FP32's smallest
	// normal into the subnormals (attnvet's emulations: num.Exp32), so an
	// exp's underflow errs by η_a, not the 2^−126 of a flushing exp.
	ExpGradual bool
}

// ShapeOf is the shape of one of attnvet's emulations.
func ShapeOf(c impl.Config) Shape {
	return Shape{Kind: string(c.Kind), Bc: c.Bc, Parts: c.Parts, ExpGradual: true}
}

// depth is the per-row count of error sources for n keys.
type depth struct {
	exps   float64 // exp evaluations on one key's path (R+1)
	ko, kl float64 // roundings of a key's term in the numerator o and in l (with the sink add)
}

func (s Shape) depth(n int) depth {
	nf := float64(n)
	cdiv := func(a, b int) float64 { return float64((a + b - 1) / b) }
	switch s.Kind {
	case "stream":
		return depth{exps: nf, ko: 2 * nf, kl: 2*nf + 1}
	case "tiled":
		if s.Bc > 0 {
			tiles := cdiv(n, s.Bc)
			nt := float64(min(n, s.Bc))
			return depth{exps: tiles + 1, ko: nt + 2*tiles, kl: nt + 2*tiles + 1}
		}
	case "exp2", "lazy":
		if s.Bc > 0 {
			// The P·V GEMM accumulates into the running o: a key's term
			// sees every later add and each later tile's rescale.
			tiles := cdiv(n, s.Bc)
			nt := float64(min(n, s.Bc))
			return depth{exps: tiles + 1, ko: nf + 2*tiles, kl: nt + 2*tiles + 1}
		}
	case "splitkv":
		if s.Bc > 0 && s.Parts > 0 {
			np := (n + s.Parts - 1) / s.Parts
			tiles := cdiv(np, s.Bc)
			nt := float64(min(np, s.Bc))
			pf := float64(s.Parts)
			return depth{exps: tiles + pf + 1, ko: nt + 2*tiles + 2*pf, kl: nt + 2*tiles + 2*pf + 1}
		}
	}
	return depth{exps: nf + 2, ko: 2*nf + 2, kl: 2*nf + 3}
}

// gamma is γ_k(u) = k·u/(1−k·u), +Inf once k·u ≥ 1 (Higham, ASNA §3.1).
func gamma(k, u float64) float64 {
	if k*u >= 1 {
		return math.Inf(1)
	}
	return k * u / (1 - k*u)
}

// Mode selects the rigorous or the probabilistic accumulation terms.
type Mode int

const (
	Rigorous      Mode = iota // γ_k: a correct kernel can never fail
	Probabilistic             // λ·√k·u (Higham & Mary), failure probability < 1e-9 per case
)

// FailProb is the per-case failure probability the prob criterion allows a
// correct kernel.
const FailProb = 1e-9

// Model computes per-element error bounds for one kernel profile on one
// problem. With x_i = s·(q·k_i), a_i = s·Σ_d|q_d k_id|, p_i the float64
// softmax weights (p_σ the sink's) and o_j = Σ_i p_i v_ij, a kernel whose
// key weights come out as w_i(1+α_i) in the numerator and w_i(1+β_i) in
// the denominator makes, exactly,
//
//	ô_j − o_j = [Σ_i p_i β_i (v_ij − o_j) + Σ_i p_i (α_i − β_i) v_ij − p_σ β_σ o_j] / (1 + B)
//	B = Σ_i p_i β_i + p_σ β_σ
//
// and the allowance of element j bounds each factor (Row, Elem):
//
//	E_pre = [ K·F·(c_1 Dev[1] + c_A Dev[a] + c_X Dev[|x|] + c_M Dev[m−x]) + (K−1)·Dev[1]   softmax Jacobian
//	        + e^{Δmax}(1+Ê)(u_p + Φ(1+u_p) + Ψ)·AbsV_j                                      accumulation, P cast
//	        + |β_σ|·p_σ|o_j| + underflow terms ] / (1 − |B|)                                 sink
//	allowed = E_pre + u_a(|o_j| + E_pre) + η_a + u_o(|o_j| + E_pre') + η_o                   division, output cast
//
// with Φ = γ_{K_o}(u_a), Ψ = γ_{K_l}(u_a) from the loop shape's rounding
// depth, c_A, c_X, c_M, c_1 the score error's coefficients (modifiers
// included) and F = expm1(Δmax)/Δmax. Rows where |B| ≥ 1 may occur fall
// back to the range bound max|v|·(1+u_p)(1+Φ)(1+u_a)/(1−Ψ) + |o_j|; rows
// with no key or a +∞ sink allow 0; rows where an intermediate may
// overflow are outside the domain and skipped. docs/tolerance.md derives
// every term; mode Probabilistic replaces γ_k(u) by λ·√k·u.
type Model struct {
	Profile profile.Profile
	Shape   Shape
	Mode    Mode
	Lambda  float64 // prob mode: confidence multiplier

	ua, us, up, uo float64 // unit roundoffs: accumulator (effective), score storage, P, output
	ea, es, ep, eo float64 // half the smallest subnormal of each: the absolute error of an underflowing rounding
	// ee is the absolute error of one exp whose result lies below FP32's
	// smallest normal: the field's exps flush it to zero (CUDA's
	// ex2.approx.ftz, ONNX Runtime's MLAS exp on AVX2), so the bound takes
	// 2^−126 rather than ea unless the profile declares a gradual exp or
	// the kernel is an emulation (docs/tolerance.md, "Underflow").
	ee             float64
	ce             float64 // exp error in ulps
	scale          float64 // softmax scale
	scaleErr       float64 // |float32(scale) − scale| / scale
	d              int     // dot length
	prodExact      bool    // products of two inputs are exact in the accumulator
	accNarrow      bool    // accumulator narrower than FP32 (results pass through FP32 first)
	maxAcc         float64
	maxScore       float64
	softcap, alibi bool // score modifiers after the scale (dense); alibi: any additive bias (combine's too)
	lse            *problem.LSEConv
	maxLogitBase2  bool    // the max_logit output is in base 2
	capC           float64 // the softcap c (0 = none)
	// prob mode: the rows that repeat a key (repeatedRows) and the
	// rigorous model that bounds them.
	rep []bool
	rig *Model
	fp8 fp8Terms // FP8 inputs' terms (fp8.go); zero = none
}

// NewModel prepares the bound of profile p for the inputs in. In prob mode,
// λ is chosen so the union over every rounding-error sum of the case keeps
// the failure probability below FailProb.
func NewModel(p profile.Profile, sh Shape, in *problem.Inputs, mode Mode) *Model {
	m := &Model{Profile: p, Shape: sh, Mode: mode, d: in.D, ce: p.ExpError()}
	u32 := num.UnitRoundoff(num.FP32)
	narrower := func(f, than num.Format) bool { return num.UnitRoundoff(f) > num.UnitRoundoff(than) }
	m.accNarrow = narrower(p.Acc, num.FP32)
	m.ua = num.UnitRoundoff(p.Acc)
	if m.accNarrow { // computed in FP32, then rounded: two roundings
		m.ua += u32 * (1 + m.ua)
	}
	if p.Acc == num.FP64 {
		m.ua = num.UnitRoundoff(num.FP32) // the emulations compute in float32
	}
	half := func(f num.Format) float64 { return num.MinSubnormal(f) / 2 }
	accFmt := p.Acc
	if accFmt == num.FP64 {
		accFmt = num.FP32
	}
	m.ea = half(accFmt)
	m.ee = math.Max(m.ea, num.MinNormal(num.FP32)) // the device exp runs in FP32 at least
	if p.ExpGradual || sh.ExpGradual {
		m.ee = m.ea
	}
	if narrower(p.Score, accFmt) {
		m.us, m.es = num.UnitRoundoff(p.Score), half(p.Score)
	}
	if narrower(p.P, accFmt) {
		m.up, m.ep = num.UnitRoundoff(p.P), half(p.P)
	}
	if narrower(p.Out, accFmt) {
		m.uo, m.eo = num.UnitRoundoff(p.Out), half(p.Out)
	}
	m.softcap, m.alibi, m.lse = in.Softcap > 0, in.Alibi != nil || in.Biased(), in.LSE
	m.maxLogitBase2 = in.MaxLogit != nil && in.MaxLogit.Base2
	m.capC = in.Softcap
	m.scale = in.Scale
	m.scaleErr = math.Abs(float64(float32(in.Scale))-in.Scale) / in.Scale
	inPrec := -math.Log2(num.UnitRoundoff(in.Format))
	accPrec := -math.Log2(num.UnitRoundoff(accFmt))
	m.prodExact = 2*inPrec <= accPrec
	m.maxAcc = num.MaxFinite(accFmt)
	m.maxScore = math.Min(m.maxAcc, num.MaxFinite(p.Score))
	m.fp8Setup(in)
	if mode == Probabilistic {
		// Sums bounded per case: per row, a dot product and an exp chain per
		// key; per element, numerator and denominator terms per key and
		// the P rounding sum.
		n := float64(max(in.TopK, in.T, 1))
		apps := float64(in.T*in.H)*n*2 + float64(in.OutLen())*(2*n+1)
		m.Lambda = math.Sqrt(2*math.Log(2*apps/FailProb)) / (1 - m.ua)
		if m.rep = repeatedRows(in); m.rep != nil {
			m.rig = NewModel(p, sh, in, Rigorous)
		}
	}
	return m
}

// acc is the accumulated relative error of k roundings of unit u.
func (m *Model) acc(k, u float64) float64 {
	g := gamma(k, u)
	if m.Mode == Probabilistic && k > 0 {
		// Higham & Mary 2019, Thm 3.1: |θ_k| ≤ exp(λ√k u + k u²/(1−u)) − 1
		// with probability ≥ 1 − 2exp(−λ²(1−u)²/2).
		g = math.Min(g, math.Expm1(m.Lambda*math.Sqrt(k)*u+k*u*u/(1-u)))
	}
	return g
}

// RowBound holds the per-row constants of the bound.
type RowBound struct {
	Unbounded bool // no finite bound at all
	// RangeOnly: score errors may reorder the weights arbitrarily (an
	// ill-conditioned row: huge scores, heavy cancellation), so only the
	// convex-combination bound holds: |ô − o| ≤ c·max|v| + |o|.
	RangeOnly bool
	Domain    bool // outside the profile's range (intermediates may overflow): not judged
	Exact     bool // o must be exactly 0 (no keys, or a +Inf sink)

	m         *Model
	row       *ref.Row
	jac       [4]float64 // multipliers of Dev1, DevA, DevX, DevM
	dev1Extra float64    // (K−1): added to jac[0]
	absVCoef  float64    // multiplier of AbsV (accumulation, P rounding in rigorous mode)
	pRig      float64    // rigorous mode: the P-rounding share of absVCoef
	pProb     float64    // prob mode: multiplier of sqrt(PMax·MaxAbsV·AbsV); 0 in rigorous mode
	oCoef     float64    // multiplier of |o| (sink term)
	absBase   float64    // absolute underflow term: constant part
	absO      float64    // absolute underflow term: multiplier of |o|
	denom     float64    // 1 − |B|
	rangeCoef float64    // RangeOnly: multiplier of max|v|
	sinkOver  bool       // the sink's exp may overflow: o may come out 0
	lse       lseBound
}

// lseBound is a row's lse analysis.
type lseBound struct {
	judged bool    // the row's lse is judged
	exact  bool    // it must come out exactly (no key; a +Inf sink inside the lse)
	rel    float64 // relative error of the kernel's l·e^m (sink inside where declared)
	dxMax  float64 // the largest score error (the max's error)
	shift  float64 // the exp2 path's gap between its two maxima (exp2Shift)
}

// LSEAllowed is the allowed |lse^ − lse| of the row, whose exact lse in
// the declared convention is want (natural or base 2). ok is false when
// the row's lse cannot be judged (outside the range, ill-conditioned, or a
// sink exp that may overflow).
//
//	E = −ln(1 − b) + c_e·u·|ln l̂| + u·(|lse| + E)   (natural units)
//
// with b the relative error of l̂·e^{m̂} and |ln l̂| ≤ |lse − m| + E + Δx_max;
// base 2 multiplies by log2 e and adds that product's roundings. Exact
// rows allow nothing, but for the base-2 product of a finite value.
func (rb *RowBound) LSEAllowed(want float64) (allowed float64, ok bool) {
	m, lb := rb.m, rb.lse
	if m.lse == nil || !lb.judged {
		return math.Inf(1), false
	}
	if math.IsInf(want, 0) || math.IsNaN(want) {
		return 0, true
	}
	u32 := num.UnitRoundoff(num.FP32)
	if lb.exact {
		if m.lse.Base2 {
			return 2*(m.ua+u32)*math.Abs(want) + m.ea, true
		}
		return 0, true
	}
	nat := want
	if m.lse.Base2 {
		nat = want * math.Ln2
	}
	ua := m.ua
	e := -math.Log1p(-lb.rel) + lb.shift
	lnMag := math.Abs(nat-rb.row.M) + e + lb.dxMax
	e += m.ce*ua*lnMag + m.ea
	e += ua*(math.Abs(nat)+e) + m.ea
	if m.lse.Base2 {
		e = e*math.Log2E*(1+u32) + (ua+u32)*(math.Abs(want)+e*math.Log2E) + m.ea
	}
	return e, true
}

// Row computes the per-row constants for row r.
func (m *Model) Row(r *ref.Row) RowBound {
	rb := RowBound{m: m, row: r}
	n := r.N
	if n == 0 {
		rb.Exact = true
		rb.lse = lseBound{judged: true, exact: true}
		return rb
	}
	ua := m.ua
	dp := m.Shape.depth(n)
	nf := float64(n)
	// Domain: dot products, scores, l and the unnormalised o must fit the
	// accumulator; scores must stay far above the mask bias (−1e20); no
	// score, weighted or not, may overflow toward +∞.
	gd := gamma(float64(m.d), ua)
	lz := 1.0
	if m.Shape.Kind == "lazy" { // a stale max lets p reach 2^τ: l and o grow by as much
		lz = math.Exp2(LazyThreshold + 1)
	}
	if r.MaxQK*(1+gd) >= m.maxAcc/2 || r.MaxAbsX*(1+gd)+r.MaxDiff >= math.Min(m.maxScore/2, 1e18) ||
		r.PeakScore*(1+gd) >= m.maxScore/2 ||
		nf*r.MaxAbsV*2*lz >= m.maxAcc || 4*nf*lz >= m.maxAcc {
		rb.Domain = true
		return rb
	}
	if math.IsInf(r.Sink, 1) {
		rb.Exact = true // o/∞ = 0 exactly
		rb.lse = lseBound{judged: true, exact: true}
		if m.lse != nil && !m.lse.SinkIncluded {
			// The lse of the keys alone: the row without its sink.
			r2 := *r
			r2.Sink, r2.PSink = math.Inf(-1), 0
			rb.lse = m.Row(&r2).lse
		}
		return rb
	}
	// Score error: |x̂_i − x_i| ≤ cA'·a_i + cX'·|x_i| + c0'.
	cAp, cXp, c0p := m.scoreErr()
	dxMax := cAp*r.MaxA + cXp*r.MaxAbsX + c0p
	// Exponent perturbation of key i: Δ_i ≤ cA·a_i + cX·|x_i| + cM·(m − x_i) + c1.
	cA, cX, cM := (1+ua)*cAp, (1+ua)*cXp, ua
	c1 := (1+ua)*c0p + ua*dxMax + (dp.exps+1)*m.ea
	if m.isExp2() {
		cA, cX, cM, c1 = m.exp2Exponent(cAp, cXp, c0p, dxMax, dp.exps)
	}
	shift := m.exp2Shift(r.M, dxMax)
	// The per-key stream rescales o and l once per key with one shared α:
	// its rounding errors are not independent terms (validation found prob
	// failures on stream/fp32 at a rate far above 1e-9), so the stream's
	// (and an unknown kernel's) exp chain and accumulations stay rigorous.
	chain := m.acc
	if m.Shape.Kind == "stream" || m.Shape.Kind == "" {
		chain = func(k, u float64) float64 { return gamma(k, u) }
	}
	eExp := chain(dp.exps*m.ce, ua)
	phi, psi := m.pvAcc(chain, dp.ko), chain(dp.kl, ua)
	ew := (dp.exps + 1) * m.ee
	// Zero-weight keys must stay negligible: Δ_i ≤ (M − x_i)/2.
	if cA*r.ZeroA+cX*r.ZeroX+2*cM+c1/745 > 0.5 {
		return rb.rangeOnly(phi, psi, ew, dp)
	}
	dMax := cA*r.MaxA + cX*r.MaxAbsX + cM*r.MaxDiff + c1
	f := 1.0 // expm1(Δ)/Δ, convexity: expm1(Δ_i) ≤ Δ_i·F for Δ_i ≤ Δmax
	if dMax > 0 {
		f = math.Expm1(dMax) / dMax
	}
	k := (1 + eExp) * (1 + psi)
	if m.Profile.LFromRoundedP {
		k *= 1 + m.up
	}
	bMax := math.Exp(dMax)*k - 1
	// The sink: weight e^{σ−m̂} with its subtraction, exp and add errors.
	var bSink float64
	if !math.IsInf(r.Sink, -1) {
		th := ua*(math.Abs(r.Sink-r.M)+dxMax+m.lazyGap(dxMax)) + m.ea + shift
		if m.accNarrow {
			th += ua * math.Abs(r.Sink)
		}
		bSink = math.Exp(th)*(1+m.ce*ua)*(1+psi) - 1
		rb.sinkOver = r.Sink-r.M+dxMax+m.lazyGap(dxMax)+th >= math.Log(m.maxAcc)-1 // lazy: the stale max lifts σ − m̂
	}
	bsum := (1-r.PSink)*bMax + r.PSink*bSink
	if !(bsum < 1) {
		return rb.rangeOnly(phi, psi, ew, dp)
	}
	rb.denom = 1 - bsum
	rb.jac = [4]float64{k * f * c1, k * f * cA, k * f * cX, k * f * cM}
	rb.dev1Extra = k - 1
	g := math.Exp(dMax) * (1 + eExp)
	if m.Profile.LFromRoundedP {
		rb.absVCoef = g * (1 + m.up) * (phi + psi)
	} else {
		rb.absVCoef = g * (phi*(1+m.up) + psi + m.up)
		rb.pRig = g * m.up // the share of absVCoef that is P rounding
		if m.Mode == Probabilistic && m.up > 0 {
			// Σ p_i ρ_i v_i with independent mean-zero ρ_i (Hoeffding):
			// ≤ λ·u_p·sqrt(Σ p_i² v_i²) ≤ λ·u_p·sqrt(PMax·MaxAbsV·AbsV).
			rb.absVCoef = g * (phi*(1+m.up) + psi)
			rb.pProb = g * m.up
		}
	}
	rb.oCoef = r.PSink * bSink
	// Absolute terms from underflow (exp outputs, P and products in the
	// subnormal range), relative to L ≥ e^{−Δx_max}.
	scaleL := math.Exp(dMax)
	rb.absBase = scaleL * nf * (ew + m.ep + (dp.ko+dp.kl)*m.ea) * r.MaxAbsV
	// A product (p·v, a rescale α·o or β·o_t) that lands in the
	// accumulator's subnormal range errs by up to ea absolutely, whatever
	// |v|: n products p·v plus the ko rescales on a key's path.
	rb.absBase += scaleL * (nf + dp.ko) * m.ea * m.fp8.eaScale()
	rb.absO = scaleL * nf * (ew + (dp.ko+dp.kl)*m.ea)
	var sinkFlush float64 // the sink's exp may flush too: its weight in l errs by ee
	if !math.IsInf(r.Sink, -1) {
		sinkFlush = scaleL * m.ee
	}
	rb.absO += sinkFlush
	if m.lse != nil && !rb.sinkOver {
		// l's relative error: the keys' weights (bMax) plus the absolute
		// underflow terms of l relative to l ≥ e^{−Δx_max}.
		bl := bMax + scaleL*nf*(ew+dp.kl*m.ea) + sinkFlush
		if m.lse.SinkIncluded {
			bl = (1-r.PSink)*bl + r.PSink*bSink
		}
		rb.lse = lseBound{judged: bl < 1, rel: bl, dxMax: dxMax + m.lazyGap(dxMax), shift: shift}
	}
	return rb
}

// scoreErr is the coefficients of the score error of every key:
// |x̂_i − x_i| ≤ cA·a_i + cX·|x_i| + c0 (docs/tolerance.md, "Scores").
func (m *Model) scoreErr() (cA, cX, c0 float64) {
	ua := m.ua
	gd := gamma(float64(m.d), ua)
	dprime := float64(m.d)
	if m.prodExact {
		dprime--
	}
	k0 := (1 + m.scaleErr) * (1 + ua) * (1 + m.us)
	if m.accNarrow {
		k0 *= 1 + num.UnitRoundoff(num.FP32)
	}
	cA = k0 * m.dotAcc(dprime)
	cX = k0 - 1
	c0 = k0*m.scale*2*float64(m.d)*m.ea*(1+gd) + m.ea + m.es
	if m.softcap || m.alibi {
		cA, cX, c0 = m.modScoreErr(k0/(1+m.us), dprime, c0)
	}
	if m.isExp2() { // the folded constant: fl(log2 e) and its product
		u32 := num.UnitRoundoff(num.FP32)
		cA, cX, c0 = cA*(1+u32), (1+cX)*(1+u32)-1, c0*(1+u32)
	}
	return cA, cX, c0
}

// modScoreErr is the score error with the modifiers (softcap, ALiBi):
// |x̂_i − x_i| ≤ cA·a_i + cX·|x_i| + c0, a_i = scale·Σ|q k| + |bias_i|.
// pre is the relative error of the scale multiply (without the score
// storage). The scaled score s errs by pre·γ_D'·a_s + (pre−1)·|s| + c0
// with |s| ≤ a_s. The softcap c·tanh(s/c) is 1-Lipschitz in s and adds
// the division, the tanh (c_e ulps, as exp), the product and float32(c)
// (each ≤ u·|s| or u·|c·tanh| ≤ u·a_s). The bias adds its product (u·|b|)
// and its sum (u·|x|). Score storage multiplies by (1+u_s).
func (m *Model) modScoreErr(pre, dprime, c0 float64) (cA, cX, c0p float64) {
	ua := m.ua
	cA = pre*m.dotAcc(dprime) + (pre - 1)
	ops := 0.0
	if m.softcap {
		cA += (m.ce + 3) * ua * (1 + ua)
		// s/c and the tanh may underflow (η_a each), and the product
		// multiplies both by c; the product's own underflow adds one.
		ops += 2*m.capC*(1+ua) + 1
	}
	if m.alibi {
		cA = math.Max(cA, ua) + ua*cA
		cX = ua
		ops += 2
	}
	cA *= 1 + m.us
	cX = (1+cX)*(1+m.us) - 1
	return cA, cX, c0 + ops*m.ea
}

// rangeOnly sets up the fallback for rows whose score errors are too large
// for the softmax analysis. Every kernel shape computes
// ô_j = Σ_i λ_i (1+φ_ij)(1+ρ_i) v_ij (1+δ) with weights λ_i ≥ 0 whose sum,
// each times (1+ψ_i), is at most 1 (the sink's weight only adds to the
// denominator). So |ô_j| ≤ max|v|·(1+u_p)(1+Φ)(1+u_a)/(1−Ψ), and
// |ô_j − o_j| ≤ that + |o_j|. Weak, but it still fails NaN, Inf and values
// outside the range a convex combination can reach.
func (rb RowBound) rangeOnly(phi, psi, ew float64, dp depth) RowBound {
	m := rb.m
	if !(psi < 1) {
		rb.Unbounded = true
		return rb
	}
	rb.RangeOnly = true
	rb.rangeCoef = (1 + m.up) * (1 + phi) * (1 + m.ua) / (1 - psi)
	nf := float64(rb.row.N)
	// Underflow, relative to the kernel's l ≥ 1 − Ψ (its max key weighs e^0 = 1).
	rb.absBase = (nf*(ew+m.ep+(dp.ko+dp.kl)*m.ea)*rb.row.MaxAbsV + (nf+dp.ko)*m.ea) / (1 - psi)
	return rb
}

// Terms is one element's allowance, term by term (docs/tolerance.md).
type Terms struct {
	Jacobian   float64 `json:"jacobian"`     // score errors through the softmax: Σ p_i |β_i| |v_ij − o_j|
	Accumulate float64 `json:"accumulation"` // rounding of the o and l accumulations (and exp chains) on AbsV
	PRound     float64 `json:"p_rounding"`   // P cast before P·V
	Sink       float64 `json:"sink"`         // p_σ |β_σ| |o|
	Underflow  float64 `json:"underflow"`    // absolute terms
	Denom      float64 `json:"denominator"`  // the 1/(1 − |B|) factor's share
	SinkOver   float64 `json:"sink_overflow"`
	Division   float64 `json:"division"`
	Range      float64 `json:"range,omitempty"` // ill-conditioned rows: the convex-combination bound
	Output     float64 `json:"output_rounding"`
	Total      float64 `json:"total"`
}

// Elem is the bound for output element e of row rb: allowed is the whole
// allowance, outTerm the part that is the final output rounding.
func (rb *RowBound) Elem(r *ref.Result, e int) (allowed, outTerm float64) {
	t := rb.Terms(r, e)
	return t.Total, t.Output
}

// Terms splits element e's allowance into its terms.
func (rb *RowBound) Terms(r *ref.Result, e int) Terms {
	if rb.Exact {
		return Terms{}
	}
	if rb.Unbounded || rb.Domain {
		return Terms{Total: math.Inf(1)}
	}
	m := rb.m
	o := math.Abs(r.O[e])
	var t Terms
	if rb.RangeOnly {
		t.Range = rb.rangeCoef*rb.row.MaxAbsV + o
		t.Underflow = rb.absBase
		pre := t.Range + t.Underflow + m.ea
		if m.uo > 0 {
			t.Output = m.uo*(o+pre) + m.eo
		}
		t.Total = pre + t.Output
		return t
	}
	t.Jacobian = (rb.jac[0]+rb.dev1Extra)*r.Dev1[e] + rb.jac[1]*r.DevA[e] + rb.jac[2]*r.DevX[e] + rb.jac[3]*r.DevM[e]
	t.Accumulate = rb.absVCoef * r.AbsV[e]
	if rb.pProb > 0 {
		t.PRound = rb.pProb * math.Min(r.AbsV[e], m.Lambda*math.Sqrt(rb.row.PMax*rb.row.MaxAbsV*r.AbsV[e]))
	} else if rb.pRig > 0 {
		t.PRound = rb.pRig * r.AbsV[e]
		t.Accumulate -= t.PRound
	}
	t.Sink = rb.oCoef * o
	t.Underflow = rb.absBase + rb.absO*o
	num := t.Jacobian + t.Accumulate + t.PRound + t.Sink + t.Underflow
	pre := num / rb.denom
	t.Denom = pre - num
	if rb.sinkOver {
		t.SinkOver = o // the device's e^{σ−m} may overflow to +Inf, making o exactly 0
		pre += o
	}
	t.Division = (1+m.fp8.divExtra)*m.ua*(o+pre) + m.ea + m.fp8.divAbs
	pre += t.Division
	if m.uo > 0 {
		t.Output = m.uo*(o+pre) + m.eo
	}
	t.Total = pre + t.Output
	return t
}
