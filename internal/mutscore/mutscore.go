// Package mutscore scores tolerance criteria by mutation analysis: it runs
// one deterministic campaign (a fixed seed and case budget, both families)
// against every mutant of impl/mutant and every correct emulation of impl,
// judges every output under every criterion, and reports per criterion how
// many mutants it kills and how often it fails a correct kernel (a false
// positive), and per mutant how many cases a campaign needs before each
// criterion first fails it.
//
// A case is judged only if its inputs follow the kernel contract (a case
// with violations is counted, not judged) and can be fed to the kernel (a
// case that fixes a dtype the kernel's profile does not take is skipped).
// Cases are computed by a pool of workers; results do not depend on the
// number of workers.
package mutscore

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/impl/mutant"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/pipeline"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/tolerance"
)

// Version is the version of the Result JSON.
const Version = 1

// Options configure a scoring run. Start from DefaultOptions.
type Options struct {
	Seed  uint64
	Cases int // the case budget
	// Workers is the number of goroutines computing cases (0: GOMAXPROCS).
	Workers int
	// TargetedEvery makes every k-th case a targeted one (CaseAt); 0: none.
	TargetedEvery int
	// Criteria and Mutants select by name; empty selects all.
	Criteria []string
	Mutants  []string
	// Correct runs every correct configuration for the false-positive
	// count; when false only the mutants' bases run (to tell which cases
	// trigger a mutant), and false positives count over them alone.
	Correct bool
	// Progress, if set, is called after each case with the number done.
	Progress func(done, total int)
}

// DefaultOptions is the acceptance campaign: seed 1, 400 cases, one in
// four targeted, every criterion, mutant and correct configuration.
func DefaultOptions() Options {
	return Options{Seed: 1, Cases: 400, TargetedEvery: 4, Correct: true}
}

// MaxCases bounds the budget.
const MaxCases = 1 << 20

// Result is a scoring run's outcome. Its JSON is the report format.
type Result struct {
	Version int    `json:"version"`
	Seed    uint64 `json:"seed"`
	// TargetedEvery is Options.TargetedEvery: with Seed it fixes the cases.
	TargetedEvery int   `json:"targeted_every"`
	Cases         Stats `json:"cases"`
	// CriteriaOrder lists the criteria in table order (ours first).
	CriteriaOrder []string                  `json:"criteria_order"`
	Criteria      map[string]CriterionScore `json:"criteria"`
	Mutants       []MutantScore             `json:"mutants"`
	// CorrectKernels are the correct configurations judged for false positives.
	CorrectKernels []string `json:"correct_kernels"`
}

// Stats count the campaign's cases.
type Stats struct {
	Total     int `json:"total"`
	Props     int `json:"props"`     // from props.CaseAt
	Targeted  int `json:"targeted"`  // from the targeted templates
	Sparse    int `json:"sparse"`    // family sparse
	Window    int `json:"window"`    // family window
	Dense     int `json:"dense"`     // family dense
	Pypto     int `json:"pypto"`     // families csa, hca, swa
	Combine   int `json:"combine"`   // family combine
	MLA       int `json:"mla"`       // family mla
	Violating int `json:"violating"` // inputs break the kernel contract: not judged
	// ByFamily counts every family's cases (the fields above are the
	// earlier per-family counts, kept for the JSON's readers).
	ByFamily map[problem.Family]int `json:"by_family"`
}

// count adds one case of family f.
func (s *Stats) count(f problem.Family) {
	if s.ByFamily == nil {
		s.ByFamily = map[problem.Family]int{}
	}
	s.ByFamily[f]++
}

// fillLegacy derives the earlier per-family fields from ByFamily.
func (s *Stats) fillLegacy() {
	b := s.ByFamily
	s.Sparse, s.Window, s.Dense, s.Combine, s.MLA = b[problem.Sparse], b[problem.Window], b[problem.Dense], b[problem.Combine], b[problem.MLA]
	s.Pypto = b[problem.CSA] + b[problem.HCA] + b[problem.SWA]
}

