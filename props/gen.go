// Package props holds the case generators (biased toward the edge classes
// where attention kernels break), the Case shrinker, and the gopter
// properties that state what must hold.
package props

import (
	"math/rand/v2"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
)

// CaseAt is the i-th case of the campaign with seed seed, for family fam
// ("" draws the family too). It depends only on (seed, i, fam), so any
// subset of indices (a shard) can be generated independently.
func CaseAt(seed uint64, i int, fam problem.Family) cases.Case {
	r := rand.New(rand.NewPCG(seed, uint64(i)*0x9e3779b97f4a7c15+1))
	return draw(r, fam)
}

// draw is a provisional generator; see gen_edge.go for the biased one.
func draw(r *rand.Rand, fam problem.Family) cases.Case {
	if fam == "" {
		fam = []problem.Family{problem.Sparse, problem.Window}[r.IntN(2)]
	}
	c := cases.Case{Family: fam, Seed: r.Uint64(), H: 1 + r.IntN(5), D: 1 + r.IntN(40)}
	if fam == problem.Sparse {
		c.B, c.S = 1+r.IntN(2), 1+r.IntN(2)
		c.Win, c.IdxTopK, c.BlockSize = r.IntN(20), r.IntN(40), 1+r.IntN(16)
		for range c.B {
			c.Seqused = append(c.Seqused, r.IntN(80))
		}
	} else {
		c.T = 1 + r.IntN(70)
		c.Window = r.IntN(40)
	}
	return c
}

// Classes names the edge classes case c hits (see DESIGN.md "Edge cases
// are the product"), so campaigns can count coverage.
func Classes(c cases.Case) []string {
	return nil
}

// Shrink returns a smaller case for which fails still holds, trying at
// most budget candidate evaluations.
func Shrink(c cases.Case, fails func(cases.Case) bool, budget int) cases.Case {
	return c
}
