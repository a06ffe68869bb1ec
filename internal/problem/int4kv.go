package problem

import (
	"fmt"
	"math"

	"github.com/attnvet/attnvet/internal/num"
)

// DenseInt4KV is a dense problem whose K and V caches are INT4 codes with
// FP32 scales, ONNX Runtime's GroupQueryAttention convention for
// kv_cache_bit_width = 4 (ORT contrib_ops/cuda/bert/group_query_attention_qdq.cuh,
// DequantizeKernel and QuantizeKernel; docs/kernels.md §12): symmetric
// signed codes q in [−8, 7], two a byte, stored with a +8 bias as
// byte = (q[2i]+8) | (q[2i+1]+8)<<4 (the even element in the low nibble),
// and x̂ = T(FP32(q·scale)) with PER_TENSOR (scale[0]) or PER_CHANNEL
// (scale[kv_head·D + column]) scales, dequantized into the attention dtype
// T before the kernel runs. As for DenseInt8KV the problem's K and V are
// the dequantized values, so the reference is the attention of the
// dequantized cache and the bound gains no term.
//
// attnvet models even head sizes only: ORT's GroupQueryAttention entry
// check wants head_size % 8 == 0, so an odd head (whose last byte ORT pads
// with a zero code) never reaches the cache.
type DenseInt4KV struct {
	KCodes, VCodes []uint8   // packed, as K and V with the last dimension halved: [rows][Hkv][D/2], [rows][Hkv][Dv/2]
	KScale, VScale []float32 // [1] (per tensor) or [Hkv·D], [Hkv·Dv] (per channel)
}

// Int4Bias is ORT's nibble bias: a stored nibble n holds the code n − 8.
const Int4Bias = 8

// Int4Code is element e's signed code in packed bytes (low nibble first).
func Int4Code(packed []uint8, e int) int {
	b := packed[e/2]
	if e%2 == 1 {
		b >>= 4
	}
	return int(b&0xf) - Int4Bias
}

// DequantInt4KV writes x̂ = T(FP32(code·scale)) of packed codes into dst
// (len 2·len(packed)), the cache being [rows][hkv][w] with scales s (per
// tensor when len(s) == 1); f is T.
func DequantInt4KV(dst []float32, packed []uint8, s []float32, hkv, w int, f num.Format) error {
	if len(dst) != 2*len(packed) {
		return fmt.Errorf("INT4: %d packed bytes for %d values", len(packed), len(dst))
	}
	for e := range dst {
		dst[e] = num.Round32(f, float32(Int4Code(packed, e))*Int8Scale(s, e, hkv, w), num.RNE) // ORT: the FP32 product, then T
	}
	return nil
}

// checkInt4 checks the INT4 caches' sizes against K and V (after
// checkDense has checked K and V against the shape).
func (in *Inputs) checkInt4() error {
	q := in.Int4KV
	if q == nil {
		return nil
	}
	if in.Family != Dense {
		return fmt.Errorf("INT4 K/V caches are dense-family inputs (family %s)", in.Family)
	}
	if in.FP8 != nil || in.Int8KV != nil || in.NVFP4KV != nil {
		return fmt.Errorf("INT4 K/V caches with FP8, INT8 or NVFP4 inputs")
	}
	if in.D%2 != 0 || in.Dv%2 != 0 {
		return fmt.Errorf("INT4 K/V caches need even D and Dv (got D=%d, Dv=%d): two codes a byte", in.D, in.Dv)
	}
	for _, c := range []struct {
		name  string
		codes []uint8
		scale []float32
		n, w  int
	}{{"k", q.KCodes, q.KScale, len(in.K), in.D}, {"v", q.VCodes, q.VScale, len(in.V), in.Dv}} {
		if err := wantLen(c.name+" (packed int4 codes)", len(c.codes), c.n/2); err != nil {
			return err
		}
		if len(c.scale) != 1 {
			if err := wantLen(c.name+"_scale", len(c.scale), in.Hkv*c.w); err != nil {
				return err
			}
		}
	}
	return nil
}

// QuantizeInt4KV quantizes in's dense K and V in place, ONNX Runtime's
// GroupQueryAttention convention for INT4 (the case field int4_kv and
// attnvet export --quantize call this one function): symmetric, scale =
// amax/7 over the tensor or over each (KV head, column) channel (ORT's
// gqa_test_helper compute_scale: amax/qmax), rounded to in.Format as the
// INT8 path's scales are; codes = clamp(rint(x/scale), −8, 7) as ORT's
// QuantizeKernel does, packed with the +8 bias, the even element low; K and
// V become T(code·scale). D and Dv must be even.
func (in *Inputs) QuantizeInt4KV(perChannel bool) error {
	if in.D%2 != 0 || in.Dv%2 != 0 {
		return fmt.Errorf("int4: D=%d and Dv=%d must be even (two codes a byte; ORT wants head_size %% 8 == 0)", in.D, in.Dv)
	}
	q := &DenseInt4KV{}
	q.KCodes, q.KScale = QuantizeInt4(in.K, in.Hkv, in.D, perChannel, in.Format)
	q.VCodes, q.VScale = QuantizeInt4(in.V, in.Hkv, in.Dv, perChannel, in.Format)
	in.Int4KV = q
	return nil
}

// QuantizeInt4 quantizes x ([rows][hkv][w], w even) in place into
// T(code·scale) and returns the packed codes and the scales.
func QuantizeInt4(x []float32, hkv, w int, perChannel bool, f num.Format) ([]uint8, []float32) {
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
		s := num.Round64(f, a/7, num.RNE)
		if !(s > 0) || math.IsInf(s, 0) {
			s = 1 // an all-zero channel: ORT's test helper's 1.0
		}
		// As for INT8: keep the extreme code (−8) finite near the top of
		// the format's range (an exact power-of-two division).
		s = math.Min(s, num.MaxFinite(f)/8)
		scale[i] = float32(s)
	}
	packed := make([]uint8, len(x)/2)
	for i, v := range x {
		s := float64(Int8Scale(scale, i, hkv, w))
		k := int(math.Max(-8, math.Min(7, math.RoundToEven(float64(v)/s))))
		packed[i/2] |= uint8(k+Int4Bias) << (4 * (i % 2))
		x[i] = num.Round32(f, float32(k)*float32(s), num.RNE)
	}
	return packed, scale
}
