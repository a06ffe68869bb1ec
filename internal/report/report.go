// Package report measures what the correct kernel emulations' error
// actually looks like, per kernel × precision profile × family, by running
// generated cases against the float64 reference (DESIGN.md "Tolerance
// reports"), and writes it as report.json, report.md and a self-contained
// report.html with SVG plots.
//
// Per output element e with kernel output a and reference o:
//
//	abs   = |a − o|
//	rel   = abs / |o|                  (only where |o| ≥ the output format's smallest normal)
//	ulp   = abs / ulp_out(o)           (num.Ulp of the profile's output format)
//	ratio = abs / bound_e              (the rigorous per-element bound; 1 = at the bound)
//	norm  = abs / Σ_i p_i |v_ij|       (the error relative to the magnitude it is made of)
//
// Elements where kernel and reference agree on a non-finite value are
// counted apart; a finiteness mismatch is counted and makes every allclose
// tolerance infinite, unless the bound leaves the element out (outside the
// profile's range: then it is only counted). Distributions are kept as fixed log-spaced histograms
// (see SubBins) plus exact maxima, and per case one point (the case's
// largest abs and norm error, with the key count n and score magnitudes of
// its worst row), so results of shards merge without loss: counts and
// histograms add, maxima take the maximum, points concatenate.
//
// For allclose, a report records for each rtol of RTolGrid the smallest
// atol that passes every element of every correct case (Need; NeedTypical
// over the Typical cases, the unit-scale data tolerances are tuned on),
// from which the Pareto set of (atol, rtol) follows, and runs the known
// mutants (the Mutants option) on the same cases to say which defects a
// chosen (atol, rtol) would let through. A mutant is judged only on the
// cases that trigger it (its output differs from its base kernel's).
//
// A panic in a kernel or the reference stops the run with an error naming
// the case.
package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/pipeline"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/props"
)

// Version is the report.json format version.
const Version = 1

// DefaultCases is the default number of cases per family: the default
// report (every correct emulation and the mutant catalog, both families)
// takes about 24 CPU-seconds (200 cases took 53), about 12 s on two idle
// cores; --cases 400 for a more thorough one.
const DefaultCases = 100

// Mutant is a known defect to score tolerances against: a kernel that
// computes attention wrongly in the way bug class BugClass (SPEC.md §3)
// does.
type Mutant struct {
	Name     string
	BugClass string
	Base     string // registry name of the correct emulation it varies ("" unknown)
	Kernel   impl.Kernel
	Shape    tolerance.Shape
}

// Options say what a report runs. Start from DefaultOptions.
type Options struct {
	Seed     uint64
	Cases    int // cases per family: indices 0..Cases−1
	Families []problem.Family
	Kernels  []impl.Config // correct emulations to measure
	// Shard and Shards select the case indices i with i mod Shards = Shard.
	Shard, Shards int
	// Workers bounds the goroutines (0 = GOMAXPROCS). Results do not
	// depend on it.
	Workers int
	// Mutants run on the same cases; only those whose profile is the
	// profile of some measured kernel run.
	Mutants []Mutant
	// CaseAt gives the i-th case of family fam (props.CaseAt by default).
	CaseAt func(seed uint64, i int, fam problem.Family) cases.Case
	// Progress, if set, is called after each (case, family) pair with the
	// pairs done and the total, one call at a time.
	Progress func(done, total int)
	// Context stops the run when done (nil: never): the pairs already
	// started finish, and Run returns what they measured as a report
	// marked Partial.
	Context context.Context
}

// DefaultOptions: seed 1, DefaultCases cases of both families, every
// correct emulation, one shard.
func DefaultOptions() Options {
	return Options{
		Seed: 1, Cases: DefaultCases,
		Families: []problem.Family{problem.Sparse, problem.Window},
		Kernels:  impl.Configs(),
		Shards:   1,
		CaseAt:   props.CaseAt,
	}
}

