package num

import "math"

// Exp returns e^x, computed with the same operations on every architecture.
//
// math.Exp has assembly versions on amd64 and arm64 that may differ in the
// last bit; the reference and the emulations must be bit-identical across
// machines, so they use this portable version (fdlibm's algorithm: reduce
// x = k·ln2 + r, |r| ≤ ln2/2, a degree-5 rational approximation of e^r,
// scale by 2^k). Every product is wrapped in float64() so no FMA is fused.
// Error below 1 ulp. Exp(+Inf) = +Inf, Exp(-Inf) = 0, Exp(NaN) = NaN.
func Exp(x float64) float64 {
	const (
		ln2Hi     = 6.93147180369123816490e-01
		ln2Lo     = 1.90821492927058770002e-10
		log2e     = 1.44269504088896338700e+00
		overflow  = 7.09782712893383973096e+02
		underflow = -7.45133219101941108420e+02
		nearZero  = 1.0 / (1 << 28)
	)
	switch {
	case math.IsNaN(x) || math.IsInf(x, 1):
		return x
	case math.IsInf(x, -1):
		return 0
	case x > overflow:
		return math.Inf(1)
	case x < underflow:
		return 0
	case -nearZero < x && x < nearZero:
		return 1 + x
	}
	var k int
	switch {
	case x < 0:
		k = int(float64(log2e*x) - 0.5)
	default:
		k = int(float64(log2e*x) + 0.5)
	}
	hi := x - float64(float64(k)*ln2Hi)
	lo := float64(float64(k) * ln2Lo)
	return expmulti(hi, lo, k)
}

func expmulti(hi, lo float64, k int) float64 {
	const (
		p1 = 1.66666666666666657415e-01
		p2 = -2.77777777770155933842e-03
		p3 = 6.61375632143793436117e-05
		p4 = -1.65339022054652515390e-06
		p5 = 4.13813679705723846039e-08
	)
	r := hi - lo
	t := float64(r * r)
	c := r - float64(t*(p1+float64(t*(p2+float64(t*(p3+float64(t*(p4+float64(t*p5)))))))))
	y := 1 - ((lo - float64(r*c)/(2-c)) - hi)
	if -1020 <= k && k <= 1021 {
		// y ≈ e^r lies in (1/4, 4), so y·2^k is a normal float64 and the
		// product with the power of two is exact: math.Ldexp's result,
		// without its general path (TestExpScaleFast).
		return y * math.Float64frombits(uint64(k+1023)<<52)
	}
	return math.Ldexp(y, k)
}

// Exp32 is e^x for a float32 argument, correctly rounded to float32 except
// in rare near-halfway cases (the float64 result has error < 1 ulp of
// float64, far below half an ulp of float32).
func Exp32(x float32) float32 { return float32(Exp(float64(x))) }
