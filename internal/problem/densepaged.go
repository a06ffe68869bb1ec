package problem

import "fmt"

// VSequsedK: seqused_k[b] asks for more keys than sequence b has (varlen:
// its cu_seqlens_k length; paged: cache_seqlens[b], or the block table's
// capacity without it). The device would read past the sequence.
const VSequsedK = "seqused_k_out_of_range"

// Paged reports whether the dense keys sit in a paged cache.
func (in *Inputs) Paged() bool { return in.Page > 0 }

// Pages is the paged pool's page count NB.
func (in *Inputs) Pages() int {
	if in.Page < 1 || in.Hkv < 1 || in.D < 1 {
		return 0
	}
	return len(in.K) / (in.Page * in.Hkv * in.D)
}

// DenseRow is the key row (in units of Hkv heads) of key j of sequence s:
// varlen s.K0 + j; paged the pool row its block-table entry gives. −1
// when the table does not reach a pool row (a contract violation).
func (in *Inputs) DenseRow(s Seq, j int) int {
	if in.Page == 0 {
		return s.K0 + j
	}
	blk := j / in.Page
	if j < 0 || blk >= in.MaxBlocks {
		return -1
	}
	p := int(in.BlockTable[s.B*in.MaxBlocks+blk])
	if p < 0 || p >= in.Pages() {
		return -1
	}
	return p*in.Page + j%in.Page
}

// pagedCap is the keys sequence b may hold: cache_seqlens[b], or the
// table's capacity max_blocks·page without it.
func (in *Inputs) pagedCap(b int) int {
	if in.CacheSeqlens != nil {
		return int(in.CacheSeqlens[b])
	}
	return in.MaxBlocks * in.Page
}

// PagedLens returns CuK of a paged problem: the prefix sums of each
// sequence's key count, seqused_k[b] where given, else cache_seqlens[b],
// clamped to what the sequence holds and the table reaches (beyond that
// is a contract violation, which Violations reports).
func (in *Inputs) PagedLens() []int32 {
	nb := len(in.CuQ) - 1
	cu := make([]int32, max(nb, 0)+1)
	for b := 0; b < nb; b++ {
		n := in.pagedCap(b)
		if in.SequsedK != nil {
			n = min(n, int(in.SequsedK[b]))
		}
		n = max(min(n, in.MaxBlocks*in.Page), 0)
		cu[b+1] = cu[b] + int32(n)
	}
	return cu
}

// checkPaged checks seqused_k and the paged tensors (checkDense has
// checked cu_seqlens_q and CuK's form).
func (in *Inputs) checkPaged() error {
	nb := len(in.CuQ) - 1
	for name, l := range map[string][]int32{"seqused_k": in.SequsedK, "cache_seqlens": in.CacheSeqlens} {
		if l == nil {
			continue
		}
		if err := wantLen(name, len(l), nb); err != nil {
			return err
		}
		for b, n := range l {
			if n < 0 || n > maxSeq {
				return fmt.Errorf("%s[%d] = %d: want 0..%d", name, b, n, maxSeq)
			}
		}
	}
	if in.Page == 0 {
		if in.BlockTable != nil || in.CacheSeqlens != nil {
			return fmt.Errorf("block_table and cache_seqlens need a paged k_cache/v_cache")
		}
		tk := int(in.CuK[len(in.CuK)-1])
		if err := wantLen("k", len(in.K), tk*in.Hkv*in.D); err != nil {
			return err
		}
		return wantLen("v", len(in.V), tk*in.Hkv*in.Dv)
	}
	if in.Page < 0 || in.Page > maxSeq || in.MaxBlocks < 0 || in.MaxBlocks > maxSeq {
		return fmt.Errorf("paged cache: page size %d and max_blocks %d", in.Page, in.MaxBlocks)
	}
	if in.CacheSeqlens == nil && in.SequsedK == nil {
		return fmt.Errorf("paged cache: cache_seqlens or seqused_k must give each sequence's key count")
	}
	if err := wantLen("block_table", len(in.BlockTable), nb*in.MaxBlocks); err != nil {
		return err
	}
	if row := in.Page * in.Hkv * in.D; len(in.K)%row != 0 {
		return fmt.Errorf("tensor k_cache: %d values is not a whole number of pages [page=%d, Hkv=%d, D=%d]", len(in.K), in.Page, in.Hkv, in.D)
	}
	if err := wantLen("v_cache", len(in.V), in.Pages()*in.Page*in.Hkv*in.Dv); err != nil {
		return err
	}
	want := in.PagedLens()
	for b := range want {
		if in.CuK[b] != want[b] {
			return fmt.Errorf("internal: paged key counts %v disagree with %v", in.CuK, want)
		}
	}
	return nil
}

// pagedViolations reports seqused_k beyond a sequence's keys, sequences
// longer than their block table, and block-table entries outside the pool
// for a page that holds a key some query attends. Entries past a
// sequence's last page, and pages no entry reaches, may hold anything.
func (in *Inputs) pagedViolations(add func(string, int, string, ...any)) {
	nb := len(in.CuQ) - 1
	for b := 0; b < nb && in.SequsedK != nil; b++ {
		u := int(in.SequsedK[b])
		have := 0
		switch {
		case in.Page == 0:
			have = int(in.CuK[b+1] - in.CuK[b])
		default:
			have = in.pagedCap(b)
		}
		if u > have {
			add(VSequsedK, -1, "seqused_k[%d] = %d, but the sequence holds %d keys", b, u, have)
		}
	}
	if in.Page == 0 {
		return
	}
	for b := 0; b < nb && in.CacheSeqlens != nil; b++ {
		if n := int(in.CacheSeqlens[b]); n > in.MaxBlocks*in.Page {
			add(VBlockTable, -1, "cache_seqlens[%d] = %d needs %d pages, the block table has %d", b, n, (n+in.Page-1)/in.Page, in.MaxBlocks)
		}
	}
	np := in.Pages()
	for b := 0; b < nb; b++ {
		lo, hi := in.attendedSpan(b)
		for blk := lo / in.Page; lo <= hi && blk <= hi/in.Page && blk < in.MaxBlocks; blk++ {
			if p := in.BlockTable[b*in.MaxBlocks+blk]; p < 0 || int(p) >= np {
				add(VBlockTable, int(in.CuQ[b]), "block_table[%d, %d] = %d: the pool has %d pages", b, blk, p, np)
				break
			}
		}
	}
}

// attendedSpan is the key span [lo, hi] of sequence b that its queries
// attend (empty when lo > hi).
func (in *Inputs) attendedSpan(b int) (lo, hi int) {
	lo, hi = maxSeq, -1
	for t := int(in.CuQ[b]); t < int(in.CuQ[b+1]); t++ {
		if l, h := in.DenseRange(in.DenseSeq(t)); l <= h {
			lo, hi = min(lo, l), max(hi, h)
		}
	}
	return lo, hi
}
