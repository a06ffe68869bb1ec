package summary

import (
	"bytes"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/targets"
	"github.com/attnvet/attnvet/internal/testkit"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/internal/worker"
)

// The results below are built by hand, small and deterministic, so that
// each golden file pins one path of a printer: a pass, failures with and
// without a replay command, findings NEW and KNOWN, skipped pairs and
// elements, worker failures and restarts, rechecks, internal errors, gaps
// and duplicate shards of a merge, and control characters in text that
// came from input. Run with -update after a deliberate change to a
// printer, and read the diff.

// options are a campaign's options as the summaries read them.
func options(t *testing.T, seed uint64, kernels ...string) *campaign.Options {
	t.Helper()
	opt := campaign.DefaultOptions()
	opt.Seed, opt.OutDir = seed, "attnvet-failures"
	for _, k := range kernels {
		tg, err := targets.Resolve(k, targets.Options{})
		if err != nil {
			t.Fatal(err)
		}
		opt.Targets = append(opt.Targets, tg)
	}
	return &opt
}

func sparseCase(seed uint64) cases.Case {
	return cases.Case{Version: 1, Family: "sparse", Seed: seed, H: 2, D: 8, B: 1, Win: 4, IdxTopK: 2, Seqused: []int{3}}
}

func windowCase(seed uint64) cases.Case {
	return cases.Case{Version: 1, Family: "window", Seed: seed, H: 4, Hkv: 1, D: 16, T: 9, Window: 4}
}

// contract is n contract-violating cases with their examples.
func contract(r *campaign.Result, n int) {
	r.ContractCases = n
	r.Violations = map[string]int{"pad_in_prefix": n - 1, "negative_seqused": 1}
	for i := range n {
		v := []string{fmt.Sprintf("pad_in_prefix (token 0): entry %d is -1 inside the first sparse_k=8 entries", i)}
		if i%2 == 1 {
			v = append(v, "pad_in_prefix (token 1): entry 3 is -1", "negative_seqused: seqused_kv[0] = 0")
		}
		r.ContractExamples = append(r.ContractExamples, campaign.ContractExample{Case: fmt.Sprintf("seed 5 index %d", 10+i), Violations: v})
	}
}

// manyClasses is an edge-class map whose line exceeds 400 bytes (clipped
// unless -v).
func manyClasses() map[string]int {
	m := map[string]int{}
	for i := range 40 {
		m[fmt.Sprintf("class_%02d_long_name", i)] = i + 1
	}
	return m
}

func passingGate() *campaign.Result {
	r := &campaign.Result{Version: campaign.Version, Passed: true, Complete: true,
		Cases: 12, CorpusCases: 2, Checks: 1234567, Elements: 9876543210, SkippedElements: 1500,
		IncompatibleChecks: 3,
		Worst:              &campaign.Worst{Ratio: 0.99996, Target: "tiled/bc128/bf16", Case: "corpus/sparse_k1_sink.json"},
		EdgeClasses:        map[string]int{"n1": 4, "gqa": 2, "sink_pos_inf": 1},
	}
	contract(r, 7)
	return r
}

