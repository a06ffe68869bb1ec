package props

import (
	"math/rand/v2"
	"slices"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
)

// denseExpectedViolations are the violations a dense case may report: a
// planted block-table entry outside the pool (reported when a query
// attends its page) and seqused_k above a sequence's keys.
func denseExpectedViolations(c cases.Case) []string {
	var may []string
	if slices.Contains(c.Plant, problem.VBlockTable) {
		may = append(may, problem.VBlockTable)
	}
	for b, u := range c.SequsedK {
		if b < len(c.Sk) && u > c.Sk[b] {
			may = append(may, problem.VSequsedK)
		}
	}
	return may
}

// drawDensePaged puts a drawn dense case's keys in a paged cache (page
// size 1, odd sizes, powers of two; identity or permuted table; NaN in the
// unreferenced pages and past each sequence's last key) and/or gives it
// seqused_k below the stored keys.
func drawDensePaged(r *rand.Rand, c *cases.Case) {
	if r.IntN(100) < 40 {
		c.Page = []int{1, 1, 2, 3, 5, 7, 16, 61, 64, 256}[r.IntN(10)]
		if r.IntN(2) == 0 {
			c.BlockTable = "permuted"
		}
		c.Poison = r.IntN(2) == 0
	}
	if r.IntN(100) < 20 {
		c.SequsedK = make([]int, len(c.Sk))
		for b, sk := range c.Sk {
			c.SequsedK[b] = sk
			if sk > 0 && r.IntN(2) == 0 {
				c.SequsedK[b] = r.IntN(sk + 1)
			}
		}
	}
}
