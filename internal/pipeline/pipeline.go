// Package pipeline is attnvet's one path from a case to a verdict: build
// the inputs in a storage format, check the kernel contract, compute the
// float64 reference, run a kernel, judge its output. The campaign, check,
// validate, mutants, report, determinism and the properties all go
// through it, so a new family, output or kernel kind is wired once.
package pipeline

import (
	"fmt"
	"math"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/ref"
)

// Prepared is one problem ready to judge kernels on: its inputs, their
// contract violations, and the reference (nil when there are violations:
// violating inputs are reported, not judged; nil too when Case.NeedRef
// said no kernel would be judged on them).
type Prepared struct {
	In         *problem.Inputs
	Violations []problem.Violation
	Ref        *ref.Result
}

// InternalError is a failure of attnvet itself (a panic in the generator,
// the reference or a criterion), not of the kernel or the input.
type InternalError struct{ Err error }

func (e *InternalError) Error() string { return "internal error: " + e.Err.Error() }
func (e *InternalError) Unwrap() error { return e.Err }

// Prepare generates case c's inputs in storage format f (c.Format of the
// kernel's input format), lists the contract violations and, when there
// are none, computes the reference on one goroutine (callers run cases in
// parallel). A bad case is an error; a panic is an *InternalError.
func Prepare(c cases.Case, f num.Format) (p *Prepared, err error) {
	return prepareCase(c, f, ref.Options{Workers: 1}, nil, nil)
}

func prepareCase(c cases.Case, f num.Format, opt ref.Options, need func(*problem.Inputs) bool, reuse *ref.Result) (p *Prepared, err error) {
	defer recoverInternal(&err, "checking the contract") // Build and Reference name their own
	in, err := Build(c, f)
	if err != nil {
		return nil, err
	}
	return prepare(in, opt, need, reuse)
}

// Build generates case c's inputs in storage format f, nothing more (the
// determinism hashes cover violating inputs too). A panic is an
// *InternalError.
func Build(c cases.Case, f num.Format) (in *problem.Inputs, err error) {
	defer recoverInternal(&err, "building the case")
	return cases.Generate(c, f)
}

// FromInputs prepares inputs that come from elsewhere (a bundle), with the
// reference on every core.
func FromInputs(in *problem.Inputs) (p *Prepared, err error) {
	defer recoverInternal(&err, "checking the inputs")
	return prepare(in, ref.Options{}, nil, nil)
}

func prepare(in *problem.Inputs, opt ref.Options, need func(*problem.Inputs) bool, reuse *ref.Result) (*Prepared, error) {
	p := &Prepared{In: in, Violations: in.Violations()}
	if len(p.Violations) > 0 || (need != nil && !need(in)) {
		return p, nil
	}
	var err error
	p.Ref, err = referenceInto(in, opt, reuse)
	return p, err
}

// Reference is ref.Compute with a panic turned into an *InternalError.
func Reference(in *problem.Inputs, opt ref.Options) (r *ref.Result, err error) {
	return referenceInto(in, opt, nil)
}

func referenceInto(in *problem.Inputs, opt ref.Options, reuse *ref.Result) (r *ref.Result, err error) {
	defer recoverInternal(&err, "the reference")
	return ref.ComputeInto(in, opt, reuse), nil
}

// refPool holds references a Case released (Case.Release): the next
// case's reference is computed into their memory, saving its allocation
// and clearing (a window case's rows are megabytes).
var refPool sync.Pool

// Release gives pc's references back for reuse: for a caller that has
// judged every kernel on pc and keeps nothing of its Prepared values.
func (pc *Case) Release() {
	for f, e := range pc.byFmt {
		if e.p != nil && e.p.Ref != nil {
			refPool.Put(e.p.Ref)
			e.p.Ref = nil
		}
		delete(pc.byFmt, f)
	}
}

// Input is what a criterion judges: kernel output out of a kernel with
// profile pf and loop shape sh, against p's reference.
func (p *Prepared) Input(out *impl.Output, pf profile.Profile, sh tolerance.Shape) *tolerance.Input {
	return &tolerance.Input{In: p.In, Ref: p.Ref, Out: out.O, OutLSE: out.LSE, OutMaxLogit: out.MaxLogit, Profile: pf, Shape: sh}
}

