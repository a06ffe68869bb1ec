package ref_test

// The float64 reference against an exact oracle: every quantity recomputed
// with math/big at 300 bits (dot products, e^x by a Taylor series with
// argument halving, the softmax, the output and the magnitudes), on small
// random cases of both families.

import (
	"fmt"
	"maps"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/ref"
)

const prec = 300 // bits of the oracle's working precision

func newF() *big.Float { return new(big.Float).SetPrec(prec) }

func bf(x float64) *big.Float { return newF().SetFloat64(x) }

// ln2 to 120 digits (OEIS A002162), for the oracle's self-test.
const ln2Digits = "0.693147180559945309417232121458176568075500134360255254120680009493393621969694715605863326996418687542001481020570685734"

// e to 120 digits (OEIS A001113).
const eDigits = "2.71828182845904523536028747135266249775724709369995957496696762772407663035354759457138217852516642742746639193200305992"

// bigExp returns e^x for finite x with |x| ≤ 4096 to about 2^-270
// relative (the self-test sees about 1e-84): x = r·2^s with |r| ≤ 2^-12, e^r by its Taylor series to below
// 2^-(prec+8), then s squarings (each doubles the relative error: 2^s ≤
// 2^25 loses at most 25 bits).
func bigExp(x *big.Float) *big.Float {
	if x.Sign() == 0 {
		return bf(1)
	}
	if f, _ := x.Float64(); math.Abs(f) > 4096 {
		panic(fmt.Sprintf("bigExp(%v): argument out of range", f))
	}
	s := x.MantExp(nil) + 12 // |x| < 2^MantExp
	if s < 0 {
		s = 0
	}
	r := newF().SetMantExp(x, -s)
	sum, term := bf(1), bf(1)
	eps := newF().SetMantExp(bf(1), -(prec + 8))
	for k := 1; k < 1000; k++ {
		term.Mul(term, r)
		term.Quo(term, bf(float64(k)))
		sum.Add(sum, term)
		if newF().Abs(term).Cmp(eps) < 0 {
			break
		}
	}
	for range s {
		sum.Mul(sum, sum)
	}
	return sum
}

// expArgMin: arguments below it give weights below e^-1500 ≈ 2^-2164,
// far below float64's smallest subnormal (2^-1074); the oracle drops them
// (their exact contribution is bounded by the slack term in the checks).
const expArgMin = -1500

// exactRow is the oracle for one query row.
type exactRow struct {
	n                            int
	o, absV, dev1, devA, devX    []float64
	devM                         []float64
	m                            float64 // max_i x_i
	pSink                        float64
	maxA, maxAbsX, maxDiff       float64 // over all keys
	maxALive, maxXLive, maxDLive float64 // over keys with non-negligible weight
	maxAbsV, maxAbsQ, maxQK      float64
	pMax                         float64
	// max a_i/gap_i and |x_i|/gap_i (gap_i = top − x_i) over keys whose
	// weight certainly underflows float64 (lo: gap > 747) and over keys
	// whose weight may underflow (hi: gap > 739).
	zeroALo, zeroAHi, zeroXLo, zeroXHi float64
}

