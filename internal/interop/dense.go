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

// The dense family's bundle form (FlashAttention's conventions): q, k, v
// varlen or batch, cu_seqlens, paged caches, the modifiers, and the
// quantized K/V forms; out and softmax_lse in the layout of q.
var _ = registerCodec(&codec{
	encode: func(f *bundle.File, in *problem.Inputs, add adder) error {
		if err := addQ3(in, add); err != nil {
			return err
		}
		return encodeDense(f, in, add)
	},
	sink: TLearnedSink,
	out:  TOut,
	misreadings: func(in *problem.Inputs) []Misreading {
		m := []Misreading{{KeyCausal, strconv.FormatBool(in.WinRight != 0), "causal"}}
		if in.WinLeft > 0 {
			for _, w := range []int{in.WinLeft + 1, in.WinLeft - 1} {
				m = append(m, Misreading{KeyWindowLeft, strconv.Itoa(w), "window_left is W−1 for a W-key window"})
			}
		}
		return m
	},
	oShape:          thdOut,
	addLSE:          addVarlenLSE,
	describe:        describeDense,
	violationTensor: fieldOrShared,
	qDims:           "[B, Sq, H, D] or [total_q, H, D]",
	qRanks:          []int{3, 4},
	shapeQ:          (*decoder).denseQ,
	body: func(d *decoder, in *problem.Inputs, p profile.Profile, qt *bundle.Tensor, batch, sq int) (err error) {
		if in.Int4KV, err = d.int4KV(p.In, in.D); err != nil { // int4kv.go: packed U8 INT4 caches dequantized first
			return err
		}
		if in.Int4KV == nil {
			if in.Int8KV, err = d.int8KV(p.In); err != nil { // int8kv.go: I8 caches dequantized first
				return err
			}
		}
		if in.NVFP4KV, err = d.nvfp4KV(p.In); err != nil { // nvfp4kv.go: packed U8 caches dequantized first
			return err
		}
		if err = d.dense(in, p, batch, sq); err == nil {
			err = d.denseFP8(in, qt)
		}
		return err
	},
	sinkIn: func(d *decoder) string {
		if d.f.Tensors[TLearnedSink] != nil {
			return TLearnedSink
		}
		return TSink
	},
	outputs: (*decoder).denseOutputs,
	sniff: func(ts map[string]*bundle.Tensor) bool {
		q := ts[TQ]
		return (q != nil && len(q.Shape) == 4) || ts[TCuQ] != nil
	},
	sniffOrder: 30,
	layout:     true,
	unstated: func(_ *bundle.File, has func(string) bool) error {
		if !has(KeyCausal) {
			return fmt.Errorf("metadata causal is missing: true (bottom-right aligned) or false; give it, or pass --assume-defaults to judge it non-causal")
		}
		return nil
	},
}, problem.Dense)

// encodeDense adds the dense family's tensors in the varlen layout
// (q [total_q, H, D] with cu_seqlens, which holds any batch layout) and
// its metadata: windows, softcap, ALiBi and the lse convention, explicitly.
func encodeDense(f *bundle.File, in *problem.Inputs, add func(string, []int, []float32, bundle.DType) error) error {
	dt := DType(in.Format)
	if in.Paged() {
		if err := encodePaged(f, in, add); err != nil {
			return err
		}
	} else {
		tk := int(in.CuK[len(in.CuK)-1])
		if err := add(TK, []int{tk, in.Hkv, in.D}, in.K, dt); err != nil {
			return err
		}
		if err := add(TV, []int{tk, in.Hkv, in.Dv}, in.V, dt); err != nil {
			return err
		}
		f.Add(bundle.NewInt32(TCuQ, []int{len(in.CuQ)}, in.CuQ))
		f.Add(bundle.NewInt32(TCuK, []int{len(in.CuK)}, in.CuK))
	}
	if in.Paged() {
		f.Add(bundle.NewInt32(TCuQ, []int{len(in.CuQ)}, in.CuQ))
	}
	if in.SequsedK != nil {
		f.Add(bundle.NewInt32(TSequsedK, []int{len(in.SequsedK)}, in.SequsedK))
	}
	m := f.Metadata
	m[KeyCausal] = "false"
	m[KeyWindowLeft] = strconv.Itoa(in.WinLeft)
	m[KeyWindowRight] = strconv.Itoa(in.WinRight)
	if in.Softcap > 0 {
		m[KeySoftcap] = strconv.FormatFloat(in.Softcap, 'g', -1, 64)
	}
	if in.Alibi != nil {
		if err := add(TAlibi, []int{in.H}, in.Alibi, bundle.F32); err != nil {
			return err
		}
		m[KeyAlibiForm] = string(in.AlibiForm)
	}
	if c := in.LSE; c != nil {
		for k, v := range lseMeta(*c) {
			m[k] = v
		}
	}
	return nil
}

func describeDense(in *problem.Inputs, sink, lse string) string {
	layout := fmt.Sprintf("%d sequences", len(in.CuQ)-1)
	if in.Paged() {
		layout += fmt.Sprintf(", paged KV (page %d, %d pages)", in.Page, in.Pages())
	}
	if in.SequsedK != nil {
		layout += ", seqused_k"
	}
	switch {
	case in.FP8 != nil:
		layout += ", FP8 e4m3 q/k/v with descales"
		if in.FP8.PE4M3 {
			layout += ", P e4m3"
		}
		if in.FP8.AccBits > 0 {
			layout += fmt.Sprintf(", acc_bits %d", in.FP8.AccBits)
		}
	case in.Int8KV != nil:
		scales := "per-tensor"
		if len(in.Int8KV.KScale) > 1 {
			scales = "per-channel"
		}
		layout += ", INT8 K/V (" + scales + " scales)"
	case in.NVFP4KV != nil:
		layout += ", NVFP4 K/V (e2m1 codes, e4m3 scales per 16, FP32 global scales)"
	case in.Int4KV != nil:
		scales := "per-tensor"
		if len(in.Int4KV.KScale) > 1 {
			scales = "per-channel"
		}
		layout += ", INT4 K/V (two codes a byte, +8 bias, " + scales + " scales)"
	}
	alibi := "no alibi"
	if in.Alibi != nil {
		alibi = "alibi " + string(in.AlibiForm)
		if in.AlibiForm == "" {
			alibi += string(problem.AlibiAbs)
		}
	}
	return fmt.Sprintf("dense T=%d in %s, H=%d Hkv=%d D=%d Dv=%d window (%d, %d), softcap %g, %s, %s%s, %s",
		in.T, layout, in.H, in.Hkv, in.D, in.Dv, in.WinLeft, in.WinRight, in.Softcap, alibi, sink, lse, in.Format)
}

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
