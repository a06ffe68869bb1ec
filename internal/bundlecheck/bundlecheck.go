// Package bundlecheck judges a kernel's dumped output: it reads a bundle
// (safetensors or .npz), decodes the problem it states, recomputes the
// exact answer and judges the kernel's outputs under every criterion
// (what `attnvet check` does, docs/interop.md), and prints the outcome.
package bundlecheck

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/pipeline"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/internal/safeio"
	"github.com/attnvet/attnvet/internal/show"
	"github.com/attnvet/attnvet/internal/targets"
	"github.com/attnvet/attnvet/internal/tolerance"
)

// Version is the version of check's JSON output.
const Version = 1

// File is check's JSON output (docs/interop.md).
type File struct {
	Version  int      `json:"version"`
	Command  string   `json:"command"`
	Criteria []string `json:"criteria"` // the gating criteria
	Bundles  []Result `json:"bundles"`
	Exit     int      `json:"exit"`
}

// Result is one bundle's outcome. Status: pass, fail (a verified
// mismatch under a gating criterion), contract (inputs that break the
// kernel's contract: not judged) or invalid (the bundle cannot be read).
type Result struct {
	Path       string           `json:"path"`
	Status     string           `json:"status"`
	Error      string           `json:"error,omitempty"`
	Problem    string           `json:"problem,omitempty"`
	Profile    *profile.Profile `json:"profile,omitempty"`
	Warnings   []string         `json:"warnings,omitempty"`
	Violations []Violation      `json:"violations,omitempty"`
	Verdicts   []Verdict        `json:"verdicts,omitempty"`
	Worst      []Elem           `json:"worst,omitempty"` // by err/bound (rigorous), largest first
	// Hints name declarations under which a failing bundle would pass bound
	// (a likely misdeclaration); never a pass.
	Hints    []string         `json:"hints,omitempty"`
	Seconds  float64          `json:"seconds"`
	detail   *campaign.Detail // for the failure printout
	verdicts map[string]*Verdict
}

type Violation struct {
	problem.Violation
	Tensor string `json:"tensor"`
}

type Verdict struct {
	Criterion string         `json:"criterion"`
	Gating    bool           `json:"gating"`
	Pass      bool           `json:"pass"`
	Worst     campaign.Ratio `json:"worst"`
	WorstElem []int          `json:"worst_elem,omitempty"` // (t, h, j)
	Failed    int            `json:"failed"`
	Checked   int            `json:"checked"`
	Skipped   int            `json:"skipped"`
	Detail    string         `json:"detail,omitempty"`
	// LSE is the judgement of the lse output (bound and prob, when the
	// bundle holds one); FailedOutputs names the outputs that failed.
	LSE           *tolerance.LSEVerdict `json:"lse,omitempty"`
	FailedOutputs []string              `json:"failed_outputs,omitempty"`
}

type Elem struct {
	T       int            `json:"t"`
	H       int            `json:"h"`
	J       int            `json:"j"`
	Ref     campaign.Ratio `json:"ref"`
	Got     campaign.Ratio `json:"got"`
	Err     campaign.Ratio `json:"err"`
	Allowed campaign.Ratio `json:"allowed"`
	Ratio   campaign.Ratio `json:"ratio"`
}

// bundleKernel stands for the kernel that produced a bundle: it has a
// profile and no way to run.
type bundleKernel struct {
	name string
	p    profile.Profile
}

func (k bundleKernel) Name() string             { return k.name }
func (k bundleKernel) Profile() profile.Profile { return k.p }
func (k bundleKernel) Run(*problem.Inputs) (*impl.Output, error) {
	return nil, errors.New("a bundle's kernel cannot be run")
}

// Options say how Check reads and judges a bundle.
type Options struct {
	Override       map[string]string // metadata given on the command line, over the bundle's
	Gating         []string          // the criteria whose verdicts decide the status (at least one)
	Limit          int64             // the memory an input may need, bytes
	AssumeDefaults bool              // judge semantics the bundle leaves unstated under the defaults
	// Decode and Criteria replace interop.Decode and tolerance.All when
	// set (tests make them panic).
	Decode   func(*bundle.File, map[string]string) (*interop.Bundle, error)
	Criteria func() []tolerance.Criterion
}