func exactCompute(in *problem.Inputs, t, h int, keys []problem.Key) exactRow {
	q := in.QRow(t, h)
	sigma := float64(in.SinkOf(h))
	dv := in.Dv
	n := len(keys)
	er := exactRow{n: n, m: math.Inf(-1),
		o: make([]float64, dv), absV: make([]float64, dv), dev1: make([]float64, dv),
		devA: make([]float64, dv), devX: make([]float64, dv), devM: make([]float64, dv)}
	for _, v := range q {
		er.maxAbsQ = math.Max(er.maxAbsQ, math.Abs(float64(v)))
	}
	for _, k := range keys {
		for _, v := range k.V {
			er.maxAbsV = math.Max(er.maxAbsV, math.Abs(float64(v)))
		}
	}
	if n == 0 {
		return er
	}
	scale := bf(in.Scale)
	x := make([]*big.Float, n)
	a := make([]*big.Float, n)
	var mx *big.Float
	for i, k := range keys {
		dot, abs := newF(), newF()
		for d, qd := range q {
			p := newF().Mul(bf(float64(qd)), bf(float64(k.K[d])))
			dot.Add(dot, p)
			abs.Add(abs, p.Abs(p))
		}
		qk, _ := abs.Float64()
		er.maxQK = math.Max(er.maxQK, qk)
		x[i] = dot.Mul(dot, scale)
		a[i] = abs.Mul(abs, scale)
		if mx == nil || x[i].Cmp(mx) > 0 {
			mx = x[i]
		}
	}
	er.m, _ = mx.Float64()
	if math.IsInf(sigma, 1) {
		// o = 0, but the score statistics are kept (the device computes
		// the unnormalised o before dividing by ∞).
		er.pSink = 1
		for i := range x {
			af, _ := a[i].Float64()
			xf, _ := x[i].Float64()
			er.maxA = math.Max(er.maxA, af)
			er.maxAbsX = math.Max(er.maxAbsX, math.Abs(xf))
		}
		er.maxALive, er.maxXLive = er.maxA, er.maxAbsX
		return er
	}
	top := mx
	var sg *big.Float
	if !math.IsInf(sigma, -1) {
		sg = bf(sigma)
		if sg.Cmp(top) > 0 {
			top = sg
		}
	}
	w := make([]*big.Float, n)
	L := newF()
	for i := range x {
		arg := newF().Sub(x[i], top)
		if f, _ := arg.Float64(); f < expArgMin {
			w[i] = newF()
			continue
		}
		w[i] = bigExp(arg)
		L.Add(L, w[i])
	}
	ws := newF()
	if sg != nil {
		arg := newF().Sub(sg, top)
		if f, _ := arg.Float64(); f >= expArgMin {
			ws = bigExp(arg)
		}
	}
	L.Add(L, ws)
	er.pSink, _ = newF().Quo(ws, L).Float64()
	p := make([]*big.Float, n)
	for i := range w {
		p[i] = newF().Quo(w[i], L)
		af, _ := a[i].Float64()
		xf, _ := x[i].Float64()
		df, _ := newF().Sub(mx, x[i]).Float64()
		er.maxA = math.Max(er.maxA, af)
		er.maxAbsX = math.Max(er.maxAbsX, math.Abs(xf))
		er.maxDiff = math.Max(er.maxDiff, df)
		pf, _ := p[i].Float64()
		er.pMax = math.Max(er.pMax, pf)
		arg, _ := newF().Sub(x[i], top).Float64()
		if arg > -700 {
			er.maxALive = math.Max(er.maxALive, af)
			er.maxXLive = math.Max(er.maxXLive, math.Abs(xf))
			er.maxDLive = math.Max(er.maxDLive, df)
		}
		if gap := -arg; gap > 747 {
			er.zeroALo = math.Max(er.zeroALo, af/gap)
			er.zeroXLo = math.Max(er.zeroXLo, math.Abs(xf)/gap)
		}
		if gap := -arg; gap > 739 {
			er.zeroAHi = math.Max(er.zeroAHi, af/gap)
			er.zeroXHi = math.Max(er.zeroXHi, math.Abs(xf)/gap)
		}
	}
	for j := 0; j < dv; j++ {
		o, absV := newF(), newF()
		for i, k := range keys {
			pv := newF().Mul(p[i], bf(float64(k.V[j])))
			o.Add(o, pv)
			absV.Add(absV, pv.Abs(pv))
		}
		d1, da, dx, dm := newF(), newF(), newF(), newF()
		for i, k := range keys {
			dev := newF().Sub(bf(float64(k.V[j])), o)
			dev.Abs(dev).Mul(dev, p[i])
			d1.Add(d1, dev)
			da.Add(da, newF().Mul(dev, a[i]))
			dx.Add(dx, newF().Mul(dev, newF().Abs(x[i])))
			dm.Add(dm, newF().Mul(dev, newF().Sub(mx, x[i])))
		}
		er.o[j], _ = o.Float64()
		er.absV[j], _ = absV.Float64()
		er.dev1[j], _ = d1.Float64()
		er.devA[j], _ = da.Float64()
		er.devX[j], _ = dx.Float64()
		er.devM[j], _ = dm.Float64()
	}
	return er
}

