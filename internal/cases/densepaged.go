package cases

import (
	"fmt"
	"math"

	"github.com/attnvet/attnvet/internal/problem"
)

// pagedNeed is the pages sequence b's sk keys fill.
func (c Case) pagedNeed(b int) int { return ceilDiv(c.Sk[b], c.Page) }

// pagedMaxBlocks is the block table's width: the longest sequence's pages
// and one entry past it (an entry no sequence reaches, holding anything).
func (c Case) pagedMaxBlocks() int {
	mb := 0
	for b := range c.Sk {
		mb = max(mb, c.pagedNeed(b))
	}
	return mb + 1
}

// pagedPages is the pool's page count: the referenced pages and a quarter
// more that no entry reaches (plus one).
func (c Case) pagedPages() int {
	used := 0
	for b := range c.Sk {
		used += c.pagedNeed(b)
	}
	return used + 1 + used/4
}

func (c Case) validatePaged() error {
	if c.Page < 0 || c.Page > maxTokens {
		return fmt.Errorf("page %d: want 0 (contiguous) or a page size 1..%d", c.Page, maxTokens)
	}
	if c.SequsedK != nil {
		if len(c.SequsedK) != len(c.Sk) {
			return fmt.Errorf("seqused_k has %d entries, want one per sequence (%d)", len(c.SequsedK), len(c.Sk))
		}
		for b, u := range c.SequsedK {
			if u < 0 || u > maxTokens {
				return fmt.Errorf("seqused_k[%d] = %d: want 0..%d (above sk[%d] is the contract violation %s)", b, u, maxTokens, b, problem.VSequsedK)
			}
		}
	}
	for _, p := range c.Plant {
		if p != problem.VBlockTable || c.Page == 0 {
			return fmt.Errorf("plant %q: the dense family plants only %s, in a paged case", p, problem.VBlockTable)
		}
	}
	if c.Page == 0 && (c.Poison || c.BlockTable != "") {
		return fmt.Errorf("poison and block_table apply to a paged dense case (page ≥ 1)")
	}
	switch c.BlockTable {
	case "", "identity", "permuted":
	default:
		return fmt.Errorf("block_table %q: want identity or permuted", c.BlockTable)
	}
	if c.Page > 0 && c.pagedPages() > maxTokens*4 {
		return fmt.Errorf("paged case: %d pages (limit %d)", c.pagedPages(), maxTokens*4)
	}
	return nil
}

// densePaged builds the keys of a paged case (pool, table, cache_seqlens)
// or, for a varlen case with seqused_k, k and v as usual plus seqused_k.
func (c Case) densePaged(in *problem.Inputs, r *rng, vg *valueGen) {
	if c.SequsedK != nil {
		in.SequsedK = make([]int32, len(c.SequsedK))
		for b, u := range c.SequsedK {
			in.SequsedK[b] = int32(u)
		}
	}
	if c.Page == 0 {
		tk := int(in.CuK[len(c.Sk)])
		in.K = vg.fill(tk*in.Hkv*in.D, vg.scale(), false)
		in.V = vg.fill(tk*in.Hkv*in.Dv, vg.vScale(), false)
		return
	}
	nb, np, mb := len(c.Sk), c.pagedPages(), c.pagedMaxBlocks()
	in.Page, in.MaxBlocks = c.Page, mb
	order := make([]int, np)
	for i := range order {
		order[i] = i
	}
	if c.BlockTable == "permuted" {
		order = r.perm(np)
	}
	in.BlockTable = make([]int32, nb*mb)
	in.CacheSeqlens = make([]int32, nb)
	used := make([]bool, np)
	next := 0
	for b := 0; b < nb; b++ {
		in.CacheSeqlens[b] = int32(c.Sk[b])
		for blk := 0; blk < mb; blk++ {
			if blk < c.pagedNeed(b) {
				p := order[next]
				next++
				used[p] = true
				in.BlockTable[b*mb+blk] = int32(p)
			} else { // past the last page: anything, in the pool or not
				in.BlockTable[b*mb+blk] = int32(r.intn(np+4) - 2)
			}
		}
	}
	row := in.Hkv * in.D
	vrow := in.Hkv * in.Dv
	in.K = vg.fill(np*c.Page*row, vg.scale(), false)
	in.V = vg.fill(np*c.Page*vrow, vg.vScale(), false)
	in.CuK = in.PagedLens()
	for _, p := range c.Plant {
		if p == problem.VBlockTable {
			for b := 0; b < nb; b++ {
				if c.pagedNeed(b) > 0 {
					in.BlockTable[b*mb] = int32(np)
					break
				}
			}
		}
	}
	if !c.Poison {
		return
	}
	nan := float32(math.NaN())
	poisonRow := func(pr int) {
		for i := pr * row; i < (pr+1)*row; i++ {
			in.K[i] = nan
		}
		for i := pr * vrow; i < (pr+1)*vrow; i++ {
			in.V[i] = nan
		}
	}
	for p := 0; p < np; p++ {
		if !used[p] {
			for j := 0; j < c.Page; j++ {
				poisonRow(p*c.Page + j)
			}
		}
	}
	for b := 0; b < nb; b++ { // the rows past the sequence's last key
		if n := c.pagedNeed(b); n > 0 {
			p := int(in.BlockTable[b*mb+n-1])
			if p >= 0 && p < np {
				for j := c.Sk[b] - (n-1)*c.Page; j < c.Page; j++ {
					poisonRow(p*c.Page + j)
				}
			}
		}
	}
}
