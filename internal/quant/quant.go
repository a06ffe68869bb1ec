// Package quant implements the low-precision number formats that quantized
// attention kernels store: OCP FP8 (e4m3fn and e5m2), the AMD e4m3fnuz
// variant (decoding only), the UE8M0 power-of-two scale byte, INT8, and FP4
// e2m1 with its two block-scaled schemes MXFP4 and NVFP4; and the reference
// quantizers of the sources (FlashMLA's power-of-two per-tile scales, the OCP
// MX quantizer, NVFP4's two-level scales).
//
// Every encoder rounds to nearest, ties to even (RNE), once: a float64 input
// is rounded directly to the target format, never through float32 (which
// would round twice). A float32 input widens to float64 exactly first, so the
// float32 and float64 encoders are one code path. Overflow behaviour is a
// parameter (Overflow): Saturate clamps to the largest finite value (PTX
// cvt.satfinite, __NV_SATFINITE; ±Inf clamps too), NoSaturate overflows to
// NaN (e4m3fn, which has no infinities) or ±Inf (e5m2), as PyTorch's
// .to(torch.float8_e4m3fn) / .to(torch.float8_e5m2) and __NV_NOSAT do.
// NaN stays NaN (sign kept). -0 encodes as the negative zero code.
//
// Decoders return every code exactly as float32 or float64 (every value of
// these formats is a float32).
//
// Sources: OCP 8-bit Floating Point Specification (OFP8) rev. 1.0 (2023) for
// e4m3fn/e5m2; OCP Microscaling Formats (MX) v1.0 (2023) for E8M0, FP4
// e2m1 and the MX quantizer; NVIDIA PTX ISA "cvt" (satfinite) and
// the CUDA Math API __nv_cvt_float_to_fp8 for the saturation modes; the
// e4m3fnuz layout from Graphcore/AMD's proposal as in LLVM's APFloat
// Float8E4M3FNUZ (bias 8, NaN = 0x80, no infinities, no -0).
//
// Libraries considered (2026-12): github.com/zerfoo/float8 v1.0.0 (e4m3fn
// only) rounds ties up instead of to even, flushes subnormals to zero and
// maps ±Inf to the code 0x78 (= 256 in e4m3fn); github.com/kshard/float8
// decodes an e4m3 variant without subnormals whose largest value is 480.
// Neither is exact, neither has e5m2, UE8M0 or e2m1, and neither converts
// float64 directly, so this package is hand-written and tested exhaustively.
package quant

import (
	"fmt"
	"math"
)

// Overflow is what an encoder does with a value beyond the largest finite
// number of the format (after rounding).
type Overflow uint8

const (
	// Saturate clamps to ±max finite (±Inf too): PTX cvt .satfinite.
	Saturate Overflow = iota
	// NoSaturate gives NaN (e4m3fn) or ±Inf (e5m2): PyTorch's casts.
	NoSaturate
)

func (o Overflow) String() string {
	if o == NoSaturate {
		return "nosat"
	}
	return "satfinite"
}

// minifloat describes a sign-magnitude binary format by its significand
// bits p (including the implicit one), the exponent emin of its smallest
// normal number and its largest finite magnitude code.
type minifloat struct {
	p       uint
	emin    int
	maxCode uint32
}

var (
	e4m3fn = minifloat{p: 4, emin: -6, maxCode: 0x7e}  // max 448
	e5m2   = minifloat{p: 3, emin: -14, maxCode: 0x7b} // max 57344
	e2m1   = minifloat{p: 2, emin: 0, maxCode: 0x7}    // max 6
)

const (
	f64SignBit = 1 << 63
	f64Inf     = 0x7ff0000000000000
)