// Report is the result; it is what report.json holds.
type Report struct {
	Version  int      `json:"version"`
	Seed     uint64   `json:"seed"`
	Cases    int      `json:"cases"` // per family
	Shards   int      `json:"shards"`
	ShardIDs []int    `json:"shard_ids"` // the shards this report covers
	Families []string `json:"families"`
	Kernels  []string `json:"kernels"`
	SubBins  int      `json:"sub_bins"`
	RTols    []Float  `json:"rtols"`
	// Entries are per kernel × family, in kernel then family order.
	Entries []*Entry       `json:"entries"`
	Mutants []*MutantEntry `json:"mutants"`
	// Partial marks a run stopped before every case ran (Ctrl-C): it
	// covers the first PartialJobs (case, family) pairs in case order,
	// families interleaved.
	Partial     bool `json:"partial,omitempty"`
	PartialJobs int  `json:"partial_jobs,omitempty"`
}

// Entry is one kernel on one family.
type Entry struct {
	Kernel  string `json:"kernel"`  // registry name, e.g. tiled/bc32/bf16
	Shape   string `json:"shape"`   // the name without the profile, e.g. tiled/bc32
	Profile string `json:"profile"` // e.g. bf16
	Family  string `json:"family"`
	Cases   int64  `json:"cases"` // cases measured
	// Skipped counts cases not measured, by reason: a contract violation
	// name (the kernel and the reference read different keys), "dtype"
	// (inputs stored in a format the kernel does not take) or "error".
	Skipped   map[string]int64 `json:"skipped,omitempty"`
	Elements  int64            `json:"elements"`  // finite elements measured
	NonFinite int64            `json:"nonfinite"` // elements where both agree on NaN or the same ±Inf
	Mismatch  int64            `json:"mismatch"`  // elements finite in one and not the other
	// OutOfRange counts finiteness mismatches where the bound does not
	// judge the element (outside the profile's range); they are left out
	// of every other statistic.
	OutOfRange int64            `json:"out_of_range"`
	Abs        Stat             `json:"abs"`       // |a − o|
	Rel        Stat             `json:"rel"`       // |a − o| / |o|, |o| ≥ smallest normal
	ULP        Stat             `json:"ulp"`       // |a − o| / ulp(o)
	Ratio      Stat             `json:"ratio"`     // |a − o| / bound
	Norm       Stat             `json:"norm"`      // |a − o| / Σp|v|
	Unbounded  int64            `json:"unbounded"` // elements the bound does not judge
	Criteria   map[string]*Crit `json:"criteria"`  // per criterion: cases passed and failed
	Need       Need             `json:"need"`      // atol needed per rtol of RTols
	// NeedTypical is Need over the typical cases only (see Typical).
	NeedTypical Need    `json:"need_typical"`
	Typical     int64   `json:"typical"`     // typical cases measured
	Points      []Point `json:"points"`      // one per measured case, by case index
	Fails       []int   `json:"bound_fails"` // case indices the rigorous bound failed (should be none)
}

// Crit is one criterion's record over cases: passed, failed, and the
// largest Verdict.Worst (err/allowed for elementwise criteria).
type Crit struct {
	Pass  int64 `json:"pass"`
	Fail  int64 `json:"fail"`
	Worst Float `json:"worst"`
}

// Point is one case: its largest abs and norm error, and the key count and
// score magnitudes of the row holding the largest norm error (of the row
// with most keys when every error is 0). JSON holds it as the array
// [case, n, max_abs_x, max_diff, abs, norm].
type Point struct {
	Case    int
	N       int
	MaxAbsX Float // max_i |x_i| of that row
	MaxDiff Float // max_i (max x − x_i) of that row
	Abs     Float
	Norm    Float
}

func (p Point) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{p.Case, p.N, p.MaxAbsX, p.MaxDiff, p.Abs, p.Norm})
}

func (p *Point) UnmarshalJSON(b []byte) error {
	var a [6]json.RawMessage
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("point: want [case, n, max_abs_x, max_diff, abs, norm]: %v", err)
	}
	for i, dst := range []any{&p.Case, &p.N, &p.MaxAbsX, &p.MaxDiff, &p.Abs, &p.Norm} {
		if a[i] == nil {
			return fmt.Errorf("point: want 6 values")
		}
		if err := json.Unmarshal(a[i], dst); err != nil {
			return fmt.Errorf("point: %v", err)
		}
	}
	return nil
}

