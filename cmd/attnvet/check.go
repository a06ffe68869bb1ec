package main

import (
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/atomicfile"
	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/jsonout"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/internal/safeio"
	"github.com/attnvet/attnvet/internal/targets"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/ref"
)

func init() {
	register(command{
		name:    "check",
		summary: "judge a kernel's dumped output: recompute the exact answer from a bundle's inputs (safetensors or .npz) and check o",
		usage:   "BUNDLE... [--criterion NAME[,NAME…]] [--json FILE] [--junit FILE] [--top K] [metadata flags: --family, --profile, …]",
		run:     runCheck,
	})
}

// checkVersion is the version of check's JSON output.
const checkVersion = 1

// metaFlags are the flags that override (or, for .npz, supply) the
// bundle's metadata, named after its keys with dashes.
var metaFlags = []struct{ key, usage string }{
	{interop.KeyFamily, "sparse, window, dense, combine, mla, csa, hca or swa (default: the bundle's, else inferred from its tensors)"},
	{interop.KeySoftmaxScale, "softmax scale (default: the bundle's, else D^-0.5)"},
	{interop.KeyWindow, "sparse: WIN, window: W (0 = full causal)"},
	{interop.KeyIndexTopK, "sparse: IDX_TOPK (WIN = TOPK - index_topk)"},
	{interop.KeyTokensPerBatch, "sparse: S, tokens per batch entry (default 1)"},
	{interop.KeyProfile, "built-in precision profile: " + strings.Join(profile.Names(), ", ")},
	{interop.KeyInDType, "input dtype bf16|fp16|fp32 (default: the profile's, else q's dtype)"},
	{interop.KeyScoreDType, "score dtype (default: the profile's, else fp32)"},
	{interop.KeyPDType, "P dtype before P·V (default: the profile's, else the input dtype)"},
	{interop.KeyAccDType, "accumulator dtype (default: the profile's, else fp32)"},
	{interop.KeyOutDType, "output dtype (default: the profile's, else o's dtype)"},
	{interop.KeyOutRounding, "rne or away (default: the profile's, else rne)"},
	{interop.KeyLFromRoundedP, "true if l sums the rounded P (default false)"},
	{interop.KeyExpULPs, "the kernel's exp error in ulps (default 2)"},
	{interop.KeyCompressRatio, "csa, hca: the compress ratio (default 4 for csa, 128 for hca)"},
}

func flagName(key string) string { return strings.ReplaceAll(key, "_", "-") }

// checkFile is check's JSON output (docs/interop.md).
type checkFile struct {
	Version  int           `json:"version"`
	Command  string        `json:"command"`
	Criteria []string      `json:"criteria"` // the gating criteria
	Bundles  []checkResult `json:"bundles"`
	Exit     int           `json:"exit"`
}

// checkResult is one bundle's outcome. Status: pass, fail (a verified
// mismatch under a gating criterion), contract (inputs that break the
// kernel's contract: not judged) or invalid (the bundle cannot be read).
type checkResult struct {
	Path       string           `json:"path"`
	Status     string           `json:"status"`
	Error      string           `json:"error,omitempty"`
	Problem    string           `json:"problem,omitempty"`
	Profile    *profile.Profile `json:"profile,omitempty"`
	Warnings   []string         `json:"warnings,omitempty"`
	Violations []checkViolation `json:"violations,omitempty"`
	Verdicts   []checkVerdict   `json:"verdicts,omitempty"`
	Worst      []checkElem      `json:"worst,omitempty"` // by err/bound (rigorous), largest first
	// Hints name declarations under which a failing bundle would pass bound
	// (a likely misdeclaration); never a pass.
	Hints    []string         `json:"hints,omitempty"`
	Seconds  float64          `json:"seconds"`
	detail   *campaign.Detail // for the failure printout
	verdicts map[string]*checkVerdict
}

type checkViolation struct {
	problem.Violation
	Tensor string `json:"tensor"`
}

