package campaign

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/jsonfloat"
	"github.com/attnvet/attnvet/internal/jsonout"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/internal/worker"
)

// Version is the campaign result format version (docs/json.md).
const Version = 1

// Result is what a campaign (fuzz or gate) found. It is the JSON document
// docs/json.md describes; results of shards merge without loss (Merge).
type Result struct {
	Version int  `json:"version"`
	Passed  bool `json:"passed"` // no check failed, and Complete
	// Complete is false when some case the campaign was asked for did not
	// run: a run stopped by a signal, or (merged) a shard missing or
	// interrupted; Gaps lists them. An incomplete result never passed.
	Complete bool  `json:"complete"`
	Gaps     []Gap `json:"gaps,omitempty"`

	Cases        int `json:"cases"`         // cases run (corpus + generated)
	CorpusCases  int `json:"corpus_cases"`  // of which from the corpus
	InvalidCases int `json:"invalid_cases"` // generated cases the generator could not build (a generator bug)
	// ContractCases are cases whose inputs break the kernel's contract
	// (problem.Violations): reported, not judged.
	ContractCases int `json:"contract_cases"`
	Checks        int `json:"checks"`        // (target, case) pairs judged
	FailedChecks  int `json:"failed_checks"` // judged pairs that failed
	// WorkerFailedChecks are (target, case) pairs where an external
	// worker failed (crashed, timed out, replied malformed or reported an
	// error): not judged, not in Checks, a defect of the kernel all the
	// same (Passed is false).
	WorkerFailedChecks int            `json:"worker_failed_checks"`
	WorkerFailureKinds map[string]int `json:"worker_failure_kinds"` // worker.Crash, … → count
	FailedCases        int            `json:"failed_cases"`         // cases where some target failed (mismatch or worker failure)
	// IncompatibleChecks are pairs skipped because the case pins a dtype
	// the kernel does not take.
	IncompatibleChecks int `json:"incompatible_checks"`
	// SkippedChecks are pairs an exec worker's hello excludes (protocol 2:
	// a family or shape it does not take, a value its declared input dtype
	// cannot hold): not sent, not judged, not failures; SkipReasons
	// counts them by the declaration that excludes them.
	SkippedChecks   int            `json:"skipped_checks"`
	SkipReasons     map[string]int `json:"skip_reasons,omitempty"`
	Elements        int64          `json:"elements"`         // output elements judged
	SkippedElements int64          `json:"skipped_elements"` // outside a profile's range: not judged

	Worst       *Worst         `json:"worst,omitempty"` // largest err/allowed over all checks
	Targets     []TargetStats  `json:"targets"`
	EdgeClasses map[string]int `json:"edge_classes"` // cases hitting each edge class
	Violations  map[string]int `json:"violations"`   // cases showing each contract violation

	ContractExamples []ContractExample `json:"contract_examples"` // the first few contract-violation cases
	// InvalidExamples are the first few cases that could not be built (an
	// internal error: a generator or reference bug).
	InvalidExamples []ContractExample `json:"invalid_examples,omitempty"`
	Failures        []Failure         `json:"failures"`
	FailuresOmitted int               `json:"failures_omitted"` // failed checks beyond those listed
	// WorkerFailures are the first worker failures (MaxFailures per run,
	// in case order) plus every saved one.
	WorkerFailures []WorkerFailure `json:"worker_failures"`
	// Findings group every failed check and worker failure by target and
	// signature (findings.go, docs/json.md "Findings"), unknown first, then
	// by count; KnownChecks are the failed and worker-failed checks whose
	// signature was given as known (--known): they do not fail the run.
	Findings    []Finding `json:"findings"`
	KnownChecks int       `json:"known_checks"`
	// Rechecks (fuzz --recheck N, recheck.go): the generated cases
	// rechecked, the recheck failures (each fails the run unless its
	// signature is known), by kind, and the first of them (MaxFailures).
	RecheckedCases      int            `json:"rechecked_cases,omitempty"`
	RecheckFailedChecks int            `json:"recheck_failed_checks,omitempty"`
	RecheckFailureKinds map[string]int `json:"recheck_failure_kinds,omitempty"`
	RecheckFailures     []Failure      `json:"recheck_failures,omitempty"`
	Runs                []RunInfo      `json:"runs"` // one per campaign merged in

	// Records are every check's outcome, in case order (Options.Record;
	// for JUnit). Not part of the JSON document.
	Records []Record `json:"-"`
}