// Check reads, decodes and judges one bundle within opt.Limit bytes of
// memory. A panic (a bug of ours, whatever the input) is status
// internal: exit 3, not 2.
func Check(path string, opt Options) (r Result) {
	override, gating, limit := opt.Override, opt.Gating, opt.Limit
	decode, criteria := opt.Decode, opt.Criteria
	if decode == nil {
		decode = interop.Decode
	}
	if criteria == nil {
		criteria = tolerance.All
	}
	start := time.Now()
	r = Result{Path: path, verdicts: map[string]*Verdict{}}
	defer func() {
		r.Seconds = time.Since(start).Seconds()
		if p := recover(); p != nil {
			r.Status, r.Error = "internal", fmt.Sprintf("internal error: %v (please report it with the bundle)", p)
		}
	}()
	f, err := bundle.ReadFileLimit(path, limit)
	var nr *safeio.NotRegularError
	switch {
	case safeio.IsDir(err):
		q := safeio.ShellQuote(path)
		r.Status, r.Error = "invalid", fmt.Sprintf("a directory: check wants bundle files, e.g. attnvet check %s/*.safetensors %s/*.npz", q, q)
		return r
	case errors.As(err, &nr):
		r.Status, r.Error = "invalid", nr.Kind+", not a regular file: check reads bundle files (safetensors or .npz)"
		return r
	case err != nil:
		r.Status, r.Error = "invalid", strings.TrimPrefix(err.Error(), safeio.Printable(path)+": ")
		return r
	}
	if !opt.AssumeDefaults {
		if err := interop.Unstated(f, override); err != nil {
			r.Status, r.Error = "invalid", err.Error()
			return r
		}
	}
	if err := safeio.Check("decoding its tensors", decodeNeed(f), limit); err != nil {
		r.Status, r.Error = "invalid", err.Error()
		return r
	}
	b, err := decode(f, override)
	if err != nil {
		r.Status, r.Error = "invalid", err.Error()
		return r
	}
	in := b.Inputs
	r.Problem, r.Profile, r.Warnings = interop.Describe(in), &b.Profile, b.Warnings
	if b.O == nil {
		name := interop.OutputName(in.Family)
		r.Status, r.Error = "invalid", "tensor "+name+": missing (the kernel's output [T, H, Dv] to judge)"
		return r
	}
	if err := safeio.Check(fmt.Sprintf("judging its %d output elements", in.OutLen()), judgeNeed(b), limit); err != nil {
		r.Status, r.Error = "invalid", err.Error()
		return r
	}
	p, err := pipeline.FromInputs(in)
	if err != nil {
		r.Status, r.Error = "internal", fmt.Sprintf("%v (please report it with the bundle)", err)
		return r
	}
	if vs := p.Violations; len(vs) > 0 {
		for _, v := range vs {
			r.Violations = append(r.Violations, Violation{v, interop.ViolationTensor(in, v)})
		}
		v := r.Violations[0]
		r.Status = "contract"
		r.Error = fmt.Sprintf("%d contract violations in the inputs (not judged), first: %s (tensor %s)", len(vs), v.Violation, v.Tensor)
		return r
	}
	rs := p.Ref
	x := p.Input(&impl.Output{O: b.O, LSE: b.LSE, MaxLogit: b.MaxLogit}, b.Profile, tolerance.Shape{})
	isGating := map[string]bool{}
	for _, g := range gating {
		isGating[g] = true
	}
	r.Status = "pass"
	var internal error
	for _, c := range criteria() {
		v, err := pipeline.Judge(c, x)
		if err != nil && internal == nil {
			internal = fmt.Errorf("internal error: %v (please report it with the bundle)", err)
		}
		cv := Verdict{Criterion: c.Name(), Gating: isGating[c.Name()], Pass: v.Pass, Worst: campaign.Ratio(v.Worst),
			Failed: v.Failed, Checked: v.Checked, Skipped: v.Skipped, Detail: v.Detail, LSE: v.LSE, FailedOutputs: v.FailedOutputs}
		if v.WorstElem >= 0 && v.WorstElem < in.OutLen() {
			cv.WorstElem = elemTHJ(in, v.WorstElem)
		}
		r.Verdicts = append(r.Verdicts, cv)
		if cv.Gating && !cv.Pass {
			r.Status = "fail"
		}
	}
	for i := range r.Verdicts {
		r.verdicts[r.Verdicts[i].Criterion] = &r.Verdicts[i]
	}
	if internal != nil {
		r.Status, r.Error = "internal", internal.Error()
		return r
	}
	if r.Status == "fail" {
		r.Hints = misdeclarationHints(f, override, b)
	}
	r.Worst = worstElems(x, 20)
	crit, _ := tolerance.Lookup(gating[0])
	r.detail = &campaign.Detail{Target: targets.Target{Name: path, Kernel: bundleKernel{path, b.Profile}}, Criterion: crit,
		Inputs: in, Ref: rs, Out: &impl.Output{O: b.O, LSE: b.LSE, MaxLogit: b.MaxLogit}}
	return r
}

