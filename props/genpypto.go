package props

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
)

// Edge classes of the pypto families (csa, hca, swa).
const (
	ClassPosZero      = "position_zero"        // a token at p = 0: window {0}, no compressed slot
	ClassShortWindow  = "window_short"         // a token whose window is shorter than WIN
	ClassCmpBoundEdge = "cmp_bound_edge"       // csa: idx_topk holds ⌊(p+1)/ratio⌋ − 1 and ⌊(p+1)/ratio⌋
	ClassRawInvalid   = "cmp_raw_invalid"      // csa: raw indices ≤ −2 or ≥ the bound
	ClassCmpDuplicate = "cmp_duplicate"        // a compressed entry repeated
	ClassRow0Poison   = "ori_row0_nonfinite"   // NaN/±Inf in ori_kv row 0, which nothing references
	ClassAllInvBlock  = "all_invalid_block"    // a 128-column device block with no valid lane
	ClassEmptyKeys    = "empty_key_set"        // a token with no key at all
	ClassSwaShortLens = "swa_lens_short"       // swa: swa_lens cuts listed rows
	ClassUnreadIdx    = "idx_topk_unread_cols" // csa: idx_topk wider than index_topk
	ClassUnmappedPage = "window_unmapped_page" // csa, hca: −1 window entries of an unmapped page
)

// PyptoViolationPlants are the Case.Plant edits that break the pypto
// families' contract (each named as problem reports it).
var PyptoViolationPlants = []string{problem.VPadInPrefix, problem.VIndexRange, problem.VBlockTable, problem.VNegativePosition}

// The csa, hca and swa families' generator (pypto-lib's kernels).
var _ = registerGen(&genFamily{draw: drawPypto, classes: pyptoClasses, rowKeys: pyptoRowKeys,
	candidates: pyptoCandidates, permute: pyptoPermute},
	problem.CSA, problem.HCA, problem.SWA)

// pyptoPermute shuffles the compressed part of each token's keys (csa:
// the idx_topk columns read; hca: cmp_sparse_indices); the window lanes
// are read in runs and stay. swa has no compressed part (its property is
// not registered).
func pyptoPermute(in, out *problem.Inputs, r *rand.Rand) {
	out.Idx = slices.Clone(in.Idx)
	nc := in.PyptoCmpCols()
	for t := 0; t < in.T; t++ {
		shuffleKeys(r, out.Idx[t*in.TopK:t*in.TopK+nc])
	}
}

func pyptoClassNames() []string {
	return []string{ClassPosZero, ClassShortWindow, ClassCmpBoundEdge, ClassRawInvalid, ClassCmpDuplicate,
		ClassRow0Poison, ClassAllInvBlock, ClassEmptyKeys, ClassSwaShortLens, ClassUnreadIdx, ClassUnmappedPage}
}

