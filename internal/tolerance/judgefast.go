package tolerance

import (
	"math"
	"sync"

	"github.com/attnvet/attnvet/ref"
)

// allowed is Terms(r, e).Total with the same operations in the same order,
// without building the terms: the judging loop's bound (TestAllowedIsTotal).
func (rb *RowBound) allowed(r *ref.Result, e int) float64 {
	if rb.Exact {
		return 0
	}
	if rb.Unbounded || rb.Domain {
		return math.Inf(1)
	}
	m := rb.m
	o := math.Abs(r.O[e])
	var out float64
	if rb.RangeOnly {
		pre := rb.rangeCoef*rb.row.MaxAbsV + o + rb.absBase + m.ea
		if m.uo > 0 {
			out = m.uo*(o+pre) + m.eo
		}
		return pre + out
	}
	jac := (rb.jac[0]+rb.dev1Extra)*r.Dev1[e] + rb.jac[1]*r.DevA[e] + rb.jac[2]*r.DevX[e] + rb.jac[3]*r.DevM[e]
	return rb.allowedWith(r, e, jac)
}

// allowedWith is allowed with the Jacobian term jac given: allowed for
// the row's own deviation sums, a lower bound of it for jac = 0 (every
// later operation is monotone in jac, and the sums are ≥ 0).
func (rb *RowBound) allowedWith(r *ref.Result, e int, jac float64) float64 {
	m := rb.m
	o := math.Abs(r.O[e])
	var out float64
	absV := r.AbsV[e]
	acc := rb.absVCoef * absV
	var pr float64
	if rb.pProb > 0 {
		pr = rb.pProb * math.Min(absV, m.Lambda*math.Sqrt(rb.row.PMax*rb.row.MaxAbsV*absV))
	} else if rb.pRig > 0 {
		pr = rb.pRig * absV
		acc -= pr
	}
	num := jac + acc + pr + rb.oCoef*o + (rb.absBase + rb.absO*o)
	pre := num / rb.denom
	if rb.sinkOver {
		pre += o
	}
	div := (1+m.fp8.divExtra)*m.ua*(o+pre) + m.ea + m.fp8.divAbs
	pre += div
	if m.uo > 0 {
		out = m.uo*(o+pre) + m.eo
	}
	return pre + out
}

// judge is Judge: Bounds and JudgeWith's verdict, row by row, without the
// per-element arrays (TestJudgeMatchesBounds compares the two).
func (b BoundCriterion) judge(x *Input) Verdict {
	m := NewModel(x.Profile, x.Shape, x.In, b.Mode)
	if x.Ref.Lazy() {
		return b.complete(x, b.judgeLazy(x, m))
	}
	v := Verdict{Criterion: b.Name(), WorstElem: -1}
	dv := x.Ref.Dv
	want, out := x.Ref.O, x.Out
	for ri := range x.Ref.Rows {
		rb := m.rowAt(x.Ref, ri)
		if rb.Domain || rb.Unbounded {
			v.Skipped += dv
			continue
		}
		for e := ri * dv; e < (ri+1)*dv; e++ {
			a := rb.allowed(x.Ref, e)
			v.Checked++
			r := want[e]
			// ratioOf, written out: this is the hot loop, and ratioOf is
			// beyond the inliner's budget (a call per element).
			mis, both := finiteMismatch(out[e], r)
			var ratio float64
			switch {
			case mis:
				ratio = math.Inf(1)
			case both:
				ratio = 0
			default:
				err := math.Abs(float64(out[e]) - r)
				switch {
				case err == 0:
					ratio = 0
				case a == 0:
					ratio = math.Inf(1)
				default:
					ratio = err / a
				}
			}
			if ratio > 1 {
				v.Failed++
			}
			if ratio > v.Worst || v.WorstElem < 0 {
				v.Worst, v.WorstElem = ratio, e
			}
		}
	}
	return b.complete(x, v)
}

// complete is v, the row-by-row verdict on o, passed or not and
// finished as JudgeWith's is.
func (b BoundCriterion) complete(x *Input, v Verdict) Verdict {
	v.Pass = v.Failed == 0
	b.finish(x, &v)
	return v
}

// ratioOf is elementwise's err/allowed of output out against want.
func ratioOf(out float32, want, a float64) float64 {
	mis, both := finiteMismatch(out, want)
	switch {
	case mis:
		return math.Inf(1)
	case both:
		return 0
	}
	err := math.Abs(float64(out) - want)
	switch {
	case err == 0:
		return 0
	case a == 0:
		return math.Inf(1)
	}
	return err / a
}

// judgeScratch is judgeLazy's per-row memory, reused across calls (a
// campaign judges thousands of cases a second; allocating it was a third
// of the judgement's garbage). A pooled rbs keeps its last rows' pointers
// until overwritten: memory the reference pool holds anyway.
type judgeScratch struct {
	rbs         []RowBound
	ub          []float64
	exact, zero []bool
}

var judgePool = sync.Pool{New: func() any { return new(judgeScratch) }}

// grown returns (*s)[:n], growing *s when its capacity is short.
func grown[T any](s *[]T, n int) []T {
	if cap(*s) < n {
		*s = make([]T, n)
	}
	*s = (*s)[:n]
	return *s
}

