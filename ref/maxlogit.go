package ref

import (
	"math"

	"github.com/attnvet/attnvet/internal/problem"
)

// allMags is max_i a_i and max_i |x_i| over every key (maxf's NaN rules).
func allMags(a, x []float64) (maxA, maxAbsX float64) {
	for i := range x {
		maxA = maxf(maxA, a[i])
		maxAbsX = maxf(maxAbsX, math.Abs(x[i]))
	}
	return maxA, maxAbsX
}

// MaxLogitOf is row r's exact max_logit in convention c: max_i x_i over
// the keys (the sink never enters), times log2 e in base 2; −Inf for a row
// with no key.
func MaxLogitOf(r *Row, c problem.MaxLogitConv) float64 {
	if r.N == 0 {
		return c.Empty()
	}
	if c.Base2 {
		return r.M * math.Log2E
	}
	return r.M
}