// Worst locates the largest err/allowed ratio.
type Worst struct {
	Ratio  Ratio  `json:"ratio"`
	Target string `json:"target"`
	Case   string `json:"case"`
	Elem   int    `json:"elem"`
	// Seq is the case's position in the unsharded campaign's order (the
	// corpus, then the generated indices): Merge breaks ties on it, so
	// shards merge to the unsharded run's worst.
	Seq int `json:"seq"`
}

// TargetStats are one target's counts.
type TargetStats struct {
	Name               string `json:"name"`
	Kind               string `json:"kind"`
	BugClass           string `json:"bug_class,omitempty"`
	Checks             int    `json:"checks"`
	FailedChecks       int    `json:"failed_checks"`
	ContractCases      int    `json:"contract_cases"`
	IncompatibleChecks int    `json:"incompatible_checks"`
	Elements           int64  `json:"elements"`
	SkippedElements    int64  `json:"skipped_elements"`
	Worst              Ratio  `json:"worst"`
	WorstCase          string `json:"worst_case,omitempty"`
	WorstSeq           int    `json:"worst_seq"` // as Worst.Seq
	WorkerFailedChecks int    `json:"worker_failed_checks"`
	SkippedChecks      int    `json:"skipped_checks"`
	// Worker counts an exec target's processes and failures (worker.Stats:
	// starts, crashes, timeouts, malformed, reported, retried).
	Worker *worker.Stats `json:"worker,omitempty"`
}

// ContractExample is one case whose inputs break the contract.
type ContractExample struct {
	Case       string   `json:"case"`
	Violations []string `json:"violations"` // problem.Violation strings
}

// Failure is one failed check: a target on a case.
type Failure struct {
	Target    string `json:"target"`
	Criterion string `json:"criterion"`
	Case      string `json:"case"`  // "corpus/NAME.json" or "seed S index I"
	Seed      uint64 `json:"seed"`  // campaign seed (generated cases)
	Index     int    `json:"index"` // case index, −1 for corpus cases
	Worst     Ratio  `json:"worst"` // largest err/allowed
	WorstElem int    `json:"worst_elem"`
	// FailedElements of Elements judged exceeded their allowance.
	FailedElements int    `json:"failed_elements"`
	Elements       int    `json:"elements"`
	Error          string `json:"error,omitempty"` // the kernel errored or panicked
	Detail         string `json:"detail,omitempty"`
	// FailedOutputs names the outputs that failed ("o", "lse"); LSE is
	// the lse output's verdict where the problem declares one.
	FailedOutputs []string              `json:"failed_outputs,omitempty"`
	LSE           *tolerance.LSEVerdict `json:"lse,omitempty"`
	MaxLogit      *tolerance.LSEVerdict `json:"max_logit,omitempty"` // the max_logit output's verdict, likewise
	// Term and RowClass are the verdict's WorstTerm and WorstRow: the
	// bound term and the row class of the worst failing element
	// (FailureSignature).
	Term     string `json:"term,omitempty"`
	RowClass string `json:"row_class,omitempty"`
	// Recheck is the recheck kind of a recheck failure (nondeterministic,
	// order_dependent, split_dependent; Detail says what differed); "" for
	// a failed check.
	Recheck string `json:"recheck,omitempty"`
	// Input is the case as run; Shrunk the minimal failing case found
	// from it (saved as File).
	Input  cases.Case  `json:"input"`
	Shrunk *cases.Case `json:"shrunk,omitempty"`
	File   string      `json:"file,omitempty"`
	Replay string      `json:"replay,omitempty"` // the command that reproduces it
}

