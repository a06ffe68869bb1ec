package interop

import (
	"fmt"
	"strconv"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
)

// The sparse family's bundle form: q [T, H, D], the paged pools ori_kv and
// cmp_kv [NB, BS, 1, D] with their block tables, cmp_sparse_indices and
// seqused_kv; o [T, H, D].
var _ = registerCodec(&codec{
	encode:   encodeSparse,
	sink:     TSink,
	out:      TO,
	oShape:   thdOut,
	addLSE:   addVarlenLSE,
	describe: describeSparse,
	violationTensor: func(_ *problem.Inputs, v problem.Violation) string {
		return sharedViolationTensor(v, TOriKV+"/"+TCmpKV)
	},
	qDims:  thdQDims,
	qRanks: []int{3},
	shapeQ: thdQ,
	body: func(d *decoder, in *problem.Inputs, p profile.Profile, _ *bundle.Tensor, _, _ int) error {
		return d.sparse(in, p)
	},
	sinkIn: sinkTensor,
	sniff: func(ts map[string]*bundle.Tensor) bool {
		_, sp := ts[TOriKV]
		_, wk := ts[TK]
		return sp && !wk
	},
	sniffOrder: 50,
}, problem.Sparse)

func encodeSparse(f *bundle.File, in *problem.Inputs, add adder) error {
	dt := DType(in.Format)
	if err := addQ3(in, add); err != nil {
		return err
	}
	if err := add(TOriKV, []int{len(in.OriKV) / (in.BS * in.D), in.BS, 1, in.D}, in.OriKV, dt); err != nil {
		return err
	}
	f.Add(bundle.NewInt32(TOriBT, []int{in.B, in.MBori}, in.OriBT))
	if !in.NoCmp {
		if err := add(TCmpKV, []int{len(in.CmpKV) / (in.BS * in.D), in.BS, 1, in.D}, in.CmpKV, dt); err != nil {
			return err
		}
		f.Add(bundle.NewInt32(TCmpBT, []int{in.B, in.MBcmp}, in.CmpBT))
	}
	f.Add(bundle.NewInt32(TIdx, []int{in.T, in.TopK}, in.Idx))
	f.Add(bundle.NewInt32(TSeqused, []int{in.B}, in.Seqused))
	m := f.Metadata
	m[KeyWindow] = strconv.Itoa(in.Win)
	m[KeyIndexTopK] = strconv.Itoa(in.TopK - in.Win)
	m[KeyTokensPerBatch] = strconv.Itoa(in.S)
	return nil
}

func describeSparse(in *problem.Inputs, sink, _ string) string {
	cmp := ""
	if in.NoCmp {
		cmp = ", no cmp pool"
	}
	return fmt.Sprintf("sparse T=%d (B=%d×S=%d) H=%d D=%d WIN=%d TOPK=%d BS=%d%s, %s, %s", in.T, in.B, in.S, in.H, in.D,
		in.Win, in.TopK, in.BS, cmp, sink, in.Format)
}

func (d *decoder) sparse(in *problem.Inputs, p profile.Profile) error {
	in.Hkv, in.Dv = 1, in.D
	ot, err := d.tensor(TOriKV, true, "[NB, BS, 1, D]", 4, 3)
	if err != nil {
		return err
	}
	if in.OriKV, in.BS, err = d.pool(ot, in.D, p); err != nil {
		return err
	}
	obt, err := d.tensor(TOriBT, true, "[B, MB_ori]", 2)
	if err != nil {
		return err
	}
	if in.OriBT, err = d.ints(obt); err != nil {
		return err
	}
	in.B, in.MBori = obt.Shape[0], obt.Shape[1]
	ct, err := d.tensor(TCmpKV, false, "[NB, BS, 1, D]", 4, 3)
	if err != nil {
		return err
	}
	cbt, err := d.tensor(TCmpBT, false, "[B, MB_cmp]", 2)
	if err != nil {
		return err
	}
	switch {
	case ct == nil && cbt == nil:
		in.NoCmp = true
	case ct == nil:
		return fmt.Errorf("tensor cmp_kv: missing while cmp_block_table is present (give both or neither)")
	case cbt == nil:
		return fmt.Errorf("tensor cmp_block_table: missing while cmp_kv is present (give both or neither)")
	default:
		var bs int
		if in.CmpKV, bs, err = d.pool(ct, in.D, p); err != nil {
			return err
		}
		if bs != in.BS {
			return fmt.Errorf("tensor cmp_kv: block size %d differs from ori_kv's %d", bs, in.BS)
		}
		if cbt.Shape[0] != in.B {
			return fmt.Errorf("tensor cmp_block_table: shape %v has %d rows, ori_block_table has B=%d", cbt.Shape, cbt.Shape[0], in.B)
		}
		in.MBcmp = cbt.Shape[1]
		if in.CmpBT, err = d.ints(cbt); err != nil {
			return err
		}
	}
	it, err := d.tensor(TIdx, true, "[T, TOPK]", 2)
	if err != nil {
		return err
	}
	if it.Shape[0] != in.T {
		return fmt.Errorf("tensor cmp_sparse_indices: shape %v has %d rows, q has T=%d tokens", it.Shape, it.Shape[0], in.T)
	}
	in.TopK = it.Shape[1]
	if in.Idx, err = d.ints(it); err != nil {
		return err
	}
	sq, err := d.tensor(TSeqused, true, "[B]", 1)
	if err != nil {
		return err
	}
	if sq.Shape[0] != in.B {
		return fmt.Errorf("tensor seqused_kv: shape %v, want [B] = [%d] (ori_block_table has B=%d rows)", sq.Shape, in.B, in.B)
	}
	if in.Seqused, err = d.ints(sq); err != nil {
		return err
	}
	s, _, err := d.intMeta(KeyTokensPerBatch, 1, 1)
	if err != nil {
		return err
	}
	in.S = s
	if bs, ok := mulFits(in.B, in.S); !ok || in.T != bs {
		return fmt.Errorf("tensor q: T=%d tokens, want B·tokens_per_batch = %d·%d = %s (B from ori_block_table)", in.T, in.B, in.S, fmtProduct(bs, ok))
	}
	topk, hasTopk, err := d.intMeta(KeyIndexTopK, 0, 0)
	if err != nil {
		return err
	}
	win, hasWin, err := d.intMeta(KeyWindow, 0, 0)
	if err != nil {
		return err
	}
	switch {
	case hasTopk && hasWin && win+topk != in.TopK:
		return metaErr(KeyIndexTopK, "window %d + index_topk %d ≠ TOPK = %d (cmp_sparse_indices has %d columns)", win, topk, in.TopK, in.TopK)
	case hasTopk:
		win = in.TopK - topk
		if win < 0 {
			return metaErr(KeyIndexTopK, "%d exceeds TOPK = %d (the columns of cmp_sparse_indices)", topk, in.TopK)
		}
	case hasWin:
		if win > in.TopK {
			return metaErr(KeyWindow, "%d exceeds TOPK = %d (the columns of cmp_sparse_indices)", win, in.TopK)
		}
	default:
		return metaErr(KeyIndexTopK, "missing: the sparse family needs index_topk (or window): WIN = TOPK − index_topk")
	}
	in.Win = win
	return nil
}
