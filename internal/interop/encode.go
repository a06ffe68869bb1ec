package interop

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
)

// DType is the bundle dtype that stores format f.
func DType(f num.Format) bundle.DType {
	switch f {
	case num.BF16:
		return bundle.BF16
	case num.FP16:
		return bundle.F16
	case num.FP64:
		return bundle.F64
	}
	return bundle.F32
}

// Encode writes in as a bundle under the contract's names, with the
// metadata that describes it and declares p (with in_dtype the format
// of in, if p.In differs: a kernel of profile fp32 given bf16 inputs
// sees bf16 inputs). Float inputs are stored in
// in.Format, attn_sink in F32, integers in I32. If o is not nil it is
// stored as the output in p.Out (its values must be representable there).
// Decode(Encode(in, p, o)) gives back in, p and o exactly.
func Encode(in *problem.Inputs, p profile.Profile, o []float32) (*bundle.File, error) {
	if err := in.Check(); err != nil {
		return nil, err
	}
	f := bundle.NewFile()
	dt := DType(in.Format)
	add := func(name string, shape []int, vals []float32, dt bundle.DType) error {
		t, err := bundle.NewFloat32(name, dt, shape, vals)
		if err != nil {
			return err
		}
		f.Add(t)
		return nil
	}
	switch in.Family {
	case problem.Combine:
	case problem.MLA:
		if err := add(TQ, []int{in.B, in.S, in.H, in.D}, in.Q, dt); err != nil {
			return nil, err
		}
	default:
		if err := add(TQ, []int{in.T, in.H, in.D}, in.Q, dt); err != nil {
			return nil, err
		}
	}
	m := f.Metadata
	m[KeyVersion] = Version
	m[KeyFamily] = string(in.Family)
	m[KeySoftmaxScale] = strconv.FormatFloat(in.Scale, 'g', -1, 64)
	switch in.Family {
	case problem.Sparse:
		if err := add(TOriKV, []int{len(in.OriKV) / (in.BS * in.D), in.BS, 1, in.D}, in.OriKV, dt); err != nil {
			return nil, err
		}
		f.Add(bundle.NewInt32(TOriBT, []int{in.B, in.MBori}, in.OriBT))
		if !in.NoCmp {
			if err := add(TCmpKV, []int{len(in.CmpKV) / (in.BS * in.D), in.BS, 1, in.D}, in.CmpKV, dt); err != nil {
				return nil, err
			}
			f.Add(bundle.NewInt32(TCmpBT, []int{in.B, in.MBcmp}, in.CmpBT))
		}
		f.Add(bundle.NewInt32(TIdx, []int{in.T, in.TopK}, in.Idx))
		f.Add(bundle.NewInt32(TSeqused, []int{in.B}, in.Seqused))
		m[KeyWindow] = strconv.Itoa(in.Win)
		m[KeyIndexTopK] = strconv.Itoa(in.TopK - in.Win)
		m[KeyTokensPerBatch] = strconv.Itoa(in.S)
	case problem.Window:
		if err := add(TK, []int{in.T, in.Hkv, in.D}, in.K, dt); err != nil {
			return nil, err
		}
		if err := add(TV, []int{in.T, in.Hkv, in.Dv}, in.V, dt); err != nil {
			return nil, err
		}
		m[KeyWindow] = strconv.Itoa(in.W)
	case problem.Dense:
		if err := encodeDense(f, in, add); err != nil {
			return nil, err
		}
	case problem.Combine:
		if err := encodeCombine(f, in, add); err != nil {
			return nil, err
		}
	case problem.MLA:
		if err := encodeMLA(f, in, add); err != nil {
			return nil, err
		}
	case problem.CSA, problem.HCA, problem.SWA:
		if err := encodePypto(f, in, m, add); err != nil {
			return nil, err
		}
	}
	if in.Sink != nil {
		name := TSink
		if in.Family == problem.Dense {
			name = TLearnedSink
		}
		if err := add(name, []int{in.H}, in.Sink, bundle.F32); err != nil {
			return nil, err
		}
	}
	if p.In != in.Format { // the inputs say what they are stored in
		p.In, p.Name = in.Format, "custom"
	}
	for k, v := range ProfileMeta(p) {
		m[k] = v
	}
	if o != nil {
		if len(o) != in.OutLen() {
			return nil, fmt.Errorf("interop: %d output values, want T·H·Dv = %d", len(o), in.OutLen())
		}
		name := TO
		switch in.Family {
		case problem.Dense, problem.MLA:
			name = TOut
		case problem.Combine:
			name = TVMerged
		}
		shape := []int{in.T, in.H, in.Dv}
		if in.Family == problem.MLA {
			shape = []int{in.B, in.S, in.H, in.Dv}
		}
		if err := add(name, shape, o, DType(p.Out)); err != nil {
			return nil, err
		}
	}
	if err := encodeFP8Dense(f, in); err != nil {
		return nil, err
	}
	if err := encodeInt8KV(f, in); err != nil {
		return nil, err
	}
	if err := encodeNVFP4KV(f, in); err != nil {
		return nil, err
	}
	if err := encodeInt4KV(f, in); err != nil {
		return nil, err
	}
	return f, nil
}

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

