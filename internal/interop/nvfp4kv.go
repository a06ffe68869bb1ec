package interop

import (
	"fmt"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/quant"
)

// NVFP4 KV caches of the dense family, flashinfer's NVFP4 KV convention
// (problem.DenseNVFP4KV) in FlashAttention's layouts: k, v (or k_cache,
// v_cache) U8 [..., Hkv, D/2] packed e2m1 codes (element 2i in the low
// nibble), k_block_scale, v_block_scale U8 or F8_E4M3 [..., Hkv, D/16]
// e4m3 bytes (flashinfer's linear layout), k_global_scale, v_global_scale
// F32 [1]. Each value is dequantized as in_dtype(FP32(e2m1·e4m3·global))
// before anything else reads the cache.
const (
	TKBlockScale  = "k_block_scale"
	TVBlockScale  = "v_block_scale"
	TKGlobalScale = "k_global_scale"
	TVGlobalScale = "v_global_scale"
)

var nvfp4Names = [4]string{TKBlockScale, TVBlockScale, TKGlobalScale, TVGlobalScale}

// nvfp4KV replaces the packed U8 caches of an NVFP4 dense bundle (one
// with any of the scale tensors) by their dequantized values, in a copy of
// the file, and keeps codes and scales for the problem.
func (d *decoder) nvfp4KV(in num.Format) (*problem.DenseNVFP4KV, error) {
	given := ""
	for _, n := range nvfp4Names {
		if d.f.Tensors[n] != nil {
			given = n
			break
		}
	}
	if given == "" {
		return nil, nil
	}
	kn, vn := kvCacheNames(d.f)
	q := &problem.DenseNVFP4KV{}
	f := *d.f
	f.Tensors = make(map[string]*bundle.Tensor, len(d.f.Tensors))
	for k, v := range d.f.Tensors {
		f.Tensors[k] = v
	}
	for i, name := range []string{kn, vn} {
		t := d.f.Tensors[name]
		if t == nil || t.DType != bundle.U8 {
			return nil, fmt.Errorf("tensor %s given, so %s must be U8 packed e2m1 codes [..., Hkv, D/2] (an NVFP4 KV cache)", given, name)
		}
		if err := t.Validate(); err != nil {
			return nil, err
		}
		if len(t.Shape) < 3 {
			return nil, fmt.Errorf("tensor %s: shape %v, want [..., Hkv, D/2]", name, t.Shape)
		}
		half := t.Shape[len(t.Shape)-1]
		if (2*half)%quant.NVBlock != 0 {
			return nil, fmt.Errorf("tensor %s: shape %v holds D = 2·%d values a head, not a multiple of %d (one e4m3 scale per 16)", name, t.Shape, half, quant.NVBlock)
		}
		bsShape := append(append([]int(nil), t.Shape[:len(t.Shape)-1]...), 2*half/quant.NVBlock)
		bn, gn := nvfp4Names[i], nvfp4Names[2+i]
		bt, err := d.tensor(bn, true, fmt.Sprintf("%v U8 or F8_E4M3 e4m3 block scales, with a U8 %s", bsShape, name), len(bsShape))
		if err != nil {
			return nil, err
		}
		if bt.DType != bundle.U8 && bt.DType != bundle.F8E4M3 {
			return nil, fmt.Errorf("tensor %s: dtype %s, want U8 or F8_E4M3 (e4m3 bytes)", bn, bt.DType)
		}
		for j := range bsShape {
			if bt.Shape[j] != bsShape[j] {
				return nil, fmt.Errorf("tensor %s: shape %v, want %v (one scale per 16 values of %s)", bn, bt.Shape, bsShape, name)
			}
		}
		gt, err := d.tensor(gn, true, "[1] fp32", 0, 1)
		if err != nil {
			return nil, err
		}
		g, err := d.floats(gt, num.FP32, "scales are fp32")
		if err != nil {
			return nil, err
		}
		if len(g) != 1 {
			return nil, fmt.Errorf("tensor %s: shape %v, want [1]", gn, gt.Shape)
		}
		vals := make([]float32, 2*len(t.Data))
		if err := problem.DequantNVFP4KV(vals, t.Data, bt.Data, g[0], in); err != nil {
			return nil, err
		}
		shape := append(append([]int(nil), t.Shape[:len(t.Shape)-1]...), 2*half)
		nt, err := bundle.NewFloat32(name, bundle.F32, shape, vals)
		if err != nil {
			return nil, err
		}
		f.Tensors[name] = nt
		codes, block := append([]uint8(nil), t.Data...), append([]uint8(nil), bt.Data...)
		if i == 0 {
			q.KCodes, q.KBlock, q.KGlobal = codes, block, g[0]
		} else {
			q.VCodes, q.VBlock, q.VGlobal = codes, block, g[0]
		}
	}
	d.f = &f
	return q, nil
}

// encodeNVFP4KV writes an NVFP4-KV problem's caches as U8 packed codes,
// its block scales as U8 e4m3 bytes and its global scales as F32 [1].
func encodeNVFP4KV(f *bundle.File, in *problem.Inputs) error {
	q := in.NVFP4KV
	if q == nil {
		return nil
	}
	kn, vn := kvCacheNames(f)
	for i, name := range []string{kn, vn} {
		t := f.Tensors[name]
		codes, block, g := q.KCodes, q.KBlock, q.KGlobal
		if i == 1 {
			codes, block, g = q.VCodes, q.VBlock, q.VGlobal
		}
		lead, w := t.Shape[:len(t.Shape)-1], t.Shape[len(t.Shape)-1]
		ct, err := bundle.NewBytes(name, bundle.U8, append(append([]int(nil), lead...), w/2), codes)
		if err != nil {
			return err
		}
		f.Add(ct)
		bt, err := bundle.NewBytes(nvfp4Names[i], bundle.U8, append(append([]int(nil), lead...), w/quant.NVBlock), block)
		if err != nil {
			return err
		}
		f.Add(bt)
		gt, err := bundle.NewFloat32(nvfp4Names[2+i], bundle.F32, []int{1}, []float32{g})
		if err != nil {
			return err
		}
		f.Add(gt)
	}
	return nil
}