type checkVerdict struct {
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

type checkElem struct {
	T       int            `json:"t"`
	H       int            `json:"h"`
	J       int            `json:"j"`
	Ref     campaign.Ratio `json:"ref"`
	Got     campaign.Ratio `json:"got"`
	Err     campaign.Ratio `json:"err"`
	Allowed campaign.Ratio `json:"allowed"`
	Ratio   campaign.Ratio `json:"ratio"`
}

func runCheck(e *env, args []string) int {
	fs := newFlags("check")
	crit := fs.String("criterion", tolerance.NameBound, "gating criteria, comma-separated: "+strings.Join(tolerance.Names(), ", ")+" (every criterion is reported; these decide the exit code)")
	jsonOut := fs.String("json", "", "write the results as JSON to FILE")
	junitOut := fs.String("junit", "", "write JUnit XML to FILE (one test per bundle and gating criterion)")
	top := fs.Int("top", 5, "worst elements to show per bundle")
	assume := fs.Bool("assume-defaults", false, "judge bundles that leave a semantics-defining key (window, causal, d_v, in_dtype of an F32 dump of bf16 values) to its default, instead of refusing them")
	mem := addMemoryFlag(fs)
	meta := map[string]*string{}
	for _, m := range metaFlags {
		meta[m.key] = fs.String(flagName(m.key), "", "metadata "+m.key+": "+m.usage)
	}
	if printFlags(e, fs, args) {
		return exitPass
	}
	paths, err := parseInterleaved(fs, args)
	if err != nil {
		return e.exitFor("check", err)
	}
	if len(paths) == 0 {
		return e.exitFor("check", usagef("missing BUNDLE (usage: attnvet check BUNDLE... [--criterion NAME])"))
	}
	if *top < 0 || *top > 10000 {
		return e.exitFor("check", usagef("--top %d: want 0..10000", *top))
	}
	gating, err := gatingCriteria(*crit)
	if err != nil {
		return e.exitFor("check", err)
	}
	for _, f := range []struct{ name, path string }{{"json", *jsonOut}, {"junit", *junitOut}} {
		if err := outputFileFlag(f.name, f.path); err != nil {
			return e.exitFor("check", err)
		}
	}
	override := map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		for _, m := range metaFlags {
			if f.Name == flagName(m.key) {
				override[m.key] = *meta[m.key]
			}
		}
	})

	defer mem.apply()()
	doc := checkFile{Version: checkVersion, Command: "check", Criteria: gating}
	for i, path := range paths {
		if i > 0 {
			fmt.Fprintln(e.stdout)
		}
		r := checkBundle(path, override, gating, mem.n, *assume)
		printCheck(e.stdout, &r, *top)
		doc.Bundles = append(doc.Bundles, r)
	}
	doc.Exit = checkExit(doc.Bundles)
	if len(paths) > 1 {
		n := map[string]int{}
		for _, r := range doc.Bundles {
			n[r.Status]++
		}
		fmt.Fprintf(e.stdout, "\n%d bundles: %d pass, %d fail, %d contract violations, %d invalid",
			len(paths), n["pass"], n["fail"], n["contract"], n["invalid"])
		if n["internal"] > 0 {
			fmt.Fprintf(e.stdout, ", %d internal errors", n["internal"])
		}
		fmt.Fprintln(e.stdout)
	}
	if *jsonOut != "" {
		b, err := jsonout.MarshalIndent(doc, "", "  ")
		if err != nil {
			return e.exitFor("check", fmt.Errorf("encoding JSON: %v", err))
		}
		if err := atomicfile.Write(*jsonOut, append(b, '\n')); err != nil {
			return e.exitFor("check", usagef("--json: %v", err))
		}
	}
	if *junitOut != "" {
		if err := atomicfile.Write(*junitOut, checkJUnit(&doc)); err != nil {
			return e.exitFor("check", usagef("--junit: %v", err))
		}
	}
	for _, r := range doc.Bundles {
		if r.Status == "invalid" || r.Status == "contract" || r.Status == "internal" {
			fmt.Fprintf(e.stderr, "attnvet check: %s: %s\n", safeio.Printable(r.Path), oneLine(r.Error))
		}
	}
	return doc.Exit
}

// gatingCriteria parses --criterion.
func gatingCriteria(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if _, err := tolerance.Lookup(n); err != nil {
			return nil, usagef("--criterion: %v", err)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, usagef("--criterion %q: name at least one criterion", s)
	}
	return out, nil
}

