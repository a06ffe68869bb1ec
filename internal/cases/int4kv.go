package cases

import (
	"fmt"

	"github.com/attnvet/attnvet/internal/problem"
)

// INT4 KV cases (int4_kv: per_tensor | per_channel), ONNX Runtime's
// GroupQueryAttention convention for kv_cache_bit_width 4
// (problem.DenseInt4KV): the drawn K and V are quantized by
// problem.Inputs.QuantizeInt4KV (amax/7 symmetric scales rounded to the
// storage format, codes packed two a byte with the +8 bias; attnvet export
// --quantize calls the same function); K and V become T(code·scale).
func (c Case) validateInt4KV() error {
	switch c.Int4KV {
	case "":
		return nil
	case "per_tensor", "per_channel":
	default:
		return fmt.Errorf("int4_kv %q: want per_tensor or per_channel", c.Int4KV)
	}
	if c.Family != problem.Dense || c.FP8 != "" || c.Int8KV != "" || c.NVFP4KV {
		return fmt.Errorf("int4_kv is a dense field, not with fp8, int8_kv or nvfp4_kv")
	}
	if c.Poison || len(c.Specials) > 0 {
		return fmt.Errorf("int4_kv: poison and specials are not supported (the cache holds int4 codes)")
	}
	if c.D%2 != 0 || c.dv()%2 != 0 {
		return fmt.Errorf("int4_kv needs even d and dv (two codes a byte; got d=%d, dv=%d)", c.D, c.dv())
	}
	return nil
}

func (c Case) int4KV(in *problem.Inputs) error {
	return in.QuantizeInt4KV(c.Int4KV == "per_channel")
}