// CriterionScore is one criterion's score.
type CriterionScore struct {
	Killed int `json:"killed"` // mutants killed (see MutantScore.KilledBy)
	Total  int `json:"total"`  // mutants
	// Failed counts the mutants failed at least once, kills and failures
	// on cases that fail the base too.
	Failed int `json:"failed"`
	// FalsePositives counts (correct kernel, case) judgements that failed.
	FalsePositives int `json:"false_positives"`
	// FalsePositiveKernels counts correct kernels failed at least once.
	FalsePositiveKernels int `json:"false_positive_kernels"`
	// CorrectJudged counts (correct kernel, case) judgements.
	CorrectJudged int `json:"correct_judged"`
	// FalsePositiveExamples are the first few false positives, for replay.
	FalsePositiveExamples []FalsePositive `json:"false_positive_examples,omitempty"`
	// MedianCasesToKill is the median over all mutants of the cases to
	// first kill (a mutant never killed counts as infinitely many); null
	// when more than half survive.
	MedianCasesToKill *float64 `json:"median_cases_to_first_kill"`
}

// MutantScore is one mutant's score.
type MutantScore struct {
	Name     string         `json:"name"`
	BugClass string         `json:"bug_class"`
	Doc      string         `json:"doc"`
	Base     string         `json:"base"`
	Family   problem.Family `json:"family,omitempty"`
	// Judged counts the cases the mutant was judged on; Triggered those on
	// which its output differs from its base's (bitwise): a case can only
	// kill it if it triggers it.
	Judged    int `json:"judged"`
	Triggered int `json:"triggered"`
	// KilledBy maps each criterion to the number of campaign cases up to
	// and including the first that kills the mutant (its 1-based index in
	// the campaign), or null if none does. A case kills a mutant under a
	// criterion when the criterion fails the mutant's output and passes
	// its base's (the correct kernel it varies) on the same case: a
	// criterion that fails everything kills nothing.
	KilledBy map[string]*int `json:"killed_by"`
	// FailedBy is the same for the first failure, whether or not the
	// criterion also fails the base on that case.
	FailedBy map[string]*int `json:"failed_by"`
}

// FalsePositive is a correct kernel failed on a campaign case.
type FalsePositive struct {
	Kernel string     `json:"kernel"`
	Case   int        `json:"case"` // 1-based campaign index
	Source string     `json:"source"`
	Spec   cases.Case `json:"spec"` // the case, for attnvet replay
}

// maxExamples bounds FalsePositiveExamples.
const maxExamples = 5

// kernel is one kernel under test.
type kernel struct {
	name  string
	k     impl.Kernel
	shape tolerance.Shape
	mut   int // index into the mutants, −1 for a correct kernel
	base  int // mutants: index of the base kernel
}

// caseOut is what one case contributes.
type caseOut struct {
	source    string
	family    problem.Family
	violating bool
	judged    []bool   // per kernel
	fail      [][]bool // per kernel, per criterion
	triggered []bool   // per kernel (mutants only)
	err       error
}