// checkExit: 3 if judging some bundle hit an internal error (a panic),
// else 2 if any bundle is invalid or breaks the contract (it could not be
// judged), else 1 if any failed, else 0.
func checkExit(rs []checkResult) int {
	code := exitPass
	for _, r := range rs {
		switch r.Status {
		case "internal":
			return exitInternal
		case "invalid", "contract":
			code = exitUsage
		case "fail":
			if code == exitPass {
				code = exitMismatch
			}
		}
	}
	return code
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

// checkBundle reads, decodes and judges one bundle, within limit bytes
// of memory (assumeDefaults: judge unstated semantics under the defaults).
// A panic (a bug of ours, whatever the input) is status internal: exit 3,
// not 2.
func checkBundle(path string, override map[string]string, gating []string, limit int64, assumeDefaults bool) (r checkResult) {
	start := time.Now()
	r = checkResult{Path: path, verdicts: map[string]*checkVerdict{}}
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
	if !assumeDefaults {
		if err := interop.Unstated(f, override); err != nil {
			r.Status, r.Error = "invalid", err.Error()
			return r
		}
	}
	if err := safeio.Check("decoding its tensors", decodeNeed(f), limit); err != nil {
		r.Status, r.Error = "invalid", err.Error()
		return r
	}
	b, err := decodeBundle(f, override)
	if err != nil {
		r.Status, r.Error = "invalid", err.Error()
		return r
	}
	in := b.Inputs
	r.Problem, r.Profile, r.Warnings = interop.Describe(in), &b.Profile, b.Warnings
	if b.O == nil {
		name := interop.TO
		switch in.Family {
		case problem.Dense, problem.MLA:
			name = interop.TOut
		case problem.Combine:
			name = interop.TVMerged
		}
		r.Status, r.Error = "invalid", "tensor "+name+": missing (the kernel's output [T, H, Dv] to judge)"
		return r
	}
	if err := safeio.Check(fmt.Sprintf("judging its %d output elements", in.OutLen()), judgeNeed(b), limit); err != nil {
		r.Status, r.Error = "invalid", err.Error()
		return r
	}
	if vs := in.Violations(); len(vs) > 0 {
		for _, v := range vs {
			r.Violations = append(r.Violations, checkViolation{v, interop.ViolationTensor(in.Family, v)})
		}
		v := r.Violations[0]
		r.Status = "contract"
		r.Error = fmt.Sprintf("%d contract violations in the inputs (not judged), first: %s (tensor %s)", len(vs), v.Violation, v.Tensor)
		return r
	}
	rs := ref.Compute(in, ref.Options{})
	x := &tolerance.Input{In: in, Ref: rs, Out: b.O, OutLSE: b.LSE, Profile: b.Profile}
	isGating := map[string]bool{}
	for _, g := range gating {
		isGating[g] = true
	}
	r.Status = "pass"
	var internal error
	for _, c := range checkCriteria() {
		v, err := judgeSafely(c, x)
		if err != nil && internal == nil {
			internal = err
		}
		cv := checkVerdict{Criterion: c.Name(), Gating: isGating[c.Name()], Pass: v.Pass, Worst: campaign.Ratio(v.Worst),
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
		Inputs: in, Ref: rs, Out: &impl.Output{O: b.O, LSE: b.LSE}}
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

// decodeBundle is interop.Decode; a test makes it panic.
var decodeBundle = interop.Decode

// checkCriteria is tolerance.All; a test adds one that panics.
var checkCriteria = tolerance.All

// judgeSafely judges, turning a panic in a criterion into a failed verdict
// and an error: a bug of ours (exit 3), and the other criteria still judge.
func judgeSafely(c tolerance.Criterion, x *tolerance.Input) (v tolerance.Verdict, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error in criterion %s: %v (please report it with the bundle)", c.Name(), p)
			v = tolerance.Verdict{Criterion: c.Name(), WorstElem: -1, Worst: math.Inf(1), Detail: err.Error()}
		}
	}()
	return c.Judge(x), nil
}

func elemTHJ(in *problem.Inputs, e int) []int {
	return []int{e / (in.H * in.Dv), e / in.Dv % in.H, e % in.Dv}
}

// worstElems lists the n elements with the largest err/bound (rigorous).
func worstElems(x *tolerance.Input, n int) []checkElem {
	allowed, _, skip := tolerance.Bounds(x, tolerance.Rigorous)
	worst := topK[checkElem]{k: n, key: func(el checkElem) float64 { return float64(el.Ratio) }}
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
		if n := len(worst.items); n == worst.k && !(ratio > float64(worst.items[n-1].Ratio)) {
			continue // would not enter: skip building it
		}
		thj := elemTHJ(x.In, e)
		worst.add(checkElem{T: thj[0], H: thj[1], J: thj[2], Ref: campaign.Ratio(r), Got: campaign.Ratio(got),
			Err: campaign.Ratio(err), Allowed: campaign.Ratio(allowed[e]), Ratio: campaign.Ratio(ratio)})
	}
	return worst.items
}

// printCheck prints one bundle's outcome. Everything taken from the input
// (its path, tensor and metadata names in warnings and errors) is printed
// through safeio.Printable: it cannot drive the terminal.
func printCheck(w io.Writer, r *checkResult, top int) {
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
		fmt.Fprintf(w, "INVALID %s: %s\n", path, oneLine(r.Error))
		return
	case "internal":
		fmt.Fprintf(w, "INTERNAL ERROR %s: %s\n", path, oneLine(r.Error))
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
		printWorstElements(w, r.detail, top)
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

// checkJUnit renders the results as JUnit XML: one test per bundle and
// gating criterion; an invalid bundle or a contract violation is an error.
func checkJUnit(doc *checkFile) []byte {
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