func failingGate() *campaign.Result {
	r := &campaign.Result{Version: campaign.Version, Complete: true,
		Cases: 30, CorpusCases: 5, Checks: 58, FailedChecks: 23, FailedCases: 24, Elements: 4096,
		WorkerFailedChecks: 2, WorkerFailureKinds: map[string]int{worker.Crash: 1, worker.Timeout: 1},
		KnownChecks: 3, FailuresOmitted: 2,
		Worst:       &campaign.Worst{Ratio: campaign.Ratio(math.Inf(1)), Target: "mutant:pr301-n1-poison", Case: "seed 9 index 3"},
		EdgeClasses: manyClasses(),
		Targets: []campaign.TargetStats{
			{Name: "mutant:pr301-n1-poison", Checks: 29},
			{Name: "exec:./k.py", Checks: 29, Worker: &worker.Stats{Procs: 1, Requests: 12345, Starts: 4, Crashes: 2, Timeouts: 1,
				Reported: 1, Retried: 1, Skipped: 1200, SkipReasons: map[string]int64{"family sparse not in families=window": 1000, "dtype fp16": 200}}},
		},
		Runs:            []campaign.RunInfo{{Command: "gate", Seed: 9, Shard: "0/1", Targets: []string{"mutant:pr301-n1-poison", "exec:./k.py"}}},
		InvalidCases:    5,
		InvalidExamples: []campaign.ContractExample{{Case: "seed 9 index 1", Violations: []string{"panic: index out of range", "second"}}, {Case: "seed 9 index 2", Violations: []string{"generator: h = 0"}}, {Case: "seed 9 index 4", Violations: []string{"x"}}, {Case: "seed 9 index 6", Violations: []string{"y"}}},
	}
	for i := range 22 {
		f := campaign.Failure{Target: "mutant:pr301-n1-poison", Criterion: tolerance.NameBound, Case: fmt.Sprintf("seed 9 index %d", 3+i),
			Seed: 9, Index: 3 + i, Worst: campaign.Ratio(math.Inf(1)), FailedElements: 2 * i, Elements: 64, Input: sparseCase(uint64(i))}
		if i%3 == 0 {
			f.Replay = fmt.Sprintf("attnvet replay attnvet-failures/mutant_pr301-n1-poison-9-%d.json --kernel mutant:pr301-n1-poison", 3+i)
		}
		if i == 1 {
			f.Error = "panic: runtime error: slice bounds out of range"
		}
		r.Failures = append(r.Failures, f)
	}
	r.WorkerFailures = []campaign.WorkerFailure{
		{Target: "exec:./k.py", Kind: worker.Crash, Case: "seed 9 index 7", Error: "worker crash on request 3: exit status 139\nworker stderr: Segmentation fault\x1b[2J",
			Input: sparseCase(7), Replay: "attnvet replay attnvet-failures/exec_k.py-9-7.json --kernel 'exec:./k.py'"},
		{Target: "exec:./k.py", Kind: worker.Timeout, Case: "seed 9 index 8", Error: strings.Repeat("no reply ", 50), Input: windowCase(8)},
	}
	ex := r.Failures[0]
	r.Findings = []campaign.Finding{
		{Target: "mutant:pr301-n1-poison", Signature: "gross o sparse -", Count: 20, Example: &ex},
		{Target: "mutant:pr301-n1-poison", Signature: "error - sparse -", Count: 1, Example: &r.Failures[1]},
		{Target: "exec:./k.py", Signature: "worker-crash - sparse -", Count: 1, WorkerExample: &r.WorkerFailures[0]},
		{Target: "exec:./k.py\x1b[31m", Signature: "worker-timeout - window\r -", Count: 1, Known: true, WorkerExample: &r.WorkerFailures[1]},
		{Target: "mutant:pr301-n1-poison", Signature: "mismatch o+lse window output_rounding", Count: 2, Known: true},
	}
	return r
}

func TestGateGolden(t *testing.T) {
	opt := options(t, 9, "mutant:pr301-n1-poison", "tiled/bc128/bf16")
	for _, tc := range []struct {
		name    string
		res     *campaign.Result
		verbose bool
	}{
		{"gate_pass", passingGate(), false},
		{"gate_pass_verbose", passingGate(), true},
		{"gate_fail", failingGate(), false},
		{"gate_fail_verbose", failingGate(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			Gate(&b, opt, tc.res, 1234*time.Millisecond, tc.verbose)
			testkit.Golden(t, filepath.Join("testdata", tc.name+".golden"), b.Bytes())
		})
	}
}

// fuzzResult is a one-run fuzz result; edit shapes it.
func fuzzResult(edit func(*campaign.Result)) *campaign.Result {
	r := &campaign.Result{Version: campaign.Version, Passed: true, Complete: true,
		Cases: 300, Checks: 252, Elements: 548904, SkippedElements: 11283, IncompatibleChecks: 34,
		Worst:       &campaign.Worst{Ratio: 0.792, Target: "tiled/bc128/bf16", Case: "seed 3 index 175"},
		EdgeClasses: map[string]int{"n1": 161, "d1": 32},
		Runs: []campaign.RunInfo{{Command: "fuzz", Seed: 3, Shard: "1/4", Criterion: "bound", Targets: []string{"tiled/bc128/bf16"},
			CaseBudget: 1200, Generated: 300, Stopped: "cases", Workers: 2, Elapsed: 0.5}},
	}
	contract(r, 2)
	if edit != nil {
		edit(r)
	}
	return r
}

