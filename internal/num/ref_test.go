package num

// Independent reference implementations used by the tests. Nothing here
// calls the code under test: rounding is done with integer arithmetic on the
// exact significand/exponent of the input (refSplit/refRound) or with
// math/big (bigRound), and formats are described by their own table.

import (
	"math"
	"math/big"
	"math/bits"
)

// tformat describes a binary floating-point format independently of the
// package's internal table.
type tformat struct {
	name string
	f    Format
	prec int // significand bits including the implicit one
	emin int // exponent of the smallest normal number
	emax int // exponent of the largest finite number
}

// grid is the part of tformat the hot loops need, without the string, so
// copies are cheap and the compiler can keep it in registers.
type grid struct {
	prec, emin, emax int
	qmin             int    // exponent of the smallest quantum, emin-p+1
	inf16            uint32 // +Inf bit pattern of a 16-bit format
}

func (t tformat) grid() grid {
	return grid{t.prec, t.emin, t.emax, t.emin - t.prec + 1, uint32(2*t.emax+1) << uint(t.prec-1)}
}

var (
	tFP16 = tformat{"fp16", FP16, 11, -14, 15}
	tBF16 = tformat{"bf16", BF16, 8, -126, 127}
	tFP32 = tformat{"fp32", FP32, 24, -126, 127}
	tFP64 = tformat{"fp64", FP64, 53, -1022, 1023}

	// The three formats the package actually rounds to.
	roundFormats = []tformat{tFP32, tFP16, tBF16}
	roundings    = []Rounding{RNE, Away}
)

// maxFinite is (2 - 2^(1-p))·2^emax.
func (t tformat) maxFinite() float64 {
	return math.Ldexp(float64(uint64(1)<<t.prec-1), t.emax-t.prec+1)
}

// minSub is 2^(emin-p+1).
func (t tformat) minSub() float64 { return math.Ldexp(1, t.emin-t.prec+1) }

// overflow is 2^(emax+1): the value the sequence of representable numbers
// would continue with after maxFinite if the exponent were unbounded.
func (t tformat) overflow() float64 { return math.Ldexp(1, t.emax+1) }

// refClass says where M·2^k lies relative to n·2^q and (n+1)·2^q.
type refClass uint8

const (
	clsExact refClass = iota // M·2^k == n·2^q
	clsBelow                 // strictly between, nearer to n
	clsTie                   // exactly halfway
	clsAbove                 // strictly between, nearer to n+1
)

// refSplit locates the positive value M·2^k (0 < M < 2^63) on the grid of
// format t: q is the exponent of the quantum (spacing) of t at that value,
// n = floor(M·2^k / 2^q), and c classifies the remainder. The grid is the
// one with unbounded exponent range above, subnormal spacing below 2^emin.
func (t grid) refSplit(M uint64, k int) (n uint64, q int, c refClass) {
	e := bits.Len64(M) - 1 + k // exponent of the leading bit
	if e < t.emin {
		e = t.emin
	}
	q = e - t.prec + 1
	sh := q - k
	if sh <= 0 {
		return M << uint(-sh), q, clsExact
	}
	if sh >= 64 { // M < 2^63 ≤ half quantum
		return 0, q, clsBelow
	}
	n = M >> uint(sh)
	rem := M & (uint64(1)<<uint(sh) - 1)
	half := uint64(1) << uint(sh-1)
	switch {
	case rem == 0:
		c = clsExact
	case rem < half:
		c = clsBelow
	case rem == half:
		c = clsTie
	default:
		c = clsAbove
	}
	return n, q, c
}

// refRound applies the tie rule.
func refRound(n uint64, c refClass, r Rounding) uint64 {
	switch c {
	case clsAbove:
		n++
	case clsTie:
		if r == Away || n&1 == 1 {
			n++
		}
	}
	return n
}

// refValue is n·2^q as a float64 built directly from its bits, or +Inf if it
// exceeds the largest finite value of t (IEEE overflow under round to
// nearest: the rounded value, computed with unbounded exponent, is > max).
// Requires n ≤ 2^53 and the result to be a normal float64.
func (t grid) refValue(n uint64, q int) float64 {
	if n == 0 {
		return 0
	}
	l := bits.Len64(n)
	if l > 53 {
		panic("refValue: n too wide")
	}
	e := l - 1 + q
	if e > t.emax {
		return math.Inf(1)
	}
	frac := (n << uint(53-l)) & (1<<52 - 1)
	return math.Float64frombits(uint64(e+1023)<<52 | frac)
}

