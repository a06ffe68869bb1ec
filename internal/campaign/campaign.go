// Package campaign runs cases through the float64 reference, the kernels
// under test and a tolerance criterion, on all cores, and collects what it
// finds: counts, edge-class coverage, contract violations and failures,
// each failure shrunk to a minimal case and saved as a corpus file with
// the command that replays it.
//
// The case space of a campaign with seed S is the corpus (if any) followed
// by the generated cases props.CaseAt(S, i, family), i = 0, 1, 2, …. Shard
// k/n takes the corpus entries and generated indices ≡ k (mod n), so n
// shards cover the space of one unsharded run exactly once. Results do not
// depend on the worker count: cases are issued in order, every issued case
// completes, and outcomes are combined by case order. A time budget or a
// cancelled context stops the issuing of new cases; what was found is kept.
//
// A kernel error that is a *worker.Error (an exec worker crashed, timed
// out, replied malformed or reported an error) is a worker failure: counted
// and listed apart from the numerical mismatches, failing the run all the
// same, and saved as it ran, never shrunk (each step would restart the
// worker).
//
// Results are JSON documents (docs/json.md) that Merge combines without
// loss.
package campaign

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/attnvet/attnvet/internal/atomicfile"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/safeio"
	"github.com/attnvet/attnvet/internal/targets"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/props"
)

// Shard selects every Count-th case starting at Index.
type Shard struct{ Index, Count int }

// NoShard is the whole case space.
var NoShard = Shard{0, 1}

// ParseShard reads "i/n" with 0 ≤ i < n.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("shard %q: want i/n, e.g. 0/4", s)
	}
	sh := Shard{i, n}
	return sh, sh.Validate()
}

// Validate checks 0 ≤ Index < Count.
func (s Shard) Validate() error {
	if s.Count < 1 || s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("shard %d/%d: want i/n with n ≥ 1 and 0 ≤ i < n", s.Index, s.Count)
	}
	return nil
}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// Owns reports whether the shard owns position i of the case space.
func (s Shard) Owns(i int) bool { return i%s.Count == s.Index }

// NamedCase is a fixed case, from the corpus.
type NamedCase struct {
	Name string     // e.g. "corpus/sparse_k1_sink.json"
	Path string     // file it was read from, for the replay command ("" if embedded)
	Case cases.Case //
}

// Defaults.
const (
	DefaultSave         = 5
	DefaultShrinkBudget = 2000
	DefaultMaxFailures  = 100
	maxExamples         = 20
)

// Options configure a campaign. Start from DefaultOptions.
type Options struct {
	Command   string // recorded in the result ("fuzz", "gate")
	Seed      uint64
	Family    problem.Family // "" draws the family per case
	Cases     int            // generated case space [0, Cases); 0 = unbounded if Time is set, none otherwise
	Time      time.Duration  // stop issuing new cases after this long; 0 = no limit
	Workers   int            // 0 = GOMAXPROCS
	Shard     Shard
	Corpus    []NamedCase // run before the generated cases
	Targets   []targets.Target
	Criterion tolerance.Criterion

	// OutDir receives each saved failure as a case file; "" saves none.
	OutDir string
	// Save is how many failures per target are shrunk and saved (the
	// first ones in case order).
	Save         int
	ShrinkBudget int // candidate evaluations per shrink
	MaxFailures  int // failures listed in the result (the rest are counted)
	Record       bool
	// ReplayFlags are appended to the replay commands of exec targets:
	// the flags that built them and change the verdict or its
	// reproduction ("--worker-profile", "fp32", "--case-timeout", "2m0s").
	ReplayFlags []string

	// Progress, if set, is called every ProgressEvery and once at the end.
	Progress      func(Progress)
	ProgressEvery time.Duration
	Now           func() time.Time
}

