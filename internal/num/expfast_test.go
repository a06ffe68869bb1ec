package num

import (
	"math"
	"math/rand/v2"
	"testing"
)

// expLdexp is Exp with expmulti's final scaling by math.Ldexp alone (the
// code before the power-of-two multiply).
func expLdexp(x float64) float64 {
	const (
		ln2Hi, ln2Lo, log2e = 6.93147180369123816490e-01, 1.90821492927058770002e-10, 1.44269504088896338700e+00
		p1, p2, p3, p4, p5  = 1.66666666666666657415e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05, -1.65339022054652515390e-06, 4.13813679705723846039e-08
	)
	switch {
	case math.IsNaN(x) || math.IsInf(x, 1):
		return x
	case math.IsInf(x, -1):
		return 0
	case x > 7.09782712893383973096e+02:
		return math.Inf(1)
	case x < -7.45133219101941108420e+02:
		return 0
	case -1.0/(1<<28) < x && x < 1.0/(1<<28):
		return 1 + x
	}
	k := int(float64(log2e*x) + 0.5)
	if x < 0 {
		k = int(float64(log2e*x) - 0.5)
	}
	hi := x - float64(float64(k)*ln2Hi)
	lo := float64(float64(k) * ln2Lo)
	r := hi - lo
	t := float64(r * r)
	c := r - float64(t*(p1+float64(t*(p2+float64(t*(p3+float64(t*(p4+float64(t*p5)))))))))
	y := 1 - ((lo - float64(r*c)/(2-c)) - hi)
	return math.Ldexp(y, k)
}

// TestExpScaleFast: Exp's power-of-two multiply gives math.Ldexp's bits
// over the whole argument range, the edges of the fast range (k = −1020,
// 1021: arguments near ±707.4) and the subnormal results below it.
func TestExpScaleFast(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	xs := []float64{0, 1, -1, 709.78, 709.7827128933839, -708.39, -707.7, -707.0, -706.5, 707.0, 708.0, -745.13, -744.0, -740, 1e-9, -1e-9}
	for i := 0; i < 400000; i++ {
		switch i % 3 {
		case 0:
			xs = append(xs, (2*r.Float64()-1)*746)
		case 1:
			xs = append(xs, (2*r.Float64()-1)*40)
		default:
			xs = append(xs, -700-r.Float64()*46) // k near and below −1020
		}
	}
	for _, x := range xs {
		if a, b := Exp(x), expLdexp(x); math.Float64bits(a) != math.Float64bits(b) {
			t.Fatalf("Exp(%v) = %b, with Ldexp %b", x, a, b)
		}
	}
}
