package interop

import (
	"fmt"
	"strings"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
)

// Tensor and metadata names of the mla family (FlashMLA's sparse decode).
const (
	TKCache          = "k_cache"
	TIndices         = "indices"
	TTopkLength      = "topk_length"
	TExtraKCache     = "extra_k_cache"
	TExtraIndices    = "extra_indices"
	TExtraTopkLength = "extra_topk_length"

	KeyDV = "d_v"
)

// MLAKeys are the mla family's own metadata keys.
var MLAKeys = []string{KeyDV}

// mlaDefaultDV is FlashMLA's d_v (CONTRACTS.md: the default).
const mlaDefaultDV = 512

// The mla family's bundle form (FlashMLA's sparse decode): q [b, s_q, H,
// d_qk], k_cache pages, indices (and the extra scope); out [b, s_q, H,
// d_v], softmax_lse [b, H, s_q], max_logits.
var _ = registerCodec(&codec{
	encode: func(f *bundle.File, in *problem.Inputs, add adder) error {
		if err := add(TQ, []int{in.B, in.S, in.H, in.D}, in.Q, DType(in.Format)); err != nil {
			return err
		}
		return encodeMLA(f, in, add)
	},
	sink:   TSink,
	out:    TOut,
	oShape: func(in *problem.Inputs) []int { return []int{in.B, in.S, in.H, in.Dv} },
	addLSE: func(f *bundle.File, in *problem.Inputs, lse []float32) error {
		return addLSETensor(f, in, lse, in.S, []int{in.B, in.H, in.S}) // FlashMLA's [b, H, s_q]
	},
	describe:        describeMLA,
	violationTensor: fieldOrShared,
	qDims:           "[b, s_q, H, d_qk]",
	qRanks:          []int{4},
	shapeQ: func(_ *decoder, in *problem.Inputs, qt *bundle.Tensor) (batch, sq int) {
		batch, sq, in.H, in.D = qt.Shape[0], qt.Shape[1], qt.Shape[2], qt.Shape[3]
		in.T = batch * sq
		return batch, sq
	},
	body: func(d *decoder, in *problem.Inputs, p profile.Profile, qt *bundle.Tensor, _, _ int) error {
		_, _, err := d.mla(in, p, qt)
		return err
	},
	sniff: func(ts map[string]*bundle.Tensor) bool {
		return ts[TKCache] != nil && ts[TIndices] != nil
	},
	sniffOrder: 10,
	sinkIn:     sinkTensor,
	outputs: func(d *decoder, b *Bundle, p profile.Profile, batch, sq int) error {
		if err := d.mlaOutputs(b, p, batch, sq); err != nil {
			return err
		}
		return d.mlaMaxLogits(b, batch, sq)
	},
	unstated: func(f *bundle.File, has func(string) bool) error {
		if q := f.Tensors[TQ]; q != nil && len(q.Shape) == 4 && !has(KeyDV) && q.Shape[3] != 512 && q.Shape[3] != 576 {
			return fmt.Errorf("metadata d_v is missing: the width of V, the first d_v columns of each cache row (d_qk is %d); give it, or pass --assume-defaults for min(512, d_qk)", q.Shape[3])
		}
		return nil
	},
}, problem.MLA)

func describeMLA(in *problem.Inputs, sink, lse string) string {
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
}

// mla decodes q [b, s_q, H, d_qk], the BF16 cache pages [NB, pbs, 1, d_qk]
// (or [NB, pbs, d_qk]), indices [b, s_q, topk], the optional topk_length
// and extra scope; then out [b, s_q, H, d_v] and softmax_lse [b, H, s_q].
func (d *decoder) mla(in *problem.Inputs, p profile.Profile, qt *bundle.Tensor) (batch, sq int, err error) {
	batch, sq = qt.Shape[0], qt.Shape[1]
	in.B, in.S, in.T, in.H, in.D, in.Hkv = batch, sq, batch*sq, qt.Shape[2], qt.Shape[3], 1
	dv, _, err := d.intMeta(KeyDV, min(mlaDefaultDV, in.D), 1)
	if err != nil {
		return 0, 0, err
	}
	if dv > in.D {
		return 0, 0, metaErr(KeyDV, "%d is wider than d_qk = %d (V is the first d_v columns of K)", dv, in.D)
	}
	in.Dv = dv
	layout, dq, fp8, err := d.mlaLayout()
	if err != nil {
		return 0, 0, err
	}
	if fp8 {
		in.MLAQuant = &problem.MLAQuant{Layout: layout, Dequant: dq}
	}
	read := func(cacheName, idxName, lenName string) (cache []float32, idx []int32, topk int, lens []int32, err error) {
		ct, err := d.tensor(cacheName, cacheName == TKCache, "[NB, page_block_size, 1, d_qk]", 3, 4)
		if err != nil || ct == nil {
			return nil, nil, 0, nil, err
		}
		if fp8 {
			raw, pbs, rows, err := d.fp8Cache(ct, layout, dq, in.D, p.In)
			if err != nil {
				return nil, nil, 0, nil, err
			}
			if cacheName == TKCache {
				in.MLAQuant.Raw, in.MLAQuant.PBS = raw, pbs
			} else {
				in.MLAQuant.ExtraRaw, in.MLAQuant.ExtraPBS = raw, pbs
			}
			cache = rows
		} else if ct.Shape[len(ct.Shape)-1] != in.D || (len(ct.Shape) == 4 && ct.Shape[2] != 1) {
			return nil, nil, 0, nil, fmt.Errorf("tensor %s: shape %v, want [NB, page_block_size, 1, %d] (one KV head, d_qk from q)", cacheName, ct.Shape, in.D)
		} else if cache, err = d.floats(ct, p.In, "the declared in_dtype"); err != nil {
			return nil, nil, 0, nil, err
		}
		it, err := d.tensor(idxName, true, "[b, s_q, topk]", 3)
		if err != nil {
			return nil, nil, 0, nil, err
		}
		if it.Shape[0] != batch || it.Shape[1] != sq {
			return nil, nil, 0, nil, fmt.Errorf("tensor %s: shape %v, want [b, s_q, topk] = [%d, %d, topk] (from q)", idxName, it.Shape, batch, sq)
		}
		if idx, err = d.ints(it); err != nil {
			return nil, nil, 0, nil, err
		}
		lt, err := d.tensor(lenName, false, "[b]", 1)
		if err != nil {
			return nil, nil, 0, nil, err
		}
		if lt != nil {
			if lt.Shape[0] != batch {
				return nil, nil, 0, nil, fmt.Errorf("tensor %s: shape %v, want [b] = [%d]", lenName, lt.Shape, batch)
			}
			if lens, err = d.ints(lt); err != nil {
				return nil, nil, 0, nil, err
			}
		}
		return cache, idx, it.Shape[2], lens, nil
	}
	if in.Cache, in.Idx, in.TopK, in.TopkLen, err = read(TKCache, TIndices, TTopkLength); err != nil {
		return 0, 0, err
	}
	if in.ExtraCache, in.ExtraIdx, in.ExtraTopK, in.ExtraTopkLen, err = read(TExtraKCache, TExtraIndices, TExtraTopkLength); err != nil {
		return 0, 0, err
	}
	if in.ExtraIdx == nil {
		in.ExtraIdx = []int32{}
	}
	return batch, sq, nil
}

