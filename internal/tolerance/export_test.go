package tolerance

import "github.com/attnvet/attnvet/ref"

// JudgeViaBounds is the judgement the way Judge computed it before judge:
// the element arrays of Bounds, then JudgeWith.
func (b BoundCriterion) JudgeViaBounds(x *Input) Verdict {
	allowed, _, skip := Bounds(x, b.Mode)
	return b.JudgeWith(x, allowed, skip)
}

// AllowedAndTotal returns, for every element, allowed's value and Terms'
// Total under mode.
func AllowedAndTotal(x *Input, mode Mode) (fast, total []float64) {
	m := NewModel(x.Profile, x.Shape, x.In, mode)
	dv := x.Ref.Dv
	for ri := range x.Ref.Rows {
		rb := m.rowAt(x.Ref, ri)
		for e := ri * dv; e < (ri+1)*dv; e++ {
			fast = append(fast, rb.allowed(x.Ref, e))
			total = append(total, rb.Terms(x.Ref, e).Total)
		}
	}
	return fast, total
}

var _ = ref.Result{}