// MutantEntry is one mutant over every case of every family.
type MutantEntry struct {
	Name     string           `json:"name"`
	BugClass string           `json:"bug_class"`
	Kernel   string           `json:"kernel"`
	Profile  string           `json:"profile"`
	Base     string           `json:"base"`  // the correct kernel it varies ("" unknown)
	Shape    string           `json:"shape"` // its loop shape, e.g. tiled/bc32
	Cases    int64            `json:"cases"`
	Skipped  map[string]int64 `json:"skipped,omitempty"`
	Need     Need             `json:"need"`
	// NeedTypical is Need over the typical cases only.
	NeedTypical Need  `json:"need_typical"`
	Typical     int64 `json:"typical"` // typical cases run
	// Triggered counts the cases where the mutant's output differs from
	// its base kernel's (every case when the base is unknown); a mutant
	// whose trigger a case lacks computes what its base computes.
	Triggered        int64 `json:"triggered"`
	TriggeredTypical int64 `json:"triggered_typical"`
	// Criteria counts, per criterion, the triggered cases that passed
	// (the mutant went unseen) and failed (caught). Need and NeedTypical
	// too are over triggered cases: on the others the mutant computes
	// what its base does.
	Criteria map[string]*Crit `json:"criteria"`
}

// ShapeName is a configuration's name without its profile.
func ShapeName(c impl.Config) string {
	n := impl.ConfigName(c)
	return strings.TrimSuffix(n, "/"+c.Profile.Name)
}

// shapeString names a tolerance shape as ShapeName names a configuration
// (without the maskinf variant).
func shapeString(s tolerance.Shape) string {
	switch s.Kind {
	case string(impl.Stream):
		return "stream"
	case string(impl.Tiled):
		return fmt.Sprintf("tiled/bc%d", s.Bc)
	case string(impl.SplitKV):
		return fmt.Sprintf("splitkv/p%d/bc%d", s.Parts, s.Bc)
	}
	return s.Kind
}

// Run measures the kernels of opt on the cases of opt's shard.
func Run(opt Options) (*Report, error) {
	if opt.Cases < 0 {
		return nil, fmt.Errorf("cases %d: want ≥ 0", opt.Cases)
	}
	if opt.Shards < 1 || opt.Shard < 0 || opt.Shard >= opt.Shards {
		return nil, fmt.Errorf("shard %d/%d: want 0 ≤ i < n", opt.Shard, opt.Shards)
	}
	if len(opt.Kernels) == 0 {
		return nil, fmt.Errorf("no kernels to measure")
	}
	if len(opt.Families) == 0 {
		return nil, fmt.Errorf("no families to measure")
	}
	if opt.CaseAt == nil {
		opt.CaseAt = props.CaseAt
	}
	opt.Mutants = runnable(opt)
	r := newReport(opt)
	type job struct {
		fam int
		i   int
	}
	var jobs []job
	for i := opt.Shard; i < opt.Cases; i += opt.Shards {
		for f := range opt.Families {
			jobs = append(jobs, job{f, i})
		}
	}
	w := opt.Workers
	if w <= 0 {
		w = runtime.GOMAXPROCS(0)
	}
	w = max(1, min(w, len(jobs)))
	parts := make([]*Report, w)
	var wg sync.WaitGroup
	var mu sync.Mutex
	next, done := 0, 0
	var failed error // the first panic, which stops the run
	var stopped <-chan struct{}
	if opt.Context != nil {
		stopped = opt.Context.Done()
	}
	interrupted := func() bool {
		select {
		case <-stopped:
			return true
		default:
			return false
		}
	}
	for k := range w {
		parts[k] = newReport(opt)
		wg.Add(1)
		go func(acc *Report) {
			defer wg.Done()
			rn := &runner{opt: opt, rep: acc, grid: acc.RTols}
			for {
				mu.Lock()
				stop := failed != nil || interrupted()
				j := next
				if !stop && j < len(jobs) {
					next++
				}
				mu.Unlock()
				if j >= len(jobs) || stop {
					return
				}
				if err := rn.runCaseSafe(jobs[j].fam, jobs[j].i); err != nil {
					mu.Lock()
					if failed == nil {
						failed = err
					}
					mu.Unlock()
					return
				}
				mu.Lock()
				done++
				if opt.Progress != nil {
					opt.Progress(done, len(jobs))
				}
				mu.Unlock()
			}
		}(parts[k])
	}
	wg.Wait()
	if failed != nil {
		return nil, failed
	}
	for _, p := range parts {
		if err := r.add(p); err != nil {
			return nil, err
		}
	}
	if next < len(jobs) {
		// Every job below next finished (a worker stops only between
		// jobs), so the report covers a prefix of the job order.
		r.Partial, r.PartialJobs = true, next
	}
	r.sortPoints()
	return r, nil
}

