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
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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
	"github.com/attnvet/attnvet/internal/worker"
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
	Workers   int            // 0 = defaultWorkers: GOMAXPROCS, plus the requests exec targets hold in flight
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
	// Journal, with OutDir, keeps the results journal OutDir/journal.jsonl
	// (journal.go): a record per batch of finished cases, so a killed
	// campaign keeps what it found and Resume can continue it.
	Journal bool
	// Resume, if set, continues the campaign of this journal (LoadJournal):
	// the cases it covers are taken from it, not run again, and new
	// batches are appended to it. The options must be those of its header
	// (Journal.Options).
	Resume *Journal
	// CaseTimeout and WorkerProfile are the exec targets' options, recorded
	// in the journal header for Resume.
	CaseTimeout   time.Duration
	WorkerProfile string
	// ReplayFlags are appended to the replay commands of exec targets:
	// the flags that built them and change the verdict or its
	// reproduction ("--worker-profile", "fp32", "--case-timeout", "2m0s").
	ReplayFlags []string
	// Known are signatures (findings.go) reported as known: their failures
	// are counted and listed but do not fail the campaign.
	Known map[string]bool
	// SaveFindings also saves (and shrinks) the first failure of each
	// finding group, beyond the first Save of each target.
	SaveFindings bool
	// Recheck, if > 0, rechecks every Recheck-th generated case (index ≡ 0
	// mod Recheck) on each target that passed it: determinism, key order,
	// split counts (recheck.go).
	Recheck int

	// Progress, if set, is called every ProgressEvery and once at the end.
	Progress      func(Progress)
	ProgressEvery time.Duration
	Now           func() time.Time
	// FlushEvery, if > 0, replaces flushEvery: tests that kill a campaign
	// use a short one so that a small campaign is still running at the
	// kill. Not a flag.
	FlushEvery time.Duration
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
	seq    int // position in this run's order
	global int // position in the unsharded campaign's order (ties break on it across shards)
	name   string
	path   string
	index  int // generated index, −1 for corpus
	c      cases.Case
}

type outcome struct {
	item
	caseOut
	rechecked bool         // the case was rechecked (Options.Recheck)
	rechecks  []recheckOut // and failed these
}

// Outcome batches (Run): at most batchCases outcomes, held at most
// batchAge, which is well inside flushEvery.
const (
	batchCases = 16
	batchAge   = 50 * time.Millisecond
)

// failed reports whether a check of o failed or a recheck did.
func (o *outcome) failed() bool {
	for _, ch := range o.checks {
		if ch.status == Fail || ch.status == WorkerFailed || ch.status == Invalid {
			return true
		}
	}
	return len(o.rechecks) > 0 || o.invalid != nil
}

