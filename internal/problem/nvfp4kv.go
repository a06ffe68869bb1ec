package problem

import (
	"fmt"
	"math"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/quant"
)

// DenseNVFP4KV is a dense problem whose K and V caches are NVFP4 (flashinfer's
// NVFP4 KV cache, flashinfer/fp4_quantization.py nvfp4_kv_dequantize and
// nvfp4_quantize_paged_kv_cache; docs/kernels.md §14): e2m1 codes two per
// byte (element 2i in the low nibble), one e4m3 block scale per 16 values
// along the head dimension (the linear, unswizzled layout) and one FP32
// global scale per cache, dequantized into the attention dtype T before the
// kernel reads it:
//
//	x̂ = T(FP32(e2m1(code) · e4m3(block scale) · global))
//
// (the product e2m1·e4m3 is exact; one FP32 rounding for the global
// scale, as flashinfer's reference_dequant computes in float32). The
// problem's K and V are those dequantized values, as for DenseInt8KV: the
// reference is the attention of the dequantized cache, the quantization
// error is the model's, and a kernel that dequantizes otherwise computes
// another problem and fails.
type DenseNVFP4KV struct {
	KCodes, VCodes []uint8 // packed e2m1: [rows][Hkv][D/2], [rows][Hkv][Dv/2]
	KBlock, VBlock []uint8 // e4m3 bytes: [rows][Hkv][D/16], [rows][Hkv][Dv/16]
	KGlobal        float32 // FP32 global (tensor) scale of K
	VGlobal        float32
}

// VNVFP4Scale: an NVFP4 block scale that is e4m3's NaN, or a global
// scale that is not a positive finite FP32 number: the dequantized cache
// has no meaningful value.
const VNVFP4Scale = "nvfp4_scale_invalid"

// DequantNVFP4KV writes x̂ = T(FP32(e2m1·e4m3·g)) of packed codes and block
// scales into dst (len 2·len(codes) = 16·len(block)); f is T.
func DequantNVFP4KV(dst []float32, codes, block []uint8, g float32, f num.Format) error {
	if len(dst) != 2*len(codes) || len(dst) != quant.NVBlock*len(block) {
		return fmt.Errorf("NVFP4: %d packed bytes and %d block scales for %d values", len(codes), len(block), len(dst))
	}
	for i, b := range codes {
		for j, c := range [2]uint8{b & 0xf, b >> 4} {
			e := 2*i + j
			p := quant.E2M1ToF64(c) * quant.E4M3ToF64(block[e/quant.NVBlock]) // exact: 2 + 4 bits
			dst[e] = num.Round32(f, float32(p*float64(g)), num.RNE)           // float64 product exact: one FP32 rounding
		}
	}
	return nil
}

// checkNVFP4 checks the NVFP4 caches' sizes against K and V (after
// checkDense has checked K and V against the shape).
func (in *Inputs) checkNVFP4() error {
	q := in.NVFP4KV
	if q == nil {
		return nil
	}
	if in.Family != Dense {
		return fmt.Errorf("NVFP4 K/V caches are dense-family inputs (family %s)", in.Family)
	}
	if in.FP8 != nil || in.Int8KV != nil {
		return fmt.Errorf("NVFP4 K/V caches with FP8 or INT8 inputs")
	}
	if in.D%quant.NVBlock != 0 || in.Dv%quant.NVBlock != 0 {
		return fmt.Errorf("NVFP4 K/V caches need D and Dv multiples of %d (got D=%d, Dv=%d): one e4m3 scale per 16 values of a head", quant.NVBlock, in.D, in.Dv)
	}
	for _, c := range []struct {
		name         string
		codes, block []uint8
		n            int
	}{{"k", q.KCodes, q.KBlock, len(in.K)}, {"v", q.VCodes, q.VBlock, len(in.V)}} {
		if err := wantLen(c.name+" (packed e2m1 codes)", len(c.codes), c.n/2); err != nil {
			return err
		}
		if err := wantLen(c.name+"_block_scale", len(c.block), c.n/quant.NVBlock); err != nil {
			return err
		}
	}
	return nil
}

// nvfp4Violations reports NaN block scales and unusable global scales.
func (in *Inputs) nvfp4Violations(add func(string, int, string, ...any)) {
	q := in.NVFP4KV
	if q == nil {
		return
	}
	for i, g := range []float32{q.KGlobal, q.VGlobal} {
		if !(g > 0) || math.IsInf(float64(g), 0) {
			add(VNVFP4Scale, -1, "%s_global_scale = %v: want a positive finite FP32 number", []string{"k", "v"}[i], g)
		}
	}
	for i, b := range [][]uint8{q.KBlock, q.VBlock} {
		for j, s := range b {
			if s&0x7f == 0x7f {
				add(VNVFP4Scale, -1, "%s_block_scale[%d] is e4m3's NaN (0x%02x)", []string{"k", "v"}[i], j, s)
				break
			}
		}
	}
}

// QuantizeNVFP4KV quantizes in's dense K and V as flashinfer's
// nvfp4_quantize_paged_kv_cache does (the case field nvfp4_kv and attnvet
// export --quantize call this one function): per cache the global scale
// g = FP32(1/FP32(448/amax)) (so block scales lie in [0, 448/6]), then
// quant.QuantizeNVFP4 per 16 values of a head. edit, if not nil, may
// rewrite each cache's unpacked codes and block scales before packing (the
// generator's edge classes); K and V become the dequantized
// T(FP32(e2m1·e4m3·g)). Deterministic when edit is nil: the scales are
// amax-based.
func (in *Inputs) QuantizeNVFP4KV(edit func(codes, block []uint8)) error {
	q := &DenseNVFP4KV{}
	var err error
	if q.KCodes, q.KBlock, q.KGlobal, err = quantizeNVFP4Cache(in.K, edit); err != nil {
		return err
	}
	if q.VCodes, q.VBlock, q.VGlobal, err = quantizeNVFP4Cache(in.V, edit); err != nil {
		return err
	}
	if err := DequantNVFP4KV(in.K, q.KCodes, q.KBlock, q.KGlobal, in.Format); err != nil {
		return err
	}
	if err := DequantNVFP4KV(in.V, q.VCodes, q.VBlock, q.VGlobal, in.Format); err != nil {
		return err
	}
	in.NVFP4KV = q
	return nil
}

// quantizeNVFP4Cache quantizes x (a whole number of 16-value blocks) into
// packed codes, block scales and the global scale.
func quantizeNVFP4Cache(x []float32, edit func(codes, block []uint8)) (packed, block []uint8, g float32, err error) {
	var amax float64
	for _, v := range x {
		amax = math.Max(amax, math.Abs(float64(v)))
	}
	gsf := float32(448 / math.Max(amax, 1e-12)) // flashinfer: torch.tensor([448 / max(amax, 1e-12)], float32)
	g = 1 / gsf                                 // (1.0 / k_global_sf), an FP32 division
	codes := make([]uint8, len(x))
	block = make([]uint8, len(x)/quant.NVBlock)
	if err = quant.QuantizeNVFP4(codes, block, x, g); err != nil {
		return nil, nil, 0, err
	}
	if edit != nil {
		edit(codes, block)
	}
	packed = make([]uint8, len(x)/2)
	if err = quant.PackE2M1(packed, codes); err != nil {
		return nil, nil, 0, err
	}
	return packed, block, g, nil
}