// Bytes of check's peak memory per element, measured with /usr/bin/time
// -v (docs/interop.md, "Hostile input"), with headroom: a decoded input element
// is 4 bytes (16 for integer tensors, decoded through int64 or float64); an
// output element has six float64 reference values (48 bytes) and the
// judging's allowance, output-term and skip arrays; a row (token, head) has
// its reference summary (120 bytes).
const (
	checkMemBase   = 48 << 20
	checkPerOut    = 112
	checkPerRow    = 160
	checkPerIndex  = 16
	checkPerFloat  = 4
	checkHeldRatio = 2 // the bytes read (a view, or inflated), counted twice
)

var checkFloatTensors = map[string]bool{interop.TQ: true, interop.TK: true, interop.TV: true, interop.TO: true,
	interop.TOriKV: true, interop.TCmpKV: true, interop.TSink: true}
var checkIndexTensors = map[string]bool{interop.TOriBT: true, interop.TCmpBT: true, interop.TIdx: true, interop.TSeqused: true}

// decodeNeed estimates the peak memory of decoding f: the bytes read and
// the decoded tensors of the contract (others are not decoded).
func decodeNeed(f *bundle.File) int64 {
	need := float64(checkMemBase)
	for _, t := range f.Tensors {
		need += checkHeldRatio * float64(len(t.Data))
		switch n := float64(max(t.Len(), 0)); {
		case checkFloatTensors[t.Name]:
			need += checkPerFloat * n
		case checkIndexTensors[t.Name]:
			need += checkPerIndex * n
		}
	}
	return saturate(need)
}

// judgeNeed estimates the peak memory of judging a decoded bundle.
func judgeNeed(b *interop.Bundle) int64 {
	in := b.Inputs
	vals := len(in.Q) + len(in.K) + len(in.V) + len(in.OriKV) + len(in.CmpKV) + len(in.Sink) + len(b.O) +
		len(in.OriBT) + len(in.CmpBT) + len(in.Idx) + len(in.Seqused)
	out, rows := float64(in.T)*float64(in.H)*float64(in.Dv), float64(in.T)*float64(in.H)
	return saturate(checkMemBase + 4*float64(vals) + checkPerOut*out + checkPerRow*rows)
}

func saturate(x float64) int64 {
	if !(x < math.MaxInt64) {
		return math.MaxInt64
	}
	return int64(x)
}

func elemTHJ(in *problem.Inputs, e int) []int {
	return []int{e / (in.H * in.Dv), e / in.Dv % in.H, e % in.Dv}
}

// worstElems lists the n elements with the largest err/bound (rigorous).
func worstElems(x *tolerance.Input, n int) []Elem {
	allowed, _, skip := tolerance.Bounds(x, tolerance.Rigorous)
	worst := show.TopK[Elem]{K: n, Key: func(el Elem) float64 { return float64(el.Ratio) }}
	for e, r := range x.Ref.O {
		if skip[e] {
			continue
		}
		got := float64(x.Out[e])
		var err, ratio float64
		switch {
		case math.IsNaN(got) != math.IsNaN(r) || (math.IsInf(got, 0) || math.IsInf(r, 0)) && got != r:
			err, ratio = math.Inf(1), math.Inf(1)
		case math.IsNaN(got) || got == r:
		default:
			err = math.Abs(got - r)
			ratio = math.Inf(1)
			if allowed[e] > 0 {
				ratio = err / allowed[e]
			}
		}
		if n := len(worst.Items); n == worst.K && !(ratio > float64(worst.Items[n-1].Ratio)) {
			continue // would not enter: skip building it
		}
		thj := elemTHJ(x.In, e)
		worst.Add(Elem{T: thj[0], H: thj[1], J: thj[2], Ref: campaign.Ratio(r), Got: campaign.Ratio(got),
			Err: campaign.Ratio(err), Allowed: campaign.Ratio(allowed[e]), Ratio: campaign.Ratio(ratio)})
	}
	return worst.Items
}

