package cases

import (
	"math"

	"github.com/attnvet/attnvet/internal/num"
)

// roundBF16 is num.Round64(num.BF16, x, num.RNE) for finite nonzero x in
// BF16's normal range, inline (the generator's hot loop): round to
// nearest even on the float64 bits, dropping 45 mantissa bits; ok is false
// elsewhere (TestRoundBF16MatchesNum).
func roundBF16(x float64) (y float64, ok bool) {
	b := math.Float64bits(x)
	if e := b >> 52 & 0x7ff; e < 1023-126 || e == 0x7ff {
		return 0, false // subnormal in BF16, zero, Inf, NaN
	}
	b += 1<<44 - 1 + (b>>45)&1
	b &^= 1<<45 - 1
	y = math.Float64frombits(b)
	if math.Abs(y) > 0x1.fep127 {
		return 0, false
	}
	return y, true
}

// round is the generator's rounding of a draw to format f, ties to even.
func round(f num.Format, x float64) float64 {
	if f == num.BF16 {
		if y, ok := roundBF16(x); ok {
			return y
		}
	}
	return num.Round64(f, x, num.RNE)
}
