// Package tolerance judges a kernel's output against the float64 reference.
// Each criterion maps (inputs, reference with its magnitudes, kernel output,
// precision profile) to a verdict per element and per case.
//
// Ours: bound (a rigorous per-element error bound derived from the profile:
// a correct kernel can never fail it) and prob (the same with probabilistic
// accumulation terms, failure probability below 1e-9 per case). The
// anchors, for comparison: allclose, ratio, fa2x, flashmla, ulp.
//
// Under every criterion an output element is non-finite exactly where the
// reference is (same NaN positions, same signed infinities), or it fails.
package tolerance

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/attnvet/attnvet/internal/jsonfloat"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/ref"
)

// Input is what a criterion judges.
type Input struct {
	In  *problem.Inputs
	Ref *ref.Result
	Out []float32 // the kernel's output, [T][H][Dv]
	// OutLSE is the kernel's lse [T][H] in the convention In.LSE; judged
	// by bound and prob when the problem declares one (nil otherwise).
	OutLSE []float32
	// OutMaxLogit is the kernel's max_logit [T][H] in the convention
	// In.MaxLogit; judged by bound and prob when the problem declares one
	// and this is non-nil (a kernel that returned none: empty, every row
	// fails; nil: the caller does not judge max_logit).
	OutMaxLogit []float32
	Profile     profile.Profile
	Shape       Shape
	// SamePrec is the output of a same-precision reference (fa2x); nil:
	// computed on demand.
	SamePrec []float32
}

// Verdict is a criterion's judgement of one case.
type Verdict struct {
	Criterion string  `json:"criterion"`
	Pass      bool    `json:"pass"`
	Worst     float64 `json:"worst"`      // largest err/allowed (case-level criteria: statistic/threshold)
	WorstElem int     `json:"worst_elem"` // element of Worst, −1 if none
	Failed    int     `json:"failed"`     // elements beyond their allowance
	Checked   int     `json:"checked"`    // elements judged
	Skipped   int     `json:"skipped"`    // elements outside the profile's range or without a finite bound
	Detail    string  `json:"detail,omitempty"`
	// The lse output, judged row by row where the problem declares one
	// (bound and prob; the anchors judge o only). Failed and Checked count
	// o's elements alone.
	LSE *LSEVerdict `json:"lse,omitempty"`
	// FailedOutputs names the outputs with a failure ("o", "lse", "max_logit").
	FailedOutputs []string `json:"failed_outputs,omitempty"`
	// WorstTerm and WorstRow (bound and prob, failed verdicts): the term
	// dominating the worst failing element's allowance (Terms.Dominant)
	// and its row's class (RowClass); findings' signatures use them.
	WorstTerm string `json:"worst_term,omitempty"`
	WorstRow  string `json:"worst_row_class,omitempty"`
	// MaxLogit is the judgement of the max_logit output, row by row like
	// the lse (bound and prob), where the problem declares one.
	MaxLogit *LSEVerdict `json:"max_logit,omitempty"`
}

// LSEVerdict is the judgement of a case's lse output.
type LSEVerdict struct {
	Worst    float64 `json:"-"`         // largest err/allowed (JSON "worst", ±Inf and NaN as strings)
	WorstRow int     `json:"worst_row"` // row t·H + h of Worst, −1 if none
	Failed   int     `json:"failed"`
	Checked  int     `json:"checked"`
	Skipped  int     `json:"skipped"`
}

// MarshalJSON writes Worst with jsonfloat (a NaN lse makes it +Inf).
func (v LSEVerdict) MarshalJSON() ([]byte, error) {
	type plain LSEVerdict // without the methods
	b, err := json.Marshal(struct {
		Worst json.RawMessage `json:"worst"`
		plain
	}{jsonfloat.Marshal(v.Worst), plain(v)})
	return b, err
}