// DefaultOptions are the defaults: bound criterion, no shard, all cores.
func DefaultOptions() Options {
	crit, _ := tolerance.Lookup(tolerance.NameBound)
	return Options{
		Command: "fuzz", Shard: NoShard, Criterion: crit,
		Save: DefaultSave, ShrinkBudget: DefaultShrinkBudget, MaxFailures: DefaultMaxFailures,
		ProgressEvery: time.Second, Now: time.Now,
	}
}

// Progress is a snapshot of a running campaign.
type Progress struct {
	Phase       string // "search", "shrink", "done"
	Elapsed     time.Duration
	Cases       int // cases completed
	FailedCases int
	Failed      int // failed checks
	Contract    int // contract-violation cases
	Classes     int // distinct edge classes hit
	Budget      int // generated cases this shard will run (0 = unbounded)
	Time        time.Duration
	Shrinking   int // failures being shrunk
}

// Rate is cases per second.
func (p Progress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Cases) / p.Elapsed.Seconds()
}

// ETA estimates the time left, if there is a budget.
func (p Progress) ETA() (time.Duration, bool) {
	var left time.Duration = -1
	if p.Time > 0 {
		left = max(p.Time-p.Elapsed, 0)
	}
	if p.Budget > 0 && p.Rate() > 0 {
		byCases := time.Duration(float64(max(p.Budget-p.Cases, 0)) / p.Rate() * float64(time.Second))
		if left < 0 || byCases < left {
			left = byCases
		}
	}
	return left, left >= 0
}

// item is one position of the campaign's case order.
type item struct {
	seq   int // position in this run's order
	name  string
	path  string
	index int // generated index, −1 for corpus
	c     cases.Case
}

type outcome struct {
	item
	caseOut
}

// Run executes a campaign. It returns an error only for bad options;
// everything the cases reveal is in the Result.
func Run(ctx context.Context, opt Options) (*Result, error) {
	if err := opt.validate(); err != nil {
		return nil, err
	}
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var corpus []NamedCase
	for i, nc := range opt.Corpus {
		if opt.Shard.Owns(i) {
			corpus = append(corpus, nc)
		}
	}
	// Generated index of position j: Shard.Index + j·Shard.Count.
	genBudget := -1 // unbounded
	switch {
	case opt.Cases > 0:
		genBudget = max(0, (opt.Cases-opt.Shard.Index+opt.Shard.Count-1)/opt.Shard.Count)
	case opt.Time <= 0:
		genBudget = 0
	}
	total := -1
	if genBudget >= 0 {
		total = len(corpus) + genBudget
	}
	runCtx := ctx
	var cancel context.CancelFunc = func() {}
	if opt.Time > 0 {
		runCtx, cancel = context.WithTimeout(ctx, opt.Time)
	}
	defer cancel()

	itemAt := func(seq int) item {
		if seq < len(corpus) {
			return item{seq: seq, name: corpus[seq].Name, path: corpus[seq].Path, index: -1, c: corpus[seq].Case}
		}
		idx := opt.Shard.Index + (seq-len(corpus))*opt.Shard.Count
		return item{seq: seq, name: fmt.Sprintf("seed %d index %d", opt.Seed, idx), index: idx}
	}

	ev := &evaluator{targets: opt.Targets, crit: opt.Criterion}
	var mu sync.Mutex
	next := 0
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if runCtx.Err() != nil || (total >= 0 && next >= total) {
			return 0, false
		}
		s := next
		next++
		return s, true
	}
	results := make(chan outcome, 4*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				seq, ok := take()
				if !ok {
					return
				}
				it := itemAt(seq)
				if it.index >= 0 {
					it.c = caseAt(opt.Seed, it.index, opt.Family)
				}
				results <- outcome{item: it, caseOut: ev.eval(it.c)}
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	agg := newAggregator(&opt)
	progress := func(phase string, shrinking int) {
		if opt.Progress == nil {
			return
		}
		p := agg.progress()
		p.Phase, p.Elapsed, p.Time, p.Shrinking = phase, now().Sub(start), opt.Time, shrinking
		if genBudget >= 0 {
			p.Budget = total
		}
		opt.Progress(p)
	}
	var tick <-chan time.Time
	if opt.Progress != nil && opt.ProgressEvery > 0 {
		t := time.NewTicker(opt.ProgressEvery)
		defer t.Stop()
		tick = t.C
	}
loop:
	for {
		select {
		case o, ok := <-results:
			if !ok {
				break loop
			}
			agg.add(o)
		case <-tick:
			progress("search", 0)
		}
	}
	stopped := "done"
	switch {
	case ctx.Err() != nil:
		stopped = "signal"
	case runCtx.Err() != nil && (total < 0 || next < total):
		stopped = "time"
	case opt.Cases > 0:
		stopped = "cases"
	}

	res := agg.result()
	saves := agg.toSave()
	if len(saves) > 0 {
		progress("shrink", len(saves))
		shrinkAndSave(ctx, &opt, ev, saves, workers)
	}
	for _, p := range agg.workerSaves() {
		saveWorkerFailure(&opt, p.w)
	}
	res.Failures = agg.listed()
	res.WorkerFailures = agg.listedWorker()
	for i, t := range opt.Targets {
		if st, ok := t.WorkerStats(); ok {
			res.Targets[i].Worker = &st
		}
	}
	res.Runs = []RunInfo{{
		Command: opt.Command, Seed: opt.Seed, Shard: opt.Shard.String(), Family: string(opt.Family),
		Criterion: opt.Criterion.Name(), Targets: targetNames(opt.Targets),
		CaseBudget: opt.Cases, TimeBudget: opt.Time.Seconds(), Corpus: min(len(corpus), agg.done),
		Generated: max(0, agg.done-len(corpus)), Stopped: stopped, Workers: workers,
		Started: start.UTC().Format(time.RFC3339), Elapsed: now().Sub(start).Seconds(),
	}}
	if opt.Record {
		res.Records = agg.records()
	}
	progress("done", 0)
	return res, nil
}

