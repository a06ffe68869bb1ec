package num

import "math"

// Log returns ln x with the same operations on every architecture (math.Log
// has an amd64 assembly version). x = f·2^e with f in [√½, √2), then
// ln f = 2·atanh(s), s = (f−1)/(f+1), |s| ≤ 0.1716, summed as the odd series
// to s^23 (truncation < 2^-60); e·ln2 in two parts. Every product is wrapped
// in float64() so no FMA is fused. Error within a few ulps of float64.
// Log(+Inf) = +Inf, Log(0) = −Inf, Log(x < 0) = NaN, Log(NaN) = NaN.
func Log(x float64) float64 {
	const (
		ln2Hi = 6.93147180369123816490e-01
		ln2Lo = 1.90821492927058770002e-10
	)
	switch {
	case math.IsNaN(x) || math.IsInf(x, 1):
		return x
	case x < 0:
		return math.NaN()
	case x == 0:
		return math.Inf(-1)
	}
	f, e := math.Frexp(x) // f in [0.5, 1)
	if f < math.Sqrt2/2 {
		f *= 2
		e--
	}
	s := (f - 1) / (f + 1)
	s2 := float64(s * s)
	// Horner over 1/(2k+1), k = 11 .. 1.
	sum := 1.0 / 23
	for k := 10; k >= 0; k-- {
		sum = 1/float64(2*k+1) + float64(s2*sum)
	}
	lnf := float64(2 * float64(s*sum))
	fe := float64(e)
	return float64(fe*ln2Hi) + (float64(fe*ln2Lo) + lnf)
}

// Log32 is ln x for a float32 argument, rounded to float32.
func Log32(x float32) float32 { return float32(Log(float64(x))) }

// Tanh returns tanh x with the same operations on every architecture:
// x itself below 2^-28, ±1 beyond 22, 1 − 2/(e^{2|x|}+1) for |x| ≥ 0.5, and
// sinh/√(1+sinh²) with sinh's Taylor series (to x^25) below 0.5. Error
// within a few ulps of float64. Tanh(±Inf) = ±1, Tanh(NaN) = NaN.
func Tanh(x float64) float64 {
	a := math.Abs(x)
	var t float64
	switch {
	case math.IsNaN(x):
		return x
	case a < 1.0/(1<<28):
		return x
	case a > 22:
		t = 1
	case a >= 0.5:
		t = 1 - 2/(Exp(2*a)+1)
	default:
		a2 := float64(a * a)
		term, sh := a, a
		for k := 1; k <= 12; k++ {
			term = float64(term * a2 / float64((2*k)*(2*k+1)))
			sh += term
		}
		t = sh / math.Sqrt(1+float64(sh*sh))
	}
	return math.Copysign(t, x)
}

// Tanh32 is tanh x for a float32 argument, rounded to float32.
func Tanh32(x float32) float32 { return float32(Tanh(float64(x))) }
