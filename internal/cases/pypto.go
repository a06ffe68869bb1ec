package cases

import (
	"fmt"
	"math"
	"slices"

	"github.com/attnvet/attnvet/internal/problem"
)

// Plants of the pypto families (Case.Plant): edges of valid input, and
// contract violations named as problem reports them.
const (
	PlantRow0NonFinite = "row0_nonfinite" // ori_kv row 0 (never referenced) holds NaN and ±Inf
	PlantBoundEdge     = "bound_edge"     // csa: idx_topk columns 0, 1 = ⌊(p+1)/ratio⌋ − 1 and ⌊(p+1)/ratio⌋
	PlantDuplicate     = "duplicate"      // a kept compressed entry repeated
	PlantShortLens     = "short_lens"     // swa: swa_lens one shorter than the window (the last column unread)
	// PlantUnmappedPage: csa, hca: the window's oldest page is unmapped, its
	// entries −1 (metadata writes −1 for a logical block the table does not
	// map); a window inside one page becomes empty.
	PlantUnmappedPage = "unmapped_page"
)

// pyptoPlants are the plants the pypto families accept.
var pyptoPlants = []string{PlantRow0NonFinite, PlantBoundEdge, PlantDuplicate, PlantShortLens, PlantUnmappedPage,
	problem.VPadInPrefix, problem.VIndexRange, problem.VBlockTable, problem.VNegativePosition}

// The csa, hca and swa families' cases (pypto-lib's decode kernels).
var _ = registerFamily(&family{
	validate: Case.validatePypto,
	elements: Case.pyptoElements,
	tokens:   batchTokens,
	hkv:      oneKV,
	dv:       dvIsD,
	generate: func(c Case, in *problem.Inputs, r *rng, vg *valueGen) error {
		c.pypto(in, r, vg)
		return nil
	},
	specialKeys: Case.Tokens,
	shape: func(c Case) string {
		return fmt.Sprintf(" b=%d s=%d win=%d idx_topk=%d", c.B, max(c.S, 1), c.Win, c.IdxTopK)
	},
	rowNote: func(in *problem.Inputs, t int) string {
		s := fmt.Sprintf(" (%d window columns", in.PyptoWinCols(t))
		if in.Family == problem.CSA && t < len(in.Pos) {
			s += fmt.Sprintf(", position %d: compressed slots below %d", in.Pos[t], in.CmpBound(t))
		}
		return s + ")"
	},
	keySources: rankedKeys,
}, problem.CSA, problem.HCA, problem.SWA)

func (c Case) ratio() int {
	if c.Ratio == 0 {
		return problem.PyptoDefaultRatio(c.Family)
	}
	return c.Ratio
}

func (c Case) cmpBlockSize() int {
	if c.CmpBlockSize == 0 {
		return c.blockSize()
	}
	return c.CmpBlockSize
}

func (c Case) idxWidth() int {
	if c.Family == problem.CSA && c.IdxWidth > c.IdxTopK {
		return c.IdxWidth
	}
	return c.IdxTopK
}

// maxPos bounds the last position of a batch entry when positions are drawn:
// long enough that every compressed column can be kept.
func (c Case) maxPos() int {
	if c.Positions != nil {
		m := 0
		for _, p := range c.Positions {
			m = max(m, p)
		}
		return m
	}
	s := c.tokensPerBatch()
	if c.Family == problem.SWA {
		return s - 1 + 2*c.Win + 1
	}
	return s - 1 + c.Win + c.ratio()*(c.IdxTopK+1)
}

// pyptoGeometry is the pool sizes: ori pages of block_size rows (page 0 a
// spare no entry refers to, then every batch entry's pages), cmp pages of
// cmp_block_size rows (page 0 spare, then mb pages per batch entry).
func (c Case) pyptoGeometry() (oriPages, mb, cmpPages int) {
	bs, cbs := c.blockSize(), c.cmpBlockSize()
	oriPages = 1 + c.B*ceilDiv(c.maxPos()+1, bs)
	if c.Family == problem.SWA {
		return oriPages, 0, 0
	}
	nc := (c.maxPos() + 1) / c.ratio()
	if c.Family == problem.HCA {
		nc = max(nc, 1)
	}
	mb = max(ceilDiv(nc+2, cbs), 1)
	return oriPages, mb, 1 + c.B*mb
}