// caseAt is props.CaseAt, with a panic in the generator kept from the
// caller (it shows as an invalid case).
func caseAt(seed uint64, i int, fam problem.Family) (c cases.Case) {
	defer func() {
		if r := recover(); r != nil {
			c = cases.Case{Description: fmt.Sprintf("generator panicked: %v", r)}
		}
	}()
	return props.CaseAt(seed, i, fam)
}

func (opt *Options) replayFlagsFor(target string) []string {
	if targets.IsExec(target) {
		return opt.ReplayFlags
	}
	return nil
}

func (opt *Options) validate() error {
	if len(opt.Targets) == 0 {
		return fmt.Errorf("no kernel to test")
	}
	if opt.Criterion == nil {
		return fmt.Errorf("no criterion")
	}
	if err := opt.Shard.Validate(); err != nil {
		return err
	}
	if opt.Cases < 0 {
		return fmt.Errorf("case budget %d is negative", opt.Cases)
	}
	if opt.Time < 0 {
		return fmt.Errorf("time budget %v is negative", opt.Time)
	}
	if opt.Workers < 0 {
		return fmt.Errorf("workers %d is negative", opt.Workers)
	}
	if opt.Save < 0 || opt.ShrinkBudget < 0 || opt.MaxFailures < 0 {
		return fmt.Errorf("save, shrink budget and max failures must be non-negative")
	}
	return nil
}

func targetNames(ts []targets.Target) []string {
	var ns []string
	for _, t := range ts {
		ns = append(ns, t.Name)
	}
	return ns
}

// aggregator combines outcomes in any arrival order into the same result.
type aggregator struct {
	opt  *Options
	res  *Result
	done int

	worst    *Worst
	worstKey [2]int // (seq, target) of worst, for ties

	fails    []pending   // the first MaxFailures failures by (seq, target)
	perT     [][]pending // per target: the first Save failures
	nFails   int
	wfails   []pending   // the first MaxFailures worker failures
	wperT    [][]pending // per target: the first Save worker failures
	examples []pendingEx
	invalids []pendingEx
	recs     []Record
	tWorstAt [][2]int
}

