package cases

import (
	"fmt"
	"math"

	"github.com/attnvet/attnvet/internal/problem"
)

// The sparse family's cases: b batch entries of s tokens, win window
// slots and idx_topk compressed slots per index row into paged pools.
var _ = registerFamily(&family{
	validate: Case.validateSparse,
	elements: func(c Case) int {
		g, s := c.geometry(), c.tokensPerBatch()
		return c.B*s*c.H*c.D + (g.oriBlocks+g.cmpBlocks)*c.blockSize()*c.D + c.B*s*(c.Win+c.IdxTopK)
	},
	tokens: batchTokens,
	hkv:    oneKV,
	dv:     dvIsD,
	generate: func(c Case, in *problem.Inputs, r *rng, vg *valueGen) error {
		c.sparse(in, r, vg)
		return nil
	},
	kvSpecial:   true,
	specialKeys: Case.Tokens,
	shape: func(c Case) string {
		return fmt.Sprintf(" b=%d s=%d win=%d idx_topk=%d seqused=%v", c.B, max(c.S, 1), c.Win, c.IdxTopK, c.Seqused)
	},
	rowNote: func(in *problem.Inputs, t int) string {
		l := in.TokenLens(t)
		return fmt.Sprintf(" (batch %d, u_s=%d: window_valid=%d, cmp_valid=%d, sparse_k=%d)", l.B, l.U, l.WindowValid, l.CmpValid, l.SparseK)
	},
	keySources: sparseKeySources,
}, problem.Sparse)

func (c Case) validateSparse() error {
	if c.Hkv > 1 || (c.Dv != 0 && c.Dv != c.D) {
		return fmt.Errorf("sparse family: one shared KV head with dv = d (got hkv=%d, dv=%d)", c.Hkv, c.Dv)
	}
	s := c.tokensPerBatch()
	if c.B < 1 || s < 1 || c.B*s > maxTokens {
		return fmt.Errorf("bad sparse shape: b=%d s=%d (b·s in 1..%d)", c.B, s, maxTokens)
	}
	if c.Win < 0 || c.IdxTopK < 0 || c.Win+c.IdxTopK < 1 || c.Win+c.IdxTopK > maxDim {
		return fmt.Errorf("bad index geometry: win=%d idx_topk=%d (win+idx_topk in 1..%d)", c.Win, c.IdxTopK, maxDim)
	}
	if bs := c.blockSize(); bs < 1 || bs > maxDim {
		return fmt.Errorf("block_size %d: want 1..%d", bs, maxDim)
	}
	if len(c.Seqused) != c.B {
		return fmt.Errorf("seqused has %d entries, want b=%d", len(c.Seqused), c.B)
	}
	for i, u := range c.Seqused {
		if u < 0 || u > 1<<20 {
			return fmt.Errorf("seqused[%d] = %d: want 0..%d", i, u, 1<<20)
		}
	}
	switch c.Indices {
	case "", "sorted", "shuffled":
	default:
		return fmt.Errorf("indices %q: want sorted or shuffled", c.Indices)
	}
	switch c.BlockTable {
	case "", "identity", "permuted":
	default:
		return fmt.Errorf("block_table %q: want identity or permuted", c.BlockTable)
	}
	for _, p := range c.Plant {
		switch p {
		case "duplicate", problem.VPadInPrefix, problem.VValidAfter, problem.VWindowSlot, problem.VBlockTable:
		default:
			return fmt.Errorf("plant %q: want duplicate, %s, %s, %s or %s", p,
				problem.VPadInPrefix, problem.VValidAfter, problem.VWindowSlot, problem.VBlockTable)
		}
	}
	g := c.geometry()
	elems := c.elements()
	if g.cmpBlocks > maxElems || elems > maxElems {
		return fmt.Errorf("case too large: %d tensor elements (limit %d)", elems, maxElems)
	}
	return nil
}

