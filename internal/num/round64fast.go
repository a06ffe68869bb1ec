package num

import "math"

// round64Normal is roundBinary with ties to even for x whose binade is in
// fi's normal range (2^fi.emin ≤ |x|): dropping the float64 significand's
// low 53 − fi.prec bits with ties to even (a carry into the exponent is the
// next binade, as it should be) is the rounding of x to fi.prec bits, which
// is what roundBinary's scale, RoundToEven, scale back computes. ok is
// false (the caller takes roundBinary) below the normal range, for zero,
// NaN and ±Inf. The campaign generator rounds every input through here
// (TestRound64Fast compares both on random and edge values).
func round64Normal(x float64, fi formatInfo) (y float64, ok bool) {
	b := math.Float64bits(x)
	e := int(b>>52&0x7ff) - 1023
	if e < fi.emin || e == 1024 || b&^(1<<63) == 0 {
		return 0, false
	}
	if sh := uint(53 - fi.prec); sh > 0 {
		b += 1<<(sh-1) - 1 + (b>>sh)&1
		b &^= 1<<sh - 1
	}
	y = math.Float64frombits(b)
	if math.Abs(y) > fi.max {
		y = math.Copysign(math.Inf(1), x)
	}
	return y, true
}