// Case prepares one case lazily, once per storage format: kernels that
// read the same format share the inputs and the reference.
type Case struct {
	C cases.Case
	// NeedRef, when set, says whether any kernel will be judged on the
	// inputs built in format f; when it says no, the reference is not
	// computed (a campaign asks an exec worker whether its hello excludes
	// the case: half a campaign's cases, for a worker of one family).
	NeedRef func(in *problem.Inputs, f num.Format) bool
	// LazyDev computes the reference without its deviation sums
	// (ref.Options.LazyDev): bound and prob then judge cheap bound first
	// and fill in a row's sums only where the verdict or the worst ratio
	// needs them, with the same verdict and worst bits. For callers that
	// judge with a criterion and read nothing else of the reference.
	LazyDev bool
	byFmt   map[num.Format]entry
}

type entry struct {
	p   *Prepared
	err error
}

// NewCase is a Case for c, nothing prepared yet.
func NewCase(c cases.Case) *Case { return &Case{C: c, byFmt: map[num.Format]entry{}} }

// For is the case prepared for a kernel with profile pf. ok is false
// when the kernel cannot take the case's storage format (then p and err
// are nil).
func (pc *Case) For(pf profile.Profile) (p *Prepared, ok bool, err error) {
	f := pc.C.Format(pf.In)
	if !impl.Compatible(f, pf) {
		return nil, false, nil
	}
	p, err = pc.In(f)
	return p, true, err
}

// In is the case prepared in storage format f.
func (pc *Case) In(f num.Format) (*Prepared, error) {
	if e, ok := pc.byFmt[f]; ok {
		return e.p, e.err
	}
	var need func(*problem.Inputs) bool
	if pc.NeedRef != nil {
		need = func(in *problem.Inputs) bool { return pc.NeedRef(in, f) }
	}
	reuse, _ := refPool.Get().(*ref.Result)
	p, err := prepareCase(pc.C, f, ref.Options{Workers: 1, LazyDev: pc.LazyDev}, need, reuse)
	if reuse != nil && (p == nil || p.Ref != reuse) {
		refPool.Put(reuse) // not used: a violation, no reference needed, or an error
	}
	pc.byFmt[f] = entry{p, err}
	return p, err
}

// Run runs kernel k on in, on a private copy when clone is set (so an
// untrusted kernel cannot alter what the next kernel reads), and checks
// the output's size. A panic in the kernel is an error naming where it
// happened: a fuzzed kernel that panics has failed, and the campaign goes on.
func Run(k impl.Kernel, in *problem.Inputs, clone bool) (out *impl.Output, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("kernel panicked: %v [%s]", p, PanicSite(debug.Stack()))
		}
	}()
	kin := in
	if clone {
		kin = CloneInputs(in)
	}
	out, err = k.Run(kin)
	if err == nil && out == nil {
		err = fmt.Errorf("kernel returned no output")
	}
	if err == nil && len(out.O) != in.OutLen() {
		err = fmt.Errorf("kernel returned %d output values, want T·H·Dv = %d", len(out.O), in.OutLen())
	}
	return out, err
}

// Judge is crit.Judge(x) with a panic turned into an error and a failed
// verdict (worst +Inf) that says so.
func Judge(crit tolerance.Criterion, x *tolerance.Input) (v tolerance.Verdict, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("criterion %s panicked: %v [%s]", crit.Name(), p, PanicSite(debug.Stack()))
			v = tolerance.Verdict{Criterion: crit.Name(), WorstElem: -1, Worst: math.Inf(1), Detail: err.Error()}
		}
	}()
	return crit.Judge(x), nil
}

func recoverInternal(err *error, what string) {
	if r := recover(); r != nil {
		*err = &InternalError{Err: fmt.Errorf("%s panicked: %v [%s]", what, r, PanicSite(debug.Stack()))}
	}
}

// PanicSite picks the innermost frame of a panic's stack outside the
// runtime, so a panic names where it happened.
func PanicSite(stack []byte) string {
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

// CloneInputs copies every tensor of in. It copies every exported slice
// field by reflection, so a family's new tensors are private without a
// change here (a copy that listed fields by hand once missed seven
// families' worth of them).
func CloneInputs(in *problem.Inputs) *problem.Inputs {
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
