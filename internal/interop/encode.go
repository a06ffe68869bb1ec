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
	add := func(name string, shape []int, vals []float32, dt bundle.DType) error {
		t, err := bundle.NewFloat32(name, dt, shape, vals)
		if err != nil {
			return err
		}
		f.Add(t)
		return nil
	}
	c, err := codecOf(in.Family)
	if err != nil {
		return nil, err
	}
	m := f.Metadata
	m[KeyVersion] = Version
	m[KeyFamily] = string(in.Family)
	m[KeySoftmaxScale] = strconv.FormatFloat(in.Scale, 'g', -1, 64)
	if err := c.encode(f, in, add); err != nil {
		return nil, err
	}
	if in.Sink != nil {
		if err := add(c.sink, []int{in.H}, in.Sink, bundle.F32); err != nil {
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
		if err := add(c.out, c.oShape(in), o, DType(p.Out)); err != nil {
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
	return mustCodec(in.Family).addLSE(f, in, lse)
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
	return mustCodec(in.Family).describe(in, sink, lse)
}

// ViolationTensor names the tensor of in's bundle a contract violation is
// about, in the family's own tensor names.
func ViolationTensor(in *problem.Inputs, v problem.Violation) string {
	return mustCodec(in.Family).violationTensor(in, v)
}

// sharedViolationTensor names the tensor of a violation in the names the
// sparse family's contract gave them first (the fallback of every
// family's own naming). kv names the key/value tensors of a non-finite
// key.
func sharedViolationTensor(v problem.Violation, kv string) string {
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
		}
		return kv
	}
	return ""
}

// fieldOrShared is fieldViolationTensor, then the shared names (dense, mla
// and combine).
func fieldOrShared(in *problem.Inputs, v problem.Violation) string {
	if t := fieldViolationTensor(in, v); t != "" {
		return t
	}
	return sharedViolationTensor(v, TOriKV+"/"+TCmpKV)
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
