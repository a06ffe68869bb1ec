package interop

import (
	"fmt"
	"strconv"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
)

// The window family's bundle form: q, k, v [T, H(kv), D] and the window W
// (metadata window); o [T, H, Dv].
var _ = registerCodec(&codec{
	encode:   encodeWindow,
	sink:     TSink,
	out:      TO,
	oShape:   thdOut,
	addLSE:   addVarlenLSE,
	describe: describeWindow,
	violationTensor: func(_ *problem.Inputs, v problem.Violation) string {
		return sharedViolationTensor(v, TK+"/"+TV)
	},
	qDims:  thdQDims,
	qRanks: []int{3},
	shapeQ: thdQ,
	body: func(d *decoder, in *problem.Inputs, p profile.Profile, _ *bundle.Tensor, _, _ int) error {
		return d.window(in, p)
	},
	sinkIn:      sinkTensor,
	foreignKeys: []string{KeyIndexTopK, KeyTokensPerBatch},
	sniff: func(ts map[string]*bundle.Tensor) bool {
		_, sp := ts[TOriKV]
		_, wk := ts[TK]
		return wk && !sp
	},
	sniffOrder: 51,
	layout:     true,
	oneSeq:     true,
	misreadings: func(in *problem.Inputs) (m []Misreading) {
		for _, w := range []int{in.W + 1, in.W - 1, 0} {
			if w >= 0 && w != in.W {
				m = append(m, Misreading{KeyWindow, strconv.Itoa(w), "the window counts keys differently"})
			}
		}
		return m
	},
	unstated: func(_ *bundle.File, has func(string) bool) error {
		if !has(KeyWindow) {
			return fmt.Errorf("metadata window is missing: the window W in keys per query, counting the current key (0 = full causal); give it, or pass --assume-defaults to judge full causal")
		}
		return nil
	},
}, problem.Window)

func encodeWindow(f *bundle.File, in *problem.Inputs, add adder) error {
	dt := DType(in.Format)
	if err := addQ3(in, add); err != nil {
		return err
	}
	if err := add(TK, []int{in.T, in.Hkv, in.D}, in.K, dt); err != nil {
		return err
	}
	if err := add(TV, []int{in.T, in.Hkv, in.Dv}, in.V, dt); err != nil {
		return err
	}
	f.Metadata[KeyWindow] = strconv.Itoa(in.W)
	return nil
}

func describeWindow(in *problem.Inputs, sink, _ string) string {
	return fmt.Sprintf("window T=%d H=%d Hkv=%d D=%d Dv=%d W=%d, %s, %s", in.T, in.H, in.Hkv, in.D, in.Dv, in.W, sink, in.Format)
}

func (d *decoder) window(in *problem.Inputs, p profile.Profile) error {
	kt, err := d.tensor(TK, true, "[T, Hkv, D]", 3)
	if err != nil {
		return err
	}
	vt, err := d.tensor(TV, true, "[T, Hkv, Dv]", 3)
	if err != nil {
		return err
	}
	if kt.Shape[0] != in.T || kt.Shape[2] != in.D || kt.Shape[1] < 1 {
		return fmt.Errorf("tensor k: shape %v, want [T, Hkv, D] = [%d, Hkv, %d] (from q)", kt.Shape, in.T, in.D)
	}
	in.Hkv = kt.Shape[1]
	if vt.Shape[0] != in.T || vt.Shape[1] != in.Hkv || vt.Shape[2] < 1 {
		return fmt.Errorf("tensor v: shape %v, want [T, Hkv, Dv] = [%d, %d, Dv] (from q and k)", vt.Shape, in.T, in.Hkv)
	}
	in.Dv = vt.Shape[2]
	if in.H%in.Hkv != 0 {
		return fmt.Errorf("tensor k: %d KV heads do not divide q's %d heads", in.Hkv, in.H)
	}
	why := "the declared in_dtype"
	if in.K, err = d.floats(kt, p.In, why); err != nil {
		return err
	}
	if in.V, err = d.floats(vt, p.In, why); err != nil {
		return err
	}
	w, _, err := d.intMeta(KeyWindow, 0, 0)
	if err != nil {
		return err
	}
	in.W = w
	return nil
}