// magCode rounds the finite magnitude with float64 bits a (sign cleared) to
// the format, RNE, and returns its magnitude code, which exceeds maxCode
// when the value overflows. With the quantum of x's binade in the format,
// 2^(max(e, emin) − p + 1), the code is (max(e, emin) − emin)·2^(p−1) plus
// the rounded count of quanta n: a subnormal code is n itself, a normal one
// carries the biased exponent max(e,emin) − emin + 1 above the mantissa, and
// a carry n = 2^p rolls into the next exponent.
func (f minifloat) magCode(a uint64) uint32 {
	be := int(a >> 52)
	if be == 0 { // zero or a float64 subnormal: far below half the smallest code
		return 0
	}
	e := be - 1023
	m := a&(1<<52-1) | 1<<52 // value = m·2^(e−52)
	ee := max(e, f.emin)
	shift := 52 - int(f.p-1) + ee - e // value/quantum = m·2^−shift, shift ≥ 49
	if shift >= 64 {
		return 0 // value < quantum/2^11
	}
	n := m >> uint(shift)
	rem := m & (1<<uint(shift) - 1)
	half := uint64(1) << uint(shift-1)
	if rem > half || rem == half && n&1 == 1 {
		n++
	}
	return uint32(ee-f.emin)<<(f.p-1) + uint32(n)
}

// E4M3FromF64 rounds x to OCP e4m3fn (RNE). Overflow: Saturate → ±448,
// NoSaturate → NaN. NaN → sign|0x7F.
func E4M3FromF64(x float64, ov Overflow) uint8 { return e4m3fn.encode8(x, ov, 0x7f) }

// E4M3FromF32 rounds x to e4m3fn (one rounding: the widening is exact).
func E4M3FromF32(x float32, ov Overflow) uint8 { return E4M3FromF64(float64(x), ov) }

// E5M2FromF64 rounds x to OCP e5m2 (RNE). Overflow: Saturate → ±57344
// (±Inf too), NoSaturate → ±Inf. NaN → sign|0x7F.
func E5M2FromF64(x float64, ov Overflow) uint8 { return e5m2.encode8(x, ov, 0x7c) }

// encode8 rounds x to an 8-bit format f: NaN → sign|0x7F; ±Inf and values
// beyond the largest finite go to ±max under Saturate, else to the code
// over (e4m3fn's NaN, e5m2's Inf).
func (f minifloat) encode8(x float64, ov Overflow, over uint8) uint8 {
	b := math.Float64bits(x)
	sign := uint8(b>>56) & 0x80
	a := b &^ f64SignBit
	if a > f64Inf {
		return sign | 0x7f
	}
	c := f.maxCode + 1 // ±Inf overflows like a value beyond the largest finite
	if a != f64Inf {
		c = f.magCode(a)
	}
	if c > f.maxCode {
		if ov == Saturate {
			return sign | uint8(f.maxCode)
		}
		return sign | over
	}
	return sign | uint8(c)
}

// E5M2FromF32 rounds x to e5m2 (one rounding).
func E5M2FromF32(x float32, ov Overflow) uint8 { return E5M2FromF64(float64(x), ov) }

// E2M1FromF64 rounds x to FP4 e2m1 (RNE) and returns its 4-bit code (sign
// in bit 3). e2m1 has no NaN and no infinity (OCP MX v1.0): NaN gives
// ok = false; beyond ±6 (and ±Inf) Saturate clamps to ±6 and NoSaturate
// gives ok = false.
func E2M1FromF64(x float64, ov Overflow) (code uint8, ok bool) {
	b := math.Float64bits(x)
	sign := uint8(b>>60) & 0x8
	a := b &^ f64SignBit
	switch {
	case a > f64Inf:
		return 0, false
	case a == f64Inf:
		return sign | 0x7, ov == Saturate
	}
	c := e2m1.magCode(a)
	if c > e2m1.maxCode {
		return sign | 0x7, ov == Saturate
	}
	return sign | uint8(c), true
}

// E2M1FromF32 rounds x to e2m1 (one rounding).
func E2M1FromF32(x float32, ov Overflow) (uint8, bool) { return E2M1FromF64(float64(x), ov) }

