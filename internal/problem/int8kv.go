package problem

import (
	"math"

	"github.com/attnvet/attnvet/internal/num"
)

// DenseInt8KV is a dense problem whose K and V caches are INT8 codes with
// FP32 scales, ONNX Runtime's GroupQueryAttention convention (ORT
// contrib_ops/cuda/bert/group_query_attention_qdq.cuh, DequantizeKernel):
// symmetric, x̂ = T(FP32(code·scale)), with PER_TENSOR (scale[0]) or
// PER_CHANNEL (scale[kv_head·D + column]) scales, dequantized into the
// attention dtype T before the kernel runs. The problem's K and V are those
// dequantized values (a deterministic function of the stored bytes, like
// FlashMLA's dequant=bf16, so no bound term): the reference
// is the attention of the dequantized cache, and the kernel is an ordinary
// dense kernel on it; a kernel that dequantizes otherwise computes another
// problem and fails.
type DenseInt8KV struct {
	KCodes, VCodes []int8    // as K and V: [rows][Hkv][D], [rows][Hkv][Dv]
	KScale, VScale []float32 // [1] (per tensor) or [Hkv·D], [Hkv·Dv] (per channel)
}

// Int8Scale is the scale of element i of a [rows][Hkv][w] cache under
// scales s (per tensor when len(s) == 1, else per channel).
func Int8Scale(s []float32, i, hkv, w int) float32 {
	if len(s) == 1 {
		return s[0]
	}
	return s[i%(hkv*w)]
}

// QuantizeInt8KV quantizes in's dense K and V in place, ONNX Runtime's
// GroupQueryAttention convention (the case field int8_kv and attnvet
// export --quantize call this one function): symmetric, scale =
// amax/127 over the tensor or over each (KV head, column) channel,
// rounded to in.Format (ORT's scales are attention-dtype values), codes =
// clamp(rint(x/scale), −128, 127) as ORT's QuantizeKernel does; K and V
// become T(code·scale). Deterministic: the scales are amax-based.
func (in *Inputs) QuantizeInt8KV(perChannel bool) {
	q := &DenseInt8KV{}
	q.KCodes, q.KScale = QuantizeInt8(in.K, in.Hkv, in.D, perChannel, in.Format)
	q.VCodes, q.VScale = QuantizeInt8(in.V, in.Hkv, in.Dv, perChannel, in.Format)
	in.Int8KV = q
}

// QuantizeInt8 quantizes x ([rows][hkv][w]) in place into T(code·scale)
// and returns the codes and scales.
func QuantizeInt8(x []float32, hkv, w int, perChannel bool, f num.Format) ([]int8, []float32) {
	n := 1
	if perChannel {
		n = hkv * w
	}
	amax := make([]float64, n)
	for i, v := range x {
		amax[i%n] = math.Max(amax[i%n], math.Abs(float64(v)))
	}
	scale := make([]float32, n)
	for i, a := range amax {
		s := num.Round64(f, a/127, num.RNE)
		if !(s > 0) || math.IsInf(s, 0) {
			s = 1
		}
		// Near the top of the format's range ORT's scale dequantizes the
		// extreme codes (127 after rounding up, −128) to ±Inf: a non-finite
		// cache, outside the contract. The cap keeps 128·scale finite (a
		// power-of-two division of the largest finite value: exact in f);
		// the codes then clamp. Below it nothing changes.
		s = math.Min(s, num.MaxFinite(f)/128)
		scale[i] = float32(s)
	}
	codes := make([]int8, len(x))
	for i, v := range x {
		s := float64(Int8Scale(scale, i, hkv, w))
		k := math.Max(-128, math.Min(127, math.RoundToEven(float64(v)/s)))
		codes[i] = int8(k)
		x[i] = num.Round32(f, float32(codes[i])*float32(s), num.RNE) // ORT: the FP32 product, then T (code 0 is +0)
	}
	return codes, scale
}
