package campaign

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/attnvet/attnvet/internal/cases"
)

func findingCounts(r *Result) map[string]int {
	m := map[string]int{}
	for _, f := range r.Findings {
		m[f.Target+" | "+f.Signature] += f.Count
	}
	return m
}

// Every failed check is in exactly one finding; sharded runs merge to
// the unsharded run's findings (counts and first examples); the example
// of each finding is its first failure in case order; CaseAt is the case
// the campaign ran.
func TestFindingsGroupAndMergeAcrossShards(t *testing.T) {
	o, whole := unrecorded120(t)
	if whole.FailedChecks == 0 || len(whole.Findings) < 2 {
		t.Fatalf("want several findings: %d failed, %d findings", whole.FailedChecks, len(whole.Findings))
	}
	n := 0
	for _, f := range whole.Findings {
		n += f.Count
		if f.Example == nil || f.Example.Target != f.Target || FailureSignature(f.Example) != f.Signature {
			t.Errorf("finding %s: example %+v is not of it", f.Signature, f.Example)
		}
		if f.Example.Index >= 0 {
			c := CaseAt(o.Seed, f.Example.Index, o.Family)
			c.Version = cases.Version
			if !caseEqual(c, f.Example.Input) {
				t.Errorf("CaseAt(%d, %d) differs from the case the campaign ran", o.Seed, f.Example.Index)
			}
		}
	}
	if n != whole.FailedChecks+whole.WorkerFailedChecks {
		t.Errorf("findings count %d checks, the run failed %d", n, whole.FailedChecks+whole.WorkerFailedChecks)
	}
	var parts []*Result
	for i := range 3 {
		so := o
		so.Shard = Shard{Index: i, Count: 3}
		parts = append(parts, run(t, so))
	}
	m := Merge(parts[2], parts[0], parts[1])
	if !reflect.DeepEqual(findingCounts(m), findingCounts(whole)) {
		t.Errorf("merged shards' findings %v, want %v", findingCounts(m), findingCounts(whole))
	}
	for i, f := range m.Findings {
		w := whole.Findings[i]
		if f.Signature != w.Signature || f.Target != w.Target || f.Seq != w.Seq || f.Example.Index != w.Example.Index {
			t.Errorf("merged finding %d: %s %s seq %d, want %s %s seq %d", i, f.Target, f.Signature, f.Seq, w.Target, w.Signature, w.Seq)
		}
	}
	// Signatures do not depend on the seed: another seed's findings of
	// the same mutant share signatures with this one's.
	o2 := o
	o2.Seed = 12
	other := run(t, o2)
	shared := 0
	for k := range findingCounts(other) {
		if findingCounts(whole)[k] > 0 {
			shared++
		}
	}
	if shared == 0 {
		t.Errorf("no signature shared between seeds 11 and 12: %v vs %v", findingCounts(whole), findingCounts(other))
	}
}

// --known: failures of known signatures are counted and listed but do not
// fail the run; one unknown signature still does.
func TestKnownSignaturesDoNotFail(t *testing.T) {
	o, whole := unrecorded120(t)
	if len(whole.Findings) < 2 || whole.Passed {
		t.Fatalf("want a failing run with several findings")
	}
	all := map[string]bool{}
	for _, f := range whole.Findings {
		all[f.Signature] = true
	}
	o.Known = all
	r := run(t, o)
	if !r.Passed || r.KnownChecks != r.FailedChecks+r.WorkerFailedChecks || r.FailedChecks != whole.FailedChecks {
		t.Errorf("every signature known: passed %v, known %d of %d failed", r.Passed, r.KnownChecks, r.FailedChecks)
	}
	for _, f := range r.Findings {
		if !f.Known {
			t.Errorf("finding %s not marked known", f.Signature)
		}
	}
	delete(all, whole.Findings[len(whole.Findings)-1].Signature) // the rarest
	o.Known = all
	r = run(t, o)
	if r.Passed || r.KnownChecks == r.FailedChecks || r.Findings[0].Known {
		t.Errorf("one signature unknown: passed %v, known %d of %d, first finding known %v", r.Passed, r.KnownChecks, r.FailedChecks, r.Findings[0].Known)
	}
	if m := Merge(r); m.Passed {
		t.Error("merged result with an unknown finding passed")
	}
}

// unrecorded120 is opts(t, 120) unrecorded and its result, the run the
// findings and known-signature tests start from: run once per test
// binary (the tests only read it).
func unrecorded120(t *testing.T) (Options, *Result) {
	t.Helper()
	o := opts(t, 120)
	o.Record = false
	unrecorded120Once.Do(func() { unrecorded120Result = run(t, o) })
	if unrecorded120Result == nil {
		t.Fatal("the shared base run failed in an earlier test")
	}
	return o, unrecorded120Result
}

var (
	unrecorded120Once   sync.Once
	unrecorded120Result *Result
)

func TestParseKnown(t *testing.T) {
	k, err := ParseKnown([]byte("# ORT defects\n\nnonfinite o window/fp16/sink  \nmismatch o+lse dense/kernel/causal\n"))
	if err != nil || len(k) != 2 || !k["nonfinite o window/fp16/sink"] {
		t.Errorf("text: %v %v", k, err)
	}
	if k, err := ParseKnown([]byte(`["error - window/kernel"]`)); err != nil || !k["error - window/kernel"] {
		t.Errorf("json array: %v %v", k, err)
	}
	if k, err := ParseKnown([]byte(`{"findings":[{"signature":"mismatch o sparse/kernel"}]}`)); err != nil || !k["mismatch o sparse/kernel"] {
		t.Errorf("result json: %v %v", k, err)
	}
	for _, bad := range []string{"just-one-field\n", `["a b"]`, `{"findings": 3}`} {
		if _, err := ParseKnown([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The journal keeps --known and --save-findings: a killed campaign that
// looked past every finding, resumed without them, still does; a
// --known given to the resume replaces the journal's.
func TestResumeKeepsKnownSignatures(t *testing.T) {
	o, whole := unrecorded120(t)
	all := map[string]bool{}
	for _, f := range whole.Findings {
		all[f.Signature] = true
	}
	dir := t.TempDir()
	o.OutDir, o.Journal, o.Known, o.SaveFindings = dir, true, all, true
	ctx, cancel := context.WithCancel(context.Background())
	o.Progress = func(p Progress) {
		if p.Cases >= 30 {
			cancel()
		}
	}
	o.ProgressEvery = time.Millisecond
	if _, err := Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	j, err := LoadJournal(dir)
	if err != nil || j.Finished() {
		t.Fatalf("journal: %v (finished %v)", err, j != nil && j.Finished())
	}
	ro, err := j.Options(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ro.Known, all) || !ro.SaveFindings {
		t.Fatalf("resume options: known %v, save findings %v; want %v and true", ro.Known, ro.SaveFindings, all)
	}
	ro.Targets = o.Targets
	if r := run(t, ro); !r.Passed || r.Cases != 120 || r.KnownChecks != whole.FailedChecks {
		t.Errorf("resumed without --known: passed %v, %d cases, %d known of %d failed", r.Passed, r.Cases, r.KnownChecks, whole.FailedChecks)
	}
	base := DefaultOptions()
	base.Known = map[string]bool{"mismatch o nothing/like/this": true}
	if ro, err := j.Options(base); err != nil || len(ro.Known) != 1 {
		t.Errorf("a --known given to the resume: %v, known %v; want it to replace the journal's", err, ro.Known)
	}
}
