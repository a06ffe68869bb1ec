// Package num implements the number formats attention kernels store and
// compute in: FP32, FP16 (IEEE binary16) and BF16 (bfloat16), with the two
// rounding modes devices use for the final cast: round to nearest, ties to
// even (RNE) and round to nearest, ties away from zero (Away).
//
// Conversions from float32 are exact bit manipulations. Conversions from
// float64 round once, directly (never float64 → float32 → format, which
// rounds twice and is wrong in about one halfway case in four).
//
// NaN stays NaN (quiet); ±Inf and ±0 map to themselves; values beyond the
// largest finite number overflow to ±Inf as IEEE round-to-nearest does.
package num

import (
	"fmt"
	"math"

	"github.com/x448/float16"
)

// Format is a floating-point storage or arithmetic format.
type Format uint8

const (
	FP32 Format = iota
	FP16
	BF16
	FP64
)

var formatNames = [...]string{FP32: "fp32", FP16: "fp16", BF16: "bf16", FP64: "fp64"}

func (f Format) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return fmt.Sprintf("Format(%d)", f)
}

// ParseFormat accepts fp32/f32/float32, fp16/f16/float16/half, bf16/bfloat16, fp64/f64/float64.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "fp32", "f32", "float32", "F32":
		return FP32, nil
	case "fp16", "f16", "float16", "half", "F16":
		return FP16, nil
	case "bf16", "bfloat16", "BF16":
		return BF16, nil
	case "fp64", "f64", "float64", "F64":
		return FP64, nil
	}
	return 0, fmt.Errorf("unknown format %q (want fp32, fp16, bf16 or fp64)", s)
}

// MarshalText and UnmarshalText make Format a JSON string.
func (f Format) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

