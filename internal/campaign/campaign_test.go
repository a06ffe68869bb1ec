package campaign

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/targets"
)

func mustTargets(t *testing.T, spec string) []targets.Target {
	t.Helper()
	ts, err := targets.Select(spec, targets.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// opts are small campaign options: a correct kernel and one mutant that
// fails on some cases and not others.
func opts(t *testing.T, cases int) Options {
	o := DefaultOptions()
	o.Seed, o.Cases = 11, cases
	o.Targets = mustTargets(t, "tiled/bc16/bf16,stream/fp16,mutant:pr301-n1-poison")
	o.Record = true
	o.Save = 0 // no shrinking: fast
	return o
}

func run(t *testing.T, o Options) *Result {
	t.Helper()
	r, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// stable is the JSON of r without what legitimately varies between runs
// (timing and worker count).
func stable(r *Result) string {
	c := *r
	c.Runs = append([]RunInfo(nil), r.Runs...)
	for i := range c.Runs {
		c.Runs[i].Workers, c.Runs[i].Started, c.Runs[i].Elapsed = 0, "", 0
	}
	return string(c.Marshal())
}

func TestDeterministicAcrossWorkers(t *testing.T) {
	var want string
	var wantRecs []Record
	for _, w := range []int{1, 2, 5} {
		o := opts(t, 60)
		o.Workers = w
		r := run(t, o)
		if r.Cases != 60 || r.FailedChecks == 0 {
			t.Fatalf("workers %d: %d cases, %d failed checks: want 60 cases and some failures of the mutant", w, r.Cases, r.FailedChecks)
		}
		got := stable(r)
		if want == "" {
			want, wantRecs = got, r.Records
			continue
		}
		if got != want {
			t.Errorf("workers %d: result differs from workers 1", w)
		}
		if len(r.Records) != len(wantRecs) {
			t.Fatalf("workers %d: %d records, want %d", w, len(r.Records), len(wantRecs))
		}
		for i := range wantRecs {
			a, b := r.Records[i], wantRecs[i]
			if a.Case != b.Case || a.Target != b.Target || a.Status != b.Status || a.Worst != b.Worst && !(math.IsNaN(a.Worst) && math.IsNaN(b.Worst)) {
				t.Fatalf("workers %d: record %d = %+v, want %+v", w, i, a, b)
			}
		}
	}
}

// caseNames lists the cases a result's records cover.
func caseNames(r *Result) []string {
	seen := map[string]bool{}
	var out []string
	for _, rec := range r.Records {
		if !seen[rec.Case] {
			seen[rec.Case] = true
			out = append(out, rec.Case)
		}
	}
	sort.Strings(out)
	return out
}

func TestShardsCoverTheUnshardedRun(t *testing.T) {
	corpus := []NamedCase{
		{Name: "c0", Case: cases.Case{Family: problem.Window, Seed: 1, H: 2, D: 4, T: 3}},
		{Name: "c1", Case: cases.Case{Family: problem.Window, Seed: 2, H: 1, D: 8, T: 5, Window: 2}},
		{Name: "c2", Case: cases.Case{Family: problem.Sparse, Seed: 3, H: 3, D: 4, B: 1, Win: 4, IdxTopK: 4, BlockSize: 2, Seqused: []int{1}}},
	}
	const n = 47
	o := opts(t, n)
	o.Corpus = corpus
	whole := run(t, o)
	for _, k := range []int{2, 3} {
		var parts []*Result
		seen := map[string]int{}
		for i := 0; i < k; i++ {
			so := opts(t, n)
			so.Corpus = corpus
			so.Shard = Shard{i, k}
			so.Workers = 1 + i // any worker count
			r := run(t, so)
			for _, c := range caseNames(r) {
				seen[c]++
			}
			// Round-trip through JSON: merging works on files.
			back, err := ParseResult(r.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			back.Records = r.Records
			parts = append(parts, back)
		}
		for c, times := range seen {
			if times != 1 {
				t.Errorf("%d shards: case %q run %d times", k, c, times)
			}
		}
		m := Merge(parts...)
		if got, want := caseNames(m), caseNames(whole); !reflect.DeepEqual(got, want) {
			t.Errorf("%d shards cover %d cases, the unsharded run %d", k, len(got), len(want))
		}
		if m.Cases != whole.Cases || m.CorpusCases != whole.CorpusCases || m.Checks != whole.Checks ||
			m.FailedChecks != whole.FailedChecks || m.FailedCases != whole.FailedCases || m.Elements != whole.Elements ||
			m.ContractCases != whole.ContractCases || m.SkippedElements != whole.SkippedElements {
			t.Errorf("%d shards merged: counts %+v differ from unsharded", k, counts(m))
		}
		if !reflect.DeepEqual(m.EdgeClasses, whole.EdgeClasses) || !reflect.DeepEqual(m.Violations, whole.Violations) {
			t.Errorf("%d shards merged: edge classes or violations differ", k)
		}
		if !reflect.DeepEqual(failureKeys(m), failureKeys(whole)) {
			t.Errorf("%d shards merged: failures %v, unsharded %v", k, failureKeys(m), failureKeys(whole))
		}
		if len(m.Runs) != k {
			t.Errorf("merged result has %d runs, want %d", len(m.Runs), k)
		}
		if m.Passed != whole.Passed || float64(m.Worst.Ratio) != float64(whole.Worst.Ratio) && !math.IsInf(float64(whole.Worst.Ratio), 1) {
			t.Errorf("passed/worst differ: %v %v vs %v %v", m.Passed, m.Worst.Ratio, whole.Passed, whole.Worst.Ratio)
		}
	}
}

func counts(r *Result) []int {
	return []int{r.Cases, r.CorpusCases, r.Checks, r.FailedChecks, r.FailedCases, int(r.Elements), r.ContractCases}
}

func failureKeys(r *Result) []string {
	var ks []string
	for _, f := range r.Failures {
		ks = append(ks, f.Target+" @ "+f.Case)
	}
	sort.Strings(ks)
	return ks
}

func TestShardOwnsEachIndexOnce(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7} {
		for i := 0; i < 100; i++ {
			owners := 0
			for k := 0; k < n; k++ {
				if (Shard{k, n}).Owns(i) {
					owners++
				}
			}
			if owners != 1 {
				t.Fatalf("index %d has %d owners among %d shards", i, owners, n)
			}
		}
	}
}

func TestParseShard(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Shard
		ok   bool
	}{
		{"0/1", Shard{0, 1}, true}, {"3/4", Shard{3, 4}, true}, {" 1 / 2 ", Shard{1, 2}, true},
		{"4/4", Shard{}, false}, {"-1/2", Shard{}, false}, {"0/0", Shard{}, false}, {"1", Shard{}, false},
		{"a/b", Shard{}, false}, {"", Shard{}, false}, {"1/2/3", Shard{}, false},
	} {
		got, err := ParseShard(tc.in)
		if (err == nil) != tc.ok || tc.ok && got != tc.want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestTimeBudgetAndCancel(t *testing.T) {
	o := opts(t, 0)
	o.Time = 300 * time.Millisecond
	o.Record = false
	start := time.Now()
	r := run(t, o)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a 300ms campaign took %v", d)
	}
	if r.Runs[0].Stopped != "time" || r.Cases == 0 || r.Runs[0].Generated != r.Cases {
		t.Errorf("stopped %q after %d cases (generated %d): want time, > 0", r.Runs[0].Stopped, r.Cases, r.Runs[0].Generated)
	}

	ctx, cancel := context.WithCancel(context.Background())
	o.Time = 0
	o.Cases = 0
	o.Time = time.Hour
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	r, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Runs[0].Stopped != "signal" || r.Cases == 0 {
		t.Errorf("cancelled run: stopped %q after %d cases", r.Runs[0].Stopped, r.Cases)
	}
}

// panicky is a kernel that panics on every case with more than one token.
type panicky struct{ impl.Kernel }

func (p panicky) Run(in *problem.Inputs) (*impl.Output, error) {
	if in.T > 1 {
		var s []int
		_ = s[in.T] // index out of range
	}
	return p.Kernel.Run(in)
}

type erring struct{ impl.Kernel }

func (erring) Run(*problem.Inputs) (*impl.Output, error) { return nil, errors.New("device lost") }

type short struct{ impl.Kernel }

func (s short) Run(in *problem.Inputs) (*impl.Output, error) {
	out, err := s.Kernel.Run(in)
	out.O = out.O[:len(out.O)-1]
	return out, err
}

func TestBrokenKernelsAreFailuresNotCrashes(t *testing.T) {
	base, err := impl.Lookup("stream/bf16")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		k    impl.Kernel
		want string
	}{
		{"panics", panicky{base}, "kernel panicked"},
		{"errors", erring{base}, "device lost"},
		{"short output", short{base}, "output values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts(t, 20)
			o.Targets = []targets.Target{{Name: "x", Kind: targets.Registry, Kernel: tc.k}}
			r := run(t, o)
			if r.FailedChecks == 0 || r.Passed {
				t.Fatalf("no failure recorded")
			}
			if !strings.Contains(r.Failures[0].Error, tc.want) {
				t.Errorf("error %q, want it to mention %q", r.Failures[0].Error, tc.want)
			}
			if r.Cases != 20 {
				t.Errorf("campaign stopped after %d of 20 cases", r.Cases)
			}
		})
	}
}

func TestSavedFailuresReplay(t *testing.T) {
	dir := t.TempDir()
	o := opts(t, 40)
	o.Targets = mustTargets(t, "mutant:pr301-n1-poison")
	o.OutDir, o.Save, o.ShrinkBudget = dir, 2, 200
	r := run(t, o)
	var saved []Failure
	for _, f := range r.Failures {
		if f.File != "" {
			saved = append(saved, f)
		}
	}
	if len(saved) != 2 {
		t.Fatalf("%d failures saved, want 2 (of %d failing)", len(saved), r.FailedChecks)
	}
	for _, f := range saved {
		if filepath.Dir(f.File) != dir || !strings.HasPrefix(filepath.Base(f.File), "mutant_pr301-n1-poison-11-") {
			t.Errorf("saved as %s", f.File)
		}
		if want := "attnvet replay " + f.File + " --kernel mutant:pr301-n1-poison"; f.Replay != want {
			t.Errorf("replay %q, want %q", f.Replay, want)
		}
		c, err := cases.Load(f.File)
		if err != nil {
			t.Fatal(err)
		}
		if c.Target != "mutant:pr301-n1-poison" || c.Criterion != "bound" {
			t.Errorf("the case file records target %q criterion %q", c.Target, c.Criterion)
		}
		tn, cn := FromDescription(c.Description)
		if tn != "mutant:pr301-n1-poison" || cn != "bound" {
			t.Errorf("description %q records target %q criterion %q", c.Description, tn, cn)
		}
		old := c
		old.Target, old.Criterion = "", "" // a file from before the fields
		if tn, cn := Provenance(old); tn != "mutant:pr301-n1-poison" || cn != "bound" {
			t.Errorf("Provenance of a file without the fields: %q %q", tn, cn)
		}
		tg, _ := targets.Resolve(tn, targets.Options{})
		d, err := Check(c, tg, o.Criterion)
		if err != nil || !d.Failed() {
			t.Errorf("saved case does not fail on replay: %v %+v", err, d.Verdict)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestResultJSONRoundTripAndMerge(t *testing.T) {
	o := opts(t, 30)
	a := run(t, o)
	o.Seed = 12
	b := run(t, o)
	for _, r := range []*Result{a, b} {
		js := r.Marshal()
		var generic map[string]any
		if err := json.Unmarshal(js, &generic); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"passed", "cases", "failures", "edge_classes", "runs", "version"} {
			if _, ok := generic[k]; !ok {
				t.Errorf("JSON lacks %q", k)
			}
		}
		back, err := ParseResult(js)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back.Marshal(), js) {
			t.Errorf("JSON does not round-trip")
		}
	}
	m := Merge(a, b)
	if m.Cases != a.Cases+b.Cases || m.Checks != a.Checks+b.Checks || m.FailedChecks != a.FailedChecks+b.FailedChecks ||
		len(m.Failures) != len(a.Failures)+len(b.Failures) || len(m.Runs) != 2 || m.Passed {
		t.Errorf("merge lost counts: %v", counts(m))
	}
	for k, v := range a.EdgeClasses {
		if m.EdgeClasses[k] != v+b.EdgeClasses[k] {
			t.Errorf("edge class %s: %d, want %d", k, m.EdgeClasses[k], v+b.EdgeClasses[k])
		}
	}
	for i, ts := range m.Targets {
		if ts.Checks != a.Targets[i].Checks+b.Targets[i].Checks {
			t.Errorf("target %s checks did not add", ts.Name)
		}
	}
	// Merging is associative on what it keeps.
	if x, y := Merge(Merge(a, b), a), Merge(a, Merge(b, a)); stable(x) != stable(y) {
		t.Errorf("merge is not associative")
	}
	if m := Merge(); !m.Passed || m.Cases != 0 {
		t.Errorf("empty merge: %+v", m)
	}
}

func TestRatioJSON(t *testing.T) {
	for _, v := range []float64{0, 1.5, math.Inf(1), math.Inf(-1), 1e-300} {
		b, err := json.Marshal(Ratio(v))
		if err != nil {
			t.Fatal(err)
		}
		var back Ratio
		if err := json.Unmarshal(b, &back); err != nil || float64(back) != v {
			t.Errorf("%v → %s → %v, %v", v, b, back, err)
		}
	}
	b, _ := json.Marshal(Ratio(math.NaN()))
	var back Ratio
	if err := json.Unmarshal(b, &back); err != nil || !math.IsNaN(float64(back)) {
		t.Errorf("NaN → %s → %v", b, back)
	}
}

func TestJUnitWellFormed(t *testing.T) {
	o := opts(t, 25)
	o.Corpus = []NamedCase{{Name: "corpus/x<&>.json", Path: "corpus/x<&>.json", Case: cases.Case{Family: problem.Window, Seed: 1, H: 1, D: 2, T: 2}}}
	r := run(t, o)
	b := JUnit(r, "attnvet gate", time.Second)
	var doc JUnitSuites
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("JUnit XML does not parse: %v", err)
	}
	if len(doc.Suites) != len(o.Targets) {
		t.Fatalf("%d suites, want one per target (%d)", len(doc.Suites), len(o.Targets))
	}
	if doc.Tests != 26*len(o.Targets) {
		t.Errorf("%d tests, want cases × targets = %d", doc.Tests, 26*len(o.Targets))
	}
	fails := 0
	for _, s := range doc.Suites {
		n := 0
		for _, c := range s.Cases {
			if c.Failure != nil {
				n++
				if !strings.Contains(c.Failure.Message, "attnvet replay") {
					t.Errorf("failure message lacks the replay command: %q", c.Failure.Message)
				}
			}
		}
		if n != s.Failures || len(s.Cases) != s.Tests {
			t.Errorf("suite %s: attributes (%d tests, %d failures) disagree with its cases (%d, %d)", s.Name, s.Tests, s.Failures, len(s.Cases), n)
		}
		fails += n
	}
	if fails != r.FailedChecks || doc.Failures != fails {
		t.Errorf("%d JUnit failures, %d failed checks", fails, r.FailedChecks)
	}
	if !strings.Contains(string(b), "x&lt;&amp;&gt;.json") {
		t.Errorf("names are not escaped")
	}
}

func TestReplayCommandQuotingRoundTrips(t *testing.T) {
	for _, name := range []string{"tiled/bc32/bf16", "mutant:pr301-n1-poison", `exec:'python3 k.py --x "y"'`} {
		c := cases.Case{Description: "attnvet fuzz failure: target=" + quote(name) + " criterion=prob seed=1 index=2"}
		tn, cn := FromDescription(c.Description)
		if tn != name || cn != "prob" {
			t.Errorf("%q → %q %q", name, tn, cn)
		}
	}
	if got := ReplayCommand("out dir/a.json", "exec:python3 k.py", "bound"); got != `attnvet replay 'out dir/a.json' --kernel 'exec:python3 k.py'` {
		t.Errorf("ReplayCommand = %s", got)
	}
	if got := ReplayCommand("a.json", "stream/bf16", "ratio"); got != "attnvet replay a.json --kernel stream/bf16 --criterion ratio" {
		t.Errorf("ReplayCommand = %s", got)
	}
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

func TestOptionsValidate(t *testing.T) {
	good := opts(t, 1)
	for name, edit := range map[string]func(*Options){
		"no targets":      func(o *Options) { o.Targets = nil },
		"no criterion":    func(o *Options) { o.Criterion = nil },
		"bad shard":       func(o *Options) { o.Shard = Shard{2, 2} },
		"negative cases":  func(o *Options) { o.Cases = -1 },
		"negative time":   func(o *Options) { o.Time = -time.Second },
		"negative worker": func(o *Options) { o.Workers = -1 },
	} {
		o := good
		edit(&o)
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRatioString(t *testing.T) {
	for _, tc := range []struct {
		r    float64
		want string
	}{{0.5, "0.5"}, {1, "1"}, {0.99996311, "0.999963"}, {1.00004, "1.00004"}, {256, "256"}, {math.Inf(1), "inf"}, {12.345, "12.3"}} {
		if got := Ratio(tc.r).String(); got != tc.want {
			t.Errorf("Ratio(%v) = %q, want %q", tc.r, got, tc.want)
		}
	}
}

// A case no target takes is counted as incompatible and hits no edge
// class: its classes would report an edge as covered that no kernel met.
func TestIncompatibleCaseCoversNoClass(t *testing.T) {
	c, err := cases.Parse([]byte(`{"family":"window","dtype":"fp16","h":1,"d":2,"t":3}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		target       string
		incompatible int
		classes      bool
	}{
		{"tiled/bc16/bf16", 1, false},
		{"stream/fp16", 0, true},
	} {
		o := DefaultOptions()
		o.Cases, o.Save = 0, 0
		o.Targets = mustTargets(t, tc.target)
		o.Corpus = []NamedCase{{Name: "fp16", Case: c}}
		r := run(t, o)
		if r.IncompatibleChecks != tc.incompatible || (len(r.EdgeClasses) > 0) != tc.classes {
			t.Errorf("%s: %d incompatible, classes %v; want %d incompatible, classes: %v",
				tc.target, r.IncompatibleChecks, r.EdgeClasses, tc.incompatible, tc.classes)
		}
	}
}
