package interop

import (
	"fmt"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
)

// Tensor names of the dense family's paged KV cache and seqused_k
// (FlashAttention's flash_attn_with_kvcache and FA3's varlen).
const (
	TVCache       = "v_cache"
	TBlockTable   = "block_table"
	TCacheSeqlens = "cache_seqlens"
	TSequsedK     = "seqused_k"
)

// densePaged decodes a paged cache (k_cache/v_cache [NB, page, Hkv, D|Dv],
// block_table [B, max_blocks], cache_seqlens and/or seqused_k [B]); ok is
// false when the bundle has no block_table (then it is varlen or batch).
func (d *decoder) densePaged(in *problem.Inputs, p profile.Profile, batch, sq int) (ok bool, err error) {
	if d.f.Tensors[TBlockTable] == nil {
		return false, nil
	}
	kt, err := d.tensor(TKCache, true, "[NB, page, Hkv, D] (a block_table makes the dense cache paged)", 4)
	if err != nil {
		return true, err
	}
	vt, err := d.tensor(TVCache, true, "[NB, page, Hkv, Dv]", 4)
	if err != nil {
		return true, err
	}
	if kt.Shape[3] != in.D || kt.Shape[1] < 1 || kt.Shape[2] < 1 {
		return true, fmt.Errorf("tensor k_cache: shape %v, want [NB, page ≥ 1, Hkv ≥ 1, D = %d] (D from q)", kt.Shape, in.D)
	}
	if !sameShape(vt.Shape[:3], kt.Shape[:3]) || vt.Shape[3] < 1 {
		return true, fmt.Errorf("tensor v_cache: shape %v, want [NB, page, Hkv, Dv] matching k_cache %v", vt.Shape, kt.Shape)
	}
	in.Page, in.Hkv, in.Dv = kt.Shape[1], kt.Shape[2], vt.Shape[3]
	if in.H%in.Hkv != 0 {
		return true, fmt.Errorf("tensor k_cache: %d KV heads do not divide q's %d heads", in.Hkv, in.H)
	}
	bt, err := d.tensor(TBlockTable, true, "[B, max_blocks] int32", 2)
	if err != nil {
		return true, err
	}
	if in.BlockTable, err = d.ints(bt); err != nil {
		return true, err
	}
	nb := bt.Shape[0]
	in.MaxBlocks = bt.Shape[1]
	if !fitsInt(nb, in.MaxBlocks, in.Page) || !fitsInt(kt.Shape[0], in.Page, in.Hkv, max(in.D, in.Dv)) {
		return true, fmt.Errorf("tensor shapes too large: block_table %v, k_cache %v", bt.Shape, kt.Shape)
	}
	if batch >= 0 {
		if batch != nb {
			return true, fmt.Errorf("tensor block_table: shape %v, want B = %d rows (from q [B, Sq, H, D])", bt.Shape, batch)
		}
		in.CuQ = make([]int32, batch+1)
		for b := 0; b < batch; b++ {
			in.CuQ[b+1] = in.CuQ[b] + int32(sq)
		}
	} else {
		t, err := d.tensor(TCuQ, true, "[B+1] int32 prefix sums", 1)
		if err != nil {
			return true, fmt.Errorf("%v (q is varlen [total_q, H, D])", err)
		}
		if in.CuQ, err = d.ints(t); err != nil {
			return true, err
		}
		if len(in.CuQ) != nb+1 {
			return true, fmt.Errorf("tensor cu_seqlens_q: %d entries, want B+1 = %d (block_table has B = %d rows)", len(in.CuQ), nb+1, nb)
		}
	}
	if in.CacheSeqlens, err = d.perSeq(TCacheSeqlens, nb); err != nil {
		return true, err
	}
	if in.SequsedK, err = d.perSeq(TSequsedK, nb); err != nil {
		return true, err
	}
	if in.CacheSeqlens == nil && in.SequsedK == nil {
		return true, fmt.Errorf("tensor cache_seqlens: missing (a paged cache needs cache_seqlens or seqused_k [B])")
	}
	for name, l := range map[string][]int32{TCacheSeqlens: in.CacheSeqlens, TSequsedK: in.SequsedK} {
		for b, n := range l {
			if n < 0 {
				return true, fmt.Errorf("tensor %s: value %d at [%d] is negative", name, n, b)
			}
		}
	}
	why := "the declared in_dtype"
	if in.K, err = d.floats(kt, p.In, why); err != nil {
		return true, err
	}
	if in.V, err = d.floats(vt, p.In, why); err != nil {
		return true, err
	}
	in.CuK = in.PagedLens()
	return true, nil
}

// perSeq reads an optional per-sequence int32 tensor of B entries.
func (d *decoder) perSeq(name string, nb int) ([]int32, error) {
	t, err := d.tensor(name, false, "[B] int32", 1)
	if err != nil || t == nil {
		return nil, err
	}
	v, err := d.ints(t)
	if err != nil {
		return nil, err
	}
	if len(v) != nb {
		return nil, fmt.Errorf("tensor %s: %d entries, want B = %d", name, len(v), nb)
	}
	return v, nil
}

// encodePaged adds a paged problem's cache, table and lengths.
func encodePaged(f *bundle.File, in *problem.Inputs, add func(string, []int, []float32, bundle.DType) error) error {
	dt := DType(in.Format)
	np := in.Pages()
	if err := add(TKCache, []int{np, in.Page, in.Hkv, in.D}, in.K, dt); err != nil {
		return err
	}
	if err := add(TVCache, []int{np, in.Page, in.Hkv, in.Dv}, in.V, dt); err != nil {
		return err
	}
	f.Add(bundle.NewInt32(TBlockTable, []int{len(in.CuQ) - 1, in.MaxBlocks}, in.BlockTable))
	if in.CacheSeqlens != nil {
		f.Add(bundle.NewInt32(TCacheSeqlens, []int{len(in.CacheSeqlens)}, in.CacheSeqlens))
	}
	return nil
}
