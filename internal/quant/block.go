package quant

import (
	"errors"
	"fmt"
	"math"

	"github.com/attnvet/attnvet/internal/num"
)

// Dequantize returns code × scale in precision mode d (see Dequant):
//
//	Exact: code·scale
//	BF16:  BF16_RN(BF16_RN(code) · BF16_RN(scale))
//	FP32:  FP32_RN(FP32_RN(code) · FP32_RN(scale))
//
// Each product of two rounded operands is exact in float64 (8+8 and 24+24
// significand bits), so each mode rounds the product once. NaN propagates.
func Dequantize(d Dequant, code, scale float64) float64 {
	switch d {
	case BF16:
		c := num.Round64(num.BF16, code, num.RNE)
		s := num.Round64(num.BF16, scale, num.RNE)
		return num.Round64(num.BF16, c*s, num.RNE)
	case FP32:
		return float64(float32(float64(float32(code)) * float64(float32(scale))))
	}
	return code * scale
}

// FlashMLA's reference quantizer (deepseek-ai/FlashMLA tests/quant.py,
// quantize_k_cache and _cast_scale_inv_to_ue8m0), per token and tile of
// 128 (V32) or 64 (MODEL1) NoPE columns, in FP32:
//
//	a    = FP32(amax / 448)                 amax = max |x| over the tile
//	inv  = 2^⌈log2(max(a, FP32(1e−4)))⌉     so inv ≥ 2^−13, a power of two
//	code = e4m3fn_RN(x / inv)               non-saturating (torch .to())
//
// log2 and ⌈·⌉ are taken exactly here; torch evaluates log2 in FP32, which
// for a within ~2^−21 relatively above a power of two can return the integer
// and pick the scale half as large (then x/inv ≤ 448·(1+2^−21) still rounds
// to 448). With BF16 inputs, as FlashMLA's, amax/448 is never that close to
// a power of two, so the two agree there.
const flashMLAMinScale = float32(1e-4)

// FlashMLAScale returns FlashMLA's inv for a tile whose max |x| is amax
// (finite, ≥ 0).
func FlashMLAScale(amax float32) float32 {
	a := amax / 448 // FP32 division, as torch's .float() / 448.0
	if a < flashMLAMinScale {
		a = flashMLAMinScale
	}
	frac, e := math.Frexp(float64(a))
	if frac == 0.5 {
		e-- // a is a power of two: ⌈log2 a⌉ = log2 a
	}
	return float32(math.Ldexp(1, e))
}

// QuantizeTileFlashMLA quantizes x with FlashMLA's reference rule into
// codes (e4m3fn, len(codes) == len(x)) and returns the tile's inv (the
// dequantization multiplier). NaN or ±Inf in x is an error.
func QuantizeTileFlashMLA(codes []uint8, x []float32) (inv float32, err error) {
	if len(codes) != len(x) {
		return 0, fmt.Errorf("quant: %d codes for %d values", len(codes), len(x))
	}
	var amax float32
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return 0, fmt.Errorf("quant: non-finite value %v at column %d", v, i)
		}
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	inv = FlashMLAScale(amax)
	for i, v := range x {
		// x/inv is exact in float64 (inv a power of two), one rounding to e4m3.
		codes[i] = E4M3FromF64(float64(v)/float64(inv), NoSaturate)
	}
	return inv, nil
}

// MXBlock is the MX block size (OCP MX v1.0: k = 32).
const MXBlock = 32

// QuantizeMXFP4 quantizes x (len a multiple of 32) to MXFP4 with the OCP MX
// v1.0 conversion algorithm (scalar floats to an MX block), per block of 32
// values:
//
//	shared = ⌊log2 max|V_i|⌋ − emax_elem     emax_elem = 2 for e2m1
//	X      = 2^shared, clamped to [2^−127, 2^127] (UE8M0)
//	P_i    = e2m1_RN(V_i / X), saturating to ±6
//
// codes gets one e2m1 code per value (unpacked; see PackE2M1), scales one
// UE8M0 byte per block. An all-zero block gets scale byte 0 (2^−127) and
// zero codes. A block holding NaN or ±Inf gets the NaN scale 0xFF and zero
// codes (the spec makes the whole block NaN).
func QuantizeMXFP4(codes, scales []uint8, x []float32) error {
	if err := checkBlocks("MXFP4", MXBlock, codes, scales, x); err != nil {
		return err
	}
	for b := range scales {
		blk, out := x[b*MXBlock:(b+1)*MXBlock], codes[b*MXBlock:(b+1)*MXBlock]
		amax, finite := blockAmax(blk)
		if !finite {
			scales[b] = 0xff
			clear(out)
			continue
		}
		if amax == 0 {
			scales[b] = 0
			clear(out)
			continue
		}
		_, e := math.Frexp(amax)
		shared := min(max(e-1-2, -127), 127)
		scales[b] = uint8(shared + 127)
		for i, v := range blk {
			out[i], _ = E2M1FromF64(math.Ldexp(float64(v), -shared), Saturate) // exact scaling
		}
	}
	return nil
}

// DequantMXFP4 writes e2m1(codes[i]) × UE8M0(scales[i/32]) to dst exactly.
func DequantMXFP4(dst []float64, codes, scales []uint8) error {
	if len(dst) != len(codes) || len(codes) != len(scales)*MXBlock {
		return fmt.Errorf("quant: MXFP4 dequant of %d codes with %d scales into %d values", len(codes), len(scales), len(dst))
	}
	for i, c := range codes {
		dst[i] = E2M1ToF64(c) * UE8M0ToF64(scales[i/MXBlock])
	}
	return nil
}