func TestFuzzGolden(t *testing.T) {
	opt := options(t, 3, "tiled/bc128/bf16")
	opt.Shard = campaign.Shard{Index: 1, Count: 4}
	shrunk := sparseCase(1)
	shrunk.H, shrunk.D, shrunk.Seqused = 1, 1, []int{1}
	for _, tc := range []struct {
		name string
		res  *campaign.Result
	}{
		{"fuzz_pass", fuzzResult(nil)},
		{"fuzz_pass_known", fuzzResult(func(r *campaign.Result) {
			r.FailedChecks, r.FailedCases, r.KnownChecks = 4, 4, 4 // known failures do not fail the run: Passed stays true
			r.Findings = []campaign.Finding{{Target: "tiled/bc128/bf16", Signature: "mismatch o sparse p_rounding", Count: 4, Known: true,
				Example: &campaign.Failure{Case: "seed 3 index 5"}}}
			r.Failures = []campaign.Failure{{Target: "tiled/bc128/bf16", Criterion: "bound", Case: "seed 3 index 5", FailedElements: 1, Elements: 2, Worst: 1.5,
				Input: sparseCase(5), Shrunk: &shrunk, File: "attnvet-failures/x.json", Replay: "attnvet replay attnvet-failures/x.json --kernel tiled/bc128/bf16"}}
		})},
		{"fuzz_fail", fuzzResult(func(r *campaign.Result) {
			r.Passed = false
			r.FailedChecks, r.FailedCases = 3, 4
			r.WorkerFailedChecks, r.WorkerFailureKinds = 1, map[string]int{worker.Malformed: 1}
			r.RecheckedCases, r.RecheckFailedChecks = 30, 2
			r.RecheckFailureKinds = map[string]int{"nondeterministic": 1, "order_dependent": 1}
			r.RecheckFailures = []campaign.Failure{
				{Case: "seed 3 index 10", Recheck: "nondeterministic", Detail: "o[3] differs:\n0x3f80 vs 0x3f81"},
				{Case: "seed 3 index\x1b[K 20", Recheck: "order_dependent", Detail: "fails in reversed order"},
			}
			for i := range 3 {
				f := campaign.Failure{Target: "tiled/bc128/bf16", Criterion: "bound", Case: fmt.Sprintf("seed 3 index %d", 4*i+1), FailedElements: 3, Elements: 100, Worst: 12.5, Input: sparseCase(uint64(i))}
				if i < 2 {
					f.File = fmt.Sprintf("attnvet-failures/t-3-%d.json", 4*i+1)
					f.Replay = "attnvet replay " + f.File + " --kernel tiled/bc128/bf16"
				}
				if i == 0 {
					f.Shrunk = &shrunk
				}
				r.Failures = append(r.Failures, f)
			}
			r.WorkerFailures = []campaign.WorkerFailure{
				{Target: "tiled/bc128/bf16", Kind: worker.Malformed, Case: "seed 3 index 2", Error: "reply: o has shape [1 2], want [2 2]", Input: windowCase(2)},
			}
			r.Findings = []campaign.Finding{
				{Target: "tiled/bc128/bf16", Signature: "mismatch o sparse p_rounding", Count: 3, Example: &r.Failures[0]},
				{Target: "tiled/bc128/bf16", Signature: "worker-malformed - window -", Count: 1, WorkerExample: &r.WorkerFailures[0]},
				{Target: "tiled/bc128/bf16", Signature: "recheck-nondeterministic o sparse -", Count: 2},
			}
		})},
		{"fuzz_fail_unsaved", fuzzResult(func(r *campaign.Result) {
			r.Passed = false
			r.FailedChecks, r.FailedCases, r.FailuresOmitted = 7, 7, 1
			for i := range 6 {
				r.Failures = append(r.Failures, campaign.Failure{Target: "tiled/bc128/bf16", Criterion: "prob", Case: fmt.Sprintf("seed 3 index %d", i),
					FailedElements: i + 1, Elements: 10, Worst: campaign.Ratio(1 + float64(i)), Input: windowCase(uint64(i))})
			}
		})},
		{"fuzz_interrupted", fuzzResult(func(r *campaign.Result) {
			r.Passed, r.Complete = false, false
			r.Cases, r.Checks = 1700, 1500
			run := &r.Runs[0]
			run.Stopped, run.Generated, run.Resumed, run.Elapsed = "signal", 1700, 1200, 12.25
			run.Missing = &campaign.Missing{From: 6801, To: 11997, Step: 4, Cases: 1300, Corpus: 2}
		})},
		{"fuzz_time_budget", fuzzResult(func(r *campaign.Result) {
			r.Worst, r.SkippedElements, r.IncompatibleChecks, r.ContractCases, r.EdgeClasses = nil, 0, 0, 0, nil
			r.Runs[0].Stopped, r.Runs[0].Generated, r.Runs[0].Elapsed = "time", 0, 0
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			Fuzz(&b, opt, tc.res)
			testkit.Golden(t, filepath.Join("testdata", tc.name+".golden"), b.Bytes())
		})
	}
}

// shardRun is run i of a fuzz campaign of n shards over 30 cases.
func shardRun(seed uint64, i, n int) campaign.RunInfo {
	return campaign.RunInfo{Command: "fuzz", Seed: seed, Shard: fmt.Sprintf("%d/%d", i, n), Criterion: "bound",
		Targets: []string{"mutant:s2-shared-length"}, CaseBudget: 30, Generated: 10, Stopped: "cases"}
}

func TestMergeGolden(t *testing.T) {
	defer func(f func() []string) { classNames = f }(classNames)
	classNames = func() []string { return []string{"n0", "n1", "n2", "gqa", "sink_pos_inf", "e\x1b[2J"} }
	for _, tc := range []struct {
		name    string
		n       int
		verbose bool
		res     *campaign.Result
	}{
		{"merge_pass", 2, false, &campaign.Result{Version: campaign.Version, Passed: true, Complete: true,
			Cases: 587, CorpusCases: 87, Checks: 18236, Elements: 40019063,
			EdgeClasses: manyClasses(),
			Runs:        []campaign.RunInfo{shardRun(3, 0, 1), {Command: "gate", Seed: 1, Shard: "0/1", Family: "window", Criterion: "bound", Targets: []string{"stream/bf16"}}},
		}},
		{"merge_gaps", 3, false, &campaign.Result{Version: campaign.Version,
			Cases: 20, Checks: 18, Elements: 1000,
			EdgeClasses: map[string]int{"n1": 3},
			Runs:        []campaign.RunInfo{shardRun(7, 0, 3), shardRun(7, 0, 3), shardRun(7, 2, 3), shardRun(8, 0, 200)},
			Gaps: []campaign.Gap{
				{Campaign: "fuzz seed 7", Shard: "1/3", Absent: true, Missing: campaign.Missing{From: 1, To: 28, Step: 3, Cases: 10}},
				{Campaign: "fuzz seed 7", Shard: "2/3", Missing: campaign.Missing{From: 29, To: 29, Step: 3, Cases: 1, Corpus: 2}},
				{Campaign: "fuzz seed 8", Shard: "1/200", Absent: true, Missing: campaign.Missing{From: 1, Step: 200, Cases: -1}},
				{Campaign: "fuzz seed 8", Shard: "65/200", Absent: true, AbsentShards: 135, Missing: campaign.Missing{From: 65, To: -1, Step: 200, Cases: -1}},
			},
		}},
		// An edge class of 501 bytes: clipped at a rune boundary (no comma).
		{"merge_long_class", 1, false, &campaign.Result{Version: campaign.Version, Passed: true, Complete: true,
			Cases: 2, Checks: 2, EdgeClasses: map[string]int{"x" + strings.Repeat("é", 250): 1},
			Runs: []campaign.RunInfo{shardRun(1, 0, 1)}}},
		{"merge_fail", 2, false, func() *campaign.Result {
			r := failingGate()
			r.Runs = []campaign.RunInfo{shardRun(9, 0, 2), shardRun(9, 1, 2)}
			r.FailedChecks = 25
			return r
		}()},
		{"merge_fail_verbose", 2, true, func() *campaign.Result {
			r := failingGate()
			r.Runs = []campaign.RunInfo{shardRun(9, 0, 2), shardRun(9, 1, 2)}
			contract(r, 7)
			return r
		}()},
		// Text from the merged files reaches the terminal escaped.
		{"merge_escapes", 1, false, &campaign.Result{Version: campaign.Version, Complete: true,
			Cases: 2, Checks: 2, FailedChecks: 1, FailedCases: 1,
			EdgeClasses: map[string]int{"e\x1b[2J": 1, "n1\x1b[0m": 3},
			Runs:        []campaign.RunInfo{{Command: "fuzz\x1b[31m\rPASS", Seed: 1, Shard: "0/1", Family: "w\x1b]0;x\x07", Targets: []string{"t"}}},
			Worst:       &campaign.Worst{Ratio: 2, Target: "t\x1b[1m", Case: "c\r\x1b[K"},
			Failures:    []campaign.Failure{{Target: "t\x1b[1m", Case: "c\r\x1b[K", Replay: "attnvet replay '\x1b[31m'", Error: "boom\x00\x7f\xff"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			Merge(&b, tc.n, tc.res, tc.verbose)
			if i := strings.IndexFunc(b.String(), func(r rune) bool { return r < 0x20 && r != '\n' || r == 0x7f }); i >= 0 {
				t.Errorf("control character in the merge summary at byte %d", i)
			}
			testkit.Golden(t, filepath.Join("testdata", tc.name+".golden"), b.Bytes())
		})
	}
}

// TestCommas: thousands separators, negative numbers included.
func TestCommas(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -1234567: "-1,234,567", 100000: "100,000"} {
		if got := Commas64(n); got != want {
			t.Errorf("Commas64(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestClipAtComma: never more than n bytes, cut at a comma or a rune
// boundary.
func TestClipAtComma(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"a, b, c", 10, "a, b, c"},
		{"a, b, c", 5, "a, b"},
		{"ééé", 3, "é"},
		{strings.Repeat("a", 10), 4, "aaaa"},
	} {
		if got := clipAtComma(tc.s, tc.n); got != tc.want {
			t.Errorf("clipAtComma(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}
