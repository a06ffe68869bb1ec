package interop

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
)

// Tensor and metadata names of the csa, hca and swa families (pypto-lib's
// DeepSeek-V4 decode kernels, SPEC-pypto-today.md). q, ori_kv, cmp_kv,
// cmp_block_table, cmp_sparse_indices (hca), attn_sink and the judged
// output o [T, H, D] share the sparse family's names.
const (
	TWindowSwaIndices = "window_swa_indices" // csa, hca: [T, WIN]
	TSwaIndices       = "swa_indices"        // swa: [T, WIN]
	TSwaLens          = "swa_lens"           // swa: [T]
	TSparseBias       = "sparse_bias"        // swa: [T, 128] FP32, built from swa_lens by the callers
	TOriKVFlat        = "ori_kv_flat"        // swa: [NB·BS, D], ori_kv's rows
	TIdxTopK          = "idx_topk"           // csa: [T, ≥ index_topk]
	TPositionIDs      = "position_ids"       // csa: [T, 1] (or [T])

	KeyCompressRatio = "compress_ratio"
)

// PyptoKeys are the metadata keys only the pypto families read.
var PyptoKeys = []string{KeyCompressRatio}

// pyptoNotJudged are the kernels' other tensors: the inverse RoPE and
// output projection inputs and the fused output attn_out, which a harness
// may dump beside o. They are recognised and left unjudged.
var pyptoNotJudged = []string{"attn_out", "freqs_cos", "freqs_sin", "wo_a", "wo_b", "wo_b_scale", "slot_mapping"}

// The csa, hca and swa families' bundle form (pypto-lib's kernels); only
// csa has a semantics key to state (index_topk).
var (
	_ = registerCodec(pyptoCodec(nil, 20, func(ts map[string]*bundle.Tensor) bool { return ts[TSwaIndices] != nil }), problem.SWA)
	_ = registerCodec(pyptoCodec(nil, 22, func(ts map[string]*bundle.Tensor) bool { return ts[TWindowSwaIndices] != nil }), problem.HCA)
	_ = registerCodec(pyptoCodec(func(f *bundle.File, has func(string) bool) error {
		if it := f.Tensors[TIdxTopK]; it != nil && len(it.Shape) == 2 && !has(KeyIndexTopK) {
			return fmt.Errorf("metadata index_topk is missing: how many leading columns of idx_topk the kernel reads (IDX_TOPK, 1024 in Pro and 512 in Flash; idx_topk has %d); give it, or pass --assume-defaults for all %d", it.Shape[1], it.Shape[1])
		}
		return nil
	}, 21, func(ts map[string]*bundle.Tensor) bool {
		return ts[TWindowSwaIndices] != nil && ts[TIdxTopK] != nil
	}), problem.CSA)
)

// pyptoCodec is the codec of one pypto family: its unstated keys and how
// its tensors are recognised (swa's indices, then csa's idx_topk, then hca).
func pyptoCodec(unstated func(*bundle.File, func(string) bool) error, order int, sniff func(map[string]*bundle.Tensor) bool) *codec {
	return &codec{
		encode: func(f *bundle.File, in *problem.Inputs, add adder) error {
			if err := addQ3(in, add); err != nil {
				return err
			}
			return encodePypto(f, in, f.Metadata, add)
		},
		sink:   TSink,
		out:    TO,
		oShape: thdOut,
		addLSE: addVarlenLSE,
		describe: func(in *problem.Inputs, sink, _ string) string {
			return fmt.Sprintf("%s T=%d (B=%d×S=%d) H=%d D=%d WIN=%d compressed columns %d (CBS=%d), %s, %s", in.Family, in.T, in.B, in.S, in.H, in.D,
				in.Win, in.PyptoCmpCols(), in.CBS, sink, in.Format)
		},
		violationTensor: func(in *problem.Inputs, v problem.Violation) string {
			if t := pyptoViolationTensor(in.Family, v); t != "" {
				return t
			}
			return sharedViolationTensor(v, TOriKV+"/"+TCmpKV)
		},
		qDims:  thdQDims,
		qRanks: []int{3},
		shapeQ: thdQ,
		body: func(d *decoder, in *problem.Inputs, p profile.Profile, _ *bundle.Tensor, _, _ int) error {
			return d.pypto(in, p)
		},
		sinkIn:     sinkTensor,
		unstated:   unstated,
		sniff:      sniff,
		sniffOrder: order,
	}
}