func TestBigExpOracle(t *testing.T) {
	e := bigExp(bf(1))
	want, _, _ := big.ParseFloat(eDigits, 10, prec, big.ToNearestEven)
	if d := relDiff(e, want); d > 1e-80 {
		t.Errorf("bigExp(1) relative error %g", d)
	}
	ln2, _, _ := big.ParseFloat(ln2Digits, 10, prec, big.ToNearestEven)
	for _, k := range []int64{-1000, -37, -1, 1, 20} {
		x := newF().Mul(ln2, newF().SetInt64(k))
		got := bigExp(x)
		want := newF().SetMantExp(bf(1), int(k))
		if d := relDiff(got, want); d > 1e-80 {
			t.Errorf("bigExp(%d·ln2) relative error %g", k, d)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		a, b := (r.Float64()-0.5)*1400, (r.Float64()-0.5)*1400
		lhs := newF().Mul(bigExp(bf(a)), bigExp(bf(b)))
		rhs := bigExp(newF().Add(bf(a), bf(b)))
		if d := relDiff(lhs, rhs); d > 1e-70 {
			t.Fatalf("e^%v·e^%v vs e^(a+b): relative difference %g", a, b, d)
		}
		if a > -700 && a < 700 {
			f, _ := bigExp(bf(a)).Float64()
			if u := math.Abs(f-math.Exp(a)) / math.Exp(a); u > 2.3e-16 {
				t.Fatalf("bigExp(%v) = %v, math.Exp %v", a, f, math.Exp(a))
			}
		}
	}
}

func relDiff(a, b *big.Float) float64 {
	d := newF().Sub(a, b)
	d.Quo(d, b)
	f, _ := d.Float64()
	return math.Abs(f)
}

// randomCase draws a small case of either family with the edge values the
// reference must handle: n = 0, 1, 2, S = 2, sinks of ±Inf and of every
// size, wide and extreme values, planted contract violations.
func randomCase(r *rand.Rand, i int) cases.Case {
	dtypes := []string{"bf16", "fp16", "fp32"}
	dists := []string{"normal", "uniform", "wide", "zeroq", "dominant"}
	c := cases.Case{Seed: r.Uint64(), DType: dtypes[r.IntN(3)], D: 1 + r.IntN(8)}
	c.Values.Dist = dists[r.IntN(len(dists))]
	if r.IntN(3) == 0 {
		c.Values.Scale = []float64{0.1, 2, 8}[r.IntN(3)]
	}
	if r.IntN(4) == 0 {
		c.Values.VScale = []float64{1e-3, 100}[r.IntN(2)]
	}
	if c.Values.Dist == "wide" {
		c.Values.WideExp = r.IntN(12)
	}
	if i%2 == 0 {
		c.Family = problem.Sparse
		c.H = 1 + r.IntN(3)
		c.B = 1 + r.IntN(3)
		c.S = 1 + r.IntN(2)
		c.Win = r.IntN(5)
		c.IdxTopK = r.IntN(5)
		if c.Win+c.IdxTopK == 0 {
			c.Win = 2
		}
		c.BlockSize = 1 + r.IntN(4)
		for range c.B {
			c.Seqused = append(c.Seqused, r.IntN(12))
		}
		if r.IntN(2) == 0 {
			c.Indices = "shuffled"
		}
		if r.IntN(2) == 0 {
			c.BlockTable = "permuted"
		}
		if r.IntN(4) == 0 {
			c.Plant = []string{[]string{"duplicate", problem.VPadInPrefix, problem.VValidAfter,
				problem.VWindowSlot, problem.VBlockTable}[r.IntN(5)]}
		}
	} else {
		c.Family = problem.Window
		c.T = 1 + r.IntN(5)
		hkv := 1 + r.IntN(2)
		c.Hkv, c.H = hkv, hkv*(1+r.IntN(2))
		c.Dv = 1 + r.IntN(8)
		c.Window = r.IntN(4)
	}
	switch r.IntN(6) {
	case 0: // no sink
	case 1:
		c.Sink = &cases.Sink{Kind: "random", Scale: 3}
	case 2:
		c.Sink = &cases.Sink{Kind: "random", Scale: 1, Offset: 30}
	case 3:
		c.Sink = &cases.Sink{Kind: "const", Value: cases.F(math.Inf(-1))}
	case 4:
		c.Sink = &cases.Sink{Kind: "const", Value: cases.F(math.Inf(1))}
	default:
		vals := []cases.Float{cases.F(math.Inf(1)), cases.F(math.Inf(-1)), cases.F(0), cases.F(-80), cases.F(1e30), {Name: "-max"}, cases.F(2.5)}
		c.Sink = &cases.Sink{Kind: "const"}
		for range c.H {
			c.Sink.Values = append(c.Sink.Values, vals[r.IntN(len(vals))])
		}
	}
	if r.IntN(5) == 0 {
		// One extreme (finite) value planted in q.
		sp := cases.Special{Tensor: "q", Token: r.IntN(c.Tokens()), Head: r.IntN(c.H), Dim: r.IntN(c.D)}
		sp.Value = []cases.Float{{Name: "max"}, {Name: "-minsub"}, cases.F(math.Copysign(0, -1)), cases.F(300)}[r.IntN(4)]
		c.Specials = append(c.Specials, sp)
	}
	return c
}

// tolerances of the comparison with the oracle (see checkRow).
const relTol = 1e-12

func TestRefAgainstExact(t *testing.T) {
	r := rand.New(rand.NewPCG(20240611, 7))
	ncases := 600
	if testing.Short() {
		ncases = 150
	}
	rows, moderate := 0, 0
	worst := 0.0 // max |o − o*| / Σp|v| over moderate rows
	cover := map[string]int{}
	for i := range ncases {
		c := randomCase(r, i)
		in, err := cases.Generate(c, num.BF16)
		if err != nil {
			t.Fatalf("case %d: %v\n%s", i, err, c)
		}
		res := ref.Compute(in, ref.Options{})
		var keys []problem.Key
		for tok := 0; tok < in.T; tok++ {
			for h := 0; h < in.H; h++ {
				keys = in.RefKeys(tok, in.Group(h), keys)
				er := exactCompute(in, tok, h, keys)
				if msg := checkRow(in, res, tok, h, er); msg != "" {
					t.Fatalf("case %d token %d head %d: %s\ncase: %s", i, tok, h, msg, c)
				}
				rows++
				row := res.Rows[tok*in.H+h]
				cover["n=0"] += b2i(er.n == 0)
				cover["n=1"] += b2i(er.n == 1)
				cover["n=2"] += b2i(er.n == 2)
				cover["S=2"] += b2i(in.Family == problem.Sparse && in.S == 2)
				cover["window"] += b2i(in.Family == problem.Window)
				cover["sink+Inf"] += b2i(er.n > 0 && math.IsInf(row.Sink, 1))
				cover["sink-Inf"] += b2i(er.n > 0 && math.IsInf(row.Sink, -1) && in.Sink != nil)
				cover["sink dominates"] += b2i(er.pSink > 0.5 && er.pSink < 1)
				cover["underflowed key"] += b2i(row.ZeroA > 0)
				cover["max a_i > 1e6"] += b2i(er.maxA > 1e6)
				if er.maxA <= 64 {
					moderate++
					for j, want := range er.o {
						if er.absV[j] > 0 {
							worst = math.Max(worst, math.Abs(res.O[(tok*in.H+h)*in.Dv+j]-want)/er.absV[j])
						}
					}
				}
			}
		}
	}
	t.Logf("%d rows checked (%d with max a_i ≤ 64; their worst |o − o*|/Σp|v| = %.3g)", rows, moderate, worst)
	for _, k := range slices.Sorted(maps.Keys(cover)) {
		t.Logf("  %-16s %d rows", k, cover[k])
		if cover[k] < 10 {
			t.Errorf("coverage: only %d rows with %s", cover[k], k)
		}
	}
}

// checkRow compares one row of the reference with the oracle.
//
// Output: |o − o*| ≤ 1e-12·Σp|v| + 8(D+4)·u·Σ p_i a_i|v_i − o| + slack.
// The middle term is float64's own score error (a dot product of length D
// rounds to γ_D·a_i; its effect on o goes through the softmax Jacobian
// ∂o/∂x_i = p_i(v_i − o)); it is below 1e-13·Σp|v| whenever a_i ≤ 64, so
// for such rows the bound is 1e-12·Σp|v| and the test checks that too.
// slack = 2(n+1)·2^-1074·max(1, max|v|) covers weights that underflow
// float64 (below 2^-1075 each) and subnormal rounding of p_i·v_ij.
func checkRow(in *problem.Inputs, res *ref.Result, tok, h int, er exactRow) string {
	u := 0x1p-53
	D := float64(in.D)
	e0 := (tok*in.H + h) * in.Dv
	row := res.Rows[tok*in.H+h]
	slack := 2 * float64(er.n+1) * 0x1p-1074 * math.Max(1, er.maxAbsV)
	tau := relTol + 16*(D+4)*u*math.Max(1, er.maxA)
	if row.N != er.n {
		return fmt.Sprintf("N = %d, want %d", row.N, er.n)
	}
	for j := 0; j < in.Dv; j++ {
		e := e0 + j
		got := res.O[e]
		bound := relTol*er.absV[j] + 8*(D+4)*u*er.devA[j] + slack
		if err := math.Abs(got - er.o[j]); !(err <= bound) {
			return fmt.Sprintf("o[%d] = %g, exact %g: error %g > bound %g", j, got, er.o[j], err, bound)
		}
		if er.maxA <= 64 {
			if err := math.Abs(got - er.o[j]); !(err <= relTol*er.absV[j]+slack) {
				return fmt.Sprintf("o[%d] = %g, exact %g: error %g > 1e-12·Σp|v| = %g (max a_i %g)", j, got, er.o[j], err, relTol*er.absV[j], er.maxA)
			}
		}
		mags := []struct {
			name       string
			got, want  float64
			maxC, base float64
		}{
			{"AbsV", res.AbsV[e], er.absV[j], 0, er.absV[j]},
			{"Dev1", res.Dev1[e], er.dev1[j], 1, er.dev1[j] + er.absV[j]},
			{"DevA", res.DevA[e], er.devA[j], er.maxA, er.devA[j]},
			{"DevX", res.DevX[e], er.devX[j], er.maxAbsX, er.devX[j]},
			{"DevM", res.DevM[e], er.devM[j], er.maxDiff, er.devM[j]},
		}
		for _, m := range mags {
			// Relative to the magnitude itself, widened by what the
			// weights' (and the output's) own perturbations can move it:
			// maxC·(Σp|v| + Σp|v−o|), plus the score error through a_i.
			bound := tau*(m.base+(m.maxC+er.maxA)*(er.absV[j]+er.dev1[j])) + slack*(1+m.maxC)
			if err := math.Abs(m.got - m.want); !(err <= bound) {
				return fmt.Sprintf("%s[%d] = %g, exact %g: error %g > bound %g", m.name, j, m.got, m.want, err, bound)
			}
		}
	}
	if row.MaxAbsV != er.maxAbsV || row.MaxAbsQ != er.maxAbsQ {
		return fmt.Sprintf("MaxAbsV, MaxAbsQ = %g, %g, want %g, %g", row.MaxAbsV, row.MaxAbsQ, er.maxAbsV, er.maxAbsQ)
	}
	if er.n == 0 {
		if row != (ref.Row{N: 0, M: math.Inf(-1), Sink: row.Sink, MaxAbsQ: er.maxAbsQ}) || row.Sink != float64(in.SinkOf(h)) {
			return fmt.Sprintf("empty row has statistics %+v", row)
		}
		return ""
	}
	if math.Abs(row.M-er.m) > tau*er.maxA+slack {
		return fmt.Sprintf("M = %g, exact %g", row.M, er.m)
	}
	if math.Abs(row.MaxQK-er.maxQK) > 1e-15*D*er.maxQK {
		return fmt.Sprintf("MaxQK = %g, exact %g", row.MaxQK, er.maxQK)
	}
	if d := math.Abs(row.PSink - er.pSink); d > tau*(1+er.maxA+math.Abs(row.Sink)) {
		return fmt.Sprintf("PSink = %g, exact %g", row.PSink, er.pSink)
	}
	if d := math.Abs(row.PMax - er.pMax); d > tau*(1+er.maxA+er.maxAbsX)*er.pMax+slack {
		return fmt.Sprintf("PMax = %g, exact %g", row.PMax, er.pMax)
	}
	for _, z := range []struct {
		name        string
		got, lo, hi float64
	}{{"ZeroA", row.ZeroA, er.zeroALo, er.zeroAHi}, {"ZeroX", row.ZeroX, er.zeroXLo, er.zeroXHi}} {
		if !(z.got >= z.lo*(1-tau) && z.got <= z.hi*(1+tau)) {
			return fmt.Sprintf("%s = %g, want within [%g, %g]", z.name, z.got, z.lo, z.hi)
		}
	}
	// The maxima run over keys with nonzero float64 weight: at least the
	// keys with exact weight above e^-700, at most all keys.
	for _, m := range []struct {
		name          string
		got, lo, hi   float64
		absoluteSlack float64
	}{
		{"MaxA", row.MaxA, er.maxALive, er.maxA, 0},
		{"MaxAbsX", row.MaxAbsX, er.maxXLive, er.maxAbsX, tau * er.maxA},
		{"MaxDiff", row.MaxDiff, er.maxDLive, er.maxDiff, 2 * tau * er.maxA},
	} {
		lo := m.lo*(1-tau) - m.absoluteSlack
		hi := m.hi*(1+tau) + m.absoluteSlack
		if !(m.got >= lo && m.got <= hi) {
			return fmt.Sprintf("%s = %g, want within [%g, %g]", m.name, m.got, lo, hi)
		}
	}
	return ""
}

// TestCheckRowCatchesErrors tests the checker: a perturbed output, a
// dropped key and a wrong magnitude must all be reported.
func TestCheckRowCatchesErrors(t *testing.T) {
	c := cases.Case{Family: problem.Window, T: 4, H: 2, D: 8, Seed: 3,
		Sink: &cases.Sink{Kind: "random", Scale: 1}}
	in, err := cases.Generate(c, num.BF16)
	if err != nil {
		t.Fatal(err)
	}
	const tok, h = 3, 1
	keys := in.RefKeys(tok, in.Group(h), nil)
	er := exactCompute(in, tok, h, keys)
	fresh := func() *ref.Result { return ref.Compute(in, ref.Options{}) }
	if msg := checkRow(in, fresh(), tok, h, er); msg != "" {
		t.Fatalf("correct result rejected: %s", msg)
	}
	e := (tok*in.H+h)*in.Dv + 2
	perturb := map[string]func(r *ref.Result){
		"o + 1e-10·Σp|v|": func(r *ref.Result) { r.O[e] += 1e-10 * r.AbsV[e] },
		"AbsV · (1+1e-9)": func(r *ref.Result) { r.AbsV[e] *= 1 + 1e-9 },
		"Dev1 · 1.001":    func(r *ref.Result) { r.Dev1[e] *= 1.001 },
		"DevM + 1e-6":     func(r *ref.Result) { r.DevM[e] += 1e-6 },
		"PSink + 1e-9":    func(r *ref.Result) { r.Rows[tok*in.H+h].PSink += 1e-9 },
	}
	for name, f := range perturb {
		r := fresh()
		f(r)
		if checkRow(in, r, tok, h, er) == "" {
			t.Errorf("%s: not detected", name)
		}
	}
	// The oracle without the oldest key must disagree with the reference.
	if checkRow(in, fresh(), tok, h, exactCompute(in, tok, h, keys[1:])) == "" {
		t.Error("dropped key: not detected")
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