// UnmarshalJSON reads what MarshalJSON writes.
func (v *LSEVerdict) UnmarshalJSON(b []byte) error {
	type plain LSEVerdict
	var x struct {
		Worst json.RawMessage `json:"worst"`
		plain
	}
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	*v = LSEVerdict(x.plain)
	if len(x.Worst) > 0 {
		w, err := jsonfloat.Unmarshal(x.Worst)
		if err != nil {
			return err
		}
		v.Worst = w
	}
	return nil
}

// Criterion is one way of deciding pass or fail.
type Criterion interface {
	Name() string
	Doc() string
	Judge(x *Input) Verdict
}

// Names of the criteria.
const (
	NameBound    = "bound"
	NameProb     = "prob"
	NameAllclose = "allclose"
	NameRatio    = "ratio"
	NameFA2x     = "fa2x"
	NameFlashMLA = "flashmla"
	NameULP      = "ulp"
)

// All returns every criterion, ours first.
func All() []Criterion {
	return []Criterion{
		BoundCriterion{Rigorous}, BoundCriterion{Probabilistic},
		Allclose{}, Ratio{ATol: 1e-4, RTol: 1.0 / 128, MaxBad: 0.005}, FA2x{}, FlashMLA{}, ULP{N: 2},
	}
}

// Lookup returns the criterion named name.
func Lookup(name string) (Criterion, error) {
	var names []string
	for _, c := range All() {
		if c.Name() == name {
			return c, nil
		}
		names = append(names, c.Name())
	}
	return nil, fmt.Errorf("unknown criterion %q (known: %s)", name, strings.Join(names, ", "))
}

// Names lists the criteria.
func Names() []string {
	var ns []string
	for _, c := range All() {
		ns = append(ns, c.Name())
	}
	return ns
}

// finiteMismatch reports whether out and ref differ in finiteness: NaN
// where the reference is not, or an infinity of another sign or position.
func finiteMismatch(out float32, r float64) (mismatch, bothNonFinite bool) {
	o := float64(out)
	on, rn := math.IsNaN(o), math.IsNaN(r)
	oi, ri := math.IsInf(o, 0), math.IsInf(r, 0)
	if !on && !rn && !oi && !ri {
		return false, false
	}
	if on && rn {
		return false, true
	}
	if oi && ri && o == r {
		return false, true
	}
	return true, false
}

// elementwise judges each element with allowed(e) and a check err ≤ allowed.
func elementwise(name string, x *Input, allowed func(e int) (float64, bool)) Verdict {
	return elementwiseAgainst(name, x, x.Ref.O, allowed)
}

// elementwiseAgainst is elementwise against the expected values want (the
// reference, or the reference as an anchor's own harness casts it).
func elementwiseAgainst(name string, x *Input, want []float64, allowed func(e int) (float64, bool)) Verdict {
	v := Verdict{Criterion: name, WorstElem: -1}
	for e, r := range want {
		a, ok := allowed(e)
		if !ok {
			v.Skipped++
			continue
		}
		v.Checked++
		ratio := ratioOf(x.Out[e], r, a)
		if ratio > 1 {
			v.Failed++
		}
		if ratio > v.Worst || v.WorstElem < 0 {
			v.Worst, v.WorstElem = ratio, e
		}
	}
	v.Pass = v.Failed == 0
	return v
}

// BoundCriterion is bound (Rigorous) or prob (Probabilistic).
type BoundCriterion struct{ Mode Mode }

func (b BoundCriterion) Name() string {
	if b.Mode == Probabilistic {
		return NameProb
	}
	return NameBound
}

func (b BoundCriterion) Doc() string {
	if b.Mode == Probabilistic {
		return "per-element bound from the profile with probabilistic accumulation (λ√k·u); P(false failure) < 1e-9 per case"
	}
	return "rigorous per-element error bound derived from the precision profile; a correct kernel cannot fail it"
}