func newReport(opt Options) *Report {
	r := &Report{
		Version: Version, Seed: opt.Seed, Cases: opt.Cases,
		Shards: opt.Shards, ShardIDs: []int{opt.Shard},
		SubBins: SubBins, RTols: RTolGrid(),
	}
	for _, f := range opt.Families {
		r.Families = append(r.Families, string(f))
	}
	for _, c := range opt.Kernels {
		r.Kernels = append(r.Kernels, impl.ConfigName(c))
		for _, f := range opt.Families {
			r.Entries = append(r.Entries, &Entry{
				Kernel: impl.ConfigName(c), Shape: ShapeName(c), Profile: c.Profile.Name, Family: string(f),
				Criteria: newCrits(), Need: NewNeed(r.RTols), NeedTypical: NewNeed(r.RTols),
			})
		}
	}
	for _, m := range opt.Mutants {
		r.Mutants = append(r.Mutants, &MutantEntry{
			Name: m.Name, BugClass: m.BugClass, Kernel: m.Kernel.Name(), Profile: m.Kernel.Profile().Name,
			Base: m.Base, Shape: shapeString(m.Shape),
			Need: NewNeed(r.RTols), NeedTypical: NewNeed(r.RTols), Criteria: newCrits(),
		})
	}
	return r
}

// runnable is the mutants of opt whose profile some measured kernel has.
func runnable(opt Options) []Mutant {
	profiles := map[string]bool{}
	for _, c := range opt.Kernels {
		profiles[c.Profile.Name] = true
	}
	var ms []Mutant
	for _, m := range opt.Mutants {
		if profiles[m.Kernel.Profile().Name] {
			ms = append(ms, m)
		}
	}
	return ms
}

func newCrits() map[string]*Crit {
	m := map[string]*Crit{}
	for _, n := range tolerance.Names() {
		m[n] = &Crit{}
	}
	return m
}

// runner measures cases into one partial report.
type runner struct {
	opt     Options
	rep     *Report
	grid    []Float
	running string // what runs now, for a panic's message
}

// prepared is one case generated in one storage format.
type prepared struct {
	*pipeline.Prepared
	skip string // reason the case cannot be measured, "" if it can
	same map[string][]float32
}

// prepare is pc in the format a kernel reading kernelFormat takes. A
// panic of the generator or the reference is re-raised for runCaseSafe,
// which names the case.
func (rn *runner) prepare(pc *pipeline.Case, kernelFormat num.Format, cache map[num.Format]*prepared) *prepared {
	f := pc.C.Format(kernelFormat)
	if p, ok := cache[f]; ok {
		return p
	}
	pp, err := pc.In(f)
	var ie *pipeline.InternalError
	if errors.As(err, &ie) {
		panic(ie)
	}
	p := &prepared{Prepared: pp, same: map[string][]float32{}}
	cache[f] = p
	switch {
	case err != nil:
		p.skip = "error"
	case len(pp.Violations) > 0:
		p.skip = pp.Violations[0].Name
	}
	return p
}

func (p *prepared) samePrec(pf profile.Profile) []float32 {
	s, ok := p.same[pf.Name]
	if !ok {
		s = tolerance.SamePrecision(p.In, pf)
		p.same[pf.Name] = s
	}
	return s
}

// runCaseSafe is runCase with a panic (a kernel's or the reference's)
// turned into an error naming the case and what was running.
func (rn *runner) runCaseSafe(fam, i int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic on case %d of family %s (seed %d) in %s: %v", i, rn.opt.Families[fam], rn.opt.Seed, rn.running, r)
		}
	}()
	rn.runCase(fam, i)
	return nil
}

