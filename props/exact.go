package props

import (
	"math"
	"math/big"

	"github.com/attnvet/attnvet/internal/problem"
)

// exactPrec is the working precision (bits) of the math/big oracle.
const exactPrec = 256

func bigF(x float64) *big.Float { return new(big.Float).SetPrec(exactPrec).SetFloat64(x) }

// BigExp returns e^x for x ≤ 2^20 to about 2^-200 relative: x = r·2^s with
// |r| < 2^-10, e^r by its Taylor series, then s squarings at s+40 extra
// bits. Below −2^20 it returns 0 (the value is under 2^-1500000: nothing
// next to the weight 1 of the largest score).
func BigExp(x *big.Float) *big.Float {
	if x.Sign() == 0 {
		return bigF(1)
	}
	if f, _ := x.Float64(); f < -(1 << 20) {
		return bigF(0)
	} else if f > 1<<20 {
		panic("props: BigExp argument above 2^20")
	}
	s := max(x.MantExp(nil)+10, 0) // |x| < 2^MantExp
	prec := uint(exactPrec + s + 40)
	r := new(big.Float).SetPrec(prec).SetMantExp(x, -s)
	sum := new(big.Float).SetPrec(prec).SetInt64(1)
	term := new(big.Float).SetPrec(prec).SetInt64(1)
	for k := int64(1); k < 200; k++ {
		term.Mul(term, r)
		term.Quo(term, new(big.Float).SetInt64(k))
		sum.Add(sum, term)
		if term.Sign() == 0 || term.MantExp(nil) < sum.MantExp(nil)-int(prec)-2 {
			break
		}
	}
	for range s {
		sum.Mul(sum, sum)
	}
	return new(big.Float).SetPrec(exactPrec).Set(sum)
}

// ExactRow computes output row (t, h) of in over keys with math/big:
// x_i = scale·(q·k_i) exactly (up to 2^-256), then
// o = Σ e^{x_i−M} v_i / (Σ e^{x_i−M} + e^{σ−M}), M = max(x_i, σ), rounded
// once to float64. n = 0 or σ = +Inf gives 0; σ = −Inf is no sink.
func ExactRow(in *problem.Inputs, t, h int, keys []problem.Key) []float64 {
	out := make([]float64, in.Dv)
	sigma := float64(in.SinkOf(h))
	if len(keys) == 0 || math.IsInf(sigma, 1) {
		return out
	}
	q := in.QRow(t, h)
	scale := bigF(in.Scale)
	xs := make([]*big.Float, len(keys))
	var m *big.Float
	for i, k := range keys {
		dot := bigF(0)
		for d, qd := range q {
			dot.Add(dot, new(big.Float).SetPrec(exactPrec).Mul(bigF(float64(qd)), bigF(float64(k.K[d]))))
		}
		xs[i] = dot.Mul(dot, scale)
		if m == nil || xs[i].Cmp(m) > 0 {
			m = xs[i]
		}
	}
	hasSink := !math.IsInf(sigma, -1)
	if hasSink && bigF(sigma).Cmp(m) > 0 {
		m = bigF(sigma)
	}
	sub := func(a *big.Float) *big.Float { return new(big.Float).SetPrec(exactPrec).Sub(a, m) }
	l := bigF(0)
	num := make([]*big.Float, in.Dv)
	for j := range num {
		num[j] = bigF(0)
	}
	for i, k := range keys {
		w := BigExp(sub(xs[i]))
		l.Add(l, w)
		for j := range num {
			num[j].Add(num[j], new(big.Float).SetPrec(exactPrec).Mul(w, bigF(float64(k.V[j]))))
		}
	}
	if hasSink {
		l.Add(l, BigExp(sub(bigF(sigma))))
	}
	for j := range out {
		out[j], _ = new(big.Float).SetPrec(exactPrec).Quo(num[j], l).Float64()
	}
	return out
}
