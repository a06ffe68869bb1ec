package vec

import (
	"math"

	"github.com/attnvet/attnvet/internal/num"
)

// expConsts are num.Exp's constants, each in four lanes, in the order
// EXPBODY reads them (vec_amd64.s).
var expConsts = func() (c [16][4]float64) {
	vals := [16]float64{
		1.44269504088896338700e+00, // log2e
		0.5, -0.5,                  // the rounding of k
		6.93147180369123816490e-01,  // ln2Hi
		1.90821492927058770002e-10,  // ln2Lo
		1.66666666666666657415e-01,  // p1
		-2.77777777770155933842e-03, // p2
		6.61375632143793436117e-05,  // p3
		-1.65339022054652515390e-06, // p4
		4.13813679705723846039e-08,  // p5
		1, 2,
		1.0 / (1 << 28), // nearZero
		math.Float64frombits(1<<63 - 1),
		expWide,
		math.Float64frombits(1023),
	}
	for i, v := range vals {
		c[i] = [4]float64{v, v, v, v}
	}
	return c
}()

// expWide: lanes with |x| ≥ expWide (or NaN) take num.Exp itself. Below
// it num.Exp's k stays in [−1010, 1010], where its result is y·2^k with
// an exact power-of-two multiply, the path the assembly computes.
const expWide = 700

// Exp sets dst[i] = num.Exp(x[i]), bit for bit (dst must not overlap x). On amd64
// with AVX2 four lanes at a time, each lane doing num.Exp's operations in
// its order; lanes the assembly does not cover (|x| ≥ 700, NaN, ±Inf) and
// the last len(x) mod 4 go through num.Exp.
func Exp(dst, x []float64) {
	n := len(x)
	dst = dst[:n]
	j := 0
	if useAsm && n >= 4 {
		j = n &^ 3
		if expAVX2(&dst[0], &x[0], j, &expConsts) {
			for i, v := range x[:j] {
				if !(math.Abs(v) < expWide) {
					dst[i] = num.Exp(v)
				}
			}
		}
	}
	for ; j < n; j++ {
		dst[j] = num.Exp(x[j])
	}
}

// Exp32 sets dst[i] = num.Exp32(x[i]), bit for bit (dst must not overlap x), as Exp.
func Exp32(dst, x []float32) {
	n := len(x)
	dst = dst[:n]
	j := 0
	if useAsm && n >= 4 {
		j = n &^ 3
		if exp32AVX2(&dst[0], &x[0], j, &expConsts) {
			for i, v := range x[:j] {
				if !(math.Abs(float64(v)) < expWide) {
					dst[i] = num.Exp32(v)
				}
			}
		}
	}
	for ; j < n; j++ {
		dst[j] = num.Exp32(x[j])
	}
}