// decodeMini returns the value of magnitude code c (no sign) of format f:
// subnormals c·2^(emin−p+1), normals (2^(p−1) + mantissa)·2^(e−p+1).
func decodeMini(c uint32, p uint, emin int) float64 {
	ef := int(c >> (p - 1))
	m := c & (1<<(p-1) - 1)
	if ef == 0 {
		return math.Ldexp(float64(m), emin-int(p-1))
	}
	return math.Ldexp(float64(m|1<<(p-1)), ef-1+emin-int(p-1))
}

// Decoding tables, computed once; read-only afterwards.
var (
	e4m3Table   = buildTable8(func(c uint8) float64 { return decodeE4M3(c) })
	e5m2Table   = buildTable8(func(c uint8) float64 { return decodeE5M2(c) })
	fnuzTable   = buildTable8(func(c uint8) float64 { return decodeFNUZ(c) })
	ue8m0Table  = buildTable8(func(c uint8) float64 { return decodeUE8M0(c) })
	e2m1Table16 = func() (t [16]float64) {
		for c := range t {
			t[c] = withSign(decodeMini(uint32(c&7), e2m1.p, e2m1.emin), c&8 != 0)
		}
		return t
	}()
)

func buildTable8(f func(uint8) float64) (t [256]float64) {
	for c := range t {
		t[c] = f(uint8(c))
	}
	return t
}

func withSign(v float64, neg bool) float64 {
	if neg {
		return -v
	}
	return v
}

func decodeE4M3(c uint8) float64 {
	if c&0x7f == 0x7f {
		return math.NaN()
	}
	return withSign(decodeMini(uint32(c&0x7f), e4m3fn.p, e4m3fn.emin), c&0x80 != 0)
}

func decodeE5M2(c uint8) float64 {
	switch {
	case c&0x7f == 0x7c:
		return math.Inf(1 - 2*int(c>>7))
	case c&0x7f > 0x7c:
		return math.NaN()
	}
	return withSign(decodeMini(uint32(c&0x7f), e5m2.p, e5m2.emin), c&0x80 != 0)
}

// e4m3fnuz: bias 8 (emin −7), every exponent field finite, 0x80 the only NaN.
func decodeFNUZ(c uint8) float64 {
	if c == 0x80 {
		return math.NaN()
	}
	return withSign(decodeMini(uint32(c&0x7f), 4, -7), c&0x80 != 0)
}

func decodeUE8M0(c uint8) float64 {
	if c == 0xff {
		return math.NaN()
	}
	return math.Ldexp(1, int(c)-127)
}

// E4M3ToF64 decodes an e4m3fn code exactly (0x7F, 0xFF → NaN).
func E4M3ToF64(c uint8) float64 { return e4m3Table[c] }

// E4M3ToF32 decodes an e4m3fn code exactly.
func E4M3ToF32(c uint8) float32 { return float32(e4m3Table[c]) }

// E5M2ToF64 decodes an e5m2 code exactly (0x7C → +Inf, 0x7D–0x7F → NaN).
func E5M2ToF64(c uint8) float64 { return e5m2Table[c] }

// E5M2ToF32 decodes an e5m2 code exactly.
func E5M2ToF32(c uint8) float32 { return float32(e5m2Table[c]) }

// E4M3FNUZToF64 decodes an e4m3fnuz code (bias 8, max 240, NaN = 0x80).
// For the mutant that reads fnuz bytes as fn and the reverse.
func E4M3FNUZToF64(c uint8) float64 { return fnuzTable[c] }

// E4M3FNUZToF32 decodes an e4m3fnuz code exactly.
func E4M3FNUZToF32(c uint8) float32 { return float32(fnuzTable[c]) }

// E2M1ToF64 decodes the low 4 bits of c as e2m1: ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}.
func E2M1ToF64(c uint8) float64 { return e2m1Table16[c&0xf] }

// E2M1ToF32 decodes the low 4 bits of c as e2m1.
func E2M1ToF32(c uint8) float32 { return float32(e2m1Table16[c&0xf]) }