// Print prints one bundle's outcome. Everything taken from the input
// (its path, tensor and metadata names in warnings and errors) is printed
// through safeio.Printable: it cannot drive the terminal.
func Print(w io.Writer, r *Result, top int) {
	path := safeio.Printable(r.Path)
	fmt.Fprintf(w, "check %s", path)
	if r.Problem != "" {
		fmt.Fprintf(w, ": %s", r.Problem)
	}
	fmt.Fprintln(w)
	if r.Profile != nil {
		fmt.Fprintf(w, "  profile     %s (%s)\n", r.Profile.Name, r.Profile.Describe())
	}
	for _, s := range r.Warnings {
		fmt.Fprintf(w, "  warning     %s\n", safeio.Printable(s))
	}
	switch r.Status {
	case "invalid":
		fmt.Fprintf(w, "INVALID %s: %s\n", path, safeio.OneLine(r.Error))
		return
	case "internal":
		fmt.Fprintf(w, "INTERNAL ERROR %s: %s\n", path, safeio.OneLine(r.Error))
		return
	case "contract":
		fmt.Fprintf(w, "  contract    the inputs break the kernel's input contract (SPEC.md §1): the kernel and the reference read different keys; not judged\n")
		for i, v := range r.Violations {
			if i == 20 {
				fmt.Fprintf(w, "              … and %d more (--json lists them all)\n", len(r.Violations)-20)
				break
			}
			fmt.Fprintf(w, "              %s [tensor %s]\n", safeio.Printable(v.Violation.String()), v.Tensor)
		}
		fmt.Fprintf(w, "CONTRACT %s: %d violations\n", path, len(r.Violations))
		return
	}
	fmt.Fprintf(w, "  %-10s %-6s %-7s %8s  %-16s %15s %8s\n", "criterion", "gating", "verdict", "worst", "at (t, h, j)", "failed/checked", "skipped")
	for _, v := range r.Verdicts {
		g, verdict := "", "PASS"
		if v.Gating {
			g = "yes"
		}
		if !v.Pass {
			verdict = "FAIL"
		}
		at := ""
		if v.WorstElem != nil {
			at = fmt.Sprintf("(%d, %d, %d)", v.WorstElem[0], v.WorstElem[1], v.WorstElem[2])
		}
		fmt.Fprintf(w, "  %-10s %-6s %-7s %8s  %-16s %15s %8d\n", v.Criterion, g, verdict, v.Worst, at, fmt.Sprintf("%d/%d", v.Failed, v.Checked), v.Skipped)
	}
	if r.Status == "fail" && top > 0 && r.detail != nil {
		show.WorstElements(w, r.detail, top)
	} else if top > 0 && len(r.Worst) > 0 {
		fmt.Fprintf(w, "  worst elements by err/bound (t, h, j): ")
		for i, el := range r.Worst {
			if i == min(top, 3) {
				break
			}
			if i > 0 {
				fmt.Fprint(w, ", ")
			}
			fmt.Fprintf(w, "(%d, %d, %d) %s", el.T, el.H, el.J, el.Ratio)
		}
		fmt.Fprintln(w)
	}
	var failed []string
	for _, v := range r.Verdicts {
		if v.Gating && !v.Pass {
			msg := fmt.Sprintf("%s: %d of %d elements beyond the allowance, worst err/allowed %s", v.Criterion, v.Failed, v.Checked, v.Worst)
			if l := v.LSE; l != nil && l.Failed > 0 {
				msg += fmt.Sprintf("; %s lse: %d of %d rows beyond the allowance, worst err/allowed %s",
					v.Criterion, l.Failed, l.Checked, campaign.Ratio(l.Worst))
			}
			failed = append(failed, msg)
		}
	}
	for _, v := range r.Verdicts {
		if l := v.LSE; l != nil && v.Gating {
			fmt.Fprintf(w, "  lse (%s)   %d rows judged, %d beyond the allowance, worst err/allowed %s\n", v.Criterion, l.Checked, l.Failed, campaign.Ratio(l.Worst))
		}
	}
	for _, h := range r.Hints {
		fmt.Fprintf(w, "  hint        %s\n", h)
	}
	if r.Status == "fail" {
		fmt.Fprintf(w, "FAIL %s: %s\n", path, strings.Join(failed, "; "))
	} else {
		fmt.Fprintf(w, "PASS %s\n", path)
	}
}

