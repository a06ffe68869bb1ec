package interop

import (
	"fmt"
	"math"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

// INT8 KV caches of the dense family, in ONNX Runtime's GroupQueryAttention
// convention (problem.DenseInt8KV) and FlashAttention's layouts: k, v (or
// k_cache, v_cache) of dtype I8, and k_scale, v_scale F32 of one element
// (PER_TENSOR) or Hkv·D elements ([Hkv, D] or ORT's [1, Hkv, 1, D]:
// PER_CHANNEL). Each value is dequantized as ORT does, T(FP32(code·scale))
// in the declared in_dtype T, before anything else reads the cache.
const (
	TKScale = "k_scale"
	TVScale = "v_scale"
)

// int8KV replaces I8 k/v (or k_cache/v_cache) tensors of a dense bundle by
// their dequantized values, in a copy of the file, and keeps the codes and
// scales for the problem.
func (d *decoder) int8KV(in num.Format) (*problem.DenseInt8KV, error) {
	kn, vn := kvCacheNames(d.f)
	kt, vt := d.f.Tensors[kn], d.f.Tensors[vn]
	if kt == nil || vt == nil || (kt.DType != bundle.I8 && vt.DType != bundle.I8) {
		for _, n := range []string{TKScale, TVScale} {
			if d.f.Tensors[n] != nil {
				return nil, fmt.Errorf("tensor %s: given, but %s and %s are not I8 (an INT8 KV cache)", n, kn, vn)
			}
		}
		return nil, nil
	}
	q := &problem.DenseInt8KV{}
	f := *d.f
	f.Tensors = make(map[string]*bundle.Tensor, len(d.f.Tensors))
	for k, v := range d.f.Tensors {
		f.Tensors[k] = v
	}
	for i, t := range []*bundle.Tensor{kt, vt} {
		sn := []string{TKScale, TVScale}[i]
		if t.DType != bundle.I8 {
			return nil, fmt.Errorf("tensor %s: dtype %s, but %s is I8: both caches are INT8 or neither", t.Name, t.DType, []*bundle.Tensor{kt, vt}[1-i].Name)
		}
		if err := t.Validate(); err != nil {
			return nil, err
		}
		if len(t.Shape) < 3 {
			return nil, fmt.Errorf("tensor %s: shape %v, want [..., Hkv, D]", t.Name, t.Shape)
		}
		hkv, w := t.Shape[len(t.Shape)-2], t.Shape[len(t.Shape)-1]
		st, err := d.tensor(sn, true, fmt.Sprintf("[1] (per tensor) or [Hkv, D] = [%d, %d] (per channel) fp32, with an I8 %s", hkv, w, t.Name), 1, 2, 4)
		if err != nil {
			return nil, err
		}
		n := 1
		for _, s := range st.Shape {
			n *= s
		}
		if n != 1 && n != hkv*w {
			return nil, fmt.Errorf("tensor %s: shape %v, want [1] (per tensor) or [Hkv, D] = [%d, %d] (per channel)", sn, st.Shape, hkv, w)
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
		codes := make([]int8, len(t.Data))
		vals := make([]float32, len(t.Data))
		for j, b := range t.Data {
			codes[j] = int8(b)
			vals[j] = num.Round32(in, float32(codes[j])*problem.Int8Scale(scale, j, hkv, w), num.RNE) // ORT: the FP32 product, then T
		}
		nt, err := bundle.NewFloat32(t.Name, bundle.F32, t.Shape, vals)
		if err != nil {
			return nil, err
		}
		f.Tensors[t.Name] = nt
		if i == 0 {
			q.KCodes, q.KScale = codes, scale
		} else {
			q.VCodes, q.VScale = codes, scale
		}
	}
	d.f = &f
	return q, nil
}

// encodeInt8KV writes an INT8-KV problem's caches as I8 codes and its
// scales as F32 [1] or [Hkv, D].
func encodeInt8KV(f *bundle.File, in *problem.Inputs) error {
	q := in.Int8KV
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
		raw := make([]byte, len(codes))
		for j, c := range codes {
			raw[j] = byte(c)
		}
		nt, err := bundle.NewBytes(name, bundle.I8, t.Shape, raw)
		if err != nil {
			return err
		}
		f.Add(nt)
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
	return nil
}

// kvCacheNames are the names of a quantized dense bundle's K and V caches:
// k_cache and v_cache when the bundle is paged, else k and v.
func kvCacheNames(f *bundle.File) (k, v string) {
	if f.Tensors[TKCache] != nil {
		return TKCache, TVCache
	}
	return TK, TV
}