// UE8M0ToF64 decodes a UE8M0 scale byte: 2^(c−127); 0xFF → NaN (OCP MX v1.0 E8M0).
func UE8M0ToF64(c uint8) float64 { return ue8m0Table[c] }

// UE8M0ToF32 decodes a UE8M0 byte (2^−127 is a float32 subnormal, exact).
func UE8M0ToF32(c uint8) float32 { return float32(ue8m0Table[c]) }

// ScaleRounding is the direction a UE8M0 encoder rounds a scale that is not
// a power of two.
type ScaleRounding uint8

const (
	// ScaleRZ rounds toward zero, down to 2^⌊log2 x⌋: cudaRoundZero, the
	// conversion FlashMLA PR #184 found on the SM100 V32 path.
	ScaleRZ ScaleRounding = iota
	// ScaleRU rounds up, to 2^⌈log2 x⌉: cudaRoundPosInf, and FlashMLA's
	// reference quantizer (torch.pow(2, log2(s).ceil())).
	ScaleRU
)

// UE8M0FromF64 encodes scale x as a UE8M0 byte, rounding by r. A power of
// two in [2^−127, 2^127] is exact. NaN and negative x → 0xFF (no sign bit).
// Below 2^−127 (±0 included) → 0 (the smallest scale). Above 2^127 (+Inf
// included): Saturate → 254 (2^127), NoSaturate → 0xFF.
func UE8M0FromF64(x float64, r ScaleRounding, ov Overflow) uint8 {
	switch {
	case math.IsNaN(x) || x < 0:
		return 0xff
	case x == 0:
		return 0
	case math.IsInf(x, 1):
		if ov == Saturate {
			return 254
		}
		return 0xff
	}
	frac, e := math.Frexp(x) // x = frac·2^e, frac ∈ [0.5, 1)
	k := e - 1               // ⌊log2 x⌋
	if frac != 0.5 && r == ScaleRU {
		k++
	}
	switch {
	case k < -127:
		return 0
	case k > 127:
		if ov == Saturate {
			return 254
		}
		return 0xff
	}
	return uint8(k + 127)
}

// Int8FromF64 rounds x to an integer (RNE) and saturates it to [−128, 127],
// as PTX cvt.rni.sat.s8.f32 does; NaN → 0 (as PTX).
func Int8FromF64(x float64) int8 {
	switch {
	case x != x:
		return 0
	case x >= 127:
		return 127
	case x <= -128:
		return -128
	}
	return int8(math.RoundToEven(x))
}

// Int8FromF32 rounds x to INT8 like Int8FromF64 (one rounding).
func Int8FromF32(x float32) int8 { return Int8FromF64(float64(x)) }

// Dequant names the precision of a dequantization code × scale, as the
// CONTRACTS.md metadata `dequant` does.
type Dequant uint8

const (
	// Exact takes the product exactly (float64 holds it for every format
	// here: ≤ 8 code bits × 24 scale bits).
	Exact Dequant = iota
	// BF16 is BF16_RN(BF16(code) · BF16_RN(scale)): FlashMLA SM90's packed
	// BF16 multiply (one rounding of the exact product).
	BF16
	// FP32 is FP32_RN(FP32(code) · FP32_RN(scale)): an FP32 product.
	FP32
)

var dequantNames = [...]string{Exact: "exact", BF16: "bf16", FP32: "fp32"}

func (d Dequant) String() string {
	if int(d) < len(dequantNames) {
		return dequantNames[d]
	}
	return fmt.Sprintf("Dequant(%d)", d)
}

// ParseDequant accepts "exact" (and ""), "bf16", "fp32".
func ParseDequant(s string) (Dequant, error) {
	switch s {
	case "exact", "":
		return Exact, nil
	case "bf16":
		return BF16, nil
	case "fp32":
		return FP32, nil
	}
	return 0, fmt.Errorf("unknown dequant %q (want exact, bf16 or fp32)", s)
}