// Run scores the criteria.
func Run(opt Options) (*Result, error) {
	if opt.Cases < 1 || opt.Cases > MaxCases {
		return nil, fmt.Errorf("case budget %d: want 1..%d", opt.Cases, MaxCases)
	}
	if opt.Workers < 0 {
		return nil, fmt.Errorf("workers %d: want 0 (all cores) or more", opt.Workers)
	}
	if opt.TargetedEvery < 0 {
		return nil, fmt.Errorf("targeted-every %d: want 0 (none) or more", opt.TargetedEvery)
	}
	crits, err := selectCriteria(opt.Criteria)
	if err != nil {
		return nil, err
	}
	muts, err := selectMutants(opt.Mutants)
	if err != nil {
		return nil, err
	}
	kernels, correct := buildKernels(muts, opt.Correct)

	w := opt.Workers
	if w == 0 {
		w = runtime.GOMAXPROCS(0)
	}
	outs := make([]caseOut, opt.Cases)
	var mu sync.Mutex
	next, done := 0, 0
	var wg sync.WaitGroup
	for range min(w, opt.Cases) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= opt.Cases {
					return
				}
				outs[i] = runCase(opt, i, kernels, crits)
				if opt.Progress != nil {
					mu.Lock()
					done++
					d := done
					opt.Progress(d, opt.Cases) // under the lock: calls are ordered
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for i := range outs {
		if outs[i].err != nil {
			c, _ := CaseAt(opt.Seed, i, opt.TargetedEvery)
			return nil, fmt.Errorf("case %d: %v\ncase: %s", i, outs[i].err, c)
		}
	}
	return aggregate(opt, outs, kernels, muts, crits, correct), nil
}

func selectCriteria(names []string) ([]tolerance.Criterion, error) {
	if len(names) == 0 {
		return tolerance.All(), nil
	}
	var cs []tolerance.Criterion
	for _, n := range names {
		c, err := tolerance.Lookup(n)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func selectMutants(names []string) ([]mutant.Mutant, error) {
	if len(names) == 0 {
		return mutant.All(), nil
	}
	var ms []mutant.Mutant
	for _, n := range names {
		m, err := mutant.Lookup(n)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// buildKernels lists the mutants, then the correct kernels (all, or only
// the mutants' bases); correct is the indices of the correct kernels.
func buildKernels(muts []mutant.Mutant, all bool) (ks []kernel, correct []int) {
	need := map[string]bool{}
	for _, m := range muts {
		need[m.Base] = true
	}
	byName := map[string]int{}
	var cks []kernel
	for _, c := range impl.Configs() {
		name := impl.ConfigName(c)
		if !all && !need[name] {
			continue
		}
		byName[name] = len(muts) + len(cks)
		cks = append(cks, kernel{name: name, k: impl.New(c), mut: -1,
			shape: tolerance.ShapeOf(c)})
	}
	for i, m := range muts {
		b, ok := byName[m.Base]
		if !ok {
			panic("mutscore: mutant " + m.Name + " has an unknown base " + m.Base)
		}
		ks = append(ks, kernel{name: m.Name, k: m.Kernel, shape: m.Shape, mut: i, base: b})
	}
	for i := range cks {
		correct = append(correct, len(ks))
		ks = append(ks, cks[i])
	}
	return ks, correct
}

// reuseBaseVerdicts: a mutant whose output is its base's, bit for bit, under
// the same profile and shape, takes the base's verdicts instead of being
// judged again (most cases do not trigger a given mutant). Tests turn it off
// to check the shortcut changes nothing.
var reuseBaseVerdicts = true

// prepared is a case's inputs in one format, with the reference.
type prepared struct {
	*pipeline.Prepared
	same map[string][]float32 // fa2x's same-precision outputs, by profile
}

func runCase(opt Options, i int, kernels []kernel, crits []tolerance.Criterion) (co caseOut) {
	c, src := CaseAt(opt.Seed, i, opt.TargetedEvery)
	co = caseOut{source: src, family: c.Family,
		judged: make([]bool, len(kernels)), fail: make([][]bool, len(kernels)), triggered: make([]bool, len(kernels))}
	defer func() {
		if r := recover(); r != nil {
			co.err = fmt.Errorf("panic: %v", r)
		}
	}()
	needFA2x := false
	for _, cr := range crits {
		needFA2x = needFA2x || cr.Name() == tolerance.NameFA2x
	}
	pc := pipeline.NewCase(c)
	preps := map[num.Format]*prepared{}
	prep := func(f num.Format) (*prepared, error) {
		if p, ok := preps[f]; ok {
			return p, nil
		}
		pp, err := pc.In(f)
		if err != nil {
			return nil, err
		}
		p := &prepared{Prepared: pp, same: map[string][]float32{}}
		preps[f] = p
		return p, nil
	}
	outs := make([]*impl.Output, len(kernels))
	// Correct kernels first (the mutants compare with their bases).
	order := make([]int, 0, len(kernels))
	for k := range kernels {
		if kernels[k].mut < 0 {
			order = append(order, k)
		}
	}
	for k := range kernels {
		if kernels[k].mut >= 0 {
			order = append(order, k)
		}
	}
	for _, k := range order {
		kn := &kernels[k]
		pf := kn.k.Profile()
		f := c.Format(pf.In)
		if !impl.Compatible(f, pf) {
			continue
		}
		p, err := prep(f)
		if err != nil {
			co.err = err
			return co
		}
		if len(p.Violations) > 0 {
			co.violating = true
			continue
		}
		out, err := kn.k.Run(p.In)
		if err != nil {
			co.err = fmt.Errorf("%s: %v", kn.name, err)
			return co
		}
		outs[k] = out
		if kn.mut >= 0 {
			b := outs[kn.base]
			co.triggered[k] = b == nil || !sameBits(out.O, b.O) || !sameBits(out.LSE, b.LSE) || !sameBits(out.MaxLogit, b.MaxLogit)
			if bk := &kernels[kn.base]; reuseBaseVerdicts && !co.triggered[k] && co.judged[kn.base] && pf == bk.k.Profile() && kn.shape == bk.shape {
				// The base's output (o and lse) under the base's profile and
				// shape: every criterion judges the same input, so the same verdicts.
				co.judged[k] = true
				co.fail[k] = slices.Clone(co.fail[kn.base])
				continue
			}
		}
		x := p.Input(out, pf, kn.shape)
		if needFA2x {
			s, ok := p.same[pf.Name]
			if !ok {
				s = tolerance.SamePrecision(p.In, pf)
				p.same[pf.Name] = s
			}
			x.SamePrec = s
		}
		co.judged[k] = true
		co.fail[k] = make([]bool, len(crits))
		for ci, cr := range crits {
			co.fail[k][ci] = !cr.Judge(x).Pass
		}
	}
	return co
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func aggregate(opt Options, outs []caseOut, kernels []kernel, muts []mutant.Mutant, crits []tolerance.Criterion, correct []int) *Result {
	res := &Result{Version: Version, Seed: opt.Seed, TargetedEvery: opt.TargetedEvery, Criteria: map[string]CriterionScore{}}
	for _, co := range outs {
		res.Cases.Total++
		if co.source == SourceTargeted {
			res.Cases.Targeted++
		} else {
			res.Cases.Props++
		}
		res.Cases.count(co.family)
		if co.violating {
			res.Cases.Violating++
		}
	}
	res.Cases.fillLegacy()
	for _, k := range correct {
		res.CorrectKernels = append(res.CorrectKernels, kernels[k].name)
	}
	for _, m := range muts {
		res.Mutants = append(res.Mutants, MutantScore{Name: m.Name, BugClass: m.BugClass, Doc: m.Doc, Base: m.Base,
			Family: m.Family, KilledBy: map[string]*int{}, FailedBy: map[string]*int{}})
	}
	for k, kn := range kernels {
		if kn.mut < 0 {
			continue
		}
		ms := &res.Mutants[kn.mut]
		for _, cr := range crits {
			ms.KilledBy[cr.Name()], ms.FailedBy[cr.Name()] = nil, nil
		}
		for i, co := range outs {
			if !co.judged[k] {
				continue
			}
			ms.Judged++
			if co.triggered[k] {
				ms.Triggered++
			}
			for ci, cr := range crits {
				if !co.fail[k][ci] {
					continue
				}
				if ms.FailedBy[cr.Name()] == nil {
					n := i + 1
					ms.FailedBy[cr.Name()] = &n
				}
				if !co.fail[kn.base][ci] && ms.KilledBy[cr.Name()] == nil {
					n := i + 1
					ms.KilledBy[cr.Name()] = &n
				}
			}
		}
	}
	for ci, cr := range crits {
		res.CriteriaOrder = append(res.CriteriaOrder, cr.Name())
		s := CriterionScore{Total: len(muts)}
		var firsts []float64
		for _, ms := range res.Mutants {
			if n := ms.KilledBy[cr.Name()]; n != nil {
				s.Killed++
				firsts = append(firsts, float64(*n))
			} else {
				firsts = append(firsts, math.Inf(1))
			}
			if ms.FailedBy[cr.Name()] != nil {
				s.Failed++
			}
		}
		if m := median(firsts); !math.IsInf(m, 0) && !math.IsNaN(m) {
			s.MedianCasesToKill = &m
		}
		for _, k := range correct {
			failed := false
			for i, co := range outs {
				if !co.judged[k] {
					continue
				}
				s.CorrectJudged++
				if co.fail[k][ci] {
					s.FalsePositives++
					failed = true
					if len(s.FalsePositiveExamples) < maxExamples {
						c, _ := CaseAt(opt.Seed, i, opt.TargetedEvery)
						c.Version = cases.Version
						s.FalsePositiveExamples = append(s.FalsePositiveExamples, FalsePositive{kernels[k].name, i + 1, co.source, c})
					}
				}
			}
			if failed {
				s.FalsePositiveKernels++
			}
		}
		res.Criteria[cr.Name()] = s
	}
	return res
}

// median of xs (+Inf allowed); NaN for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