// Bounds returns, per element, the allowed error and its output-rounding
// part; +Inf marks elements outside the profile's range or unbounded, and
// skip[e] is set for them.
func Bounds(x *Input, mode Mode) (allowed, outTerm []float64, skip []bool) {
	x.Ref.EnsureAllDev()
	m := NewModel(x.Profile, x.Shape, x.In, mode)
	n := len(x.Ref.O)
	allowed, outTerm, skip = make([]float64, n), make([]float64, n), make([]bool, n)
	dv := x.Ref.Dv
	for ri := range x.Ref.Rows {
		rb := m.rowAt(x.Ref, ri)
		for e := ri * dv; e < (ri+1)*dv; e++ {
			allowed[e], outTerm[e] = rb.Elem(x.Ref, e)
			skip[e] = rb.Domain || rb.Unbounded
		}
	}
	return allowed, outTerm, skip
}

// Judge is JudgeWith on Bounds, computed row by row without the arrays
// (judge; TestJudgeMatchesBounds).
func (b BoundCriterion) Judge(x *Input) Verdict { return b.judge(x) }

// JudgeWith is Judge with the element bounds already computed (Bounds), for
// callers that need the bounds themselves too.
func (b BoundCriterion) JudgeWith(x *Input, allowed []float64, skip []bool) Verdict {
	v := elementwise(b.Name(), x, func(e int) (float64, bool) { return allowed[e], !skip[e] })
	b.finish(x, &v)
	return v
}

// finish completes a verdict on o (both judging paths): the skipped
// elements' note, the lse and max_logit judgements where the problem
// declares them, and a failed verdict's worst term and row class.
func (b BoundCriterion) finish(x *Input, v *Verdict) {
	if v.Skipped > 0 {
		v.Detail = fmt.Sprintf("%d elements outside the %s profile's range (not judged)", v.Skipped, x.Profile.Name)
	}
	if v.Failed > 0 {
		v.FailedOutputs = append(v.FailedOutputs, "o")
	}
	if x.In.LSE != nil {
		lv := JudgeLSE(x, b.Mode)
		v.LSE = &lv
		if lv.Failed > 0 {
			v.Pass = false
			v.FailedOutputs = append(v.FailedOutputs, "lse")
			d := fmt.Sprintf("lse: %d of %d rows beyond their allowance (worst %.3gx)", lv.Failed, lv.Checked, lv.Worst)
			v.Detail = strings.TrimPrefix(v.Detail+"; "+d, "; ")
		}
	}
	judgeMaxLogitInto(v, x, b.Mode)
	if !v.Pass {
		b.annotate(x, v)
	}
}

// JudgeLSE judges the kernel's lse against the reference's, row by row,
// with the bound of mode. A missing lse output fails every row.
func JudgeLSE(x *Input, mode Mode) LSEVerdict {
	m := NewModel(x.Profile, x.Shape, x.In, mode)
	conv := *x.In.LSE
	return judgeRows(x, x.OutLSE, func(r *ref.Row) float64 { return ref.LSEOf(r, conv) },
		func(ri int, _ *ref.Row, want float64) (float64, bool) {
			rb := m.rowAt(x.Ref, ri)
			return rb.LSEAllowed(want)
		})
}

// judgeRows judges a per-row fp32 output (lse, max_logit) row by row:
// exact is a row's value in the declared convention, allowed its
// allowance (ok false: the row is outside the bound's domain, skipped).
func judgeRows(x *Input, out []float32, exact func(*ref.Row) float64, allowed func(ri int, r *ref.Row, want float64) (float64, bool)) LSEVerdict {
	v := LSEVerdict{WorstRow: -1}
	for ri := range x.Ref.Rows {
		row := &x.Ref.Rows[ri]
		want := exact(row)
		if w32 := float32(want); math.IsInf(float64(w32), 0) {
			want = float64(w32) // beyond FP32, the output's format: it must overflow
		}
		a, ok := allowed(ri, row, want)
		if !ok {
			v.Skipped++
			continue
		}
		v.addRow(ri, out, want, a)
	}
	return v
}

