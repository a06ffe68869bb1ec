package interop

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
)

// Tensor and metadata names of the dense family (FlashAttention's).
const (
	TCuQ         = "cu_seqlens_q"
	TCuK         = "cu_seqlens_k"
	TOut         = "out"
	TLSE         = "softmax_lse"
	TAlibi       = "alibi_slopes"
	TLearnedSink = "learnable_sink"

	KeyCausal      = "causal"
	KeyWindowLeft  = "window_left"
	KeyWindowRight = "window_right"
	KeySoftcap     = "softcap"
	KeyAlibiForm   = "alibi_form"
	KeyLSEBase     = "lse_base"
	KeyLSEEmpty    = "lse_empty"
	KeyLSESink     = "lse_sink"
)

// DenseKeys are the dense family's problem keys.
var DenseKeys = []string{KeyLayout, KeyCausal, KeyWindowLeft, KeyWindowRight, KeySoftcap, KeyAlibiForm, KeyLSEBase, KeyLSEEmpty, KeyLSESink}

// denseQ reads q in the batch layout [B, Sq, H, D] or varlen [total_q, H, D].
func (d *decoder) denseQ(in *problem.Inputs, qt *bundle.Tensor) (batch, sq int) {
	if len(qt.Shape) == 4 {
		batch, sq = qt.Shape[0], qt.Shape[1]
		in.T, in.H, in.D = batch*sq, qt.Shape[2], qt.Shape[3]
		return batch, sq
	}
	in.T, in.H, in.D = qt.Shape[0], qt.Shape[1], qt.Shape[2]
	return -1, -1
}

// dense decodes k, v, the sequence boundaries and the modifiers. batch and
// sq are q's batch layout (−1: varlen, cu_seqlens_q gives the sequences).
func (d *decoder) dense(in *problem.Inputs, p profile.Profile, batch, sq int) error {
	if ok, err := d.densePaged(in, p, batch, sq); ok || err != nil {
		if err != nil {
			return err
		}
		return d.denseMods(in)
	}
	layout := "[B, Sk, Hkv, D]"
	ranks := []int{4}
	if batch < 0 {
		layout, ranks = "[total_k, Hkv, D]", []int{3}
	}
	kt, err := d.tensor(TK, true, layout, ranks...)
	if err != nil {
		return err
	}
	vt, err := d.tensor(TV, true, strings.Replace(layout, "D]", "Dv]", 1), ranks...)
	if err != nil {
		return err
	}
	r := len(kt.Shape)
	if kt.Shape[r-1] != in.D || kt.Shape[r-2] < 1 {
		return fmt.Errorf("tensor k: shape %v, want %s with D = %d (from q)", kt.Shape, layout, in.D)
	}
	if !sameShape(vt.Shape[:r-1], kt.Shape[:r-1]) || vt.Shape[r-1] < 1 {
		return fmt.Errorf("tensor v: shape %v, want %s matching k %v", vt.Shape, strings.Replace(layout, "D]", "Dv]", 1), kt.Shape)
	}
	in.Hkv, in.Dv = kt.Shape[r-2], vt.Shape[r-1]
	if in.H%in.Hkv != 0 {
		return fmt.Errorf("tensor k: %d KV heads do not divide q's %d heads", in.Hkv, in.H)
	}
	if batch >= 0 {
		if kt.Shape[0] != batch {
			return fmt.Errorf("tensor k: shape %v, want batch %d (from q [B, Sq, H, D])", kt.Shape, batch)
		}
		sk := kt.Shape[1]
		in.CuQ, in.CuK = make([]int32, batch+1), make([]int32, batch+1)
		for b := 0; b < batch; b++ {
			in.CuQ[b+1], in.CuK[b+1] = in.CuQ[b]+int32(sq), in.CuK[b]+int32(sk)
		}
	} else {
		for _, name := range []string{TCuQ, TCuK} {
			t, err := d.tensor(name, true, "[B+1] int32 prefix sums", 1)
			if err != nil {
				return fmt.Errorf("%v (q is varlen [total_q, H, D])", err)
			}
			v, err := d.ints(t)
			if err != nil {
				return err
			}
			if name == TCuQ {
				in.CuQ = v
			} else {
				in.CuK = v
			}
		}
		if len(in.CuK) > 0 && int(in.CuK[len(in.CuK)-1]) != kt.Shape[0] {
			return fmt.Errorf("tensor cu_seqlens_k ends at %d, but k holds %d keys", in.CuK[len(in.CuK)-1], kt.Shape[0])
		}
	}
	why := "the declared in_dtype"
	if in.K, err = d.floats(kt, p.In, why); err != nil {
		return err
	}
	if in.V, err = d.floats(vt, p.In, why); err != nil {
		return err
	}
	if in.SequsedK, err = d.perSeq(TSequsedK, len(in.CuQ)-1); err != nil {
		return err
	}
	return d.denseMods(in)
}

