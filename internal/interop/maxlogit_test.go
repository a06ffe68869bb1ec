package interop

import (
	"strings"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

// TestMaxLogitsBundle: an mla bundle's max_logits round-trips with its
// base; the tensor without max_logit_base, or of the wrong shape, is
// refused naming what is wrong; [s_q, H] is FlashMLA prefill's form for
// b = 1.
func TestMaxLogitsBundle(t *testing.T) {
	k, _ := impl.Lookup("tiled/bc16/bf16")
	for _, b := range []int{1, 2} {
		c := cases.Case{Family: problem.MLA, Seed: 4, H: 3, D: 8, B: b, S: 2, TopK: 9, BlockSize: 3, Invalid: 0.3,
			MaxLogit: &cases.MaxLogitSpec{Base: "2"}}
		in, err := cases.Generate(c, num.BF16)
		if err != nil {
			t.Fatal(err)
		}
		out, err := k.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Encode(in, k.Profile(), out.O)
		if err != nil {
			t.Fatal(err)
		}
		if err := AddMaxLogit(f, in, out.MaxLogit); err != nil {
			t.Fatal(err)
		}
		got := reparse(t, f)
		if got.Inputs.MaxLogit == nil || !got.Inputs.MaxLogit.Base2 || !sameBits(got.MaxLogit, out.MaxLogit) {
			t.Fatalf("b=%d: max_logits after the round trip: %v %v, want %v", b, got.Inputs.MaxLogit, got.MaxLogit, out.MaxLogit)
		}
		if b == 1 { // [s_q, H]
			t2, _ := bundle.NewFloat32(TMaxLogits, bundle.F32, []int{in.S, in.H}, out.MaxLogit)
			f.Add(t2)
			if g := reparse(t, f); !sameBits(g.MaxLogit, out.MaxLogit) {
				t.Errorf("[s_q, H] max_logits: %v", g.MaxLogit)
			}
		}
		delete(f.Metadata, KeyMaxLogitBase)
		if _, err := Decode(f, nil); err == nil || !strings.Contains(err.Error(), "max_logit_base") {
			t.Errorf("b=%d: max_logits without max_logit_base: %v", b, err)
		}
		f.Metadata[KeyMaxLogitBase] = "e"
		t3, _ := bundle.NewFloat32(TMaxLogits, bundle.F32, []int{in.T * in.H}, out.MaxLogit)
		f.Add(t3)
		if _, err := Decode(f, nil); err == nil || !strings.Contains(err.Error(), "max_logits") {
			t.Errorf("b=%d: max_logits of rank 1: %v", b, err)
		}
	}
}