// drawPypto draws csa, hca or swa decode cases: windows shorter and longer
// than the history (p = 0 included), compressed indices around the bound
// ⌊(p+1)/ratio⌋ (raw −1, ≤ −2 and ≥ the bound for csa), duplicates, odd
// page sizes, permuted pages, NaN in unreferenced rows and in ori_kv row
// 0, ±∞ sinks, empty key sets.
func drawPypto(r *rand.Rand, fam problem.Family, lim limits) cases.Case {
	c := cases.Case{Family: fam, Seed: r.Uint64(), H: drawH(r, lim), D: drawD(r, lim)}
	c.B = []int{1, 1, 2, 3}[r.IntN(4)]
	if r.IntN(2) == 0 {
		c.S = 2
	}
	c.Win = []int{1, 3, 8, 16, 32, 128}[r.IntN(6)]
	if fam != problem.SWA {
		c.IdxTopK = []int{0, 1, 4, 16, 61, 128, 200}[r.IntN(7)]
		c.Ratio = []int{0, 1, 2, 3, 4, 8}[r.IntN(6)]
		if fam == problem.HCA && c.Ratio == 0 {
			c.Ratio = 1 + r.IntN(8) // 128 would leave hardly any slot in small cases
		}
		c.CmpBlockSize = []int{1, 2, 5, 16, 32}[r.IntN(5)]
		c.Invalid = []float64{0, 0.1, 0.3, 1}[r.IntN(4)]
		if fam == problem.CSA && r.IntN(3) == 0 {
			c.IdxWidth = c.IdxTopK + 1 + r.IntN(8)
		}
	}
	c.BlockSize = []int{1, 3, 16, 32, 128}[r.IntN(5)]
	if r.IntN(2) == 0 {
		c.BlockTable = "permuted"
	}
	if r.IntN(4) == 0 { // short histories: p = 0 and windows shorter than WIN abound
		s := max(c.S, 1)
		c.Positions = make([]int, c.B*s)
		for b := range c.B {
			last := s - 1 + r.IntN(3)
			for j := range s {
				c.Positions[b*s+j] = last - s + 1 + j
			}
		}
	}
	switch fam {
	case problem.CSA:
		if r.IntN(3) == 0 {
			c.Plant = append(c.Plant, cases.PlantBoundEdge)
		}
		if r.IntN(4) == 0 {
			c.Plant = append(c.Plant, cases.PlantRow0NonFinite)
		}
	case problem.SWA:
		if r.IntN(3) == 0 {
			c.Plant = append(c.Plant, cases.PlantShortLens)
		}
	}
	if fam != problem.SWA && r.IntN(4) == 0 {
		c.Plant = append(c.Plant, cases.PlantDuplicate)
	}
	if fam != problem.SWA && r.IntN(6) == 0 {
		c.Plant = append(c.Plant, cases.PlantUnmappedPage)
	}
	c.Poison = r.IntN(2) == 0
	drawValues(r, &c)
	if c.Values.Dist == "dominant" {
		c.Values.Dist = ""
	}
	drawSink(r, &c)
	for Work(c) > lim.work && (c.H > 1 || c.D > 1) {
		c.H, c.D = max(1, c.H/2), max(1, c.D/2)
		if c.Sink != nil && c.Sink.Values != nil {
			c.Sink.Values = c.Sink.Values[:c.H]
		}
	}
	drawDType(r, &c)
	if err := c.Validate(); err != nil {
		panic(fmt.Sprintf("props: generated an invalid case (%v): %s", err, c))
	}
	return c
}

// pyptoClasses marks the pypto edge classes case c reaches.
func pyptoClasses(c cases.Case, in *problem.Inputs, hit map[string]bool) {
	hit[ClassPoison] = c.Poison
	hit[ClassRow0Poison] = hasPlant(c, cases.PlantRow0NonFinite)
	hit[ClassCmpBoundEdge] = hasPlant(c, cases.PlantBoundEdge) && in.IdxTopK > 0
	hit[ClassCmpDuplicate] = hasPlant(c, cases.PlantDuplicate) && in.PyptoCmpCols() >= 2
	hit[ClassSwaShortLens] = hasPlant(c, cases.PlantShortLens)
	hit[ClassUnmappedPage] = hasPlant(c, cases.PlantUnmappedPage) && in.Win > 0
	hit[ClassUnreadIdx] = in.Family == problem.CSA && in.TopK > in.IdxTopK
	var keys []problem.Key
	for t := 0; t < in.T; t++ {
		p := int(in.Pos[t])
		hit[ClassPosZero] = hit[ClassPosZero] || p == 0
		hit[ClassShortWindow] = hit[ClassShortWindow] || p+1 < in.Win
		if keys = in.RefKeys(t, 0, keys); len(keys) == 0 {
			hit[ClassEmptyKeys] = true
		}
		if in.Family == problem.CSA {
			for _, x := range in.Idx[t*in.TopK : t*in.TopK+in.IdxTopK] {
				hit[ClassRawInvalid] = hit[ClassRawInvalid] || x <= -2 || (x >= 0 && int(x) >= in.CmpBound(t))
			}
		}
		for sb := 0; sb < in.PyptoBlocks(); sb++ {
			if in.PyptoBlockValid(t, sb) == 0 {
				hit[ClassAllInvBlock] = true
			}
		}
	}
}