func (c Case) pyptoElements() int {
	op, mb, cp := c.pyptoGeometry()
	t := c.Tokens()
	return t*(c.H*c.D+c.Win+c.idxWidth()+2) + (op*c.blockSize()+cp*c.cmpBlockSize())*c.D + c.B*mb
}

func (c Case) validatePypto() error {
	if c.Hkv > 1 || (c.Dv != 0 && c.Dv != c.D) {
		return fmt.Errorf("%s family: one KV head with V = K (got hkv=%d, dv=%d)", c.Family, c.Hkv, c.Dv)
	}
	s := c.tokensPerBatch()
	if c.B < 1 || s < 1 || c.B*s > maxTokens {
		return fmt.Errorf("bad %s shape: b=%d s=%d (b·s in 1..%d)", c.Family, c.B, s, maxTokens)
	}
	if c.Win < 0 || c.Win > maxDim || c.IdxTopK < 0 || c.IdxTopK > maxDim || c.IdxWidth < 0 || c.IdxWidth > maxDim {
		return fmt.Errorf("win=%d idx_topk=%d idx_width=%d: want 0..%d", c.Win, c.IdxTopK, c.IdxWidth, maxDim)
	}
	if c.Family == problem.SWA && (c.IdxTopK != 0 || c.IdxWidth != 0 || c.Ratio != 0 || c.CmpBlockSize != 0) {
		return fmt.Errorf("swa family has no compressed pool (idx_topk, idx_width, compress_ratio, cmp_block_size)")
	}
	if c.Family == problem.HCA && c.IdxWidth != 0 {
		return fmt.Errorf("hca family: cmp_sparse_indices is idx_topk columns wide (no idx_width)")
	}
	if c.Win+c.IdxTopK < 1 {
		return fmt.Errorf("win + idx_topk = 0: no key column")
	}
	if r := c.Ratio; r < 0 || r > 1<<10 {
		return fmt.Errorf("compress_ratio %d: want 1..%d (0: the family's default)", r, 1<<10)
	}
	if bs, cbs := c.blockSize(), c.cmpBlockSize(); bs < 1 || bs > maxDim || cbs < 1 || cbs > maxDim {
		return fmt.Errorf("block_size %d, cmp_block_size %d: want 1..%d", bs, cbs, maxDim)
	}
	if c.Positions != nil {
		if len(c.Positions) != c.B*s {
			return fmt.Errorf("positions has %d entries, want b·s = %d", len(c.Positions), c.B*s)
		}
		for i, p := range c.Positions {
			if p < -1 || p > 1<<16 {
				return fmt.Errorf("positions[%d] = %d: want 0..%d (−1 only to plant a violation)", i, p, 1<<16)
			}
		}
	}
	if math.IsNaN(c.Invalid) || c.Invalid < 0 || c.Invalid > 1 {
		return fmt.Errorf("invalid=%v: want a fraction in [0, 1]", c.Invalid)
	}
	for _, p := range c.Plant {
		if !slices.Contains(pyptoPlants, p) {
			return fmt.Errorf("plant %q: want one of %v", p, pyptoPlants)
		}
	}
	switch c.BlockTable {
	case "", "identity", "permuted":
	default:
		return fmt.Errorf("block_table %q: want identity or permuted", c.BlockTable)
	}
	if c.Softcap != 0 || c.Alibi != nil || c.Sq != nil || c.T != 0 || c.Seqused != nil || c.TopK != 0 || c.ExtraTopK != 0 || c.LSE != nil {
		return fmt.Errorf("%s family takes b, s, h, d, win, idx_topk, idx_width, positions, compress_ratio, block_size, cmp_block_size, invalid, block_table, plant, poison", c.Family)
	}
	for _, sp := range c.Specials {
		if sp.Tensor != "q" {
			return fmt.Errorf("%s family: specials go in q only", c.Family)
		}
	}
	if elems := c.pyptoElements(); elems > maxElems {
		return fmt.Errorf("case too large: %d tensor elements (limit %d)", elems, maxElems)
	}
	return nil
}

