package mutscore

import (
	"math/rand/v2"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
)

// pyptoTemplate draws the targeted cases of the pypto families:
//
//   - csa-edges: positions with p+1 a multiple of the ratio (4, or 2..3),
//     idx_topk holding ⌊(p+1)/ratio⌋ − 1 and the bound itself, raw
//     invalid entries, unreferenced rows poisoned, ori_kv row 0 NaN/±Inf
//     (1 in 2), a sink (2 in 3); 1 in 3 instead a window inside one unmapped
//     page with p + 1 < ratio and no sink (empty key sets).
//   - hca-short: histories of at most a window (so every compressed entry
//     is −1 and every valid lane sits in block 0) or a little longer.
//   - swa-lens: windows shorter than WIN (p + 1 < WIN) and swa_lens cut
//     by one, poisoned rows, a sink (2 in 3).
func pyptoTemplate(r *rand.Rand, name string, seed uint64) cases.Case {
	c := cases.Case{Seed: seed, B: 1 + r.IntN(2), H: 1 + r.IntN(6), D: 1 + r.IntN(24)}
	if r.IntN(2) == 0 {
		c.S = 2
	}
	s := max(c.S, 1)
	positions := func(last func() int) {
		c.Positions = make([]int, c.B*s)
		for b := range c.B {
			l := max(last(), s-1)
			for j := range s {
				c.Positions[b*s+j] = l - s + 1 + j
			}
		}
	}
	switch name {
	case "csa-edges":
		c.Family = problem.CSA
		c.Ratio = []int{0, 2, 3}[r.IntN(3)]
		ratio := max(c.Ratio, 4*boolInt(c.Ratio == 0))
		c.Win, c.IdxTopK, c.BlockSize, c.CmpBlockSize = 1+r.IntN(8), 2+r.IntN(10), 1+r.IntN(8), 1+r.IntN(4)
		positions(func() int { return ratio*(1+r.IntN(c.IdxTopK+2)) - 1 })
		c.Plant = []string{cases.PlantBoundEdge}
		if r.IntN(2) == 0 {
			c.Plant = append(c.Plant, cases.PlantRow0NonFinite)
		}
		c.Invalid, c.Poison = 0.3, true
		if r.IntN(3) == 0 { // windows within one unmapped page, p + 1 < ratio, no sink: empty key sets
			c.Plant = append(c.Plant, cases.PlantUnmappedPage)
			c.BlockSize = 8 + r.IntN(8)
			positions(func() int { return r.IntN(ratio - 1) })
			c.Sink = nil
			return c
		}
	case "hca-short":
		c.Family = problem.HCA
		c.Win, c.IdxTopK, c.Ratio = 4+r.IntN(12), 1+r.IntN(12), 1+r.IntN(4)
		c.BlockSize, c.CmpBlockSize = 1+r.IntN(16), 1+r.IntN(4)
		positions(func() int { return r.IntN(c.Win) })
		if r.IntN(3) == 0 {
			c.Positions = nil
		}
	default: // swa-lens
		c.Family = problem.SWA
		c.Win, c.BlockSize = 2+r.IntN(20), 1+r.IntN(8)
		positions(func() int { return r.IntN(2 * c.Win) })
		if r.IntN(2) == 0 {
			c.Plant = []string{cases.PlantShortLens}
		}
		c.Poison = true
	}
	if r.IntN(2) == 0 {
		c.BlockTable = "permuted"
	}
	if r.IntN(3) != 0 {
		c.Sink = &cases.Sink{Kind: "random", Scale: 2, Offset: float64(r.IntN(3))}
	}
	return c
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