// runCase measures every kernel and mutant on case i of family fam.
func (rn *runner) runCase(fam, i int) {
	family := rn.opt.Families[fam]
	c := rn.opt.CaseAt(rn.opt.Seed, i, family)
	typical := Typical(c)
	pc := pipeline.NewCase(c)
	cache := map[num.Format]*prepared{}
	outs := map[string][]float32{} // correct outputs by kernel name, for the mutants' bases
	nf := len(rn.opt.Families)
	for k, cfg := range rn.opt.Kernels {
		e := rn.rep.Entries[k*nf+fam]
		pf := cfg.Profile
		rn.running = "generating or the reference"
		p := rn.prepare(pc, pf.In, cache)
		switch {
		case p.skip != "":
			addSkip(&e.Skipped, p.skip)
			continue
		case !impl.Compatible(p.In.Format, pf):
			addSkip(&e.Skipped, "dtype")
			continue
		}
		rn.running = impl.ConfigName(cfg)
		out, err := impl.New(cfg).Run(p.In)
		if err != nil {
			addSkip(&e.Skipped, "error")
			continue
		}
		x := p.Input(out, pf, tolerance.ShapeOf(cfg))
		x.SamePrec = p.samePrec(pf)
		outs[impl.ConfigName(cfg)] = out.O
		e.Cases++
		// The rigorous bounds serve both the bound verdict and the
		// measurements: computed once (they cost as much as the kernel).
		allowed, _, skip := tolerance.Bounds(x, tolerance.Rigorous)
		bv := boundVerdict(x, allowed, skip)
		if !judge(x, e.Criteria, &bv) {
			e.Fails = append(e.Fails, i)
		}
		measure(x, e, i, typical, rn.grid, allowed, skip)
	}
	for mi, m := range rn.opt.Mutants {
		pf := m.Kernel.Profile()
		me := rn.rep.Mutants[mi]
		rn.running = "generating or the reference"
		p := rn.prepare(pc, pf.In, cache)
		switch {
		case p.skip != "":
			addSkip(&me.Skipped, p.skip)
			continue
		case !impl.Compatible(p.In.Format, pf):
			addSkip(&me.Skipped, "dtype")
			continue
		}
		rn.running = "mutant " + m.Name
		out, err := m.Kernel.Run(p.In)
		if err != nil || out == nil || len(out.O) != p.In.OutLen() {
			addSkip(&me.Skipped, "error")
			continue
		}
		x := p.Input(out, pf, m.Shape)
		x.SamePrec = p.samePrec(pf)
		me.Cases++
		if typical {
			me.Typical++
		}
		if base := rn.baseOutput(m.Base, p.In, outs); base != nil && sameOutput(base, out.O) {
			// Not triggered: the output is the correct kernel's, which
			// the entries already judge and measure.
			continue
		}
		me.Triggered++
		if typical {
			me.TriggeredTypical++
		}
		judge(x, me.Criteria, nil)
		var skip []bool // computed at the first finiteness mismatch
		for e, o := range p.Ref.O {
			err, mis, both := elemErr(out.O[e], o)
			switch {
			case both:
			case mis:
				if skip == nil {
					_, _, skip = tolerance.Bounds(x, tolerance.Rigorous)
				}
				if !skip[e] { // as for the correct kernels: out of range is not judged
					addNeed(me.Need, me.NeedTypical, typical, rn.grid, math.Inf(1), 0)
				}
			default:
				addNeed(me.Need, me.NeedTypical, typical, rn.grid, err, math.Abs(o))
			}
		}
	}
}

// baseOutput is the correct kernel base's output on in: from outs, or run
// now; nil if base names no correct kernel.
func (rn *runner) baseOutput(base string, in *problem.Inputs, outs map[string][]float32) []float32 {
	if o, ok := outs[base]; ok {
		return o
	}
	var o []float32
	if e, err := impl.Lookup(base); err == nil {
		if out, err := e.Run(in); err == nil {
			o = out.O
		}
	}
	outs[base] = o
	return o
}

// sameOutput reports whether a and b are bit for bit the same, any NaN
// matching any NaN.
func sameOutput(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i, x := range a {
		if math.Float32bits(x) != math.Float32bits(b[i]) && !(x != x && b[i] != b[i]) {
			return false
		}
	}
	return true
}

func addSkip(m *map[string]int64, why string) {
	if *m == nil {
		*m = map[string]int64{}
	}
	(*m)[why]++
}