// pypto builds a decode step the way pypto-lib's metadata does: batch entry
// b's tokens sit at consecutive positions ending at its last position; the
// positions 0..last are written to ori_kv pages (identity or permuted page
// order; page 0 a spare), so token t's window is the physical rows of
// positions max(0, p−WIN+1)..p, −1 padded; the compressed slots
// 0..⌊(last+1)/ratio⌋+1 sit in cmp pages through cmp_block_table. csa's
// idx_topk entries are distinct kept slots (an indexer's top-k) or, with
// probability Invalid and once the slots run out, −1, ≤ −2 or ≥ the bound;
// hca's are distinct slots below ⌊(p+1)/ratio⌋ or −1 (the caller masks
// them). Poisoned rows (NaN) are those no valid entry reaches.
func (c Case) pypto(in *problem.Inputs, r *rng, vg *valueGen) {
	s, bs, cbs := c.tokensPerBatch(), c.blockSize(), c.cmpBlockSize()
	in.B, in.S, in.Win, in.BS, in.CBS = c.B, s, c.Win, bs, cbs
	in.Ratio, in.TopK = c.ratio(), c.idxWidth()
	if c.Family == problem.CSA {
		in.IdxTopK = c.IdxTopK // hca reads every column of cmp_sparse_indices
	}
	oriPages, mb, cmpPages := c.pyptoGeometry()
	in.MBcmp = mb
	in.Pos = make([]int32, in.T)
	for b := 0; b < c.B; b++ {
		last := s - 1 + r.intn(c.maxPos()-s+2)
		if r.intn(4) == 0 {
			last = s - 1 // the first token at p = 0
		}
		for j := 0; j < s; j++ {
			in.Pos[b*s+j] = int32(last - s + 1 + j)
			if c.Positions != nil {
				in.Pos[b*s+j] = int32(c.Positions[b*s+j])
			}
		}
	}
	in.OriKV = vg.fill(oriPages*bs*c.D, vg.scale(), false)
	// A permuted page order could make an aligned 16-column window run look
	// contiguous across pages of fewer than 16 rows (problem.VWindowRun).
	perPage := oriPages - 1
	order := make([]int, perPage)
	for i := range order {
		order[i] = i
	}
	if c.BlockTable == "permuted" && (bs >= problem.GatherRun || c.Win < problem.GatherRun) {
		order = r.perm(perPage)
	}
	pagesPer := perPage / c.B
	oriRow := func(b, pos int) int32 {
		return int32((1+order[b*pagesPer+pos/bs])*bs + pos%bs)
	}
	in.WinIdx = make([]int32, in.T*c.Win)
	for t := 0; t < in.T; t++ {
		p := int(in.Pos[t])
		row := in.WinIdx[t*c.Win : (t+1)*c.Win]
		for k := range row {
			row[k] = -1
		}
		lo := max(0, p-c.Win+1)
		for w := lo; w <= p; w++ {
			row[w-lo] = oriRow(t/s, w)
		}
	}
	if c.Family == problem.SWA {
		in.SwaLens = make([]int32, in.T)
		for t := range in.SwaLens {
			in.SwaLens[t] = int32(min(c.Win, max(int(in.Pos[t])+1, 0)))
		}
		in.Idx, in.CmpBT, in.CBS = []int32{}, []int32{}, 1
		c.pyptoPlants(in, r)
		return
	}
	in.CmpKV = vg.fill(cmpPages*cbs*c.D, vg.scale(), false)
	in.CmpBT = blockTable(r, c.B, mb, c.BlockTable == "permuted")
	for i := range in.CmpBT {
		in.CmpBT[i]++ // page 0 is the spare
	}
	in.Idx = make([]int32, in.T*in.TopK)
	for t := 0; t < in.T; t++ {
		bound := (int(in.Pos[t]) + 1) / in.Ratio
		row := in.Idx[t*in.TopK : (t+1)*in.TopK]
		slots := r.perm(bound) // a top-k is of distinct slots (duplicates: PlantDuplicate)
		for col := range row {
			switch {
			case c.Family == problem.CSA && col >= in.IdxTopK: // unread columns: anything
				row[col] = int32(r.intn(bound+4)) - 2
			case len(slots) > 0 && !(c.Invalid > 0 && r.uniform() < c.Invalid):
				row[col], slots = int32(slots[0]), slots[1:]
			case c.Family == problem.HCA:
				row[col] = -1
			default:
				row[col] = []int32{-1, int32(-2 - r.intn(4)), int32(bound + r.intn(3))}[r.intn(3)]
			}
		}
	}
	c.pyptoPlants(in, r)
}