// pypto decodes q [T, H, D], ori_kv [NB, BS, 1, D] (swa: or ori_kv_flat
// [rows, D]), the window indices, swa_lens (or sparse_bias) for swa,
// cmp_kv [NB_cmp, CBS, 1, D] with cmp_block_table [B, MB] and idx_topk +
// position_ids (csa) or cmp_sparse_indices (hca).
func (d *decoder) pypto(in *problem.Inputs, p profile.Profile) error {
	in.Hkv, in.Dv = 1, in.D
	for _, n := range pyptoNotJudged {
		if d.f.Tensors[n] != nil {
			d.used[n] = true
		}
	}
	name := TOriKV
	if in.Family == problem.SWA && d.f.Tensors[TOriKV] == nil {
		name = TOriKVFlat
	}
	ot, err := d.tensor(name, true, "[NB, BS, 1, D]", 4, 3, 2)
	if err != nil {
		return err
	}
	if len(ot.Shape) == 2 {
		if ot.Shape[1] != in.D {
			return fmt.Errorf("tensor %s: shape %v, last dimension must be q's D = %d", name, ot.Shape, in.D)
		}
		in.BS = 1
		if in.OriKV, err = d.floats(ot, p.In, "the declared in_dtype"); err != nil {
			return err
		}
	} else if in.OriKV, in.BS, err = d.pool(ot, in.D, p); err != nil {
		return err
	}
	win := TWindowSwaIndices
	if in.Family == problem.SWA {
		win = TSwaIndices
	}
	if in.Win, in.WinIdx, err = d.tokenRows(win, "[T, WIN]", in.T); err != nil {
		return err
	}
	if in.Family == problem.SWA {
		in.B, in.S, in.Idx, in.CmpBT, in.CBS = 1, in.T, []int32{}, []int32{}, 1
		if s, ok, err := d.intMeta(KeyTokensPerBatch, 1, 1); err != nil {
			return err
		} else if ok {
			if in.T%s != 0 {
				return metaErr(KeyTokensPerBatch, "%d does not divide q's T = %d", s, in.T)
			}
			in.B, in.S = in.T/s, s
		}
		return d.swaLens(in)
	}
	ct, err := d.tensor(TCmpKV, true, "[NB_cmp, CBS, 1, D]", 4, 3)
	if err != nil {
		return err
	}
	if in.CmpKV, in.CBS, err = d.pool(ct, in.D, p); err != nil {
		return err
	}
	bt, err := d.tensor(TCmpBT, true, "[B, MB]", 2)
	if err != nil {
		return err
	}
	if in.CmpBT, err = d.ints(bt); err != nil {
		return err
	}
	in.B, in.MBcmp = bt.Shape[0], bt.Shape[1]
	if in.B < 1 || in.T%in.B != 0 {
		return fmt.Errorf("tensor cmp_block_table: %d rows (B) do not divide q's T = %d tokens (T = B·S)", in.B, in.T)
	}
	in.S = in.T / in.B
	if s, ok, err := d.intMeta(KeyTokensPerBatch, in.S, 1); err != nil {
		return err
	} else if ok && s != in.S {
		return metaErr(KeyTokensPerBatch, "%d, but q has T = %d tokens and cmp_block_table B = %d rows (S = T/B = %d)", s, in.T, in.B, in.S)
	}
	in.Ratio = problem.PyptoDefaultRatio(in.Family)
	if r, _, err := d.intMeta(KeyCompressRatio, in.Ratio, 1); err != nil {
		return err
	} else {
		in.Ratio = r
	}
	idx := TIdx
	if in.Family == problem.CSA {
		idx = TIdxTopK
	}
	if in.TopK, in.Idx, err = d.tokenRows(idx, "[T, TOPK]", in.T); err != nil {
		return err
	}
	if in.Family == problem.HCA {
		return nil
	}
	k, _, err := d.intMeta(KeyIndexTopK, in.TopK, 0)
	if err != nil {
		return err
	}
	if k > in.TopK {
		return metaErr(KeyIndexTopK, "%d, but idx_topk has only %d columns", k, in.TopK)
	}
	in.IdxTopK = k
	pt, err := d.tensor(TPositionIDs, true, "[T, 1]", 2, 1)
	if err != nil {
		return err
	}
	if pt.Shape[0] != in.T || (len(pt.Shape) == 2 && pt.Shape[1] != 1) {
		return fmt.Errorf("tensor position_ids: shape %v, want [T, 1] = [%d, 1]", pt.Shape, in.T)
	}
	in.Pos, err = d.ints(pt)
	return err
}