// addRow judges row ri of a per-row output (lse, max_logit) against its
// exact value want with allowance a; a row the kernel did not return is
// infinitely wrong.
func (v *LSEVerdict) addRow(ri int, out []float32, want, a float64) {
	v.Checked++
	ratio := math.Inf(1)
	if ri < len(out) {
		ratio = ratioOf(out[ri], want, a)
	}
	if ratio > 1 {
		v.Failed++
	}
	if ratio > v.Worst || v.WorstRow < 0 {
		v.Worst, v.WorstRow = ratio, ri
	}
}

// Allclose is torch.testing.assert_close with the defaults for the output
// dtype: |a−e| ≤ atol + rtol·|e| for every element.
type Allclose struct{}

func (Allclose) Name() string { return NameAllclose }
func (Allclose) Doc() string {
	return "torch.testing.assert_close defaults per output dtype (bf16 1.6e-2/1e-5, fp16 1e-3/1e-5, fp32 1.3e-6/1e-5)"
}

// AllcloseTols returns torch's default (rtol, atol) for format f.
func AllcloseTols(f num.Format) (rtol, atol float64) {
	switch f {
	case num.BF16:
		return 1.6e-2, 1e-5
	case num.FP16:
		return 1e-3, 1e-5
	case num.FP64:
		return 1e-7, 1e-7
	}
	return 1.3e-6, 1e-5
}

func (a Allclose) Judge(x *Input) Verdict {
	rtol, atol := AllcloseTols(x.Profile.Out)
	return elementwise(a.Name(), x, func(e int) (float64, bool) { return atol + rtol*math.Abs(x.Ref.O[e]), true })
}

// Ratio is pypto-lib's ratio_allclose: both sides cast to FP32, a point is
// bad when |a−e| > atol + rtol·|e|, and the case passes when at most MaxBad
// of the points are bad and no value on either side is NaN or ±Inf (its
// hard check, whatever the ratio).
type Ratio struct{ ATol, RTol, MaxBad float64 }

func (Ratio) Name() string { return NameRatio }
func (Ratio) Doc() string {
	return "pypto-lib ratio_allclose: atol 1e-4, rtol 1/128, at most 0.5% of points bad, no NaN/Inf"
}

func (r Ratio) Judge(x *Input) Verdict {
	want := float32Ref(x.Ref.O)
	v := elementwiseAgainst(r.Name(), x, want, func(e int) (float64, bool) { return r.ATol + r.RTol*math.Abs(want[e]), true })
	nonFinite := 0
	for e, w := range want {
		if !isFinite(w) || !isFinite(float64(x.Out[e])) {
			nonFinite++
		}
	}
	frac := 0.0
	if v.Checked > 0 {
		frac = float64(v.Failed) / float64(v.Checked)
	}
	v.Detail = fmt.Sprintf("%d of %d points bad (%.3g%%), worst point at %.3gx its allowance", v.Failed, v.Checked, 100*frac, v.Worst)
	v.Pass = frac <= r.MaxBad && nonFinite == 0
	v.Worst = frac / r.MaxBad
	if nonFinite > 0 {
		v.Detail += fmt.Sprintf("; %d NaN or Inf values (ratio_allclose fails on any)", nonFinite)
		v.Worst = math.Inf(1)
		if v.Failed == 0 {
			v.Failed = nonFinite // matching infinities are not bad points, but they fail the case
		}
	}
	return v
}

// float32Ref is the reference as a harness that casts it to FP32 sees it.
func float32Ref(o []float64) []float64 {
	w := make([]float64, len(o))
	for i, r := range o {
		w[i] = float64(float32(r))
	}
	return w
}

func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// FA2x is FlashAttention's rule: the kernel's max error is at most twice
// the max error of a same-precision reference implementation, plus an
// absolute slack of one output ulp at 0.3 (2× the rounding error of
// x + 0.3 − 0.3, as its tests compute it).
type FA2x struct{}

