package interop

import (
	"fmt"
	"math"
	"strings"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

// INT4 KV caches of the dense family, ONNX Runtime's GroupQueryAttention
// convention for kv_cache_bit_width 4 (problem.DenseInt4KV) in
// FlashAttention's layouts: k, v (or k_cache, v_cache) U8 [..., Hkv, D/2],
// two codes a byte with the +8 bias (element 2i in the low nibble), and
// k_scale, v_scale F32 as for INT8 ([1], or Hkv·D elements: [Hkv, D] or
// ORT's [1, Hkv, 1, D]). U8 caches with k_scale/v_scale (and none of the
// NVFP4 scale tensors) are INT4; metadata kv_cache_bit_width, ORT's
// attribute, may say so (4) and must then agree with the caches' dtype.
const KeyKVBitWidth = "kv_cache_bit_width"

// Int4KVKeys are the problem keys of INT4 (and INT8) KV caches.
var Int4KVKeys = []string{KeyKVBitWidth}

// int4KV replaces the packed U8 caches of an INT4 dense bundle by their
// dequantized values, in a copy of the file, and keeps codes and scales.
// d is q's head size (an odd one cannot be an INT4 cache here).
func (d *decoder) int4KV(in num.Format, qd int) (*problem.DenseInt4KV, error) {
	kn, vn := kvCacheNames(d.f)
	kt, vt := d.f.Tensors[kn], d.f.Tensors[vn]
	bw, declared := 0, false
	if s, ok := d.meta[KeyKVBitWidth]; ok {
		switch strings.TrimSpace(s) {
		case "4":
			bw = 4
		case "8":
			bw = 8
		default:
			return nil, metaErr(KeyKVBitWidth, "%q, want 4 (U8 packed INT4 caches) or 8 (I8 caches)", s)
		}
		declared = true
	}
	isU8 := kt != nil && vt != nil && (kt.DType == bundle.U8 || vt.DType == bundle.U8)
	scaled := d.f.Tensors[TKScale] != nil || d.f.Tensors[TVScale] != nil
	nvfp4 := false
	for _, n := range nvfp4Names {
		nvfp4 = nvfp4 || d.f.Tensors[n] != nil
	}
	if bw == 8 {
		if kt == nil || vt == nil || kt.DType != bundle.I8 || vt.DType != bundle.I8 {
			return nil, metaErr(KeyKVBitWidth, "8, but %s and %s are not I8 (an INT8 KV cache)", kn, vn)
		}
		return nil, nil
	}
	if !declared && !(isU8 && scaled && !nvfp4) {
		return nil, nil
	}
	if nvfp4 {
		return nil, metaErr(KeyKVBitWidth, "4 with NVFP4 scale tensors (k_block_scale, …): an INT4 cache has k_scale and v_scale")
	}
	q := &problem.DenseInt4KV{}
	f := *d.f
	f.Tensors = make(map[string]*bundle.Tensor, len(d.f.Tensors))
	for k, v := range d.f.Tensors {
		f.Tensors[k] = v
	}
	for i, name := range []string{kn, vn} {
		t := d.f.Tensors[name]
		sn := []string{TKScale, TVScale}[i]
		if t == nil || t.DType != bundle.U8 {
			return nil, fmt.Errorf("tensor %s: want U8 packed INT4 codes [..., Hkv, D/2] (an INT4 KV cache: %s and %s both U8, with %s and %s)", name, kn, vn, TKScale, TVScale)
		}
		if err := t.Validate(); err != nil {
			return nil, err
		}
		if len(t.Shape) < 3 {
			return nil, fmt.Errorf("tensor %s: shape %v, want [..., Hkv, D/2]", name, t.Shape)
		}
		hkv, half := t.Shape[len(t.Shape)-2], t.Shape[len(t.Shape)-1]
		if i == 0 && qd%2 == 1 && half == (qd+1)/2 {
			return nil, fmt.Errorf("tensor %s: %d bytes a head for q's odd head size %d: ORT pads an odd head to (D+1)/2 bytes, but its GroupQueryAttention wants head_size %% 8 == 0 and attnvet models even INT4 heads only", name, half, qd)
		}
		w := 2 * half
		st, err := d.tensor(sn, true, fmt.Sprintf("[1] (per tensor) or [Hkv, D] = [%d, %d] (per channel) fp32, with a U8 INT4 %s", hkv, w, name), 1, 2, 4)
		if err != nil {
			return nil, err
		}
		n := 1
		for _, s := range st.Shape {
			n *= s
		}
		if n != 1 && n != hkv*w {
			return nil, fmt.Errorf("tensor %s: shape %v, want [1] (per tensor) or [Hkv, D] = [%d, %d] (per channel; D = 2·%d, two INT4 codes a byte)", sn, st.Shape, hkv, w, half)
		}
		scale, err := d.floats(st, num.FP32, "scales are fp32")
		if err != nil {
			return nil, err
		}
		for j, s := range scale {
			if !(s > 0) || math.IsInf(float64(s), 0) {
				return nil, fmt.Errorf("tensor %s: value %v at flat index %d: want a positive finite scale", sn, s, j)
			}
		}
		vals := make([]float32, 2*len(t.Data))
		if err := problem.DequantInt4KV(vals, t.Data, scale, hkv, w, in); err != nil {
			return nil, err
		}
		shape := append(append([]int(nil), t.Shape[:len(t.Shape)-1]...), w)
		nt, err := bundle.NewFloat32(name, bundle.F32, shape, vals)
		if err != nil {
			return nil, err
		}
		f.Tensors[name] = nt
		codes := append([]uint8(nil), t.Data...)
		if i == 0 {
			q.KCodes, q.KScale = codes, scale
		} else {
			q.VCodes, q.VScale = codes, scale
		}
	}
	d.f = &f
	return q, nil
}

// encodeInt4KV writes an INT4-KV problem's caches as U8 packed codes, its
// scales as F32 [1] or [Hkv, D], and kv_cache_bit_width = 4.
func encodeInt4KV(f *bundle.File, in *problem.Inputs) error {
	q := in.Int4KV
	if q == nil {
		return nil
	}
	kn, vn := kvCacheNames(f)
	for i, name := range []string{kn, vn} {
		t := f.Tensors[name]
		codes, scale, w := q.KCodes, q.KScale, in.D
		if i == 1 {
			codes, scale, w = q.VCodes, q.VScale, in.Dv
		}
		lead := t.Shape[:len(t.Shape)-1]
		ct, err := bundle.NewBytes(name, bundle.U8, append(append([]int(nil), lead...), w/2), codes)
		if err != nil {
			return err
		}
		f.Add(ct)
		shape := []int{1}
		if len(scale) != 1 {
			shape = []int{in.Hkv, w}
		}
		st, err := bundle.NewFloat32([]string{TKScale, TVScale}[i], bundle.F32, shape, scale)
		if err != nil {
			return err
		}
		f.Add(st)
	}
	f.Metadata[KeyKVBitWidth] = "4"
	return nil
}