// swaLens reads swa_lens [T], or derives it from sparse_bias [T, ≥ WIN]
// (0 on the first swa_lens[t] columns, −1e20 after them); with both, they
// must agree.
func (d *decoder) swaLens(in *problem.Inputs) error {
	lt, err := d.tensor(TSwaLens, false, "[T]", 1, 2)
	if err != nil {
		return err
	}
	if lt != nil {
		if lt.Shape[0] != in.T || (len(lt.Shape) == 2 && lt.Shape[1] != 1) {
			return fmt.Errorf("tensor swa_lens: shape %v, want [T] = [%d]", lt.Shape, in.T)
		}
		if in.SwaLens, err = d.ints(lt); err != nil {
			return err
		}
	}
	bt, err := d.tensor(TSparseBias, lt == nil, "[T, 128] (or give swa_lens [T])", 2)
	if err != nil || bt == nil {
		return err
	}
	if bt.Shape[0] != in.T || bt.Shape[1] < in.Win {
		return fmt.Errorf("tensor sparse_bias: shape %v, want [T, ≥ WIN] = [%d, ≥ %d]", bt.Shape, in.T, in.Win)
	}
	v, err := bt.Float32s()
	if err != nil {
		return err
	}
	w := bt.Shape[1]
	lens := make([]int32, in.T)
	for t := range in.T {
		row := v[t*w : (t+1)*w]
		n := 0
		for n < w && row[n] == 0 {
			n++
		}
		for k := n; k < w; k++ {
			if !(row[k] <= -1e19) {
				return fmt.Errorf("tensor sparse_bias: row %d is not 0 on a prefix and ≤ −1e19 after it (column %d = %v after %d zeros): the swa family's mask is a length", t, k, row[k], n)
			}
		}
		lens[t] = int32(min(n, in.Win))
		if in.SwaLens != nil && lens[t] != in.SwaLens[t] {
			return fmt.Errorf("tensor sparse_bias: row %d has %d valid columns, swa_lens[%d] = %d", t, n, t, in.SwaLens[t])
		}
	}
	if in.SwaLens == nil {
		in.SwaLens = lens
	}
	return nil
}

// encodePypto writes the pypto tensors under the kernels' names.
func encodePypto(f *bundle.File, in *problem.Inputs, m map[string]string, add func(string, []int, []float32, bundle.DType) error) error {
	dt := DType(in.Format)
	if err := add(TOriKV, []int{len(in.OriKV) / (in.BS * in.D), in.BS, 1, in.D}, in.OriKV, dt); err != nil {
		return err
	}
	m[KeyTokensPerBatch] = strconv.Itoa(in.S)
	if in.Family == problem.SWA {
		f.Add(bundle.NewInt32(TSwaIndices, []int{in.T, in.Win}, in.WinIdx))
		f.Add(bundle.NewInt32(TSwaLens, []int{in.T}, in.SwaLens))
		return nil
	}
	f.Add(bundle.NewInt32(TWindowSwaIndices, []int{in.T, in.Win}, in.WinIdx))
	if err := add(TCmpKV, []int{len(in.CmpKV) / (in.CBS * in.D), in.CBS, 1, in.D}, in.CmpKV, dt); err != nil {
		return err
	}
	f.Add(bundle.NewInt32(TCmpBT, []int{in.B, in.MBcmp}, in.CmpBT))
	m[KeyCompressRatio] = strconv.Itoa(in.Ratio)
	if in.Family == problem.HCA {
		f.Add(bundle.NewInt32(TIdx, []int{in.T, in.TopK}, in.Idx))
		return nil
	}
	f.Add(bundle.NewInt32(TIdxTopK, []int{in.T, in.TopK}, in.Idx))
	f.Add(bundle.NewInt32(TPositionIDs, []int{in.T, 1}, in.Pos))
	m[KeyIndexTopK] = strconv.Itoa(in.IdxTopK)
	return nil
}

// pyptoViolationTensor names the tensor a pypto violation is about ("" to
// fall back to the shared names).
func pyptoViolationTensor(fam problem.Family, v problem.Violation) string {
	win := TWindowSwaIndices
	if fam == problem.SWA {
		win = TSwaIndices
	}
	cmp := TIdx
	if fam == problem.CSA {
		cmp = TIdxTopK
	}
	switch v.Name {
	case problem.VPadInPrefix:
		return win + " / " + TSwaLens
	case problem.VIndexRange, problem.VWindowRun:
		return win + " → " + TOriKV
	case problem.VSwaLens:
		return TSwaLens
	case problem.VNegativePosition:
		return TPositionIDs
	case problem.VBlockTable:
		return cmp + " → " + TCmpBT
	case problem.VNonFinite:
		if !strings.HasPrefix(v.Detail, "q[") && !strings.HasPrefix(v.Detail, TSink) {
			return TOriKV + "/" + TCmpKV
		}
	}
	return ""
}

// tokenRows reads the required int tensor name of shape [T, cols], one row
// per query token: its column count and values.
func (d *decoder) tokenRows(name, shape string, t int) (cols int, vals []int32, err error) {
	x, err := d.tensor(name, true, shape, 2)
	if err != nil {
		return 0, nil, err
	}
	if x.Shape[0] != t {
		return 0, nil, fmt.Errorf("tensor %s: shape %v has %d rows, q has T=%d tokens", name, x.Shape, x.Shape[0], t)
	}
	vals, err = d.ints(x)
	return x.Shape[1], vals, err
}
