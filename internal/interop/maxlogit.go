package interop

import (
	"fmt"
	"strings"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/problem"
)

// The max_logit output (FlashMLA's max_logits: max_j x_j per row, natural
// units, −∞ for a row with no key).
const (
	TMaxLogits      = "max_logits"
	KeyMaxLogitBase = "max_logit_base"
)

// KeyOutputs, in a worker request (docs/worker.md), lists the outputs the
// reply must carry ("o", "o,lse", "o,lse,max_logit"). A request holds no
// output tensor, so this is what declares the lse and max_logit outputs
// when a worker decodes its request with Decode.
const KeyOutputs = "outputs"

// requested reports whether the metadata's KeyOutputs lists output name.
func (d *decoder) requested(name string) bool {
	for _, s := range strings.Split(d.meta[KeyOutputs], ",") {
		if strings.TrimSpace(s) == name {
			return true
		}
	}
	return false
}

// MaxLogitKeys are the metadata keys of the max_logit output.
var MaxLogitKeys = []string{KeyMaxLogitBase}

// mlaMaxLogits decodes max_logits [b, s_q, H] (or FlashMLA prefill's
// [s_q, H] when b = 1) and its convention, max_logit_base (required with
// the tensor).
func (d *decoder) mlaMaxLogits(b *Bundle, batch, sq int) error {
	in := b.Inputs
	t, err := d.tensor(TMaxLogits, false, "[b, s_q, H] or [s_q, H]", 2, 3)
	if err != nil || (t == nil && !d.requested("max_logit")) {
		return err
	}
	conv, err := problem.ParseMaxLogitConv(strings.TrimSpace(d.meta[KeyMaxLogitBase]))
	if err != nil {
		return fmt.Errorf("metadata: %v", err)
	}
	in.MaxLogit = &conv
	if t == nil { // a worker request: max_logit is asked for, not given
		return nil
	}
	want := []int{batch, sq, in.H}
	if len(t.Shape) == 2 {
		if batch != 1 {
			return fmt.Errorf("tensor max_logits: shape %v, want [b, s_q, H] = %v ([s_q, H] only when b = 1)", t.Shape, want)
		}
		want = want[1:]
	}
	if !sameShape(t.Shape, want) {
		return fmt.Errorf("tensor max_logits: shape %v, want %v", t.Shape, want)
	}
	if !t.DType.IsFloat() {
		return fmt.Errorf("tensor max_logits: dtype %s, want a float dtype holding fp32 values", t.DType)
	}
	if b.MaxLogit, err = t.Float32s(); err != nil {
		return err
	}
	return nil
}

// maxLogitMeta sets the convention's metadata when in declares a
// max_logit output.
func maxLogitMeta(f *bundle.File, in *problem.Inputs) {
	if c := in.MaxLogit; c != nil {
		f.Metadata[KeyMaxLogitBase] = "e"
		if c.Base2 {
			f.Metadata[KeyMaxLogitBase] = "2"
		}
	}
}

// AddMaxLogit stores a kernel's max_logit (rows t·H + h) as max_logits
// [b, s_q, H] in F32 (the mla family; the rows are already in that order).
func AddMaxLogit(f *bundle.File, in *problem.Inputs, v []float32) error {
	if in.Family != problem.MLA {
		return fmt.Errorf("interop: the %s family's bundles carry no max_logits (mla only)", in.Family)
	}
	if len(v) != in.T*in.H {
		return fmt.Errorf("interop: %d max_logit values, want T·H = %d", len(v), in.T*in.H)
	}
	t, err := bundle.NewFloat32(TMaxLogits, bundle.F32, []int{in.B, in.S, in.H}, v)
	if err != nil {
		return err
	}
	f.Add(t)
	return nil
}