// judgeLazy is judge's verdict on o for a reference without its deviation
// sums (ref.Options.LazyDev), cheap bound first. A row whose sums are
// certainly finite and ≥ 0 (clean) gets, per element, the upper bound
// ub = err/allowed(J = 0) of its ratio (allowed is monotone in the
// Jacobian term J ≥ 0). Its sums are computed (EnsureDev) only if some
// ub > 1 or is NaN (the verdict needs them), or if its largest ub reaches
// the worst exact ratio found (it might hold the worst). Every other
// element's ratio is a number in [0, ub] (a finite err against an
// allowance at least the cheap one: never NaN, so it cannot be the NaN a
// full scan's first element would pin as the worst), below the worst and
// at most 1: the counts, the worst ratio and its element are the full
// scan's (TestJudgeMatchesBounds judges lazy and full references alike).
func (b BoundCriterion) judgeLazy(x *Input, m *Model) Verdict {
	v := Verdict{Criterion: b.Name(), WorstElem: -1}
	r := x.Ref
	dv := r.Dv
	nr := len(r.Rows)
	js := judgePool.Get().(*judgeScratch)
	defer judgePool.Put(js)
	rbs := grown(&js.rbs, nr)     // every entry is written below
	ub := grown(&js.ub, nr)       // a row's largest ub; NaN: needs its sums
	exact := grown(&js.exact, nr) // the row's ratios are known exactly (its sums are in, or unused)
	zero := grown(&js.zero, nr)
	clear(ub)
	clear(exact)
	clear(zero)
	first := -1
	for ri := range r.Rows {
		rb := m.rowAt(r, ri)
		rbs[ri] = rb
		if rb.Domain || rb.Unbounded {
			v.Skipped += dv
			continue
		}
		v.Checked += dv
		if first < 0 {
			first = ri
		}
		if rb.Exact || rb.RangeOnly {
			exact[ri] = true // no deviation sum in their bound
			continue
		}
		if !rb.clean(r, ri) {
			ub[ri] = math.NaN()
			continue
		}
		u := 0.0
		for e := ri * dv; e < (ri+1)*dv; e++ {
			u = math.Max(u, ratioOf(x.Out[e], r.O[e], rb.allowedWith(r, e, 0)))
		}
		ub[ri] = u
		if !(u <= 1) {
			ub[ri] = math.NaN()
		}
	}
	if first < 0 {
		return v
	}
	// A row whose ub is 0 has every ratio 0 (err = 0, or matching
	// non-finite values, or an infinite allowance): exact without its sums.
	for ri := range r.Rows {
		if rb := &rbs[ri]; ub[ri] == 0 && !(rb.Domain || rb.Unbounded || rb.Exact || rb.RangeOnly) {
			zero[ri], exact[ri] = true, true
		}
	}
	ratio := func(ri, e int) float64 {
		if zero[ri] {
			return 0
		}
		return ratioOf(x.Out[e], r.O[e], rbs[ri].allowed(r, e))
	}
	best, bestElem := math.Inf(-1), -1 // the largest exact ratio (NaN aside), its first element
	eval := func(ri int) {
		if !exact[ri] {
			r.EnsureDev(ri) // RowBound does not depend on the sums
			exact[ri] = true
		}
		for e := ri * dv; e < (ri+1)*dv; e++ {
			if q := ratio(ri, e); q > best || (q == best && e < bestElem) {
				best, bestElem = q, e
			}
		}
	}
	for ri := range r.Rows {
		if rbs[ri].Domain || rbs[ri].Unbounded {
			continue
		}
		if exact[ri] || math.IsNaN(ub[ri]) {
			eval(ri)
		}
	}
	// Rows that may hold the worst: those whose ub reaches the best; a
	// row whose ub ties the best matters only before its element. The
	// best only rises, so a row skipped against the best so far is
	// skipped against the final one too; the largest ub goes first, to
	// raise the best early (no sort: one pass for it, one for the rest).
	cand := func(ri int) bool {
		return !exact[ri] && !(rbs[ri].Domain || rbs[ri].Unbounded) &&
			(ub[ri] > best || (ub[ri] == best && ri*dv <= bestElem))
	}
	top := -1
	for ri := range r.Rows {
		if cand(ri) && (top < 0 || ub[ri] > ub[top]) {
			top = ri
		}
	}
	if top >= 0 {
		eval(top)
	}
	for ri := range r.Rows {
		if cand(ri) {
			eval(ri)
		}
	}
	// The scan over the rows whose ratios are exact, in element order.
	for ri := range r.Rows {
		if !exact[ri] || rbs[ri].Domain || rbs[ri].Unbounded {
			continue
		}
		for e := ri * dv; e < (ri+1)*dv; e++ {
			ratio := ratio(ri, e)
			if ratio > 1 {
				v.Failed++
			}
			if ratio > v.Worst || v.WorstElem < 0 {
				v.Worst, v.WorstElem = ratio, e
			}
		}
	}
	return v
}

// clean reports whether row ri's deviation sums are certainly finite and
// ≥ 0 and its Jacobian coefficients finite and ≥ 0, so J is a number ≥ 0
// (possibly +Inf): every weight and magnitude feeding the sums is below
// 1e100 and o is finite, so no product or sum of n < 2^31 terms overflows.
func (rb *RowBound) clean(r *ref.Result, ri int) bool {
	row := &r.Rows[ri]
	const lim = 1e100
	if !(row.MaxA < lim && row.MaxAbsX < lim && row.MaxDiff < lim && row.MaxAbsV < lim && int64(row.N) < 1<<31) {
		return false
	}
	for _, c := range rb.jac {
		if !(c >= 0 && c < math.Inf(1)) {
			return false
		}
	}
	if !(rb.dev1Extra >= 0 && rb.jac[0]+rb.dev1Extra < math.Inf(1)) { // J's first coefficient
		return false
	}
	for e := ri * r.Dv; e < (ri+1)*r.Dv; e++ {
		if !(math.Abs(r.O[e]) < lim) {
			return false
		}
	}
	return true
}
