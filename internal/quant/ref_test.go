package quant

// Independent references for the tests. They share no code with quant.go:
// code values come from math/big evaluations of the bit fields with the
// format's bias written out, and rounding is "choose the nearest entry of
// the sorted list of finite values, ties to the even code", with exact
// midpoints compared in float64 or math/big.

import (
	"math"
	"math/big"
	"sort"
)

// refFormat describes a format the way its specification tables do.
type refFormat struct {
	name     string
	ebits    uint // exponent field bits
	mbits    uint // mantissa field bits
	bias     int
	nanCodes func(mag uint32) bool // magnitude codes that are NaN
	infCode  int                   // magnitude code of +Inf, or −1
	maxCode  uint32                // largest finite magnitude code
}

var (
	refE4M3 = refFormat{"e4m3fn", 4, 3, 7, func(m uint32) bool { return m == 0x7f }, -1, 0x7e}
	refE5M2 = refFormat{"e5m2", 5, 2, 15, func(m uint32) bool { return m > 0x7c }, 0x7c, 0x7b}
	refE2M1 = refFormat{"e2m1", 2, 1, 1, func(uint32) bool { return false }, -1, 0x7}
)

// bigValue evaluates magnitude code m of f with math/big:
// exponent field E, mantissa field M:
//
//	E = 0:  M/2^mbits · 2^(1−bias)
//	E > 0:  (1 + M/2^mbits) · 2^(E−bias)
func (f refFormat) bigValue(m uint32) *big.Rat {
	E := int(m >> f.mbits)
	M := int64(m & (1<<f.mbits - 1))
	num := big.NewRat(M, 1<<f.mbits)
	exp := 1 - f.bias
	if E > 0 {
		num.Add(num, big.NewRat(1, 1))
		exp = E - f.bias
	}
	p := new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), uint(abs(exp))))
	if exp >= 0 {
		return num.Mul(num, p)
	}
	return num.Quo(num, p)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func ratFloat64(r *big.Rat) float64 {
	v, exact := r.Float64()
	if !exact {
		panic("ref: value not exact in float64")
	}
	return v
}

// refTable is the sorted list of finite nonnegative values of a format,
// entry i being magnitude code i, with one virtual entry past the largest
// (the next value the format would have with one more exponent), so the
// rounding of the region above max follows the same nearest/ties rule.
type refTable struct {
	f    refFormat
	vals []float64 // codes 0 … maxCode, then the virtual maxCode+1
	mids []float64 // mids[i] = (vals[i] + vals[i+1]) / 2, exact

	ratVals, ratMids []*big.Rat
}

func newRefTable(f refFormat) *refTable {
	t := &refTable{f: f}
	for m := uint32(0); m <= f.maxCode; m++ {
		t.vals = append(t.vals, ratFloat64(f.bigValue(m)))
	}
	n := len(t.vals)
	t.vals = append(t.vals, 2*t.vals[n-1]-t.vals[n-2])
	if !sort.Float64sAreSorted(t.vals) {
		panic("ref: values not sorted")
	}
	for i := 0; i+1 < len(t.vals); i++ {
		t.mids = append(t.mids, (t.vals[i]+t.vals[i+1])/2) // exact: a few bits
		t.ratMids = append(t.ratMids, new(big.Rat).SetFloat64(t.mids[i]))
	}
	for _, v := range t.vals {
		t.ratVals = append(t.ratVals, new(big.Rat).SetFloat64(v))
	}
	return t
}

// nearest returns the magnitude code nearest to a ≥ 0 (finite), ties to
// the even code; the result maxCode+1 means overflow.
func (t *refTable) nearest(a float64) uint32 {
	last := len(t.vals) - 1
	if a >= t.vals[last] {
		return uint32(last)
	}
	i := sort.SearchFloat64s(t.vals, a) // first index with vals[i] ≥ a
	if t.vals[i] == a {
		return uint32(i)
	}
	lo := i - 1 // vals[lo] < a < vals[i]
	return t.pick(lo, cmpF(a, t.mids[lo]))
}

func (t *refTable) pick(lo, c int) uint32 {
	switch {
	case c < 0:
		return uint32(lo)
	case c > 0:
		return uint32(lo + 1)
	}
	if lo%2 == 0 {
		return uint32(lo)
	}
	return uint32(lo + 1)
}

func cmpF(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// nearestRat is nearest for an exact rational r ≥ 0 (binary search over
// the exact values, then the exact midpoint).
func (t *refTable) nearestRat(r *big.Rat) uint32 {
	last := len(t.vals) - 1
	if r.Cmp(t.ratVals[last]) >= 0 {
		return uint32(last)
	}
	i := sort.Search(len(t.vals), func(i int) bool { return t.ratVals[i].Cmp(r) >= 0 })
	if t.ratVals[i].Cmp(r) == 0 {
		return uint32(i)
	}
	return t.pick(i-1, r.Cmp(t.ratMids[i-1]))
}

// refEncode8 is the reference 8-bit encoder for e4m3fn and e5m2.
func (t *refTable) refEncode8(x float64, ov Overflow) uint8 {
	sign := uint8(0)
	if math.Signbit(x) {
		sign = 0x80
	}
	if math.IsNaN(x) {
		return sign | 0x7f
	}
	over := func() uint8 {
		if ov == Saturate {
			return sign | uint8(t.f.maxCode)
		}
		if t.f.infCode >= 0 {
			return sign | uint8(t.f.infCode)
		}
		return sign | 0x7f
	}
	if math.IsInf(x, 0) {
		return over()
	}
	c := t.nearest(math.Abs(x))
	if c > t.f.maxCode {
		return over()
	}
	return sign | uint8(c)
}

// refEncodeE2M1 is the reference e2m1 encoder.
func (t *refTable) refEncodeE2M1(x float64, ov Overflow) (uint8, bool) {
	if math.IsNaN(x) {
		return 0, false
	}
	sign := uint8(0)
	if math.Signbit(x) {
		sign = 0x8
	}
	if math.IsInf(x, 0) {
		return sign | 7, ov == Saturate
	}
	c := t.nearest(math.Abs(x))
	if c > 7 {
		return sign | 7, ov == Saturate
	}
	return sign | uint8(c), true
}

// refInt8 rounds x to the nearest integer, ties to even, by comparing with
// floor(x) + 1/2, then saturates; NaN → 0.
func refInt8(x float64) int8 {
	if math.IsNaN(x) {
		return 0
	}
	f := math.Floor(x)
	r := f
	switch d := x - f; { // exact: x and f share a binade or f = 0
	case d > 0.5:
		r = f + 1
	case d == 0.5 && f/2 != math.Floor(f/2): // f odd
		r = f + 1
	}
	return int8(math.Max(-128, math.Min(127, r)))
}
