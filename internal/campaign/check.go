package campaign

import (
	"errors"
	"fmt"
	"runtime/debug"
	"slices"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/pipeline"
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
	p, ok, err := pipeline.NewCase(c).For(t.Kernel.Profile())
	if !ok {
		d.Status = Incompatible
		d.Err = fmt.Errorf("the case stores its inputs in %s; %s takes %s", c.Format(t.Kernel.Profile().In), t.Name, t.Kernel.Profile().In)
		return d, nil
	}
	if err != nil {
		return nil, err
	}
	d.Inputs, d.Violations, d.Ref = p.In, p.Violations, p.Ref
	if len(p.Violations) > 0 {
		d.Status = Contract
		return d, nil
	}
	d.Out, d.Verdict, d.Err = runAndJudge(t, crit, p, false)
	d.Status = Pass
	if asSkip(d.Err) != "" {
		d.Status = Skipped
	} else if d.Err != nil || !d.Verdict.Pass {
		d.Status = Fail
	}
	return d, nil
}

// InternalError is a failure of attnvet itself, not of the kernel or the
// input (pipeline.InternalError; the name campaign's callers know).
type InternalError = pipeline.InternalError

// runAndJudge runs target t on p (a private copy of the inputs when clone
// is set) and judges its output with crit. A kernel's or the criterion's
// panic is an error.
func runAndJudge(t targets.Target, crit tolerance.Criterion, p *pipeline.Prepared, clone bool) (*impl.Output, tolerance.Verdict, error) {
	out, err := pipeline.Run(t.Kernel, p.In, clone)
	if err != nil {
		return out, tolerance.Verdict{Criterion: crit.Name(), WorstElem: -1}, err
	}
	v, err := pipeline.Judge(crit, p.Input(out, t.Kernel.Profile(), t.Shape))
	return out, v, err
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
			cls, err = nil, &InternalError{Err: fmt.Errorf("props.Classes panicked: %v [%s]", r, pipeline.PanicSite(debug.Stack()))}
		}
	}()
	if in == nil {
		return props.Classes(c), nil
	}
	return props.ClassesOf(c, in, vs), nil
}

func (ev *evaluator) eval(c cases.Case) caseOut {
	co := caseOut{checks: make([]checkOut, len(ev.targets))}
	pc := pipeline.NewCase(c)
	pc.NeedRef = ev.needRef(c)
	pc.LazyDev = true // the campaign reads only verdicts
	// Targets grouped by the storage format they read, in target order.
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
		gi := slices.IndexFunc(groups, func(g group) bool { return g.f == f })
		if gi < 0 {
			gi = len(groups)
			groups = append(groups, group{f: f})
		}
		groups[gi].idx = append(groups[gi].idx, i)
	}
	classesDone := false
	seen := map[string]bool{}
	for _, g := range groups {
		p, err := pc.In(g.f)
		if p != nil && !classesDone {
			co.classes, co.classErr = ev.classes(c, p.In, p.Violations)
			classesDone = true
		}
		if err != nil {
			co.invalid = err
			for _, i := range g.idx {
				co.checks[i] = checkOut{status: Invalid, err: err.Error()}
			}
			continue
		}
		if len(p.Violations) > 0 {
			for _, v := range p.Violations {
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
		for _, i := range g.idx {
			t := ev.targets[i]
			_, v, err := runAndJudge(t, ev.crit, p, len(g.idx) > 1 && !t.Trusted())
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
	// No input format could be built: classes from the case alone. A case
	// no target takes (every one Incompatible) hit no class of theirs:
	// counting it would report an edge as covered that no kernel met.
	if !classesDone && len(groups) > 0 {
		co.classes, co.classErr = ev.classes(c, nil, nil)
	}
	pc.Release() // co holds verdicts only
	return co
}

// skipper is a target that can say, from the inputs alone, that it will
// not take them (an exec worker's hello declarations).
type skipper interface {
	SkipReason(in *problem.Inputs) string
}

// needRef is the pipeline's NeedRef for case c: the reference is needed
// for inputs in format f unless every target reading f will skip them.
// A skipping target is still run: it counts the skip itself.
func (ev *evaluator) needRef(c cases.Case) func(*problem.Inputs, num.Format) bool {
	return func(in *problem.Inputs, f num.Format) bool {
		for _, t := range ev.targets {
			if p := t.Kernel.Profile(); c.Format(p.In) != f || !impl.Compatible(f, p) {
				continue
			}
			if s, ok := t.Kernel.(skipper); !ok || s.SkipReason(in) == "" {
				return true
			}
		}
		return false
	}
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
	p, ok, err := pipeline.NewCase(c).For(t.Kernel.Profile())
	if !ok || err != nil || len(p.Violations) > 0 {
		return false
	}
	_, v, err := runAndJudge(t, ev.crit, p, false)
	if asWorkerError(err) != nil || asSkip(err) != "" {
		return false
	}
	return err != nil || !v.Pass
}