type geometry struct {
	mbOri, mbCmp         int
	oriBlocks, cmpBlocks int
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func (c Case) geometry() geometry {
	bs := c.blockSize()
	maxU := 0
	for _, u := range c.Seqused {
		maxU = max(maxU, u)
	}
	g := geometry{mbOri: ceilDiv(c.Win, bs), mbCmp: ceilDiv(max(maxU-c.Win, 0), bs)}
	g.oriBlocks, g.cmpBlocks = c.B*g.mbOri, c.B*g.mbCmp
	return g
}

// sparse builds pools, block tables and index rows.
func (c Case) sparse(in *problem.Inputs, r *rng, vg *valueGen) {
	bs := c.blockSize()
	g := c.geometry()
	in.B, in.S, in.Win, in.TopK, in.BS = c.B, c.tokensPerBatch(), c.Win, c.Win+c.IdxTopK, bs
	in.MBori, in.MBcmp = g.mbOri, g.mbCmp
	in.OriKV = vg.fill(g.oriBlocks*bs*c.D, vg.scale(), false)
	in.CmpKV = vg.fill(g.cmpBlocks*bs*c.D, vg.scale(), false)
	in.OriBT = blockTable(r, c.B, g.mbOri, c.BlockTable == "permuted")
	in.CmpBT = blockTable(r, c.B, g.mbCmp, c.BlockTable == "permuted")
	in.Seqused = make([]int32, c.B)
	for b, u := range c.Seqused {
		in.Seqused[b] = int32(u)
	}
	in.Idx = make([]int32, in.T*in.TopK)
	for t := 0; t < in.T; t++ {
		indexRow(r, in, t, c.Indices == "shuffled")
	}
	for _, p := range c.Plant {
		plant(r, in, p)
	}
	if c.Poison {
		poison(in)
	}
}

func blockTable(r *rng, b, mb int, permuted bool) []int32 {
	bt := make([]int32, b*mb)
	var p []int
	if permuted {
		p = r.perm(b * mb)
	}
	for i := range bt {
		bt[i] = int32(i)
		if permuted {
			bt[i] = int32(p[i])
		}
	}
	return bt
}

// indexRow writes token t's row following the contract: window slots
// 0..window_valid−1, then cmp_topk_valid distinct compressed slots from
// [0, cmp_valid), then −1.
func indexRow(r *rng, in *problem.Inputs, t int, shuffled bool) {
	l := in.TokenLens(t)
	row := in.Idx[t*in.TopK : (t+1)*in.TopK]
	for i := range row {
		row[i] = -1
	}
	w := make([]int, l.WindowValid)
	for i := range w {
		w[i] = i
	}
	var cm []int
	if l.CmpTop == l.CmpValid {
		cm = make([]int, l.CmpValid)
		for i := range cm {
			cm[i] = i
		}
	} else {
		cm = r.perm(l.CmpValid)[:l.CmpTop]
		sortInts(cm)
	}
	if shuffled {
		r.shuffle(w)
		r.shuffle(cm)
	}
	for i, s := range w {
		row[i] = int32(s)
	}
	for i, s := range cm {
		row[l.WindowValid+i] = int32(in.Win + s)
	}
}

func sortInts(a []int) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// PlantFits reports whether plant what can edit a token with lengths l and
// an index row of topK entries.
func PlantFits(what string, l problem.Lens, topK int) bool {
	switch what {
	case "duplicate":
		return l.SparseK >= 2
	case problem.VPadInPrefix, problem.VBlockTable:
		return l.SparseK >= 1
	case problem.VValidAfter:
		return l.SparseK >= 1 && l.SparseK < topK
	case problem.VWindowSlot:
		return l.WindowValid >= 1
	}
	return false
}

// plant edits the index layout of a random token that can hold the edit.
func plant(r *rng, in *problem.Inputs, what string) {
	var cands []int
	for t := 0; t < in.T; t++ {
		if PlantFits(what, in.TokenLens(t), in.TopK) {
			cands = append(cands, t)
		}
	}
	if len(cands) == 0 {
		return
	}
	t := cands[r.intn(len(cands))]
	l := in.TokenLens(t)
	row := in.Idx[t*in.TopK : (t+1)*in.TopK]
	switch what {
	case "duplicate":
		i, j := r.intn(l.SparseK), r.intn(l.SparseK)
		if i == j {
			j = (i + 1) % l.SparseK
		}
		// Copy only within the same kind of slot: the copy stays valid.
		if (i < l.WindowValid) == (j < l.WindowValid) {
			row[i] = row[j]
		}
	case problem.VPadInPrefix:
		row[r.intn(l.SparseK)] = -1
	case problem.VValidAfter:
		row[l.SparseK+r.intn(in.TopK-l.SparseK)] = row[r.intn(l.SparseK)]
	case problem.VWindowSlot:
		row[r.intn(l.WindowValid)] = int32(l.WindowValid) // one past the valid window (or a compressed slot id)
	case problem.VBlockTable:
		s := int(row[r.intn(l.SparseK)])
		if s < 0 {
			return
		}
		// An earlier plant may have made s an invalid slot: only a slot
		// inside its block table can have its block pointed out of range.
		if s < in.Win {
			if blk := s / in.BS; blk < in.MBori {
				in.OriBT[l.B*in.MBori+blk] = int32(len(in.OriKV) / (in.BS * in.D))
			}
		} else if blk := (s - in.Win) / in.BS; blk < in.MBcmp {
			in.CmpBT[l.B*in.MBcmp+blk] = int32(len(in.CmpKV) / (in.BS * in.D))
		}
	}
}

// poison sets to NaN every pool row that no reference-valid slot maps to.
func poison(in *problem.Inputs) {
	used := func(pool []float32, bt []int32, mb, b, nslots int, mark []bool) {
		for c := 0; c < nslots; c++ {
			blk := c / in.BS
			if blk >= mb {
				break
			}
			base := int(bt[b*mb+blk])
			row := base*in.BS + c%in.BS
			if base >= 0 && row < len(mark) {
				mark[row] = true
			}
		}
	}
	oriUsed := make([]bool, len(in.OriKV)/in.D)
	cmpUsed := make([]bool, len(in.CmpKV)/in.D)
	for t := 0; t < in.T; t++ {
		l := in.TokenLens(t)
		used(in.OriKV, in.OriBT, in.MBori, l.B, l.WindowValid, oriUsed)
		used(in.CmpKV, in.CmpBT, in.MBcmp, l.B, l.CmpValid, cmpUsed)
	}
	nan := float32(math.NaN())
	for _, p := range []struct {
		pool []float32
		mark []bool
	}{{in.OriKV, oriUsed}, {in.CmpKV, cmpUsed}} {
		for row, u := range p.mark {
			if !u {
				for d := 0; d < in.D; d++ {
					p.pool[row*in.D+d] = nan
				}
			}
		}
	}
}

// sparseKeySources names each key by its index-row entry.
func sparseKeySources(in *problem.Inputs, t, n int) []string {
	out := make([]string, 0, n)
	l := in.TokenLens(t)
	for i, r := range in.Idx[t*in.TopK : (t+1)*in.TopK] {
		switch {
		case r < 0:
			continue
		case int(r) < in.Win:
			if int(r) >= l.WindowValid {
				continue
			}
			out = append(out, fmt.Sprintf("#%d idx[%d]=%d window", len(out), i, r))
		default:
			if int(r)-in.Win >= l.CmpValid {
				continue
			}
			out = append(out, fmt.Sprintf("#%d idx[%d]=%d cmp %d", len(out), i, r, int(r)-in.Win))
		}
	}
	for len(out) < n { // unreadable rows are skipped by RefKeys; keep the lengths aligned
		out = append(out, fmt.Sprintf("#%d", len(out)))
	}
	return out[:n]
}