// WorkerFailure is a (target, case) pair where the external worker failed
// instead of answering (a *worker.Error): the worker crashed, timed out,
// replied something malformed, or reported an error. It is not shrunk
// (every step would restart the worker); the first Options.Save per
// target are saved as they ran.
type WorkerFailure struct {
	Target    string     `json:"target"`
	Kind      string     `json:"kind"` // crash, timeout, malformed, reported
	Criterion string     `json:"criterion"`
	Case      string     `json:"case"`
	Seed      uint64     `json:"seed"`
	Index     int        `json:"index"`
	Error     string     `json:"error"` // the worker error, with the last lines of its stderr
	Input     cases.Case `json:"input"`
	File      string     `json:"file,omitempty"`
	Replay    string     `json:"replay,omitempty"`
}

// RunInfo describes one campaign that contributed to a result.
type RunInfo struct {
	Command    string   `json:"command"`
	Seed       uint64   `json:"seed"`
	Shard      string   `json:"shard"` // "i/n"
	Family     string   `json:"family,omitempty"`
	Criterion  string   `json:"criterion"`
	Targets    []string `json:"targets"`
	CaseBudget int      `json:"case_budget"` // size of the generated case space, 0 = unbounded
	TimeBudget float64  `json:"time_budget_s"`
	Corpus     int      `json:"corpus_cases"`
	// Generated cases ran: indices Shard.Index + j·Shard.Count for j < Generated.
	Generated int     `json:"generated"`
	Stopped   string  `json:"stopped"` // done, cases, time, signal
	Workers   int     `json:"workers"`
	Started   string  `json:"started"`   // RFC 3339
	Elapsed   float64 `json:"elapsed_s"` // seconds
	// Resumed is how many cases came from the journal of a killed or
	// interrupted run (fuzz --resume); 0 for a run in one piece.
	Resumed int `json:"resumed_cases,omitempty"`
	// Missing is what a run stopped by a signal was asked for and did not
	// run.
	Missing *Missing `json:"missing,omitempty"`
	// JournalError is why the results journal stopped being written.
	JournalError string `json:"journal_error,omitempty"`
}

// Missing is the part of a run's case space it did not run: generated
// indices From, From+Step, …, To (To −1: open-ended, a time budget) and
// the last Corpus corpus entries of the shard.
type Missing struct {
	From   int `json:"from"`
	To     int `json:"to"`
	Step   int `json:"step"`
	Cases  int `json:"cases"` // generated cases missing, −1 unknown (no case budget)
	Corpus int `json:"corpus_cases"`
}

// Gap is a part of a campaign's case space that no merged run covered:
// a shard whose result is missing, or the rest of an interrupted one.
type Gap struct {
	Campaign string `json:"campaign"` // "fuzz seed 7 family window"
	Shard    string `json:"shard"`    // i/n
	// Absent: no result of the shard was merged (Corpus is then unknown).
	Absent bool `json:"absent,omitempty"`
	// AbsentShards, set on the last gap of a campaign with more than
	// maxListedAbsent absent shards, says that this one gap stands for
	// that many absent shards: Shard and the ones after it that no run
	// covers; Cases is their total (−1 unknown), To is −1.
	AbsentShards int `json:"absent_shards,omitempty"`
	Missing
}

// maxListedAbsent is how many absent shards of one campaign Gaps lists
// one by one; one more gap stands for the rest (a result claiming shard
// 0/2000000000 is 1.3 KB of JSON).
const maxListedAbsent = 64

// Record is one check's outcome (Options.Record).
type Record struct {
	Case      string
	CaseIndex int // position in the campaign's case order
	Target    string
	Status    Status
	Worst     float64
	Elements  int
	Skipped   int
	Detail    string // contract violations, kernel error or the criterion's detail
	Failure   *Failure
	Worker    *WorkerFailure // Status WorkerFailed
}

// Status is a check's outcome.
type Status string

const (
	Pass         Status = "pass"
	Fail         Status = "fail"
	Contract     Status = "contract"     // inputs break the contract: not judged
	Incompatible Status = "incompatible" // case dtype the kernel does not take
	Skipped      Status = "skipped"      // the exec worker's hello excludes the case (worker.SkipError)
	Invalid      Status = "invalid"      // the case could not be built
	WorkerFailed Status = "worker"       // the external worker failed (crash, timeout, malformed, reported)
)