// judge applies every criterion, recording each verdict; it reports
// whether the rigorous bound passed. bound, if not nil, is the bound
// criterion's verdict, already computed.
func judge(x *tolerance.Input, cs map[string]*Crit, bound *tolerance.Verdict) bool {
	ok := true
	for _, c := range tolerance.All() {
		var v tolerance.Verdict
		if bound != nil && c.Name() == tolerance.NameBound {
			v = *bound
		} else {
			v = c.Judge(x)
		}
		r := cs[c.Name()]
		if v.Pass {
			r.Pass++
		} else {
			r.Fail++
			if c.Name() == tolerance.NameBound {
				ok = false
			}
		}
		if w := float64(v.Worst); w > float64(r.Worst) {
			r.Worst = Float(w)
		}
	}
	return ok
}

// boundVerdict is tolerance.BoundCriterion{Mode: Rigorous}.Judge from
// bounds already computed by tolerance.Bounds(x, Rigorous) (one judging
// path; TestBoundVerdictMatches holds the two equal).
func boundVerdict(x *tolerance.Input, allowed []float64, skip []bool) tolerance.Verdict {
	return tolerance.BoundCriterion{Mode: tolerance.Rigorous}.JudgeWith(x, allowed, skip)
}

// elemErr is |a − o|, or whether they differ (mis) or agree (both) in
// being non-finite.
func elemErr(a float32, o float64) (err float64, mis, both bool) {
	af := float64(a)
	an, on := math.IsNaN(af), math.IsNaN(o)
	ai, oi := math.IsInf(af, 0), math.IsInf(o, 0)
	if !an && !on && !ai && !oi {
		return math.Abs(af - o), false, false
	}
	if (an && on) || (ai && oi && af == o) {
		return 0, false, true
	}
	return math.Inf(1), true, false
}

// minNormal is the smallest positive normal number of f.
func minNormal(f num.Format) float64 { return num.MinSubnormal(f) / (2 * num.UnitRoundoff(f)) }

// measure records every element of one case, given its rigorous bounds.
func measure(x *tolerance.Input, e *Entry, caseIdx int, typical bool, grid []Float, allowed []float64, skip []bool) {
	if typical {
		e.Typical++
	}
	outF := x.Profile.Out
	tiny := minNormal(outF)
	rf := x.Ref
	dv := rf.Dv
	pt := Point{Case: caseIdx, N: -1}
	bestRow, bestNorm := -1, -1.0
	for row := range rf.Rows {
		rowNorm := 0.0
		for el := row * dv; el < (row+1)*dv; el++ {
			o := rf.O[el]
			err, mis, both := elemErr(x.Out[el], o)
			switch {
			case both:
				e.NonFinite++
				continue
			case mis && skip[el]:
				// Outside the profile's range (an FP16 accumulator
				// overflowing, say): the bound does not judge it, and
				// neither does a tolerance.
				e.OutOfRange++
				continue
			case mis:
				e.Mismatch++
				addNeed(e.Need, e.NeedTypical, typical, grid, math.Inf(1), 0)
				pt.Abs, pt.Norm = Float(math.Inf(1)), Float(math.Inf(1))
				rowNorm = math.Inf(1)
				continue
			}
			e.Elements++
			ao := math.Abs(o)
			e.Abs.Add(err)
			if ao >= tiny {
				e.Rel.Add(err / ao)
			}
			e.ULP.Add(err / num.Ulp(outF, o))
			if skip[el] {
				e.Unbounded++
			} else {
				e.Ratio.Add(ratio(err, allowed[el]))
			}
			norm := ratio(err, rf.AbsV[el])
			e.Norm.Add(norm)
			addNeed(e.Need, e.NeedTypical, typical, grid, err, ao)
			pt.Abs = Float(math.Max(float64(pt.Abs), err))
			rowNorm = math.Max(rowNorm, norm)
		}
		pt.Norm = Float(math.Max(float64(pt.Norm), rowNorm))
		better := rowNorm > bestNorm
		if rowNorm == bestNorm && rowNorm == 0 && bestRow >= 0 {
			better = rf.Rows[row].N > rf.Rows[bestRow].N
		}
		if better {
			bestRow, bestNorm = row, rowNorm
		}
	}
	if bestRow >= 0 {
		rw := rf.Rows[bestRow]
		pt.N, pt.MaxAbsX, pt.MaxDiff = rw.N, Float(rw.MaxAbsX), Float(rw.MaxDiff)
		e.Points = append(e.Points, pt)
	}
}

// addNeed records an element in all and, for a typical case, in typ.
func addNeed(all, typ Need, typical bool, grid []Float, err, ref float64) {
	all.Add(grid, err, ref)
	if typical {
		typ.Add(grid, err, ref)
	}
}

