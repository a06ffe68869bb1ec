package campaign

import (
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/targets"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/internal/worker"
	"github.com/attnvet/attnvet/props"
	"github.com/attnvet/attnvet/ref"
)

// Detail is everything about one target on one case: what replay prints.
type Detail struct {
	Case       cases.Case
	Target     targets.Target
	Criterion  tolerance.Criterion
	Status     Status
	Inputs     *problem.Inputs // nil when Incompatible
	Ref        *ref.Result     // nil when Contract or Incompatible
	Out        *impl.Output    // nil unless the kernel ran
	Verdict    tolerance.Verdict
	Violations []problem.Violation
	Err        error // the kernel errored or panicked, or gave output of the wrong size
}

// Failed reports whether the check failed (a mismatch or a kernel error).
func (d *Detail) Failed() bool { return d.Status == Fail }

// WorkerError is the external worker's failure when Err is one (a crash,
// timeout, malformed reply or reported error), else nil.
func (d *Detail) WorkerError() *worker.Error { return asWorkerError(d.Err) }

// asSkip is the reason an exec worker's hello excludes the case, or "".
func asSkip(err error) string {
	var se *worker.SkipError
	if errors.As(err, &se) {
		return se.Reason
	}
	return ""
}

func asWorkerError(err error) *worker.Error {
	var we *worker.Error
	if errors.As(err, &we) {
		return we
	}
	return nil
}

// Check runs target t on case c and judges the output with crit. Its error
// means the case cannot be built: bad input, or an *InternalError (a bug
// of attnvet's); kernel failures are in Detail.Err with Status Fail.
func Check(c cases.Case, t targets.Target, crit tolerance.Criterion) (d *Detail, err error) {
	d = &Detail{Case: c, Target: t, Criterion: crit}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	p := t.Kernel.Profile()
	f := c.Format(p.In)
	if !impl.Compatible(f, p) {
		d.Status = Incompatible
		d.Err = fmt.Errorf("the case stores its inputs in %s; %s takes %s", f, t.Name, p.In)
		return d, nil
	}
	in, vs, err := prepare(c, f)
	if err != nil {
		return nil, err
	}
	d.Inputs, d.Violations = in, vs
	if len(vs) > 0 {
		d.Status = Contract
		return d, nil
	}
	if d.Ref, err = computeRef(in); err != nil {
		return nil, err
	}
	d.Out, d.Verdict, d.Err = runAndJudge(t, crit, in, d.Ref, false)
	d.Status = Pass
	if asSkip(d.Err) != "" {
		d.Status = Skipped
	} else if d.Err != nil || !d.Verdict.Pass {
		d.Status = Fail
	}
	return d, nil
}

// prepare generates the inputs in format f and lists contract violations.
// A panic in the generator is returned as an error.
func prepare(c cases.Case, f num.Format) (in *problem.Inputs, vs []problem.Violation, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &InternalError{fmt.Errorf("building the case panicked: %v [%s]", r, panicSite(debug.Stack()))}
		}
	}()
	in, err = cases.Generate(c, f)
	if err != nil {
		return nil, nil, err
	}
	return in, in.Violations(), nil
}

// runAndJudge runs the kernel (on a private copy of the inputs when clone
// is set) and judges it. Panics in the kernel or the criterion become
// errors: a fuzzed kernel that panics has failed, and the campaign goes on.
func runAndJudge(t targets.Target, crit tolerance.Criterion, in *problem.Inputs, r *ref.Result, clone bool) (out *impl.Output, v tolerance.Verdict, err error) {
	stage := "kernel"
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s panicked: %v [%s]", stage, p, panicSite(debug.Stack()))
			v = tolerance.Verdict{Criterion: crit.Name(), WorstElem: -1}
		}
	}()
	kin := in
	if clone {
		kin = cloneInputs(in)
	}
	out, err = t.Kernel.Run(kin)
	if err == nil && out == nil {
		err = fmt.Errorf("kernel returned no output")
	}
	if err == nil && len(out.O) != in.OutLen() {
		err = fmt.Errorf("kernel returned %d output values, want T·H·Dv = %d", len(out.O), in.OutLen())
	}
	if err != nil {
		return out, tolerance.Verdict{Criterion: crit.Name(), WorstElem: -1}, err
	}
	stage = "criterion " + crit.Name()
	v = crit.Judge(&tolerance.Input{In: in, Ref: r, Out: out.O, OutLSE: out.LSE, Profile: t.Kernel.Profile(), Shape: t.Shape})
	return out, v, nil
}

// panicSite picks the innermost frame of a panic's stack outside the
// runtime, so a kernel panic names where it happened.
func panicSite(stack []byte) string {
	lines := strings.Split(string(stack), "\n")
	for i := 0; i+1 < len(lines); i++ {
		fn := strings.TrimSpace(lines[i])
		if strings.HasPrefix(fn, "panic(") {
			// The frame after panic's own two lines.
			for j := i + 2; j+1 < len(lines); j += 2 {
				f := strings.TrimSpace(lines[j])
				if strings.HasPrefix(f, "runtime.") {
					continue
				}
				loc := strings.TrimSpace(lines[j+1])
				if k := strings.LastIndex(loc, " +0x"); k > 0 {
					loc = loc[:k]
				}
				if k := strings.LastIndex(loc, "/"); k > 0 {
					loc = loc[k+1:]
				}
				return loc
			}
		}
	}
	return "unknown site"
}