func (f *Format) UnmarshalText(b []byte) error {
	v, err := ParseFormat(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// Rounding is the tie-breaking rule of a round-to-nearest conversion.
type Rounding uint8

const (
	RNE  Rounding = iota // ties to even (IEEE default, explicit rint casts)
	Away                 // ties away from zero (the Ascend default cast)
)

func (r Rounding) String() string {
	if r == Away {
		return "away"
	}
	return "rne"
}

// ParseRounding accepts "rne" and "away".
func ParseRounding(s string) (Rounding, error) {
	switch s {
	case "rne", "even", "":
		return RNE, nil
	case "away":
		return Away, nil
	}
	return 0, fmt.Errorf("unknown rounding %q (want rne or away)", s)
}

func (r Rounding) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

func (r *Rounding) UnmarshalText(b []byte) error {
	v, err := ParseRounding(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Mantissa bits (including the implicit bit), minimum normal exponent and
// largest finite value of each format.
type formatInfo struct {
	prec   int     // significand bits p, including the implicit one
	emin   int     // exponent of the smallest normal number
	max    float64 // largest finite value
	minSub float64 // smallest positive subnormal
}

var infos = [...]formatInfo{
	FP32: {24, -126, math.MaxFloat32, 0x1p-149},
	FP16: {11, -14, 65504, 0x1p-24},
	BF16: {8, -126, 0x1.fep127, 0x1p-133},
	FP64: {53, -1022, math.MaxFloat64, 0x1p-1074},
}

// UnitRoundoff is u = 2^-p, the largest relative error of rounding to
// nearest a value in the normal range of f.
func UnitRoundoff(f Format) float64 { return math.Ldexp(1, -infos[f].prec) }

// MaxFinite is the largest finite value of f.
func MaxFinite(f Format) float64 { return infos[f].max }

// MinSubnormal is the smallest positive value of f; half of it bounds the
// absolute error of rounding to nearest in the subnormal range.
func MinSubnormal(f Format) float64 { return infos[f].minSub }

// MinNormal is the smallest positive normal value of f: the absolute error
// of a result that a flush-to-zero operation replaces by 0.
func MinNormal(f Format) float64 { return math.Ldexp(1, infos[f].emin) }

// BF16FromF32 rounds x to bfloat16 with rounding r.
func BF16FromF32(x float32, r Rounding) uint16 {
	b := math.Float32bits(x)
	if b&0x7fffffff > 0x7f800000 { // NaN: keep sign and top payload, force quiet
		return uint16(b>>16) | 0x0040
	}
	if r == Away {
		b += 0x8000
	} else {
		b += 0x7fff + (b>>16)&1
	}
	return uint16(b >> 16)
}

// BF16ToF32 widens a bfloat16 exactly.
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// FP16FromF32 rounds x to binary16 with rounding r.
func FP16FromF32(x float32, r Rounding) uint16 {
	if r == RNE || x != x { // NaN: same quiet NaN as the RNE path
		return uint16(float16.Fromfloat32(x))
	}
	// fp16Away returns a value exactly representable in binary16 (or ±Inf),
	// so this conversion is exact: it only encodes the bits. (Converting
	// the float64 value itself to uint16 would return the number, not its
	// encoding.)
	return uint16(float16.Fromfloat32(float32(fp16Away(float64(x)))))
}

// FP16ToF32 widens a binary16 exactly.
func FP16ToF32(h uint16) float32 { return float16.Frombits(h).Float32() }

// Round32 rounds a float32 to format f and returns it widened back to
// float32 (exactly). FP32 and FP64 return x unchanged.
func Round32(f Format, x float32, r Rounding) float32 {
	switch f {
	case BF16:
		return BF16ToF32(BF16FromF32(x, r))
	case FP16:
		if r == RNE {
			return roundFP16RNE(x)
		}
		return float32(fp16Away(float64(x)))
	}
	return x
}

// roundFP16RNE rounds x to the nearest binary16 value (ties to even) and
// returns it as a float32, without encoding: the hot path of the FP16
// emulations. In binary16's normal range the rounding drops 13 mantissa
// bits of the float32 (as BF16FromF32 drops 16); below 2^-14 the quantum is
// 2^-24, and x·2^24 rounded to an integer is exact in float64.
func roundFP16RNE(x float32) float32 {
	b := math.Float32bits(x)
	a := b & 0x7fffffff
	switch {
	case a >= 0x7f800000: // Inf, NaN
		if a > 0x7f800000 {
			return float16.Fromfloat32(x).Float32() // the library's quiet NaN
		}
		return x
	case a >= 0x38800000: // |x| ≥ 2^-14: normal in binary16
		b += 0xfff + (b>>13)&1
		b &^= 0x1fff
		if b&0x7fffffff > 0x477fe000 { // beyond 65504: overflow
			return math.Float32frombits(b&0x80000000 | 0x7f800000)
		}
		return math.Float32frombits(b)
	}
	return float32(math.RoundToEven(float64(x)*0x1p24) * 0x1p-24) // subnormal or zero, sign kept
}

// Round64 rounds a float64 to format f, correctly (one rounding), and
// returns the result as a float64 (exactly representable in f).
func Round64(f Format, x float64, r Rounding) float64 {
	if f == FP64 || math.IsNaN(x) || math.IsInf(x, 0) || x == 0 {
		return x
	}
	if f == FP32 && r == RNE {
		return float64(float32(x)) // Go's conversion is IEEE RNE, one rounding.
	}
	if r == RNE {
		if y, ok := round64Normal(x, infos[f]); ok {
			return y
		}
	}
	return roundBinary(x, infos[f], r)
}

// fp16Away rounds to binary16 with ties away from zero.
func fp16Away(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) || x == 0 {
		return x
	}
	return roundBinary(x, infos[FP16], Away)
}

// roundBinary rounds finite nonzero x to the binary format described by fi.
// The quantum of x's binade in the target is 2^(max(e, emin) - p + 1);
// scaling by its inverse is exact in float64 (a power of two), so the
// rounding of the scaled value to an integer is the only rounding.
func roundBinary(x float64, fi formatInfo, r Rounding) float64 {
	ax := math.Abs(x)
	_, e := math.Frexp(ax) // ax = frac·2^e, frac in [0.5, 1): exponent of leading bit is e-1
	e--
	if e < fi.emin {
		e = fi.emin
	}
	q := e - fi.prec + 1
	s := math.Ldexp(ax, -q) // exact
	var n float64
	if r == Away {
		// math.Round is exact (ties away from zero). Not Floor(s+0.5): in
		// the subnormal range s can be 0.5-2^-54, and s+0.5 rounds to 1.0.
		n = math.Round(s)
	} else {
		n = math.RoundToEven(s)
	}
	y := math.Ldexp(n, q)
	if y > fi.max {
		y = math.Inf(1)
	}
	return math.Copysign(y, x)
}

// Ulp is the spacing of f at |x|: the gap between |x| rounded down to f and
// the next larger number of f (2^(e-p+1) for |x| in [2^e, 2^(e+1)), the
// subnormal spacing below the normal range). Ulp(±Inf) and Ulp(NaN) are NaN.
func Ulp(f Format, x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return math.NaN()
	}
	fi := infos[f]
	ax := math.Abs(x)
	if ax == 0 {
		return fi.minSub
	}
	_, e := math.Frexp(ax)
	e--
	if e < fi.emin {
		e = fi.emin
	}
	return math.Ldexp(1, e-fi.prec+1)
}
