package cases

import (
	"fmt"
	"math"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

// INT8 KV cases (int8_kv: per_tensor | per_channel), ONNX Runtime's
// GroupQueryAttention convention (problem.DenseInt8KV): the drawn K and V
// are quantized symmetrically, scale = amax/127 over the tensor or over each
// (KV head, column) channel, rounded to the storage format (ORT's scales are
// attention-dtype values), codes = clamp(rint(x/scale), −128, 127) as ORT's
// QuantizeKernel does; K and V become T(code·scale).
func (c Case) validateInt8KV() error {
	switch c.Int8KV {
	case "":
		return nil
	case "per_tensor", "per_channel":
	default:
		return fmt.Errorf("int8_kv %q: want per_tensor or per_channel", c.Int8KV)
	}
	if c.Family != problem.Dense || c.FP8 != "" {
		return fmt.Errorf("int8_kv is a dense field, not with fp8")
	}
	if c.Poison || len(c.Specials) > 0 {
		return fmt.Errorf("int8_kv: poison and specials are not supported (the cache holds int8 codes)")
	}
	return nil
}

func (c Case) int8KV(in *problem.Inputs) {
	q := &problem.DenseInt8KV{}
	perChannel := c.Int8KV == "per_channel"
	q.KCodes, q.KScale = quantizeInt8(in.K, in.Hkv, in.D, perChannel, in.Format)
	q.VCodes, q.VScale = quantizeInt8(in.V, in.Hkv, in.Dv, perChannel, in.Format)
	in.Int8KV = q
}

// quantizeInt8 quantizes x ([rows][hkv][w]) in place into T(code·scale).
func quantizeInt8(x []float32, hkv, w int, perChannel bool, f num.Format) ([]int8, []float32) {
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
		s := float64(problem.Int8Scale(scale, i, hkv, w))
		k := math.Max(-128, math.Min(127, math.RoundToEven(float64(v)/s)))
		codes[i] = int8(k)
		x[i] = num.Round32(f, float32(codes[i])*float32(s), num.RNE) // ORT: the FP32 product, then T (code 0 is +0)
	}
	return codes, scale
}
