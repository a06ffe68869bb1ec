package interop

import (
	"fmt"
	"strings"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

// Tensor names of the combine family (flashinfer's merge_states).
const (
	TStates   = "s"
	TVMerged  = "v_merged"
	TSMerged  = "s_merged"
	combineIn = "[n, K, H, D]"
)

// The combine family's bundle form (flashinfer's merge_states): v, s in;
// v_merged, s_merged out; no q.
var _ = registerCodec(&codec{
	encode: encodeCombine,
	sink:   TSink,
	out:    TVMerged,
	oShape: thdOut,
	addLSE: func(f *bundle.File, in *problem.Inputs, lse []float32) error {
		t, err := bundle.NewFloat32(TSMerged, bundle.F32, []int{in.T, in.H}, lse)
		if err != nil {
			return err
		}
		f.Add(t)
		return nil
	},
	describe: func(in *problem.Inputs, _, _ string) string {
		return fmt.Sprintf("combine n=%d H=%d D=%d states=%d %s, %s", in.T, in.H, in.Dv, in.States, in.LSE, in.Format)
	},
	violationTensor: fieldOrShared,
	whole:           (*decoder).combine,
	sniff: func(ts map[string]*bundle.Tensor) bool {
		return ts[TQ] == nil && ts[TStates] != nil
	},
	sniffOrder: 40,
}, problem.Combine)

// combine decodes a state merge: v [n, K, H, D] and s [n, K, H] in, and the
// kernel's v_merged [n, H, D] and s_merged [n, H] (both optional).
func (d *decoder) combine() (*Bundle, error) {
	vt, err := d.tensor(TV, true, combineIn, 4)
	if err != nil {
		return nil, err
	}
	st, err := d.tensor(TStates, true, "[n, K, H]", 3)
	if err != nil {
		return nil, err
	}
	n, k, h, dv := vt.Shape[0], vt.Shape[1], vt.Shape[2], vt.Shape[3]
	if !sameShape(st.Shape, []int{n, k, h}) {
		return nil, fmt.Errorf("tensor s: shape %v, want [n, K, H] = [%d, %d, %d] (from v)", st.Shape, n, k, h)
	}
	mt, err := d.tensor(TVMerged, false, "[n, H, D]", 3)
	if err != nil {
		return nil, err
	}
	defOut := defaultFormat(vt.DType)
	if mt != nil {
		defOut = defaultFormat(mt.DType)
	}
	p, err := ResolveProfile(d.meta, defaultFormat(vt.DType), defOut)
	if err != nil {
		return nil, err
	}
	conv, err := problem.ParseLSEConv(strings.TrimSpace(d.meta[KeyLSEBase]), strings.TrimSpace(d.meta[KeyLSEEmpty]), "", false)
	if err != nil {
		return nil, fmt.Errorf("metadata: %v (the convention of s and s_merged)", err)
	}
	in := &problem.Inputs{Family: problem.Combine, Format: p.In, T: n, H: h, Hkv: h, Dv: dv, States: k, LSE: &conv, Scale: 1}
	if in.CombV, err = d.floats(vt, p.In, "the declared in_dtype"); err != nil {
		return nil, err
	}
	if in.CombS, err = d.floats(st, num.FP32, "s is fp32"); err != nil {
		return nil, err
	}
	if err := in.Check(); err != nil {
		return nil, err
	}
	b := &Bundle{Inputs: in, Profile: p}
	if mt != nil {
		if !sameShape(mt.Shape, []int{n, h, dv}) {
			return nil, fmt.Errorf("tensor v_merged: shape %v, want [n, H, D] = [%d, %d, %d]", mt.Shape, n, h, dv)
		}
		if b.O, err = d.floats(mt, p.Out, "the declared out_dtype"); err != nil {
			return nil, err
		}
	}
	smt, err := d.tensor(TSMerged, false, "[n, H]", 2)
	if err != nil {
		return nil, err
	}
	if smt != nil {
		if !sameShape(smt.Shape, []int{n, h}) {
			return nil, fmt.Errorf("tensor s_merged: shape %v, want [n, H] = [%d, %d]", smt.Shape, n, h)
		}
		if b.LSE, err = smt.Float32s(); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// encodeCombine writes a combine problem's tensors and convention.
func encodeCombine(f *bundle.File, in *problem.Inputs, add func(string, []int, []float32, bundle.DType) error) error {
	if err := add(TV, []int{in.T, in.States, in.H, in.Dv}, in.CombV, DType(in.Format)); err != nil {
		return err
	}
	if err := add(TStates, []int{in.T, in.States, in.H}, in.CombS, bundle.F32); err != nil {
		return err
	}
	for k, v := range lseMeta(*in.LSE) {
		if k != KeyLSESink {
			f.Metadata[k] = v
		}
	}
	return nil
}