// mlaOutputs decodes out [b, s_q, H, d_v] and softmax_lse [b, H, s_q].
func (d *decoder) mlaOutputs(b *Bundle, p profile.Profile, batch, sq int) error {
	in := b.Inputs
	ot, err := d.tensor(TOut, false, "[b, s_q, H, d_v]", 4)
	if err != nil {
		return err
	}
	if ot != nil {
		if want := []int{batch, sq, in.H, in.Dv}; !sameShape(ot.Shape, want) {
			return fmt.Errorf("tensor out: shape %v, want [b, s_q, H, d_v] = %v", ot.Shape, want)
		}
		if b.O, err = d.floats(ot, p.Out, "the declared out_dtype"); err != nil {
			return err
		}
	}
	lt, err := d.tensor(TLSE, false, "[b, H, s_q]", 3)
	if err != nil || (lt == nil && !d.requested("lse")) {
		return err
	}
	conv, err := problem.ParseLSEConv(strings.TrimSpace(d.meta[KeyLSEBase]), strings.TrimSpace(d.meta[KeyLSEEmpty]),
		strings.TrimSpace(d.meta[KeyLSESink]), in.Sink != nil)
	if err != nil {
		return fmt.Errorf("metadata: %v", err)
	}
	in.LSE = &conv
	if lt == nil { // a worker request: lse is asked for, not given
		return nil
	}
	if want := []int{batch, in.H, sq}; !sameShape(lt.Shape, want) {
		return fmt.Errorf("tensor softmax_lse: shape %v, want [b, H, s_q] = %v", lt.Shape, want)
	}
	v, err := lt.Float32s()
	if err != nil {
		return err
	}
	b.LSE = lseRows(v, in.T, in.H, sq)
	return nil
}

// encodeMLA writes the mla tensors (pages of one row each: [rows, 1, 1, d_qk]).
func encodeMLA(f *bundle.File, in *problem.Inputs, add func(string, []int, []float32, bundle.DType) error) error {
	dt := DType(in.Format)
	scope := func(cache []float32, idx []int32, topk int, lens []int32, cn, in_, ln string) error {
		if q := in.MLAQuant; q != nil {
			if err := encodeFP8(f, q, cn == TExtraKCache); err != nil {
				return err
			}
		} else if err := add(cn, []int{len(cache) / in.D, 1, 1, in.D}, cache, dt); err != nil {
			return err
		}
		f.Add(bundle.NewInt32(in_, []int{in.B, in.S, topk}, idx))
		if lens != nil {
			f.Add(bundle.NewInt32(ln, []int{in.B}, lens))
		}
		return nil
	}
	if err := scope(in.Cache, in.Idx, in.TopK, in.TopkLen, TKCache, TIndices, TTopkLength); err != nil {
		return err
	}
	if in.ExtraTopK > 0 {
		if err := scope(in.ExtraCache, in.ExtraIdx, in.ExtraTopK, in.ExtraTopkLen, TExtraKCache, TExtraIndices, TExtraTopkLength); err != nil {
			return err
		}
	}
	f.Metadata[KeyDV] = fmt.Sprint(in.Dv)
	maxLogitMeta(f, in)
	if c := in.LSE; c != nil {
		for k, v := range lseMeta(*c) {
			f.Metadata[k] = v
		}
	}
	return nil
}
