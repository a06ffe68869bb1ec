package props

import (
	"math/rand/v2"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/leanovate/gopter"
)

// The gopter adapter lives in a test file: only the property tests use
// it, so the attnvet binary does not link gopter.

// Gopter returns g as a gopter generator whose values (cases.Case) shrink
// with Candidates. adapt, if not nil, is applied to every drawn case and
// every shrink candidate (a property's precondition, e.g. one key per row).
// The generator draws a PCG seed from gopter's source and generates from it,
// so a gopter seed replays the same cases.
func (g Gen) Gopter(adapt func(cases.Case) cases.Case) gopter.Gen {
	return func(p *gopter.GenParameters) *gopter.GenResult {
		r := rand.New(rand.NewPCG(p.NextUint64(), p.NextUint64()))
		c := g.Draw(r)
		if adapt != nil {
			c = adapt(c)
		}
		return gopter.NewGenResult(c, func(v any) gopter.Shrink {
			cands := shrinkCandidates(v.(cases.Case), adapt)
			i := 0
			return func() (any, bool) {
				if i >= len(cands) {
					return nil, false
				}
				i++
				return cands[i-1], true
			}
		})
	}
}