func (FA2x) Name() string { return NameFA2x }
func (FA2x) Doc() string {
	return "FlashAttention: max error ≤ 2× that of a same-precision reference + 2 half-ulps at 0.3"
}

func (f FA2x) Judge(x *Input) Verdict {
	same := x.SamePrec
	if same == nil {
		same = SamePrecision(x.In, x.Profile)
	}
	v := Verdict{Criterion: f.Name(), WorstElem: -1}
	maxKernel, maxSame := 0.0, 0.0
	for e, r := range x.Ref.O {
		v.Checked++
		if mis, _ := finiteMismatch(x.Out[e], r); mis {
			v.Failed++
			v.WorstElem, maxKernel = e, math.Inf(1)
			continue
		}
		if d := math.Abs(float64(x.Out[e]) - r); d > maxKernel || math.IsNaN(d) {
			if !math.IsNaN(d) {
				maxKernel, v.WorstElem = d, e
			}
		}
		if d := math.Abs(float64(same[e]) - r); d > maxSame {
			maxSame = d
		}
	}
	allowed := 2*maxSame + num.Ulp(x.Profile.Out, 0.3)
	v.Worst = maxKernel / allowed
	v.Pass = v.Failed == 0 && maxKernel <= allowed
	if !v.Pass && v.Failed == 0 {
		// A max-error rule: it fails on the largest error, but the
		// messages that count elements beyond the allowance should not
		// say 0, so count those above the rule's one allowance.
		for e, r := range x.Ref.O {
			if d := math.Abs(float64(x.Out[e]) - r); d > allowed {
				v.Failed++
			}
		}
	}
	rel := "≤"
	if !v.Pass {
		rel = ">"
	}
	v.Detail = fmt.Sprintf("max error %.3g %s allowance %.3g (2 × the same-precision reference's max error %.3g + ulp(0.3))", maxKernel, rel, allowed, maxSame)
	return v
}

// FlashMLA is FlashMLA's check_is_allclose (tests/kernelkit/compare.py):
// both sides cast to FP32; identical +Inf, −Inf and NaN positions, those
// points then zeroed; a point passes iff |a−r| < 1e-3 or
// |a−r|/(|r|+1e-6) < 2.01/128 (strict); and the cosine distance
// 1 − 2Σar/Σ(a²+r²) in float64, taken as 0 when Σr² < 1e-12, is at most
// 5e-6 in magnitude.
type FlashMLA struct{}

func (FlashMLA) Name() string { return NameFlashMLA }
func (FlashMLA) Doc() string {
	return "FlashMLA: same inf/NaN positions, abs 1e-3 or rel 2.01/128 per element, cosine distance ≤ 5e-6"
}

func (f FlashMLA) Judge(x *Input) Verdict {
	want := float32Ref(x.Ref.O)
	v := elementwiseAgainst(f.Name(), x, want, func(e int) (float64, bool) {
		// err < a strictly ⟺ err ≤ the float64 just below a.
		a := math.Max(1e-3, 2.01/128*(math.Abs(want[e])+1e-6))
		return math.Nextafter(a, 0), true
	})
	var ar, aa, rr float64
	for e, r := range want {
		a := float64(x.Out[e])
		if !isFinite(a) || !isFinite(r) {
			continue
		}
		ar += a * r
		aa += a * a
		rr += r * r
	}
	cos := 0.0
	if rr >= 1e-12 {
		cos = 1 - 2*ar/(rr+aa)
	}
	if c := math.Abs(cos) / 5e-6; c > v.Worst {
		v.Worst = c
	}
	v.Pass = v.Pass && math.Abs(cos) <= 5e-6
	v.Detail = fmt.Sprintf("cosine distance %.3g", cos)
	return v
}