// Run executes a campaign. It returns an error only for bad options;
// everything the cases reveal is in the Result.
func Run(ctx context.Context, opt Options) (*Result, error) {
	if err := opt.validate(); err != nil {
		return nil, err
	}
	j := opt.Resume
	if j != nil {
		if err := j.matches(&opt); err != nil {
			return nil, err
		}
	}
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	var prior time.Duration // campaign time of the journaled parts
	if j != nil {
		prior = time.Duration(j.Elapsed * float64(time.Second))
	}
	elapsed := func() time.Duration { return prior + now().Sub(start) }
	workers := opt.Workers
	if workers <= 0 {
		workers = defaultWorkers(opt.Targets)
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
	first := 0 // the first position this part runs
	if j != nil {
		first = j.Done
		if j.Finished() {
			total = first // the search ran to its end: only the shrinking is left
		}
	}
	runCtx := ctx
	var cancel context.CancelFunc = func() {}
	if opt.Time > 0 {
		runCtx, cancel = context.WithTimeout(ctx, max(opt.Time-prior, 0))
	}
	defer cancel()

	itemAt := opt.itemAt(corpus)

	var jw *journalWriter
	if opt.Journal && opt.OutDir != "" {
		var err error
		if j != nil {
			jw, err = appendJournal(j)
		} else {
			jw, err = createJournal(opt.OutDir, opt.journalHeader(start))
		}
		if err != nil {
			return nil, fmt.Errorf("results journal: %v", err)
		}
		defer jw.close()
	}

	ev := &evaluator{targets: opt.Targets, crit: opt.Criterion}
	var mu sync.Mutex
	next := first
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
	// Workers send their outcomes in batches: one send per case woke the
	// collector's thread every case, about 9% of a one-worker campaign's
	// CPU in futex wakeups. A batch goes when it is full, when it is
	// batchAge old, when it holds a failure (saved at the next flush), and
	// when the worker stops; the collector orders outcomes by seq anyway.
	results := make(chan []outcome, 4*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var batch []outcome
			var since time.Time
			send := func() {
				if len(batch) > 0 {
					results <- batch
					batch = nil
				}
			}
			defer send()
			for {
				seq, ok := take()
				if !ok {
					return
				}
				it := itemAt(seq)
				if it.index >= 0 {
					it.c = caseAt(opt.Seed, it.index, opt.Family)
				}
				o := outcome{item: it, caseOut: ev.eval(it.c)}
				if opt.rechecks(it.index) {
					o.rechecked, o.rechecks = true, ev.recheck(it.c, it.index, &o.caseOut)
				}
				if len(batch) == 0 {
					batch, since = make([]outcome, 0, batchCases), time.Now()
				}
				batch = append(batch, o)
				if len(batch) == batchCases || o.failed() || time.Since(since) >= batchAge {
					send()
				}
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	agg := newAggregator(&opt)
	if j != nil {
		if err := agg.replay(j, itemAt); err != nil {
			return nil, fmt.Errorf("results journal: %v", err)
		}
	}
	progress := func(phase string, shrinking int) {
		if opt.Progress == nil {
			return
		}
		p := agg.progress()
		p.Phase, p.Elapsed, p.Time, p.Shrinking = phase, elapsed(), opt.Time, shrinking
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
	// The finished prefix of the case order: journaled in batches, and its
	// failures that are among the first Save of their target saved at
	// once (unshrunk; replaced when shrunk), so a kill loses neither.
	fl := &flusher{opt: &opt, agg: agg, jw: jw, done: first, pend: map[int]outcome{}, batch: []journalCase{}, elapsed: elapsed, saved: map[[2]int]bool{}}
	var flushTick <-chan time.Time
	if fl.active() {
		every := flushEvery
		if opt.FlushEvery > 0 {
			every = opt.FlushEvery
		}
		t := time.NewTicker(every)
		defer t.Stop()
		flushTick = t.C
		fl.flush() // a resumed campaign's journaled failures
	}
loop:
	for {
		select {
		case batch, ok := <-results:
			if !ok {
				break loop
			}
			for _, o := range batch {
				agg.add(o)
				fl.add(o)
			}
		case <-tick:
			progress("search", 0)
		case <-flushTick:
			fl.flush()
		}
	}
	stopped := "done"
	switch {
	case j != nil && j.Finished():
		stopped = j.End.Stopped
	case ctx.Err() != nil && (total < 0 || next < total): // a signal after the last case stops nothing
		stopped = "signal"
	case runCtx.Err() != nil && (total < 0 || next < total):
		stopped = "time"
	case opt.Cases > 0:
		stopped = "cases"
	}
	fl.flush()
	if jw != nil {
		jw.write(&journalEnd{Kind: "end", Stopped: stopped, Cases: fl.done, Elapsed: elapsed().Seconds()})
	}

	res := agg.result()
	res.Complete = stopped != "signal"
	res.Passed = res.Passed && res.Complete
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
	res.Findings = agg.findings()
	stats := workerStats(opt.Targets)
	if jw != nil {
		stats = jw.workerTotals(stats)
	}
	for i, t := range opt.Targets {
		if _, ok := t.WorkerStats(); ok {
			st := stats[i]
			res.Targets[i].Worker = &st
		}
	}
	run := RunInfo{
		Command: opt.Command, Seed: opt.Seed, Shard: opt.Shard.String(), Family: string(opt.Family),
		Criterion: opt.Criterion.Name(), Targets: targetNames(opt.Targets),
		CaseBudget: opt.Cases, TimeBudget: opt.Time.Seconds(), Corpus: min(len(corpus), agg.done),
		Generated: max(0, agg.done-len(corpus)), Stopped: stopped, Workers: workers,
		Started: start.UTC().Format(time.RFC3339), Elapsed: elapsed().Seconds(),
	}
	if j != nil {
		run.Started, run.Resumed = j.Header.Started, j.Done
	}
	if stopped == "signal" {
		run.Missing = missingOf(&opt, len(corpus), agg.done, genBudget)
	}
	if jw != nil && jw.err != nil {
		run.JournalError = jw.err.Error()
	}
	res.Runs = []RunInfo{run}
	if opt.Record {
		res.Records = agg.records()
	}
	progress("done", 0)
	return res, nil
}

// itemAt is the item at position seq of the case order of a run whose
// shard owns corpus.
func (opt *Options) itemAt(corpus []NamedCase) func(seq int) item {
	return func(seq int) item {
		if seq < len(corpus) {
			return item{seq: seq, global: opt.Shard.Index + seq*opt.Shard.Count, name: corpus[seq].Name, path: corpus[seq].Path, index: -1, c: corpus[seq].Case}
		}
		idx := opt.Shard.Index + (seq-len(corpus))*opt.Shard.Count
		return item{seq: seq, global: len(opt.Corpus) + idx, name: fmt.Sprintf("seed %d index %d", opt.Seed, idx), index: idx}
	}
}

// replay adds the outcomes j journaled.
func (a *aggregator) replay(j *Journal, itemAt func(int) item) error {
	opt := a.opt
	return j.replay(func(b *journalBatch) {
		for i := range b.Cases {
			jc := &b.Cases[i]
			it := itemAt(jc.Seq)
			if it.index >= 0 {
				it.c = caseAt(opt.Seed, it.index, opt.Family)
			}
			a.add(outcome{item: it, caseOut: fromJournal(jc, opt.Criterion.Name()), rechecked: jc.Rechecked, rechecks: jc.Rechecks})
		}
		if b.Plain != nil {
			a.addPlain(b.Plain, itemAt)
		}
	})
}

// Rebuild is the result of the campaign j journaled, as far as it got,
// without running anything (report --merge of a journal): no case is run
// or shrunk, and failures saved in the journal's directory are named with
// their replay commands. A journal whose search did not end is
// incomplete: its run is stopped "killed" (no end record) or "signal",
// with what it did not run as missing.
func Rebuild(j *Journal) (*Result, error) {
	opt, err := j.Options(DefaultOptions())
	if err != nil {
		return nil, err
	}
	var ts []targets.Target
	for _, name := range j.Header.Targets {
		t := targets.Target{Name: name, Kind: targets.Exec}
		if !targets.IsExec(name) { // a registry kernel or a mutant: only its kind and bug class are needed
			if t, err = targets.Resolve(name, targets.Options{}); err != nil {
				return nil, fmt.Errorf("%s: %v", j.Path, err)
			}
		}
		ts = append(ts, t)
	}
	opt.Resume, opt.Targets = nil, ts
	if err := j.matches(&opt); err != nil {
		return nil, err
	}
	var corpus []NamedCase
	for i, nc := range opt.Corpus {
		if opt.Shard.Owns(i) {
			corpus = append(corpus, nc)
		}
	}
	agg := newAggregator(&opt)
	if err := agg.replay(j, opt.itemAt(corpus)); err != nil {
		return nil, err
	}
	genBudget := -1
	switch {
	case opt.Cases > 0:
		genBudget = max(0, (opt.Cases-opt.Shard.Index+opt.Shard.Count-1)/opt.Shard.Count)
	case opt.Time <= 0:
		genBudget = 0
	}
	res := agg.result()
	stopped, complete := "killed", j.Finished()
	switch {
	case j.End != nil:
		stopped = j.End.Stopped
	case genBudget >= 0 && agg.done >= len(corpus)+genBudget:
		stopped, complete = "cases", true // killed after its last case, before its end record
	}
	res.Complete = complete
	res.Passed = res.Passed && res.Complete
	// The failures saved as found (or shrunk, if the campaign got there).
	for _, l := range agg.saveLists() {
		for _, p := range l {
			f := p.f
			if f.Index < 0 && f.Replay != "" {
				continue
			}
			path := filepath.Join(opt.OutDir, fileName(f.Target, f.Case, f.Seed, f.Index))
			if c, err := cases.Load(path); err == nil {
				f.File, f.Replay = path, ReplayCommand(path, f.Target, f.Criterion, opt.replayFlagsFor(f.Target)...)
				if c.Description != "" && !caseEqual(c, f.Input) {
					f.Shrunk = &c
				}
			}
		}
	}
	res.Failures = agg.listed()
	res.WorkerFailures = agg.listedWorker()
	res.Findings = agg.findings()
	for i := range ts {
		if i < len(j.Worker) && ts[i].Kind == targets.Exec {
			st := j.Worker[i]
			res.Targets[i].Worker = &st
		}
	}
	run := RunInfo{
		Command: opt.Command, Seed: opt.Seed, Shard: opt.Shard.String(), Family: string(opt.Family),
		Criterion: opt.Criterion.Name(), Targets: targetNames(opt.Targets),
		CaseBudget: opt.Cases, TimeBudget: opt.Time.Seconds(), Corpus: min(len(corpus), agg.done),
		Generated: max(0, agg.done-len(corpus)), Stopped: stopped, Started: j.Header.Started, Elapsed: j.Elapsed,
	}
	if !res.Complete {
		run.Missing = missingOf(&opt, len(corpus), agg.done, genBudget)
	}
	res.Runs = []RunInfo{run}
	return res, nil
}

// caseEqual compares two cases, descriptions aside.
func caseEqual(a, b cases.Case) bool {
	a.Description, b.Description = "", ""
	a.Version, b.Version = 0, 0
	return string(a.Marshal()) == string(b.Marshal())
}

// flushEvery is how often the finished prefix is journaled and its
// failures saved: what a SIGKILL can lose (Options.FlushEvery overrides
// it for tests).
const flushEvery = 500 * time.Millisecond

// flushBatch is the most cases one journal record holds.
const flushBatch = 4096

// flusher tracks the finished prefix of the case order (outcomes arrive
// in any order) for the journal and the early saves.
type flusher struct {
	opt     *Options
	agg     *aggregator
	jw      *journalWriter
	done    int // positions 0..done-1 have finished
	pend    map[int]outcome
	batch   []journalCase // the cases of the next batch that are not plain
	plain   *journalPlain // and the plain ones
	batched int           // cases in the next batch
	elapsed func() time.Duration
	saved   map[[2]int]bool
}

func (f *flusher) active() bool { return f.jw != nil || f.opt.OutDir != "" }

func (f *flusher) add(o outcome) {
	if !f.active() {
		return
	}
	f.pend[o.seq] = o
	for {
		p, ok := f.pend[f.done]
		if !ok {
			break
		}
		delete(f.pend, f.done)
		if f.jw != nil {
			if !f.opt.Record && p.plain() && !p.rechecked {
				if f.plain == nil {
					f.plain = newPlain(len(f.opt.Targets))
				}
				f.plain.add(p.seq, p.index < 0, &p.caseOut)
			} else {
				jc := toJournal(p.seq, &p.caseOut)
				jc.Rechecked, jc.Rechecks = p.rechecked, p.rechecks
				if !f.opt.Record && len(jc.Violations) > 0 && f.agg.examplesFullBefore(p.seq) {
					jc.Violations = violationNames(jc.Violations) // only counted now: the names do
				}
				f.batch = append(f.batch, jc)
			}
			f.batched++
		}
		f.done++
	}
	if f.batched >= flushBatch {
		f.flush()
	}
}

// flush journals the finished cases not yet journaled, then saves the
// failures of the finished prefix that are among the first Save of their
// target: no case before them is still running, so they stay saved.
func (f *flusher) flush() {
	if f.jw != nil && f.batched > 0 {
		f.jw.write(&journalBatch{Kind: "batch", From: f.done - f.batched, To: f.done, Elapsed: f.elapsed().Seconds(),
			Worker: f.workers(), Cases: f.batch, Plain: f.plain})
		f.batch, f.plain, f.batched = []journalCase{}, nil, 0
	}
	if f.opt.OutDir == "" {
		return
	}
	for _, l := range f.agg.saveLists() {
		for _, p := range l {
			if k := [2]int{p.seq, p.target}; p.seq < f.done && !f.saved[k] {
				f.saved[k] = true
				saveUnshrunk(f.opt, p.f)
			}
		}
	}
	for _, l := range f.agg.wsaveLists() {
		for _, p := range l {
			if p.seq < f.done && p.w.Replay == "" {
				saveWorkerFailure(f.opt, p.w)
			}
		}
	}
}

// workers are the worker counts so far, over every part of the
// campaign; nil when no target is an exec worker.
func (f *flusher) workers() []worker.Stats {
	for _, t := range f.opt.Targets {
		if _, ok := t.WorkerStats(); ok {
			return f.jw.workerTotals(workerStats(f.opt.Targets))
		}
	}
	return nil
}

// violationNames keeps one violation per name, without its detail.
func violationNames(vs []problem.Violation) []problem.Violation {
	seen := map[string]bool{}
	var out []problem.Violation
	for _, v := range vs {
		if !seen[v.Name] {
			seen[v.Name] = true
			out = append(out, problem.Violation{Name: v.Name, Token: -1})
		}
	}
	return out
}

// examplesFullBefore reports whether the contract examples are the
// first maxExamples and all precede position seq: no case from seq on can
// be one.
func (a *aggregator) examplesFullBefore(seq int) bool {
	return len(a.examples) >= maxExamples && a.examples[maxExamples-1].seq < seq
}

// workerStats are the exec targets' worker counts (zero for the others).
func workerStats(ts []targets.Target) []worker.Stats {
	out := make([]worker.Stats, len(ts))
	for i, t := range ts {
		out[i], _ = t.WorkerStats()
	}
	return out
}

// missingOf is what an interrupted run was asked for and did not run:
// the rest of its corpus and of its index sequence.
func missingOf(opt *Options, corpus, done, genBudget int) *Missing {
	gen := max(0, done-corpus)
	m := &Missing{Corpus: max(0, corpus-done), From: opt.Shard.Index + gen*opt.Shard.Count, To: -1, Step: opt.Shard.Count, Cases: -1}
	if genBudget >= 0 {
		m.Cases = genBudget - gen
		m.To = opt.Shard.Index + (genBudget-1)*opt.Shard.Count
		if m.Cases == 0 {
			m.From, m.To = 0, -1
		}
	}
	if m.Cases == 0 && m.Corpus == 0 {
		return nil
	}
	return m
}

func (opt *Options) journalHeader(start time.Time) *JournalHeader {
	h := &JournalHeader{Kind: "header", Version: JournalVersion, Command: opt.Command, Seed: opt.Seed, Shard: opt.Shard.String(),
		Family: string(opt.Family), Criterion: opt.Criterion.Name(), Targets: targetNames(opt.Targets), Cases: opt.Cases,
		TimeBudget: opt.Time.Seconds(), Save: opt.Save, Shrink: opt.ShrinkBudget, MaxFailures: opt.MaxFailures, Recheck: opt.Recheck,
		Known: slices.Sorted(maps.Keys(opt.Known)), SaveFindings: opt.SaveFindings,
		CaseTimeout: opt.CaseTimeout.Seconds(), WorkerProfile: opt.WorkerProfile, ReplayFlags: opt.ReplayFlags,
		Corpus: []JournalCorpus{}, Started: start.UTC().Format(time.RFC3339)}
	for _, nc := range opt.Corpus {
		h.Corpus = append(h.Corpus, JournalCorpus{Name: nc.Name, Path: nc.Path, Case: nc.Case.Marshal()})
	}
	return h
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
	finds    map[string]*findingAcc // (target, signature) → group (findings.go)
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
		case Skipped:
			r.SkippedChecks++
			ts.SkippedChecks++
			if r.SkipReasons == nil {
				r.SkipReasons = map[string]int{}
			}
			r.SkipReasons[ch.err]++
			if a.opt.Record {
				rec.Detail = ch.err
			}
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
			a.offerFinding(ti, "worker-"+ch.kind, "worker-"+ch.kind, "-", "-", "", &o.item, p)
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
			w := ch.v.Worst
			if ch.err != "" {
				w = math.Inf(1)
			}
			if ch.v.WorstElem >= 0 || ch.err != "" {
				a.offerWorst(ti, w, ch.v.WorstElem, &o.item)
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
					FailedOutputs: ch.v.FailedOutputs, LSE: ch.v.LSE, MaxLogit: ch.v.MaxLogit, Term: ch.v.WorstTerm, RowClass: ch.v.WorstRow,
				}
				f.Input.Version = cases.Version
				if o.index >= 0 {
					f.Seed = a.opt.Seed
				}
				p := pending{seq: o.seq, target: ti, f: f}
				a.fails = keepFirst(a.fails, p, a.opt.MaxFailures)
				a.perT[ti] = keepFirst(a.perT[ti], p, a.opt.Save)
				a.offerFinding(ti, signatureKind(ch.err, w), failureKind(ch.err, w), outputsOf(ch.v.FailedOutputs), ch.v.WorstTerm, ch.v.WorstRow, &o.item, p)
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
	if o.rechecked {
		r.RecheckedCases++
	}
	for _, rc := range o.rechecks {
		caseFailed = true
		a.addRecheck(rc, &o)
	}
	if caseFailed {
		r.FailedCases++
	}
}

// offerWorst makes ratio w of target ti on case it (element elem) the
// worst, of the target and of the campaign, if it is larger than the
// worst so far or ties it on an earlier (case, target).
func (a *aggregator) offerWorst(ti int, w float64, elem int, it *item) {
	ts := &a.res.Targets[ti]
	key := [2]int{it.seq, ti}
	if greater(w, float64(ts.Worst)) || (same(w, float64(ts.Worst)) && ts.WorstCase != "" && less(key, a.tWorstAt[ti])) || ts.WorstCase == "" {
		ts.Worst, ts.WorstCase, ts.WorstSeq, a.tWorstAt[ti] = Ratio(w), it.name, it.global, key
	}
	if a.worst == nil || greater(w, float64(a.worst.Ratio)) || (same(w, float64(a.worst.Ratio)) && less(key, a.worstKey)) {
		a.worst = &Worst{Ratio: Ratio(w), Target: a.opt.Targets[ti].Name, Case: it.name, Elem: elem, Seq: it.global}
		a.worstKey = key
	}
}

// addPlain adds a journal's summary of plain cases, as add would have
// added each of them (itemAt names the positions).
func (a *aggregator) addPlain(p *journalPlain, itemAt func(int) item) {
	r := a.res
	a.done += p.Cases
	r.Cases += p.Cases
	r.CorpusCases += p.Corpus
	for c, n := range p.Classes {
		r.EdgeClasses[c] += n
	}
	for ti, pt := range p.Targets {
		ts := &r.Targets[ti]
		r.Checks += pt.Checks
		ts.Checks += pt.Checks
		r.IncompatibleChecks += pt.Incompatible
		ts.IncompatibleChecks += pt.Incompatible
		r.Elements += pt.Elements
		ts.Elements += pt.Elements
		r.SkippedElements += pt.Skipped
		ts.SkippedElements += pt.Skipped
		if pt.WorstSeq >= 0 {
			it := itemAt(pt.WorstSeq)
			a.offerWorst(ti, float64(pt.Worst), pt.WorstElem, &it)
		}
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
	r.Passed = r.FailedChecks+r.WorkerFailedChecks+r.RecheckFailedChecks == r.KnownChecks
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
	seen := map[[2]int]bool{}
	for _, l := range a.saveLists() {
		for _, p := range l {
			if k := [2]int{p.seq, p.target}; !seen[k] {
				seen[k] = true
				all = append(all, p)
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return less([2]int{all[i].seq, all[i].target}, [2]int{all[j].seq, all[j].target}) })
	return all
}

// listed is the failures the result lists: the first MaxFailures plus any
// saved one beyond them.
func (a *aggregator) listed() []Failure {
	seen := map[[2]int]bool{}
	var all []pending
	for _, l := range append([][]pending{a.fails}, a.saveLists()...) {
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
	seen := map[[2]int]bool{}
	for _, l := range a.wsaveLists() {
		for _, p := range l {
			if k := [2]int{p.seq, p.target}; p.w.Replay == "" && !seen[k] {
				seen[k] = true
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
	for _, l := range append([][]pending{a.wfails}, a.wsaveLists()...) {
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
	if f.Index < 0 && f.Replay != "" && f.File == "" {
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
	c.Target, c.Criterion = f.Target, f.Criterion
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

// saveUnshrunk saves a failure as it ran, before it is shrunk (shrinkOne
// replaces the file), so a campaign killed while searching or shrinking
// leaves its first failures on disk.
func saveUnshrunk(opt *Options, f *Failure) {
	if opt.OutDir == "" || (f.Index < 0 && f.Replay != "") {
		return // a corpus file: replay it as it is
	}
	c := f.Input
	c.Description = describe(opt.Command+" failure", f.Target, f.Criterion, f.Case, f.Seed, f.Index)
	c.Target, c.Criterion = f.Target, f.Criterion
	path, err := saveCase(opt.OutDir, fileName(f.Target, f.Case, f.Seed, f.Index), c)
	if err != nil {
		return // shrinkOne tries again and records the error
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
	c.Target, c.Criterion = w.Target, w.Criterion
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

// ShellQuote quotes s for a POSIX shell (as the replay commands are).
func ShellQuote(s string) string { return safeio.ShellQuote(s) }

func shellQuote(s string) string { return safeio.ShellQuote(s) }

var descTarget = regexp.MustCompile(`target=("(?:[^"\\]|\\.)*")`)
var descCriterion = regexp.MustCompile(`criterion=([A-Za-z0-9_-]+)`)

// Provenance is the target and criterion a saved failure records ("" when
// absent): its fields, or for a file written before them, what its
// description says.
func Provenance(c cases.Case) (target, criterion string) {
	target, criterion = c.Target, c.Criterion
	if target == "" || criterion == "" {
		t, cr := FromDescription(c.Description)
		target, criterion = cmp.Or(target, t), cmp.Or(criterion, cr)
	}
	return target, criterion
}

// FromDescription reads the target and criterion a saved failure's
// description records ("" when absent): how files before version 1's
// target and criterion fields say it.
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