type pending struct {
	seq, target int
	f           *Failure
	w           *WorkerFailure // instead of f, for a worker failure
}

type pendingEx struct {
	seq int
	ex  ContractExample
}

func newAggregator(opt *Options) *aggregator {
	a := &aggregator{opt: opt, res: &Result{Version: Version, EdgeClasses: map[string]int{}, Violations: map[string]int{}, WorkerFailureKinds: map[string]int{}}}
	for _, t := range opt.Targets {
		a.res.Targets = append(a.res.Targets, TargetStats{Name: t.Name, Kind: string(t.Kind), BugClass: t.BugClass})
	}
	a.perT = make([][]pending, len(opt.Targets))
	a.wperT = make([][]pending, len(opt.Targets))
	a.tWorstAt = make([][2]int, len(opt.Targets))
	return a
}

func less(a, b [2]int) bool { return a[0] < b[0] || (a[0] == b[0] && a[1] < b[1]) }

// keepFirst inserts p into the list of the k smallest (seq, target).
func keepFirst(list []pending, p pending, k int) []pending {
	if k <= 0 {
		return list
	}
	if len(list) >= k && !less([2]int{p.seq, p.target}, [2]int{list[len(list)-1].seq, list[len(list)-1].target}) {
		return list
	}
	i := sort.Search(len(list), func(i int) bool { return less([2]int{p.seq, p.target}, [2]int{list[i].seq, list[i].target}) })
	list = append(list, pending{})
	copy(list[i+1:], list[i:])
	list[i] = p
	if len(list) > k {
		list = list[:k]
	}
	return list
}

func keepFirstEx(list []pendingEx, p pendingEx, k int) []pendingEx {
	i := sort.Search(len(list), func(i int) bool { return p.seq < list[i].seq })
	if i >= k {
		return list
	}
	list = append(list, pendingEx{})
	copy(list[i+1:], list[i:])
	list[i] = p
	if len(list) > k {
		list = list[:k]
	}
	return list
}

