package tolerance

import (
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/ref"
)

// repeatedRows marks the rows (t·H + h) whose key multiset holds one key
// (the same input row) more than once, in the families whose keys are
// index entries (sparse, mla, csa, hca, swa; elsewhere keys are distinct
// positions). Nil when no row repeats a key.
//
// The probabilistic model (Higham & Mary) takes the rounding errors of a
// sum as independent, mean-zero variables. The l and o sums of a row that
// repeats a key add the same term again and again, whose roundings are
// neither: in a csa validation run 200 copies of one compressed row (a
// bound ⌊(p+1)/ratio⌋ of 1 with 200 index columns) drove tiled/bc128/fp32
// to 1.01-1.14 of the prob allowance in 3 of 10^4 cases, within the
// rigorous bound. Those rows are judged with the rigorous accumulation
// terms in prob mode too (docs/tolerance.md).
func repeatedRows(in *problem.Inputs) []bool {
	if in.KeysDistinct() {
		return nil
	}
	var rep []bool
	var keys []problem.Key
	seen := map[*float32]bool{}
	for t := 0; t < in.T; t++ {
		for g := 0; g < in.Hkv; g++ {
			keys = in.RefKeys(t, g, keys)
			clear(seen)
			dup := false
			for _, k := range keys {
				if len(k.K) == 0 {
					continue
				}
				if seen[&k.K[0]] {
					dup = true
					break
				}
				seen[&k.K[0]] = true
			}
			if !dup {
				continue
			}
			if rep == nil {
				rep = make([]bool, in.T*in.H)
			}
			per := in.H / in.Hkv
			for h := g * per; h < (g+1)*per; h++ {
				rep[t*in.H+h] = true
			}
		}
	}
	return rep
}

// rowAt is the bound of row ri of r: Row, except that in prob mode a row
// that repeats a key takes the rigorous model's bound.
func (m *Model) rowAt(r *ref.Result, ri int) RowBound {
	if m.rep != nil && m.rep[ri] {
		return m.rig.Row(&r.Rows[ri])
	}
	return m.Row(&r.Rows[ri])
}