// JUnit renders the results as JUnit XML: one test per bundle and
// gating criterion; an invalid bundle or a contract violation is an error.
func JUnit(doc *File) []byte {
	s := campaign.JUnitSuite{Name: "attnvet check", Time: "0"}
	total := 0.0
	for _, r := range doc.Bundles {
		total += r.Seconds
		for _, g := range doc.Criteria {
			tc := campaign.JUnitCase{Name: r.Path, Classname: "attnvet.check." + g}
			switch r.Status {
			case "invalid":
				tc.Error = &campaign.JUnitMessage{Message: r.Error, Type: "invalid_bundle"}
				s.Errors++
			case "internal":
				tc.Error = &campaign.JUnitMessage{Message: r.Error, Type: "internal_error"}
				s.Errors++
			case "contract":
				var body strings.Builder
				for _, v := range r.Violations {
					fmt.Fprintf(&body, "%s [tensor %s]\n", v.Violation, v.Tensor)
				}
				tc.Error = &campaign.JUnitMessage{Message: r.Error, Type: "contract_violation", Body: body.String()}
				s.Errors++
			default:
				if v := r.verdicts[g]; v != nil && !v.Pass {
					msg := fmt.Sprintf("%d of %d elements beyond the %s allowance, worst err/allowed %s", v.Failed, v.Checked, g, v.Worst)
					var body strings.Builder
					for _, el := range r.Worst {
						fmt.Fprintf(&body, "(%d, %d, %d) reference %v kernel %v err/bound %s\n", el.T, el.H, el.J, float64(el.Ref), float64(el.Got), el.Ratio)
					}
					tc.Failure = &campaign.JUnitMessage{Message: msg, Type: "mismatch", Body: body.String()}
					s.Failures++
				}
			}
			s.Tests++
			s.Cases = append(s.Cases, tc)
		}
	}
	s.Time = fmt.Sprintf("%.3f", total)
	d := campaign.JUnitSuites{Name: "attnvet check", Tests: s.Tests, Failures: s.Failures, Errors: s.Errors, Time: s.Time, Suites: []campaign.JUnitSuite{s}}
	b, err := xml.MarshalIndent(d, "", " ")
	if err != nil {
		panic("check: " + err.Error())
	}
	return append([]byte(xml.Header), append(b, '\n')...)
}

// misdeclarationHints re-judges a failing bundle under the declarations a
// harness most often gets wrong (the window off by one, causal, P's
// precision, the output rounding, the input dtype) and names those under
// which it passes bound. They are hints for the user to check, never a
// pass: the verdict stays the declared one.
func misdeclarationHints(f *bundle.File, override map[string]string, b *interop.Bundle) []string {
	in, p := b.Inputs, b.Profile
	alts := interop.Misreadings(in) // the family's own: the window, causal
	if p.P != p.In {
		alts = append(alts, interop.Misreading{Key: interop.KeyPDType, Value: p.In.String(), Why: "P rounded to the input dtype"})
	} else {
		alts = append(alts, interop.Misreading{Key: interop.KeyPDType, Value: "fp32", Why: "P kept in fp32"})
	}
	alts = append(alts, interop.Misreading{Key: interop.KeyOutRounding, Value: map[bool]string{true: "away", false: "rne"}[p.OutRound.String() == "rne"], Why: "the output cast's ties"})
	var hints []string
	for _, a := range alts {
		o := map[string]string{}
		for k, v := range override {
			o[k] = v
		}
		o[a.Key] = a.Value // a field overrides the profile's
		nb, err := interop.Decode(f, o)
		if err != nil || nb.O == nil {
			continue
		}
		p, err := pipeline.FromInputs(nb.Inputs)
		if err != nil || len(p.Violations) > 0 {
			continue
		}
		v, err := pipeline.Judge(tolerance.BoundCriterion{Mode: tolerance.Rigorous}, p.Input(&impl.Output{O: nb.O, LSE: nb.LSE, MaxLogit: nb.MaxLogit}, nb.Profile, tolerance.Shape{}))
		if err == nil && v.Pass {
			hints = append(hints, fmt.Sprintf("with %s=%s (%s) this bundle would pass bound: check what the kernel computes; the verdict stands as declared", a.Key, a.Value, a.Why))
		}
	}
	return hints
}