// NVBlock is the NVFP4 block size (16 values per e4m3 scale).
const NVBlock = 16

// NVFP4TensorScale is the usual per-tensor FP32 scale, FP32(amax/(6·448)),
// which maps the tensor's largest value to the largest block scale times
// the largest element (NVIDIA TensorRT Model Optimizer's NVFP4 recipe). It
// is 1 for amax = 0.
func NVFP4TensorScale(amax float32) float32 {
	if amax == 0 {
		return 1
	}
	return amax / (6 * 448)
}

var errTensorScale = errors.New("quant: NVFP4 tensor scale must be positive and finite")

// QuantizeNVFP4 quantizes x (len a multiple of 16) to NVFP4 under the
// per-tensor FP32 scale g, per block of 16 values:
//
//	s_b  = e4m3_RN(amax_b / 6 / g), saturating to 448
//	P_i  = e2m1_RN(x_i / (e4m3(s_b)·g)), saturating to ±6
//	x̂_i  = e2m1(P_i) · e4m3(s_b) · g
//
// (flashinfer/TensorRT-LLM fp4_quantize; NVIDIA's NVFP4 recipe.) Each
// quotient is correctly rounded once: the float64 quotient of a 24-bit value
// by a ≤ 28-bit divisor cannot round onto a tie of e4m3 or e2m1. Those
// kernels multiply by an FP32 reciprocal instead, which can move a value
// lying within an ulp of a tie by one code (UNCONFIRMED whether any
// fixture hits it). A block whose scale rounds to 0 gets zero codes; a block
// with NaN or ±Inf gets the NaN scale 0x7F and zero codes.
func QuantizeNVFP4(codes, scales []uint8, x []float32, g float32) error {
	if !(g > 0) || math.IsInf(float64(g), 0) {
		return errTensorScale
	}
	if err := checkBlocks("NVFP4", NVBlock, codes, scales, x); err != nil {
		return err
	}
	for b := range scales {
		blk, out := x[b*NVBlock:(b+1)*NVBlock], codes[b*NVBlock:(b+1)*NVBlock]
		amax, finite := blockAmax(blk)
		if !finite {
			scales[b] = 0x7f
			clear(out)
			continue
		}
		scales[b] = E4M3FromF64(amax/(6*float64(g)), Saturate) // 6g exact in float64
		d := E4M3ToF64(scales[b]) * float64(g)                 // exact: 4 × 24 bits
		if d == 0 {
			clear(out)
			continue
		}
		for i, v := range blk {
			out[i], _ = E2M1FromF64(float64(v)/d, Saturate)
		}
	}
	return nil
}

// DequantNVFP4 writes e2m1(codes[i]) × e4m3(scales[i/16]) × g to dst
// exactly (≤ 3 + 4 + 24 significand bits).
func DequantNVFP4(dst []float64, codes, scales []uint8, g float32) error {
	if len(dst) != len(codes) || len(codes) != len(scales)*NVBlock {
		return fmt.Errorf("quant: NVFP4 dequant of %d codes with %d scales into %d values", len(codes), len(scales), len(dst))
	}
	for i, c := range codes {
		dst[i] = E2M1ToF64(c) * E4M3ToF64(scales[i/NVBlock]) * float64(g)
	}
	return nil
}

// PackE2M1 packs e2m1 codes two per byte, element 2i in the low nibble and
// 2i+1 in the high one (PyTorch float4_e2m1fn_x2, the OCP MX packing).
func PackE2M1(dst []byte, codes []uint8) error {
	if len(codes)%2 != 0 || len(dst) != len(codes)/2 {
		return fmt.Errorf("quant: packing %d e2m1 codes into %d bytes", len(codes), len(dst))
	}
	for i := range dst {
		dst[i] = codes[2*i]&0xf | codes[2*i+1]<<4
	}
	return nil
}

// UnpackE2M1 is the inverse of PackE2M1.
func UnpackE2M1(codes []uint8, src []byte) error {
	if len(codes) != 2*len(src) {
		return fmt.Errorf("quant: unpacking %d bytes into %d e2m1 codes", len(src), len(codes))
	}
	for i, b := range src {
		codes[2*i], codes[2*i+1] = b&0xf, b>>4
	}
	return nil
}

// checkBlocks checks the sizes of a block-scaled quantization of x.
func checkBlocks(name string, block int, codes, scales []uint8, x []float32) error {
	if len(x)%block != 0 {
		return fmt.Errorf("quant: %s needs a multiple of %d values, got %d", name, block, len(x))
	}
	if len(codes) != len(x) || len(scales) != len(x)/block {
		return fmt.Errorf("quant: %s of %d values needs %d codes and %d scales, got %d and %d",
			name, len(x), len(x), len(x)/block, len(codes), len(scales))
	}
	return nil
}

// blockAmax is max|x| over a block, and whether every value is finite.
func blockAmax(blk []float32) (amax float64, finite bool) {
	finite = true
	for _, v := range blk {
		a := math.Abs(float64(v))
		if math.IsNaN(a) || math.IsInf(a, 0) {
			finite = false
		}
		amax = max(amax, a)
	}
	return amax, finite
}
