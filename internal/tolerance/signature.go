package tolerance

import (
	"math"

	"github.com/attnvet/attnvet/ref"
)

// Dominant names the term of an allowance that the failure went through:
// "exact" when the allowance is 0 because the exact result is (no keys, a
// +Inf sink: o must be exactly 0), "range" for an ill-conditioned row
// judged by the convex-combination bound, "unbounded" for no finite
// bound, else the largest term by its JSON name ("jacobian",
// "accumulation", "p_rounding", "sink", "underflow", "denominator",
// "sink_overflow", "division", "output_rounding"; ties go to the earlier
// in that order). Campaigns group failures by it (findings' signatures).
func (t Terms) Dominant() string {
	switch {
	case math.IsInf(t.Total, 1):
		return "unbounded"
	case t.Total == 0:
		return "exact"
	case t.Range > 0:
		return "range"
	}
	best, name := -1.0, ""
	for _, c := range []struct {
		n string
		v float64
	}{{"jacobian", t.Jacobian}, {"accumulation", t.Accumulate}, {"p_rounding", t.PRound}, {"sink", t.Sink},
		{"underflow", t.Underflow}, {"denominator", t.Denom}, {"sink_overflow", t.SinkOver}, {"division", t.Division},
		{"output_rounding", t.Output}} {
		if c.v > best {
			best, name = c.v, c.n
		}
	}
	return name
}

// RowClass is the class of a reference row that matters to a defect,
// not its sizes: "n0" (no key attended), "n1" (one key), and the sink:
// "sink+inf" (a +Inf sink), "sink" (a finite one); a −Inf sink is no
// sink. Joined by "+" in that order; "" for a row of two or more keys
// and no sink.
func RowClass(r *ref.Row) string {
	s := ""
	add := func(f string) {
		if s != "" {
			s += "+"
		}
		s += f
	}
	switch r.N {
	case 0:
		add("n0")
	case 1:
		add("n1")
	}
	switch {
	case math.IsInf(r.Sink, 1):
		add("sink+inf")
	case !math.IsInf(r.Sink, -1) && !math.IsNaN(r.Sink):
		add("sink")
	}
	return s
}

// annotate sets v.WorstTerm and v.WorstRow for a failed verdict: the
// dominant term of the worst element's allowance and its row's class, or
// for a failure of lse alone "lse" and the worst lse row's class.
func (b BoundCriterion) annotate(x *Input, v *Verdict) {
	dv := x.Ref.Dv
	switch {
	case v.Failed > 0 && v.WorstElem >= 0 && dv > 0:
		v.WorstTerm = ElemTerms(x, b.Mode, v.WorstElem).Dominant()
		v.WorstRow = RowClass(&x.Ref.Rows[v.WorstElem/dv])
	case v.LSE != nil && v.LSE.Failed > 0 && v.LSE.WorstRow >= 0:
		v.WorstTerm = "lse"
		v.WorstRow = RowClass(&x.Ref.Rows[v.LSE.WorstRow])
	}
}