// denseMods decodes the windows, causal, softcap and ALiBi.
func (d *decoder) denseMods(in *problem.Inputs) error {
	var err error
	if in.WinLeft, _, err = d.intMeta(KeyWindowLeft, -1, -1); err != nil {
		return err
	}
	if in.WinRight, _, err = d.intMeta(KeyWindowRight, -1, -1); err != nil {
		return err
	}
	if s, ok := d.meta[KeyCausal]; ok {
		c, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return metaErr(KeyCausal, "%q, want true or false", s)
		}
		if c {
			in.WinRight = 0 // FlashAttention's API: causal sets the right window to 0
		}
	}
	if s, ok := d.meta[KeySoftcap]; ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return metaErr(KeySoftcap, "%q, want a finite number ≥ 0 (0 = off)", s)
		}
		in.Softcap = v
	}
	at, err := d.tensor(TAlibi, false, "[H]", 1)
	if err != nil {
		return err
	}
	if at != nil {
		if at.Shape[0] != in.H {
			return fmt.Errorf("tensor alibi_slopes: shape %v, want [H] = [%d]", at.Shape, in.H)
		}
		if in.Alibi, err = d.floats(at, num.FP32, "alibi_slopes are fp32"); err != nil {
			return err
		}
		if in.AlibiForm, err = problem.ParseAlibiForm(strings.TrimSpace(d.meta[KeyAlibiForm])); err != nil {
			return metaErr(KeyAlibiForm, "%v", err)
		}
	}
	return nil
}

// denseOutputs decodes out ([B, Sq, H, Dv] or [total_q, H, Dv]) and
// softmax_lse ([B, H, Sq] or [H, total_q]) into b, and the lse convention.
func (d *decoder) denseOutputs(b *Bundle, p profile.Profile, batch, sq int) error {
	in := b.Inputs
	ot, err := d.tensor(TOut, false, "[B, Sq, H, Dv] or [total_q, H, Dv]", 3, 4)
	if err != nil {
		return err
	}
	if ot != nil {
		want := []int{in.T, in.H, in.Dv}
		if batch >= 0 {
			want = []int{batch, sq, in.H, in.Dv}
		}
		if !sameShape(ot.Shape, want) {
			return fmt.Errorf("tensor out: shape %v, want %v (the layout of q)", ot.Shape, want)
		}
		if b.O, err = d.floats(ot, p.Out, "the declared out_dtype"); err != nil {
			return err
		}
	}
	lt, err := d.tensor(TLSE, false, "[B, H, Sq] or [H, total_q]", 2, 3)
	if err != nil || (lt == nil && !d.requested("lse")) {
		return err
	}
	sink := strings.TrimSpace(d.meta[KeyLSESink])
	if sink == "" && d.f.Tensors[TLearnedSink] != nil {
		sink = "included" // FA4's learnable_sink is inside the lse (CONTRACTS.md)
	}
	conv, err := problem.ParseLSEConv(strings.TrimSpace(d.meta[KeyLSEBase]), strings.TrimSpace(d.meta[KeyLSEEmpty]), sink, in.Sink != nil)
	if err != nil {
		return fmt.Errorf("metadata: %v", err)
	}
	in.LSE = &conv
	if lt == nil { // a worker request: lse is asked for, not given
		return nil
	}
	want := []int{in.H, in.T}
	if batch >= 0 {
		want = []int{batch, in.H, sq}
	}
	if !sameShape(lt.Shape, want) {
		return fmt.Errorf("tensor softmax_lse: shape %v, want %v (the layout of q)", lt.Shape, want)
	}
	v, err := lt.Float32s()
	if err != nil {
		return err
	}
	b.LSE = lseRows(v, in.T, in.H, sq)
	return nil
}

// lseIndex is where row (t, h) of T tokens and H heads sits in a
// softmax_lse tensor: [B, H, S] for sequences of s queries (the batch
// layout, FlashMLA's), [H, T] for s < 0 (FlashAttention's varlen).
func lseIndex(t, h, nt, nh, s int) int {
	if s < 0 {
		return h*nt + t
	}
	return (t/s*nh+h)*s + t%s
}

// lseRows reorders a softmax_lse tensor to rows t·H + h.
func lseRows(v []float32, nt, nh, s int) []float32 {
	out := make([]float32, nt*nh)
	for t := 0; t < nt; t++ {
		for h := 0; h < nh; h++ {
			out[t*nh+h] = v[lseIndex(t, h, nt, nh, s)]
		}
	}
	return out
}