// Ratio is an err/allowed ratio; JSON carries +Inf and NaN as strings.
type Ratio float64

func (r Ratio) MarshalJSON() ([]byte, error) { return jsonfloat.Marshal(float64(r)), nil }

func (r *Ratio) UnmarshalJSON(b []byte) error {
	x, err := jsonfloat.Unmarshal(b)
	*r = Ratio(x)
	return err
}

// String formats a ratio for people.
func (r Ratio) String() string {
	f := float64(r)
	if math.IsInf(f, 1) {
		return "inf"
	}
	s := strconv.FormatFloat(f, 'g', 3, 64)
	if s == "1" && f != 1 { // 0.99996 is not 1: show what separates it from failing
		s = strconv.FormatFloat(f, 'g', 6, 64)
	}
	return s
}

// greater orders ratios with NaN above everything (a NaN ratio is a failure).
func greater(a, b float64) bool {
	if math.IsNaN(a) {
		return !math.IsNaN(b)
	}
	return a > b
}

// Marshal encodes r as indented JSON.
func (r *Result) Marshal() []byte {
	c := *r
	c.normalize()
	b, err := jsonout.MarshalIndent(&c, "", "  ")
	if err != nil {
		panic("campaign: " + err.Error()) // every field is marshalable
	}
	return append(b, '\n')
}

// normalize makes nil collections empty so the JSON has [] and {}.
func (r *Result) normalize() {
	r.Version = Version
	if r.Targets == nil {
		r.Targets = []TargetStats{}
	}
	if r.EdgeClasses == nil {
		r.EdgeClasses = map[string]int{}
	}
	if r.Violations == nil {
		r.Violations = map[string]int{}
	}
	if r.WorkerFailureKinds == nil {
		r.WorkerFailureKinds = map[string]int{}
	}
	if r.WorkerFailures == nil {
		r.WorkerFailures = []WorkerFailure{}
	}
	if r.ContractExamples == nil {
		r.ContractExamples = []ContractExample{}
	}
	if r.Failures == nil {
		r.Failures = []Failure{}
	}
	if r.Runs == nil {
		r.Runs = []RunInfo{}
	}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
}

// ParseResult decodes a result document.
func ParseResult(b []byte) (*Result, error) {
	var r Result
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("bad campaign result JSON: %v", err)
	}
	if r.Version < 1 || r.Version > Version {
		return nil, fmt.Errorf("campaign result version %d: want 1..%d", r.Version, Version)
	}
	var probe struct {
		Complete *bool `json:"complete"`
	}
	if json.Unmarshal(b, &probe) == nil && probe.Complete == nil {
		// Written before "complete" existed: incomplete if a run was stopped.
		r.Complete = true
		for _, run := range r.Runs {
			if run.Stopped == "signal" {
				r.Complete, r.Passed = false, false
			}
		}
	}
	r.normalize()
	return &r, nil
}

// LoadResult reads a result file.
func LoadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := ParseResult(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return r, nil
}