func hasPlant(c cases.Case, p string) bool {
	for _, x := range c.Plant {
		if x == p {
			return true
		}
	}
	return false
}

// pyptoRowKeys bounds the keys per token: the window plus the compressed
// columns read.
func pyptoRowKeys(c cases.Case) []int {
	ns := make([]int, c.Tokens())
	for t := range ns {
		ns[t] = c.Win + c.IdxTopK
	}
	return ns
}

// pyptoCandidates are the shrink steps of a pypto case: one batch entry,
// one token per entry, fewer window and compressed columns, no plants,
// no poison, no permutation.
func pyptoCandidates(c cases.Case, add func(func(d *cases.Case)), smaller func(int) []int) {
	s := max(c.S, 1)
	if c.B > 1 {
		add(func(d *cases.Case) {
			d.B = 1
			if d.Positions != nil {
				d.Positions = d.Positions[:s]
			}
		})
	}
	if c.S == 2 {
		add(func(d *cases.Case) {
			d.S = 0
			if d.Positions != nil {
				p := make([]int, d.B)
				for b := range p {
					p[b] = d.Positions[b*2+1]
				}
				d.Positions = p
			}
		})
	}
	for _, v := range smaller(c.Win) {
		if v+c.IdxTopK >= 1 {
			add(func(d *cases.Case) { d.Win = v })
		}
	}
	for _, v := range smaller(c.IdxTopK) {
		if c.Win+v >= 1 {
			add(func(d *cases.Case) {
				d.IdxTopK = v
				if d.IdxWidth != 0 && d.IdxWidth <= v {
					d.IdxWidth = 0
				}
			})
		}
	}
	if c.IdxWidth != 0 {
		add(func(d *cases.Case) { d.IdxWidth = 0 })
	}
	if c.Positions != nil {
		add(func(d *cases.Case) { d.Positions = nil })
	}
	if c.Invalid != 0 {
		add(func(d *cases.Case) { d.Invalid = 0 })
	}
	if c.BlockTable != "" {
		add(func(d *cases.Case) { d.BlockTable = "" })
	}
	if c.Poison {
		add(func(d *cases.Case) { d.Poison = false })
	}
	for i := range c.Plant {
		add(func(d *cases.Case) { d.Plant = append(d.Plant[:i:i], d.Plant[i+1:]...) })
	}
}

// pyptoOneKey keeps one token per batch entry and only its window's
// newest row (WIN = 1, no compressed column): one key per token.
func pyptoOneKey(c cases.Case) cases.Case {
	c = pyptoTokens(c, c.B)
	c.Win, c.IdxTopK, c.IdxWidth = 1, 0, 0
	c.Plant = slices.DeleteFunc(c.Plant, func(p string) bool { return p == cases.PlantShortLens || p == cases.PlantUnmappedPage })
	if len(c.Plant) == 0 {
		c.Plant = nil
	}
	return c
}

// pyptoTiny is tiny for the pypto families: at most 2 batch entries of one
// token, WIN ≤ 4 and at most 4 compressed columns.
func pyptoTiny(c cases.Case) cases.Case {
	c = pyptoTokens(c, min(c.B, 2))
	c.Win, c.IdxTopK = min(c.Win, 4), min(c.IdxTopK, 4)
	if c.IdxWidth <= c.IdxTopK {
		c.IdxWidth = 0
	}
	if c.Win+c.IdxTopK == 0 {
		c.Win = 1
	}
	return c
}

// pyptoTokens keeps the last token of the first b batch entries.
func pyptoTokens(c cases.Case, b int) cases.Case {
	s := max(c.S, 1)
	if c.Positions != nil {
		p := make([]int, b)
		for i := range p {
			p[i] = c.Positions[i*s+s-1]
		}
		c.Positions = p
	}
	c.B, c.S = b, 0
	return c
}
