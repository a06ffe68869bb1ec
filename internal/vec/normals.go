package vec

import "math"

// NormalsBF16 is the generator's draw of BF16 values from the Irwin–Hall
// normal (internal/cases), four values at a time: value j is
//
//	x = float64((((u0 + u1) + u2) + u3 − 2) · 1.7320508075688772),
//	u_d = float64(draw_d >> 11)·2^-53,
//
// then float64(x·scale) rounded to BF16 (ties to even), with the draws of
// values 4g..4g+3 laid out as draws[16g + 4d + l] (draw d of value 4g+l).
// It writes whole groups while every value of the group is in BF16's
// normal range (the generator's fast path) and returns how many groups it
// wrote; the caller takes the first group it did not write (a value that
// rounds to zero, a subnormal, an overflow or a NaN) on the scalar path.
// Without AVX2 it writes none. TestNormalsBF16MatchesGo compares it with
// the scalar formula value for value.
func NormalsBF16(dst []float32, draws []uint64, scale float64) (groups int) {
	n := min(len(dst)/4, len(draws)/16)
	if !useAsm || n == 0 {
		return 0
	}
	return normalsBF16AVX2(&dst[0], &draws[0], n, scale, &normalConsts)
}

// normalConsts are normalsBF16AVX2's constants, each in four lanes.
var normalConsts = func() (c [13][4]uint64) {
	for i, v := range [...]uint64{
		0xffffffff,                           // the low 32 bits of a draw's 53
		0x4330000000000000,                   // 2^52: bits OR'd in and the float taken off
		0x4530000000000000,                   // 2^84: the same for the high bits
		math.Float64bits(0x1p-53),            // unit's scale
		math.Float64bits(2),                  // the Irwin–Hall mean
		math.Float64bits(1.7320508075688772), // √3
		1,                                    // the kept bit's parity
		1<<44 - 1,                            // half a BF16 ulp, less one
		^uint64(1<<45 - 1),                   // the 45 dropped mantissa bits
		0x7ff,                                // the exponent field
		1023 - 127,                           // exponents above this are normal in BF16
		0x7fffffffffffffff,                   // |·|
		math.Float64bits(0x1.fep127),         // BF16's largest finite
	} {
		c[i] = [4]uint64{v, v, v, v}
	}
	return c
}()