// Merge combines results (of shards, or of several campaigns) without
// loss: counts add, failures, contract examples and runs concatenate in
// argument order, edge-class and violation counts add, per-target counts
// add (targets in order of first appearance), the worst ratio is the
// largest (on ties the first in the unsharded case order, then in target
// order, whatever the order of the arguments), and the merge passed when
// every part did and no case of a campaign is missing (Gaps).
func Merge(results ...*Result) *Result {
	m := &Result{Version: Version, Passed: true, Complete: true, EdgeClasses: map[string]int{}, Violations: map[string]int{}, WorkerFailureKinds: map[string]int{}}
	idx := map[string]int{}
	var findParts [][]Finding
	for _, r := range results {
		if r == nil {
			continue
		}
		m.Passed = m.Passed && r.Passed
		m.Complete = m.Complete && r.Complete
		m.Cases += r.Cases
		m.CorpusCases += r.CorpusCases
		m.InvalidCases += r.InvalidCases
		m.ContractCases += r.ContractCases
		m.Checks += r.Checks
		m.FailedChecks += r.FailedChecks
		m.FailedCases += r.FailedCases
		m.WorkerFailedChecks += r.WorkerFailedChecks
		for k, v := range r.WorkerFailureKinds {
			m.WorkerFailureKinds[k] += v
		}
		m.IncompatibleChecks += r.IncompatibleChecks
		m.SkippedChecks += r.SkippedChecks
		for k, v := range r.SkipReasons {
			if m.SkipReasons == nil {
				m.SkipReasons = map[string]int{}
			}
			m.SkipReasons[k] += v
		}
		m.Elements += r.Elements
		m.SkippedElements += r.SkippedElements
		for _, t := range r.Targets {
			i, ok := idx[t.Name]
			if !ok {
				idx[t.Name] = len(m.Targets)
				if t.Worker != nil {
					s := t.Worker.Clone()
					t.Worker = &s
				}
				m.Targets = append(m.Targets, t)
				continue
			}
			s := &m.Targets[i]
			s.Checks += t.Checks
			s.FailedChecks += t.FailedChecks
			s.ContractCases += t.ContractCases
			s.IncompatibleChecks += t.IncompatibleChecks
			s.Elements += t.Elements
			s.SkippedElements += t.SkippedElements
			s.WorkerFailedChecks += t.WorkerFailedChecks
			s.SkippedChecks += t.SkippedChecks
			if t.WorstCase != "" && (s.WorstCase == "" || greater(float64(t.Worst), float64(s.Worst)) ||
				(same(float64(t.Worst), float64(s.Worst)) && t.WorstSeq < s.WorstSeq)) {
				s.Worst, s.WorstCase, s.WorstSeq = t.Worst, t.WorstCase, t.WorstSeq
			}
			if t.Worker != nil {
				if s.Worker == nil {
					s.Worker = &worker.Stats{}
				}
				addStats(s.Worker, t.Worker)
			}
		}
		if w := r.Worst; w != nil && (m.Worst == nil || greater(float64(w.Ratio), float64(m.Worst.Ratio)) ||
			(same(float64(w.Ratio), float64(m.Worst.Ratio)) && less([2]int{w.Seq, idx[w.Target]}, [2]int{m.Worst.Seq, idx[m.Worst.Target]}))) {
			c := *w
			m.Worst = &c
		}
		for k, v := range r.EdgeClasses {
			m.EdgeClasses[k] += v
		}
		for k, v := range r.Violations {
			m.Violations[k] += v
		}
		m.ContractExamples = append(m.ContractExamples, r.ContractExamples...)
		m.InvalidExamples = append(m.InvalidExamples, r.InvalidExamples...)
		m.Failures = append(m.Failures, r.Failures...)
		m.FailuresOmitted += r.FailuresOmitted
		m.WorkerFailures = append(m.WorkerFailures, r.WorkerFailures...)
		m.KnownChecks += r.KnownChecks
		m.RecheckedCases += r.RecheckedCases
		m.RecheckFailedChecks += r.RecheckFailedChecks
		for k, v := range r.RecheckFailureKinds {
			if m.RecheckFailureKinds == nil {
				m.RecheckFailureKinds = map[string]int{}
			}
			m.RecheckFailureKinds[k] += v
		}
		m.RecheckFailures = append(m.RecheckFailures, r.RecheckFailures...)
		findParts = append(findParts, r.Findings)
		m.Runs = append(m.Runs, r.Runs...)
		m.Records = append(m.Records, r.Records...)
	}
	m.Gaps = Gaps(m.Runs)
	m.Complete = m.Complete && len(m.Gaps) == 0
	m.Findings = mergeFindings(findParts)
	m.Passed = m.Passed && m.Complete && m.FailedChecks+m.WorkerFailedChecks+m.RecheckFailedChecks == m.KnownChecks
	m.normalize()
	return m
}