func (a *aggregator) add(o outcome) {
	r := a.res
	a.done++
	r.Cases++
	if o.index < 0 {
		r.CorpusCases++
	}
	for _, c := range o.classes {
		r.EdgeClasses[c]++
	}
	if o.classErr != nil {
		a.invalids = keepFirstEx(a.invalids, pendingEx{o.seq, ContractExample{Case: o.name, Violations: []string{o.classErr.Error()}}}, maxExamples)
	}
	if o.invalid != nil {
		r.InvalidCases++
		a.invalids = keepFirstEx(a.invalids, pendingEx{o.seq, ContractExample{Case: o.name, Violations: []string{o.invalid.Error()}}}, maxExamples)
	}
	if len(o.violations) > 0 {
		r.ContractCases++
		names := map[string]bool{}
		var strs []string
		for _, v := range o.violations {
			if !names[v.Name] {
				names[v.Name] = true
				r.Violations[v.Name]++
			}
			strs = append(strs, v.String())
		}
		a.examples = keepFirstEx(a.examples, pendingEx{o.seq, ContractExample{Case: o.name, Violations: strs}}, maxExamples)
	}
	caseFailed := false
	for ti, ch := range o.checks {
		ts := &r.Targets[ti]
		t := a.opt.Targets[ti]
		var rec Record
		if a.opt.Record {
			rec = Record{Case: o.name, CaseIndex: o.seq, Target: t.Name, Status: ch.status, Worst: ch.v.Worst,
				Elements: ch.v.Checked, Skipped: ch.v.Skipped, Detail: ch.v.Detail}
		}
		switch ch.status {
		case Incompatible:
			r.IncompatibleChecks++
			ts.IncompatibleChecks++
		case Contract:
			ts.ContractCases++
			if a.opt.Record {
				rec.Detail = violationSummary(o.violations)
			}
		case Invalid:
			if a.opt.Record {
				rec.Detail = ch.err
			}
		case WorkerFailed:
			caseFailed = true
			r.WorkerFailedChecks++
			ts.WorkerFailedChecks++
			r.WorkerFailureKinds[ch.kind]++
			wf := &WorkerFailure{Target: t.Name, Kind: ch.kind, Criterion: a.opt.Criterion.Name(), Case: o.name,
				Index: o.index, Error: ch.err, Input: o.c}
			wf.Input.Version = cases.Version
			if o.index >= 0 {
				wf.Seed = a.opt.Seed
			}
			if o.path != "" {
				wf.Replay = ReplayCommand(o.path, t.Name, a.opt.Criterion.Name(), a.opt.replayFlagsFor(t.Name)...)
			}
			p := pending{seq: o.seq, target: ti, w: wf}
			a.wfails = keepFirst(a.wfails, p, a.opt.MaxFailures)
			a.wperT[ti] = keepFirst(a.wperT[ti], p, a.opt.Save)
			if a.opt.Record {
				rec.Detail, rec.Worker = ch.err, wf
			}
		case Pass, Fail:
			r.Checks++
			ts.Checks++
			r.Elements += int64(ch.v.Checked)
			r.SkippedElements += int64(ch.v.Skipped)
			ts.Elements += int64(ch.v.Checked)
			ts.SkippedElements += int64(ch.v.Skipped)
			key := [2]int{o.seq, ti}
			w := ch.v.Worst
			if ch.err != "" {
				w = math.Inf(1)
			}
			if ch.v.WorstElem >= 0 || ch.err != "" {
				if greater(w, float64(ts.Worst)) || (w == float64(ts.Worst) && ts.WorstCase != "" && less(key, a.tWorstAt[ti])) || ts.WorstCase == "" {
					ts.Worst, ts.WorstCase, a.tWorstAt[ti] = Ratio(w), o.name, key
				}
				if a.worst == nil || greater(w, float64(a.worst.Ratio)) || (w == float64(a.worst.Ratio) && less(key, a.worstKey)) {
					a.worst = &Worst{Ratio: Ratio(w), Target: t.Name, Case: o.name, Elem: ch.v.WorstElem}
					a.worstKey = key
				}
			}
			if ch.status == Fail {
				caseFailed = true
				r.FailedChecks++
				ts.FailedChecks++
				a.nFails++
				f := &Failure{
					Target: t.Name, Criterion: a.opt.Criterion.Name(), Case: o.name, Index: o.index,
					Worst: Ratio(w), WorstElem: ch.v.WorstElem, FailedElements: ch.v.Failed, Elements: ch.v.Checked,
					Error: ch.err, Detail: ch.v.Detail, Input: o.c,
				}
				f.Input.Version = cases.Version
				if o.index >= 0 {
					f.Seed = a.opt.Seed
				}
				p := pending{seq: o.seq, target: ti, f: f}
				a.fails = keepFirst(a.fails, p, a.opt.MaxFailures)
				a.perT[ti] = keepFirst(a.perT[ti], p, a.opt.Save)
				if o.path != "" {
					f.Replay = ReplayCommand(o.path, t.Name, a.opt.Criterion.Name(), a.opt.replayFlagsFor(t.Name)...)
				}
				if a.opt.Record {
					rec.Failure = f
					if ch.err != "" {
						rec.Detail = ch.err
					}
				}
			}
		}
		if a.opt.Record {
			a.recs = append(a.recs, rec)
		}
	}
	if caseFailed {
		r.FailedCases++
	}
}

func violationSummary(vs []problem.Violation) string {
	var s []string
	for i, v := range vs {
		if i == 3 {
			s = append(s, fmt.Sprintf("and %d more", len(vs)-3))
			break
		}
		s = append(s, v.String())
	}
	return "contract violation: " + strings.Join(s, "; ")
}

func (a *aggregator) progress() Progress {
	return Progress{Cases: a.done, FailedCases: a.res.FailedCases, Failed: a.res.FailedChecks,
		Contract: a.res.ContractCases, Classes: len(a.res.EdgeClasses)}
}

