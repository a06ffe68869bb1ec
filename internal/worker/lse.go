package worker

import (
	"fmt"
	"math"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/problem"
)

// TLSE is the reply tensor of a case with an lse output: [T, H], row
// t·H + h, fp32 values in the convention the request's metadata declares
// (lse_base, lse_empty, lse_sink).
const TLSE = "lse"

// lseBytes is the room the row outputs (lse, max_logit) add to the reply
// limit: [T, H] in F64 each.
func lseBytes(in *problem.Inputs) int64 {
	if in.LSE == nil && in.MaxLogit == nil {
		return 0
	}
	n := int64(in.T) * int64(in.H)
	if n < 0 || n > math.MaxInt64/16 {
		return math.MaxInt64 / 2
	}
	if in.LSE != nil && in.MaxLogit != nil {
		return 16 * n // lse and max_logit
	}
	return 8 * n
}

// replyLSE reads the reply's lse: nil when the case has no lse output or
// the reply carries none (then every lse row fails, a missing output).
// An lse of the wrong shape or dtype, or values fp32 cannot hold, is a
// malformed reply.
func replyLSE(f *bundle.File, in *problem.Inputs) ([]float32, error) {
	if in.LSE == nil {
		return nil, nil
	}
	return replyRows(f, in, TLSE)
}

// replyRows reads a [T, H] fp32 row output of the reply (nil if absent).
func replyRows(f *bundle.File, in *problem.Inputs, name string) ([]float32, error) {
	t := f.Tensors[name]
	if t == nil {
		return nil, nil
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if len(t.Shape) != 2 || t.Shape[0] != in.T || t.Shape[1] != in.H {
		return nil, fmt.Errorf("tensor %s: shape %v, want [T, H] = [%d, %d]", name, t.Shape, in.T, in.H)
	}
	if !t.DType.IsFloat() {
		return nil, fmt.Errorf("tensor %s: dtype %s, want a float dtype holding fp32 values", name, t.DType)
	}
	v, err := t.Float64s()
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(v))
	for i, x := range v {
		if y := float32(x); float64(y) == x || x != x {
			out[i] = y
			continue
		}
		return nil, fmt.Errorf("tensor %s: value %v at row %d is not an fp32 value", name, x, i)
	}
	return out, nil
}

// KeyOutputs (run request metadata) lists the outputs the reply must
// carry: "o", or "o,lse" when the case has an lse output (its convention
// in the request's lse_base, lse_empty and lse_sink).
const KeyOutputs = interop.KeyOutputs

// declareOutputs sets the request's KeyOutputs.
func declareOutputs(f *bundle.File, in *problem.Inputs) {
	f.Metadata[KeyOutputs] = "o"
	if in.LSE != nil {
		f.Metadata[KeyOutputs] = "o," + TLSE
	}
	declareMaxLogit(f, in)
}