// decompose32 returns M, k with |x| = M·2^k for finite nonzero float32 bits.
func decompose32(b uint32) (M uint64, k int) {
	e := int(b>>23) & 0xff
	frac := uint64(b & 0x7fffff)
	if e == 0 {
		return frac, -149
	}
	return frac | 1<<23, e - 150
}

// decompose64 returns M, k with |x| = M·2^k for finite nonzero float64 bits.
func decompose64(b uint64) (M uint64, k int) {
	e := int(b>>52) & 0x7ff
	frac := b & (1<<52 - 1)
	if e == 0 {
		return frac, -1074
	}
	return frac | 1<<52, e - 1075
}

// refRound64 rounds a float64 to g with integer arithmetic only.
func (g grid) refRound64(x float64, r Rounding) float64 {
	if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	M, k := decompose64(math.Float64bits(x))
	n, q, c := g.refSplit(M, k)
	return math.Copysign(g.refValue(refRound(n, c, r), q), x)
}

// bigRound rounds a float64 to t with math/big.
//
// big.Float has an unbounded exponent, so it only rounds correctly in the
// normal range of t. Below 2^emin the grid is fixed-point with quantum
// 2^(emin-p+1); there we use the identity
//
//	round_sub(|x|) = round_p(|x| + 2^emin) - 2^emin,
//
// because [2^emin, 2^(emin+1)) has exactly that quantum at precision p. The
// addition is done exactly at a precision wide enough for any float64
// (2200 bits > 1074 + 1023), and the tie rules carry over: the integer
// multiple of the quantum changes by 2^(p-1), an even number, so parity is
// kept for ties-to-even, and both values are positive so "away from zero"
// means "up" in both.
func bigRound(t tformat, x float64, r Rounding) float64 {
	if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	mode := big.ToNearestEven
	if r == Away {
		mode = big.ToNearestAway
	}
	ax := math.Abs(x)
	minNormal := math.Ldexp(1, t.emin)
	var y float64
	if ax >= minNormal {
		z := new(big.Float).SetPrec(uint(t.prec)).SetMode(mode).SetFloat64(ax)
		y, _ = z.Float64()
	} else {
		off := new(big.Float).SetFloat64(minNormal)
		s := new(big.Float).SetPrec(2200).SetFloat64(ax)
		s.Add(s, off)
		if s.Acc() != big.Exact {
			panic("bigRound: offset addition not exact")
		}
		z := new(big.Float).SetPrec(uint(t.prec)).SetMode(mode).Set(s)
		d := new(big.Float).SetPrec(64).Sub(z, off)
		if d.Acc() != big.Exact {
			panic("bigRound: offset subtraction not exact")
		}
		y, _ = d.Float64()
	}
	if y > t.maxFinite() {
		y = math.Inf(1)
	}
	return math.Copysign(y, x)
}

// Bit-level decoders for the 16-bit formats written from the IEEE field
// layout, independent of BF16ToF32 / FP16ToF32 / x448/float16.

// decodeBF16 returns the value of a bfloat16 bit pattern (NaN for NaNs).
func decodeBF16(h uint16) float64 {
	return decode16(h, 8, 7, 127)
}

// decodeFP16 returns the value of a binary16 bit pattern (NaN for NaNs).
func decodeFP16(h uint16) float64 {
	return decode16(h, 5, 10, 15)
}

func decode16(h uint16, ebits, mbits uint, bias int) float64 {
	neg := h>>15 != 0
	e := int(h>>mbits) & (1<<ebits - 1)
	m := float64(h & (1<<mbits - 1))
	var v float64
	switch e {
	case 1<<ebits - 1:
		if m != 0 {
			return math.NaN()
		}
		v = math.Inf(1)
	case 0:
		v = math.Ldexp(m, 1-bias-int(mbits))
	default:
		v = math.Ldexp(m+math.Ldexp(1, int(mbits)), e-bias-int(mbits))
	}
	if neg {
		v = -v
	}
	return v
}

// sameFloat reports whether a and b are the same value including the sign
// of zero, treating any two NaNs as equal.
func sameFloat(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return a == b && math.Signbit(a) == math.Signbit(b)
}
