package problem

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
