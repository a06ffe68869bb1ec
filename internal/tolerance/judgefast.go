package tolerance

import (
	"math"

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
	v.Pass = v.Failed == 0
	b.finish(x, &v)
	return v
}