// ULP passes elements within N units in the last place of the output
// format at the reference value.
type ULP struct{ N float64 }

func (ULP) Name() string { return NameULP }
func (u ULP) Doc() string {
	return fmt.Sprintf("|a−e| ≤ %g ulps of the output format at e", u.N)
}

func (u ULP) Judge(x *Input) Verdict {
	return elementwise(u.Name(), x, func(e int) (float64, bool) {
		r := x.Ref.O[e]
		if math.IsNaN(r) || math.IsInf(r, 0) {
			return 0, true
		}
		return u.N * num.Ulp(x.Profile.Out, r), true
	})
}

// SamePrecision is attention computed the plain way in the profile's
// input precision, as a framework's reference would: scores from the
// inputs with FP32 accumulation rounded to the input format, a softmax in
// FP32 (sink in the denominator) rounded to the input format, P·V with
// FP32 accumulation, then the output cast. It is what fa2x compares with.
func SamePrecision(in *problem.Inputs, p profile.Profile) []float32 {
	out := make([]float32, in.OutLen())
	rin := func(x float32) float32 { return num.Round32(p.In, x, num.RNE) }
	var keys []problem.Key
	var s []float32
	scale := float32(in.Scale)
	for t := 0; t < in.T; t++ {
		for h := 0; h < in.H; h++ {
			keys = in.RefKeys(t, in.Group(h), keys)
			o := out[(t*in.H+h)*in.Dv : (t*in.H+h+1)*in.Dv]
			sigma := in.SinkOf(h)
			if len(keys) == 0 || math.IsInf(float64(sigma), 1) {
				continue
			}
			q := in.QRow(t, h)
			s = s[:0]
			mx := sigma
			for _, k := range keys {
				var acc float32
				for d, qd := range q {
					acc += float32(qd * k.K[d])
				}
				x := float32(acc * scale)
				if c := float32(in.Softcap); c > 0 {
					x = float32(c * num.Tanh32(x/c))
				}
				if sl := in.AlibiSlope(h); sl != 0 {
					x += float32(sl * k.Dist)
				}
				x = rin(x)
				s = append(s, x)
				mx = max(mx, x)
			}
			var l float32
			for i := range s {
				s[i] = num.Exp32(s[i] - mx)
				l += s[i]
			}
			l += num.Exp32(sigma - mx)
			acc := make([]float32, in.Dv)
			for i, k := range keys {
				pi := rin(s[i] / l)
				for j, v := range k.V {
					acc[j] += float32(pi * v)
				}
			}
			for j := range o {
				o[j] = num.Round32(p.Out, acc[j], p.OutRound)
			}
		}
	}
	return out
}

// SortedNames is Names, sorted (for stable JSON keys).
func SortedNames() []string {
	ns := Names()
	sort.Strings(ns)
	return ns
}

// ElemTerms returns element e's allowance term by term under mode.
func ElemTerms(x *Input, mode Mode, e int) Terms {
	x.Ref.EnsureDev(e / x.Ref.Dv)
	m := NewModel(x.Profile, x.Shape, x.In, mode)
	rb := m.rowAt(x.Ref, e/x.Ref.Dv)
	return rb.Terms(x.Ref, e)
}

// WellConditioned reports, per element, whether its bound comes from the
// full softmax analysis (false: the range fallback, outside the domain, or
// an exact zero). Tightness is measured only where it is true.
func WellConditioned(x *Input, mode Mode) []bool {
	m := NewModel(x.Profile, x.Shape, x.In, mode)
	ok := make([]bool, len(x.Ref.O))
	dv := x.Ref.Dv
	for ri := range x.Ref.Rows {
		rb := m.rowAt(x.Ref, ri)
		full := !rb.Domain && !rb.Unbounded && !rb.RangeOnly && !rb.Exact
		for e := ri * dv; e < (ri+1)*dv; e++ {
			ok[e] = full
		}
	}
	return ok
}