func (c Case) pyptoPlants(in *problem.Inputs, r *rng) {
	rows := len(in.OriKV) / c.D
	for _, p := range c.Plant {
		switch p {
		case PlantBoundEdge:
			for t := 0; t < in.T && c.Family == problem.CSA; t++ {
				bound := in.CmpBound(t)
				for col, v := range []int{bound - 1, bound} {
					if col < in.IdxTopK && v >= 0 {
						in.Idx[t*in.TopK+col] = int32(v)
					}
				}
			}
		case PlantDuplicate:
			for t := 0; t < in.T && in.PyptoCmpCols() >= 2; t++ {
				in.Idx[t*in.TopK+1] = in.Idx[t*in.TopK]
			}
		case PlantUnmappedPage:
			for t := 0; t < in.T && c.Family != problem.SWA && c.Win > 0; t++ {
				win := in.WinIdx[t*c.Win : (t+1)*c.Win]
				page := win[0] / int32(in.BS)
				for k, x := range win {
					if x >= 0 && x/int32(in.BS) == page {
						win[k] = -1
					}
				}
			}
		case PlantShortLens:
			for t := range in.SwaLens {
				in.SwaLens[t] = max(in.SwaLens[t]-1, 0)
			}
		case problem.VPadInPrefix:
			if t := r.intn(in.T); in.SwaLens != nil && in.SwaLens[t] > 0 {
				in.WinIdx[t*c.Win+r.intn(int(in.SwaLens[t]))] = -1
			}
		case problem.VIndexRange:
			if c.Win > 0 {
				in.WinIdx[r.intn(in.T)*c.Win] = int32(rows + r.intn(3))
			}
		case problem.VBlockTable:
			for i := range in.CmpBT {
				in.CmpBT[i] = int32(len(in.CmpKV)/(c.D*c.cmpBlockSize()) + 1)
			}
		case problem.VNegativePosition:
			if c.Family == problem.CSA {
				in.Pos[r.intn(in.T)] = -1
			}
		}
	}
	if c.Poison {
		c.pyptoPoison(in)
	}
	if slices.Contains(c.Plant, PlantRow0NonFinite) {
		for d := range in.D {
			in.OriKV[d] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}[d%3]
		}
	}
}

// pyptoPoison fills every pool row no valid entry reaches with NaN (so
// rows read past the mask show), and the table entries no kept slot reads
// with a page outside the pool.
func (c Case) pyptoPoison(in *problem.Inputs) {
	oriUsed := make([]bool, len(in.OriKV)/in.D)
	cmpUsed := make([]bool, len(in.CmpKV)/in.D)
	btUsed := make([]bool, len(in.CmpBT))
	for t := 0; t < in.T; t++ {
		win := in.WinIdx[t*in.Win : (t+1)*in.Win]
		for _, x := range win {
			// Every entry ≥ 0 is gathered (masked lanes too): keep them readable.
			if x >= 0 && int(x) < len(oriUsed) {
				oriUsed[x] = true
			}
		}
		b := t / in.S
		for _, x := range in.Idx[t*in.TopK : t*in.TopK+in.PyptoCmpCols()] {
			if !in.CmpKept(t, x) || int(x)/in.CBS >= in.MBcmp {
				continue
			}
			i := b*in.MBcmp + int(x)/in.CBS
			btUsed[i] = true
			if row := int(in.CmpBT[i])*in.CBS + int(x)%in.CBS; row >= 0 && row < len(cmpUsed) {
				cmpUsed[row] = true
			}
		}
	}
	nan := float32(math.NaN())
	for row, u := range oriUsed {
		if !u {
			for d := range in.D {
				in.OriKV[row*in.D+d] = nan
			}
		}
	}
	for row, u := range cmpUsed {
		if !u {
			for d := range in.D {
				in.CmpKV[row*in.D+d] = nan
			}
		}
	}
	for i, u := range btUsed {
		if !u {
			in.CmpBT[i] = -1
		}
	}
}