// same is ratio equality with NaN equal to NaN (a tie).
func same(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

// Gaps lists, for each campaign among runs (runs of one command, seed,
// family, criterion, targets, case budget and shard count split one case
// space), the shards no run covers and the cases each interrupted run did
// not run, in order of first appearance, then by shard.
func Gaps(runs []RunInfo) []Gap {
	type group struct {
		label      string
		n, budget  int
		covered    map[int]bool
		interrupts map[int][]Missing
	}
	var gs []*group
	byKey := map[string]*group{}
	for _, r := range runs {
		sh, err := ParseShard(r.Shard)
		if err != nil {
			continue
		}
		key := fmt.Sprintf("%s|%d|%s|%s|%q|%d|%d", r.Command, r.Seed, r.Family, r.Criterion, r.Targets, r.CaseBudget, sh.Count)
		g := byKey[key]
		if g == nil {
			g = &group{label: CampaignLabel(r), n: sh.Count, budget: r.CaseBudget, covered: map[int]bool{}, interrupts: map[int][]Missing{}}
			byKey[key] = g
			gs = append(gs, g)
		}
		g.covered[sh.Index] = true
		if r.Missing != nil {
			g.interrupts[sh.Index] = append(g.interrupts[sh.Index], *r.Missing)
		}
	}
	var out []Gap
	for _, g := range gs {
		// Shards from upper on have no case (a budget smaller than the
		// shard count): never a gap. The walk visits each covered shard
		// and at most maxListedAbsent absent ones; the rest are counted.
		upper := g.n
		if g.budget > 0 {
			upper = min(g.n, g.budget)
		}
		covered := make([]int, 0, len(g.covered))
		for i := range g.covered {
			covered = append(covered, i)
		}
		sort.Ints(covered)
		listed, seen := 0, 0 // absent shards listed; cases of the shards before i
		i, summed := 0, false
		for _, c := range append(covered, g.n) { // c: the next covered shard
			hi := min(c, upper)
			for ; i < hi && listed < maxListedAbsent; i++ {
				m := shardMissing(i, g.n, g.budget)
				seen += max(m.Cases, 0)
				out = append(out, Gap{Campaign: g.label, Shard: Shard{i, g.n}.String(), Absent: true, Missing: m})
				listed++
			}
			if i < hi && !summed {
				// One gap for the rest: the shards in [i, upper) no run covers.
				summed = true
				rest := Gap{Campaign: g.label, Shard: Shard{i, g.n}.String(), Absent: true, AbsentShards: upper - i,
					Missing: Missing{From: i, To: -1, Step: g.n, Cases: -1}}
				if g.budget > 0 {
					rest.Cases = g.budget - seen
				}
				for _, d := range covered {
					if d >= i && d < upper {
						rest.AbsentShards--
						if g.budget > 0 {
							rest.Cases -= shardMissing(d, g.n, g.budget).Cases
						}
					}
				}
				out = append(out, rest)
			}
			if c == g.n {
				break
			}
			seen += max(shardMissing(c, g.n, g.budget).Cases, 0)
			for _, m := range g.interrupts[c] {
				out = append(out, Gap{Campaign: g.label, Shard: Shard{c, g.n}.String(), Missing: m})
			}
			i = c + 1
		}
	}
	return out
}

// shardMissing is what shard i of n covers of a case budget (0: none,
// Cases and To −1): indices i, i+n, …, without overflow.
func shardMissing(i, n, budget int) Missing {
	m := Missing{From: i, To: -1, Step: n, Cases: -1}
	if budget > 0 {
		m.Cases = 0
		if i < budget {
			m.Cases = (budget-i-1)/n + 1
			m.To = i + (m.Cases-1)*n
		}
	}
	return m
}

// CampaignLabel names a run's campaign for people: "fuzz seed 7", with
// its family when restricted.
func CampaignLabel(r RunInfo) string {
	s := fmt.Sprintf("%s seed %d", r.Command, r.Seed)
	if r.Family != "" {
		s += " family " + r.Family
	}
	return s
}

func addStats(a, b *worker.Stats) { a.Add(*b) }

// SortedClasses returns the edge classes by name with their counts.
func (r *Result) SortedClasses() []string {
	ks := make([]string, 0, len(r.EdgeClasses))
	for k := range r.EdgeClasses {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
