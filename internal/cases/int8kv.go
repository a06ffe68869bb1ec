package cases

import (
	"fmt"
	"github.com/attnvet/attnvet/internal/problem"
)

// INT8 KV cases (int8_kv: per_tensor | per_channel), ONNX Runtime's
// GroupQueryAttention convention (problem.DenseInt8KV): the drawn K and V
// are quantized by problem.Inputs.QuantizeInt8KV (amax-based symmetric
// scales rounded to the storage format; attnvet export --quantize calls
// the same function); K and V become T(code·scale).
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
	in.QuantizeInt8KV(c.Int8KV == "per_channel")
}