func lseMeta(c problem.LSEConv) map[string]string {
	m := map[string]string{KeyLSEBase: "e", KeyLSEEmpty: "-inf", KeyLSESink: "excluded"}
	if c.Base2 {
		m[KeyLSEBase] = "2"
	}
	if c.EmptyPosInf {
		m[KeyLSEEmpty] = "+inf"
	}
	if c.SinkIncluded {
		m[KeyLSESink] = "included"
	}
	return m
}

// AddLSE stores a kernel's lse (rows t·H + h) as softmax_lse [H, total_q],
// FlashAttention's varlen layout (mla: [b, H, s_q]; combine: s_merged
// [n, H]), in F32.
func AddLSE(f *bundle.File, in *problem.Inputs, lse []float32) error {
	if len(lse) != in.T*in.H {
		return fmt.Errorf("interop: %d lse values, want T·H = %d", len(lse), in.T*in.H)
	}
	if in.Family == problem.Combine {
		t, err := bundle.NewFloat32(TSMerged, bundle.F32, []int{in.T, in.H}, lse)
		if err != nil {
			return err
		}
		f.Add(t)
		return nil
	}
	s, shape := -1, []int{in.H, in.T} // FlashAttention's varlen layout
	if in.Family == problem.MLA {
		s, shape = in.S, []int{in.B, in.H, in.S} // FlashMLA's [b, H, s_q]
	}
	v := make([]float32, len(lse))
	for t := 0; t < in.T; t++ {
		for h := 0; h < in.H; h++ {
			v[lseIndex(t, h, in.T, in.H, s)] = lse[t*in.H+h]
		}
	}
	t, err := bundle.NewFloat32(TLSE, bundle.F32, shape, v)
	if err != nil {
		return err
	}
	f.Add(t)
	return nil
}

// Output decodes the output tensor o of f (a worker's reply) for the
// problem in: shape [T, H, Dv], a float dtype, values representable in out.
func Output(f *bundle.File, in *problem.Inputs, out num.Format) ([]float32, error) {
	d := &decoder{f: f, used: map[string]bool{}}
	ot, err := d.tensor(TO, true, "[T, H, Dv]", 3)
	if err != nil {
		return nil, err
	}
	want := []int{in.T, in.H, in.Dv}
	if !sameShape(ot.Shape, want) {
		return nil, fmt.Errorf("tensor o: shape %v, want [T, H, Dv] = %v", ot.Shape, want)
	}
	return d.floats(ot, out, "the declared out_dtype")
}