// cloneInputs copies every tensor of in, so an untrusted kernel cannot
// alter what the next kernel sees. It copies every exported slice field
// by reflection, so a family's new tensors are private without a change
// here (the last copy listed fields by hand and missed seven families'
// worth of them).
func cloneInputs(in *problem.Inputs) *problem.Inputs {
	c := *in
	v := reflect.ValueOf(&c).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() != reflect.Slice || f.IsNil() || !f.CanSet() {
			continue
		}
		cp := reflect.MakeSlice(f.Type(), f.Len(), f.Len())
		reflect.Copy(cp, f)
		f.Set(cp)
	}
	return &c
}

// evaluator runs one case against every target, sharing the generated
// inputs and the reference among targets that take the same input format.
type evaluator struct {
	targets []targets.Target
	crit    tolerance.Criterion
}

type checkOut struct {
	status Status
	v      tolerance.Verdict
	err    string
	kind   string // WorkerFailed: the worker.Error's kind
}

type caseOut struct {
	classes    []string
	classErr   error // the edge classes could not be computed (the case is still judged)
	violations []problem.Violation
	invalid    error
	checks     []checkOut
}

// classes names the edge classes of c, from inputs already built from it
// (in == nil: generated here).
func (ev *evaluator) classes(c cases.Case, in *problem.Inputs, vs []problem.Violation) (cls []string, err error) {
	defer func() {
		if r := recover(); r != nil {
			cls, err = nil, &InternalError{fmt.Errorf("props.Classes panicked: %v [%s]", r, panicSite(debug.Stack()))}
		}
	}()
	if in == nil {
		return props.Classes(c), nil
	}
	return props.ClassesOf(c, in, vs), nil
}

// InternalError is a failure of attnvet itself (a panic in the generator,
// the reference or the edge classes), not of the kernel or the input.
type InternalError struct{ Err error }

func (e *InternalError) Error() string { return "internal error: " + e.Err.Error() }
func (e *InternalError) Unwrap() error { return e.Err }

func (ev *evaluator) eval(c cases.Case) caseOut {
	co := caseOut{checks: make([]checkOut, len(ev.targets))}
	classesDone := false
	type group struct {
		f   num.Format
		idx []int
	}
	var groups []group
	for i, t := range ev.targets {
		p := t.Kernel.Profile()
		f := c.Format(p.In)
		if !impl.Compatible(f, p) {
			co.checks[i].status = Incompatible
			continue
		}
		gi := -1
		for j := range groups {
			if groups[j].f == f {
				gi = j
			}
		}
		if gi < 0 {
			gi = len(groups)
			groups = append(groups, group{f: f})
		}
		groups[gi].idx = append(groups[gi].idx, i)
	}
	seen := map[string]bool{}
	for _, g := range groups {
		in, vs, err := prepare(c, g.f)
		if err == nil && !classesDone {
			co.classes, co.classErr = ev.classes(c, in, vs)
			classesDone = true
		}
		if err != nil {
			co.invalid = err
			for _, i := range g.idx {
				co.checks[i] = checkOut{status: Invalid, err: err.Error()}
			}
			continue
		}
		if len(vs) > 0 {
			for _, v := range vs {
				if s := v.String(); !seen[s] {
					seen[s] = true
					co.violations = append(co.violations, v)
				}
			}
			for _, i := range g.idx {
				co.checks[i].status = Contract
			}
			continue
		}
		r, err := computeRef(in)
		if err != nil {
			co.invalid = err
			for _, i := range g.idx {
				co.checks[i] = checkOut{status: Invalid, err: err.Error()}
			}
			continue
		}
		for _, i := range g.idx {
			t := ev.targets[i]
			_, v, err := runAndJudge(t, ev.crit, in, r, len(g.idx) > 1 && !t.Trusted())
			ch := checkOut{status: Pass, v: v}
			if r := asSkip(err); r != "" {
				ch.status, ch.err = Skipped, r
			} else if we := asWorkerError(err); we != nil {
				ch.status, ch.err, ch.kind = WorkerFailed, err.Error(), we.Kind
			} else if err != nil {
				ch.status, ch.err = Fail, err.Error()
			} else if !v.Pass {
				ch.status = Fail
			}
			co.checks[i] = ch
		}
	}
	if !classesDone { // no input format could be built: classes from the case alone
		co.classes, co.classErr = ev.classes(c, nil, nil)
	}
	return co
}

func computeRef(in *problem.Inputs) (r *ref.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &InternalError{fmt.Errorf("the reference panicked: %v [%s]", p, panicSite(debug.Stack()))}
		}
	}()
	return ref.Compute(in, ref.Options{Workers: 1}), nil
}

// fails is the shrinking predicate: target ti fails on c (and c is a
// valid case whose inputs keep the contract). A worker failure on a
// candidate is another defect than the one being shrunk: not a failure
// here (and it restarted the worker once already).
func (ev *evaluator) fails(c cases.Case, ti int) bool {
	if c.Validate() != nil {
		return false
	}
	t := ev.targets[ti]
	p := t.Kernel.Profile()
	f := c.Format(p.In)
	if !impl.Compatible(f, p) {
		return false
	}
	in, vs, err := prepare(c, f)
	if err != nil || len(vs) > 0 {
		return false
	}
	r, err := computeRef(in)
	if err != nil {
		return false
	}
	_, v, err := runAndJudge(t, ev.crit, in, r, false)
	if asWorkerError(err) != nil || asSkip(err) != "" {
		return false
	}
	return err != nil || !v.Pass
}
