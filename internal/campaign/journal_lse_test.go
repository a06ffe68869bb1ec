package campaign

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/attnvet/attnvet/internal/problem"
)

// A failure's lse verdict and failed outputs survive the journal: a
// campaign resumed from a cut journal (fuzz --resume) and one rebuilt from
// it (report --merge) list the same failed_outputs and lse as the
// uninterrupted run. Before the journal kept them, the resumed failures
// had neither.
func TestJournalKeepsLSEAndFailedOutputs(t *testing.T) {
	wholeDir := filepath.Join(t.TempDir(), "whole")
	o := DefaultOptions()
	o.Seed, o.Cases, o.Family = 3, 30, problem.Dense
	o.Targets = mustTargets(t, "stream/fp32,mutant:lse-sink-included")
	o.OutDir, o.Journal, o.Save, o.Workers = wholeDir, true, 0, 2
	whole := run(t, o)
	lseFails := 0
	for _, f := range whole.Failures {
		for _, out := range f.FailedOutputs {
			if out == "lse" && f.LSE != nil {
				lseFails++
			}
		}
	}
	if lseFails == 0 {
		t.Fatalf("no failure with a failed lse among %d failures: the test needs one", len(whole.Failures))
	}
	jb, err := os.ReadFile(filepath.Join(wholeDir, JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	want := func(r *Result) [][2]any {
		var out [][2]any
		for _, f := range r.Failures {
			out = append(out, [2]any{f.FailedOutputs, f.LSE})
		}
		return out
	}
	j, err := LoadJournal(wholeDir)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := Rebuild(j); err != nil || !reflect.DeepEqual(want(r), want(whole)) {
		t.Errorf("rebuilt from the journal: %v: failed outputs and lse %v, want %v", err, want(r), want(whole))
	}
	// Cut after the header and the first batch, then resume.
	first := 0
	for n, i := 0, 0; i < len(jb); i++ {
		if jb[i] == '\n' {
			if n++; n == 2 {
				first = i + 1
				break
			}
		}
	}
	dir := filepath.Join(t.TempDir(), "cut")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, JournalFile), jb[:first], 0o644); err != nil {
		t.Fatal(err)
	}
	j, err = LoadJournal(dir)
	if err != nil || j.Done == 0 {
		t.Fatalf("cut journal: %v, %+v", err, j)
	}
	ro, err := j.Options(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	ro.Targets = o.Targets
	if r := run(t, ro); !reflect.DeepEqual(want(r), want(whole)) {
		t.Errorf("resumed after %d cases: failed outputs and lse %v, want %v", j.Done, want(r), want(whole))
	}
}