// Describe is a one-line description of a problem's shape.
func Describe(in *problem.Inputs) string {
	sink := "no sink"
	if in.Sink != nil {
		sink = "sink"
	}
	lse := ""
	if in.LSE != nil {
		lse = ", " + in.LSE.String()
	}
	switch {
	case in.Family == problem.Combine:
		return fmt.Sprintf("combine n=%d H=%d D=%d states=%d %s, %s", in.T, in.H, in.Dv, in.States, in.LSE, in.Format)
	case in.Family == problem.Dense:
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
	case in.Family == problem.MLA:
		kv := "bf16 cache"
		if in.MLAQuant != nil {
			kv = in.MLAQuant.Layout.String() + " cache"
		}
		extra := ""
		if in.ExtraTopK > 0 {
			extra = fmt.Sprintf(" extra topk=%d", in.ExtraTopK)
		}
		return fmt.Sprintf("mla T=%d (B=%d×S=%d) H=%d d_qk=%d d_v=%d topk=%d%s, %s, %s%s, %s",
			in.T, in.B, in.S, in.H, in.D, in.Dv, in.TopK, extra, kv, sink, lse, in.Format)
	case problem.IsPypto(in.Family):
		return fmt.Sprintf("%s T=%d (B=%d×S=%d) H=%d D=%d WIN=%d compressed columns %d (CBS=%d), %s, %s", in.Family, in.T, in.B, in.S, in.H, in.D,
			in.Win, in.PyptoCmpCols(), in.CBS, sink, in.Format)
	case in.Family == problem.Sparse:
		cmp := ""
		if in.NoCmp {
			cmp = ", no cmp pool"
		}
		return fmt.Sprintf("sparse T=%d (B=%d×S=%d) H=%d D=%d WIN=%d TOPK=%d BS=%d%s, %s, %s", in.T, in.B, in.S, in.H, in.D,
			in.Win, in.TopK, in.BS, cmp, sink, in.Format)
	}
	return fmt.Sprintf("window T=%d H=%d Hkv=%d D=%d Dv=%d W=%d, %s, %s", in.T, in.H, in.Hkv, in.D, in.Dv, in.W, sink, in.Format)
}

// ViolationTensor names the tensor of in's bundle a contract violation is
// about, in the family's own tensor names.
func ViolationTensor(in *problem.Inputs, v problem.Violation) string {
	fam := in.Family
	if problem.IsPypto(fam) {
		if t := pyptoViolationTensor(fam, v); t != "" {
			return t
		}
	}
	switch fam {
	case problem.Dense, problem.MLA, problem.Combine:
		if t := fieldViolationTensor(in, v); t != "" {
			return t
		}
	}
	switch v.Name {
	case problem.VNegativeSeqused:
		return TSeqused
	case problem.VPadInPrefix, problem.VWindowSlot, problem.VCmpSlot, problem.VValidAfter:
		return TIdx
	case problem.VBlockTable:
		return TIdx + " → " + TOriBT + "/" + TCmpBT
	case problem.VNonFinite:
		switch {
		case strings.HasPrefix(v.Detail, "q["):
			return TQ
		case strings.HasPrefix(v.Detail, TSink):
			return TSink
		case fam == problem.Window:
			return TK + "/" + TV
		}
		return TOriKV + "/" + TCmpKV
	}
	return ""
}

// fieldViolationTensor names the tensor of a dense, mla or combine
// violation ("" to fall back to the shared names). Where the detail starts
// with the tensor's name (the scale checks, mla's indices) it is that name.
func fieldViolationTensor(in *problem.Inputs, v problem.Violation) string {
	lead := func(names ...string) string {
		for _, n := range names {
			if strings.HasPrefix(v.Detail, n+"[") || strings.HasPrefix(v.Detail, n+" ") {
				return n
			}
		}
		return ""
	}
	switch v.Name {
	case problem.VBlockTable:
		if lead(TCacheSeqlens) != "" {
			return TCacheSeqlens + " / " + TBlockTable
		}
		return TBlockTable
	case problem.VSequsedK:
		return TSequsedK
	case problem.VNVFP4Scale:
		return lead(TKBlockScale, TVBlockScale, TKGlobalScale, TVGlobalScale)
	case problem.VFP8Descale:
		if n := lead(TQDescale, TKDescale, TVDescale); n != "" {
			return n
		}
		return TQDescale + " / " + TKDescale // their product with softmax_scale
	case problem.VIndexRange:
		if lead(TExtraIndices) != "" {
			return TExtraIndices + " → " + TExtraKCache
		}
		return TIndices + " → " + TKCache
	case problem.VNonFinite:
		switch {
		case lead(TQ) != "":
			return TQ
		case lead(TSink) != "":
			return TSink
		case lead(TStates) != "":
			return TStates
		case in.Family == problem.Combine:
			return TV
		case in.Family == problem.MLA && len(in.ExtraCache) > 0:
			return TKCache + "/" + TExtraKCache
		case in.Family == problem.MLA:
			return TKCache
		case in.Paged():
			return TKCache + "/" + TVCache
		}
		return TK + "/" + TV
	}
	return ""
}