// Typical reports whether c's values are of the kind allclose tolerances
// are tuned on: q, k and v drawn at unit scale (normal, uniform, zeroq, or
// dominant in the window family; neither q·k nor v rescaled) with no
// special values planted. In the sparse family one row is both key and
// value, so a rescaled or dominant key is a large value too. Output
// errors scale with |v|, so no fixed atol serves cases whose values reach
// 10^35 and 10^−6 alike; the allclose suggestions use typical cases.
func Typical(c cases.Case) bool {
	switch c.Values.Dist {
	case "", "normal", "uniform", "zeroq":
	case "dominant":
		if c.Family != problem.Window {
			return false
		}
	default:
		return false
	}
	unit := func(x float64) bool { return x == 0 || x == 1 }
	return unit(c.Values.Scale) && unit(c.Values.VScale) && len(c.Specials) == 0
}

// ratio is err/allowed with 0/0 = 0 and err/0 = +Inf.
func ratio(err, allowed float64) float64 {
	switch {
	case err == 0:
		return 0
	case allowed == 0:
		return math.Inf(1)
	}
	return err / allowed
}

// add merges partial report p (same kernels, families and mutants) into r.
func (r *Report) add(p *Report) error {
	if len(p.Entries) != len(r.Entries) || len(p.Mutants) != len(r.Mutants) {
		return fmt.Errorf("report: merging reports of different kernels or mutants")
	}
	for i, e := range r.Entries {
		o := p.Entries[i]
		if o.Kernel != e.Kernel || o.Family != e.Family {
			return fmt.Errorf("report: entry %d is %s/%s in one report and %s/%s in another", i, e.Kernel, e.Family, o.Kernel, o.Family)
		}
		e.merge(o)
	}
	for i, m := range r.Mutants {
		o := p.Mutants[i]
		if o.Name != m.Name || o.Profile != m.Profile {
			return fmt.Errorf("report: mutant %d is %s in one report and %s in another", i, m.Name, o.Name)
		}
		m.Cases += o.Cases
		m.Typical += o.Typical
		m.Triggered += o.Triggered
		m.TriggeredTypical += o.TriggeredTypical
		mergeSkips(&m.Skipped, o.Skipped)
		m.Need.Merge(o.Need)
		m.NeedTypical.Merge(o.NeedTypical)
		mergeCrits(m.Criteria, o.Criteria)
	}
	return nil
}

func (e *Entry) merge(o *Entry) {
	e.Cases += o.Cases
	mergeSkips(&e.Skipped, o.Skipped)
	e.Elements += o.Elements
	e.NonFinite += o.NonFinite
	e.Mismatch += o.Mismatch
	e.OutOfRange += o.OutOfRange
	e.Abs.Merge(&o.Abs)
	e.Rel.Merge(&o.Rel)
	e.ULP.Merge(&o.ULP)
	e.Ratio.Merge(&o.Ratio)
	e.Norm.Merge(&o.Norm)
	e.Unbounded += o.Unbounded
	mergeCrits(e.Criteria, o.Criteria)
	e.Need.Merge(o.Need)
	e.NeedTypical.Merge(o.NeedTypical)
	e.Typical += o.Typical
	e.Points = append(e.Points, o.Points...)
	e.Fails = append(e.Fails, o.Fails...)
}

func mergeSkips(dst *map[string]int64, src map[string]int64) {
	for k, n := range src {
		if *dst == nil {
			*dst = map[string]int64{}
		}
		(*dst)[k] += n
	}
}

func mergeCrits(dst, src map[string]*Crit) {
	for k, c := range src {
		d, ok := dst[k]
		if !ok {
			d = &Crit{}
			dst[k] = d
		}
		d.add(c)
	}
}

// add merges o into c.
func (c *Crit) add(o *Crit) {
	if o == nil {
		return
	}
	c.Pass += o.Pass
	c.Fail += o.Fail
	if o.Worst > c.Worst {
		c.Worst = o.Worst
	}
}

func (r *Report) sortPoints() {
	for _, e := range r.Entries {
		sort.Slice(e.Points, func(i, j int) bool { return e.Points[i].Case < e.Points[j].Case })
		sort.Ints(e.Fails)
	}
}