func (a *aggregator) result() *Result {
	r := a.res
	r.Worst = a.worst
	r.Passed = r.FailedChecks == 0 && r.WorkerFailedChecks == 0
	for _, e := range a.examples {
		r.ContractExamples = append(r.ContractExamples, e.ex)
	}
	for _, e := range a.invalids {
		r.InvalidExamples = append(r.InvalidExamples, e.ex)
	}
	return r
}

// toSave lists the failures to shrink and save: the first Save of each
// target, in (case, target) order.
func (a *aggregator) toSave() []pending {
	var all []pending
	for _, l := range a.perT {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return less([2]int{all[i].seq, all[i].target}, [2]int{all[j].seq, all[j].target}) })
	return all
}

// listed is the failures the result lists: the first MaxFailures plus any
// saved one beyond them.
func (a *aggregator) listed() []Failure {
	seen := map[[2]int]bool{}
	var all []pending
	for _, l := range append([][]pending{a.fails}, a.perT...) {
		for _, p := range l {
			if k := [2]int{p.seq, p.target}; !seen[k] {
				seen[k] = true
				all = append(all, p)
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return less([2]int{all[i].seq, all[i].target}, [2]int{all[j].seq, all[j].target}) })
	out := make([]Failure, len(all))
	for i, p := range all {
		out[i] = *p.f
	}
	a.res.FailuresOmitted = a.nFails - len(out)
	return out
}

// workerSaves lists the worker failures to save: the first Save of each
// target (not those of a case file, which replays as it is).
func (a *aggregator) workerSaves() []pending {
	var all []pending
	for _, l := range a.wperT {
		for _, p := range l {
			if p.w.Replay == "" {
				all = append(all, p)
			}
		}
	}
	return all
}

// listedWorker is the worker failures the result lists: the first
// MaxFailures plus any saved one beyond them, in (case, target) order.
func (a *aggregator) listedWorker() []WorkerFailure {
	seen := map[[2]int]bool{}
	var all []pending
	for _, l := range append([][]pending{a.wfails}, a.wperT...) {
		for _, p := range l {
			if k := [2]int{p.seq, p.target}; !seen[k] {
				seen[k] = true
				all = append(all, p)
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return less([2]int{all[i].seq, all[i].target}, [2]int{all[j].seq, all[j].target}) })
	out := make([]WorkerFailure, len(all))
	for i, p := range all {
		out[i] = *p.w
	}
	return out
}

func (a *aggregator) records() []Record {
	sort.SliceStable(a.recs, func(i, j int) bool { return a.recs[i].CaseIndex < a.recs[j].CaseIndex })
	return a.recs
}

// shrinkAndSave shrinks each failure (in parallel) and writes it to
// OutDir. A cancelled ctx stops shrinking early; the failures are saved
// as far as they were shrunk.
func shrinkAndSave(ctx context.Context, opt *Options, ev *evaluator, saves []pending, workers int) {
	var wg sync.WaitGroup
	jobs := make(chan pending)
	for range min(workers, len(saves)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range jobs {
				shrinkOne(ctx, opt, ev, p)
			}
		}()
	}
	for _, p := range saves {
		jobs <- p
	}
	close(jobs)
	wg.Wait()
}

func shrinkOne(ctx context.Context, opt *Options, ev *evaluator, p pending) {
	f := p.f
	if f.Index < 0 && f.Replay != "" {
		return // a corpus file: replay it as it is
	}
	c := f.Input
	if opt.ShrinkBudget > 0 && ev.fails(c, p.target) {
		s := shrinkSafe(c, func(c cases.Case) bool { return ctx.Err() == nil && ev.fails(c, p.target) }, opt.ShrinkBudget)
		if ev.fails(s, p.target) {
			c = s
		}
	}
	c.Version = cases.Version
	c.Description = describe(opt.Command+" failure", f.Target, f.Criterion, f.Case, f.Seed, f.Index)
	f.Shrunk = &c
	if opt.OutDir == "" {
		return
	}
	path, err := saveCase(opt.OutDir, fileName(f.Target, f.Case, f.Seed, f.Index), c)
	if err != nil {
		f.Error = strings.TrimSpace(f.Error + "; could not save: " + err.Error())
		return
	}
	f.File = path
	f.Replay = ReplayCommand(path, f.Target, f.Criterion, opt.replayFlagsFor(f.Target)...)
}

// saveWorkerFailure saves the case a worker failed on, as it ran.
func saveWorkerFailure(opt *Options, w *WorkerFailure) {
	if opt.OutDir == "" {
		return
	}
	c := w.Input
	c.Description = describe(opt.Command+" worker "+w.Kind, w.Target, w.Criterion, w.Case, w.Seed, w.Index)
	path, err := saveCase(opt.OutDir, fileName(w.Target, w.Case, w.Seed, w.Index), c)
	if err != nil {
		w.Error += "; could not save: " + err.Error()
		return
	}
	w.File = path
	w.Replay = ReplayCommand(path, w.Target, w.Criterion, opt.replayFlagsFor(w.Target)...)
}

// describe is a saved case's description: what found it, its target and
// criterion (FromDescription reads them back) and where it came from.
func describe(what, target, criterion, caseName string, seed uint64, index int) string {
	src := fmt.Sprintf("seed=%d index=%d", seed, index)
	if index < 0 {
		src = "source=" + strconv.Quote(caseName)
	}
	return fmt.Sprintf("attnvet %s: target=%s criterion=%s %s", what, strconv.Quote(target), criterion, src)
}

func saveCase(dir, name string, c cases.Case) (string, error) {
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := atomicfile.Write(path, c.Marshal()); err != nil {
		return "", err
	}
	return path, nil
}

func shrinkSafe(c cases.Case, fails func(cases.Case) bool, budget int) (out cases.Case) {
	defer func() {
		if r := recover(); r != nil {
			out = c
		}
	}()
	return props.Shrink(c, fails, budget)
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// fileName is <target>-<seed>-<index>.json, or <target>-<corpus name>.json.
func fileName(target, caseName string, seed uint64, index int) string {
	t := strings.Trim(unsafeChars.ReplaceAllString(target, "_"), "_")
	if len(t) > 60 {
		t = t[:60]
	}
	if index < 0 {
		base := strings.TrimSuffix(filepath.Base(caseName), ".json")
		return fmt.Sprintf("%s-%s.json", t, unsafeChars.ReplaceAllString(base, "_"))
	}
	return fmt.Sprintf("%s-%d-%d.json", t, seed, index)
}

// ReplayCommand is the command line that replays a saved case; extra
// arguments (Options.ReplayFlags, e.g. "--worker-profile", "fp32") are
// appended, quoted.
func ReplayCommand(path, target, criterion string, extra ...string) string {
	s := "attnvet replay " + shellQuote(path) + " --kernel " + shellQuote(target)
	if criterion != "" && criterion != tolerance.NameBound {
		s += " --criterion " + shellQuote(criterion)
	}
	for _, a := range extra {
		s += " " + shellQuote(a)
	}
	return s
}

func shellQuote(s string) string { return safeio.ShellQuote(s) }

var descTarget = regexp.MustCompile(`target=("(?:[^"\\]|\\.)*")`)
var descCriterion = regexp.MustCompile(`criterion=([A-Za-z0-9_-]+)`)

// FromDescription reads the target and criterion a saved failure's
// description records ("" when absent).
func FromDescription(desc string) (target, criterion string) {
	if m := descTarget.FindStringSubmatch(desc); m != nil {
		if s, err := strconv.Unquote(m[1]); err == nil {
			target = s
		}
	}
	if m := descCriterion.FindStringSubmatch(desc); m != nil {
		criterion = m[1]
	}
	return target, criterion
}
