package campaign

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/testkit"
)

// journalOpts is a campaign that fails often (and saves and shrinks two
// failures per target), with a corpus, journaled into dir.
func journalOpts(t *testing.T, dir string, n int) Options {
	o := opts(t, n)
	o.Targets = mustTargets(t, "stream/fp16,mutant:pr301-n1-stale-state")
	o.Corpus = []NamedCase{
		{Name: "c0", Case: cases.Case{Family: problem.Window, Seed: 1, H: 2, D: 4, T: 3}},
		{Name: "c1", Case: cases.Case{Family: problem.Window, Seed: 2, H: 1, D: 8, T: 5, Window: 2}},
	}
	o.OutDir, o.Journal = dir, true
	o.Record = false // plain cases are summed up in the journal (Record journals each)
	o.Save, o.ShrinkBudget = 2, 30
	o.Workers = 2
	return o
}

// savedFiles is testkit.CaseFiles.
func savedFiles(t *testing.T, dir string) map[string]string { return testkit.CaseFiles(t, dir) }

// stableIn is stable(r) with the out directory's name taken out of the
// file names and replay commands.
func stableIn(r *Result, dir string) string {
	c := *r
	c.Runs = append([]RunInfo(nil), r.Runs...)
	for i := range c.Runs {
		c.Runs[i].Resumed = 0
	}
	return strings.ReplaceAll(stable(&c), dir, "OUT")
}

// The journal of a campaign cut at any byte (a SIGKILL, a full disk)
// reads as the campaign up to its last whole record, and resuming it
// gives the uninterrupted campaign's result and saved files exactly.
func TestJournalCutAnywhereResumesToTheSameResult(t *testing.T) {
	// Plain cases summed up per batch, and (Record, for JUnit) each case
	// journaled.
	t.Run("summed", func(t *testing.T) { testJournalCuts(t, 90, false) })
	t.Run("each", func(t *testing.T) { testJournalCuts(t, 40, true) })
}

func testJournalCuts(t *testing.T, n int, record bool) {
	wholeDir := filepath.Join(t.TempDir(), "whole")
	wo := journalOpts(t, wholeDir, n)
	wo.Record = record
	whole := run(t, wo)
	if whole.FailedChecks < 10 || !whole.Complete {
		t.Fatalf("want a complete campaign with failures: %d failed, complete %v", whole.FailedChecks, whole.Complete)
	}
	wantFiles := savedFiles(t, wholeDir)
	if len(wantFiles) == 0 {
		t.Fatal("no failure saved")
	}
	jb, err := os.ReadFile(filepath.Join(wholeDir, JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	// Record boundaries and the cases journaled before each.
	var ends []int
	var doneAt []int
	full, err := readJournal(bytes.NewReader(jb))
	if err != nil || full.Done != n+2 || full.End == nil || full.End.Stopped != "cases" {
		t.Fatalf("full journal: %v, %+v", err, full)
	}
	for off := 0; off < len(jb); {
		k := bytes.IndexByte(jb[off:], '\n')
		off += k + 1
		ends = append(ends, off)
		j, err := readJournal(bytes.NewReader(jb[:off]))
		if err != nil {
			t.Fatal(err)
		}
		doneAt = append(doneAt, j.Done)
	}
	if len(ends) < 3 {
		t.Fatalf("journal has %d records; want a header, batches and an end", len(ends))
	}
	// Every cut reads as the last whole record before it: every byte near
	// a record boundary, and a stride elsewhere (each read is linear).
	var cuts []int
	for cut := 0; cut <= len(jb); cut += 37 {
		cuts = append(cuts, cut)
	}
	for _, e := range ends {
		for cut := max(0, e-40); cut <= min(len(jb), e+40); cut++ {
			cuts = append(cuts, cut)
		}
	}
	sort.Ints(cuts)
	rec := 0
	for _, cut := range cuts {
		for rec < len(ends) && ends[rec] <= cut {
			rec++
		}
		j, err := readJournal(bytes.NewReader(jb[:cut]))
		if rec == 0 {
			if err != ErrNoJournal {
				t.Fatalf("cut at %d (inside the header): %v, want ErrNoJournal", cut, err)
			}
			continue
		}
		if err != nil || j.Done != doneAt[rec-1] || j.size != int64(ends[rec-1]) {
			t.Fatalf("cut at %d: %v, %d cases (%d bytes); want %d cases, %d bytes", cut, err, j.Done, j.size, doneAt[rec-1], ends[rec-1])
		}
	}
	// A flipped byte ends the journal at the record before it.
	bad := bytes.Clone(jb)
	bad[ends[0]+len(`{"crc32":"12345678","rec":{"kind":"batch","from":`)] ^= 1
	if j, err := readJournal(bytes.NewReader(bad)); err != nil || j.Done != doneAt[0] {
		t.Fatalf("damaged second record: %v, %+v", err, j)
	}

	// Rebuilt without running (report --merge of a journal), the whole
	// journal is the campaign's result; a cut one is its part so far,
	// incomplete.
	if j, err := LoadJournal(wholeDir); err != nil {
		t.Fatal(err)
	} else if r, err := Rebuild(j); err != nil || !reflect.DeepEqual(counts(r), counts(whole)) || !reflect.DeepEqual(failureKeys(r), failureKeys(whole)) ||
		!reflect.DeepEqual(r.Worst, whole.Worst) || !reflect.DeepEqual(r.EdgeClasses, whole.EdgeClasses) || !r.Complete || r.Passed != whole.Passed {
		t.Errorf("rebuilt from the journal: %v, counts %v, want %v", err, counts(r), counts(whole))
	} else if r.Failures[0].File == "" || r.Failures[0].Shrunk == nil {
		t.Errorf("rebuilt failure does not name its saved, shrunk file: %+v", r.Failures[0])
	}

	// Resume from cuts: inside the header's successor, mid-journal, just
	// before the end record, and after it (only the shrinking left).
	for _, cut := range []int{ends[0] + 7, (ends[0] + ends[len(ends)-1]) / 2, ends[len(ends)-2], len(jb)} {
		dir := filepath.Join(t.TempDir(), "whole")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, JournalFile), jb[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		j, err := LoadJournal(dir)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := Rebuild(j); err != nil || r.Cases != j.Done || (r.Complete != (j.Done == n+2)) || (!r.Complete && (r.Passed || r.Runs[0].Missing == nil || r.Runs[0].Stopped != "killed")) {
			t.Errorf("cut at %d: rebuilt: %v, %d cases (journal %d), complete %v, run %+v", cut, err, r.Cases, j.Done, r.Complete, r.Runs)
		}
		base := DefaultOptions()
		base.Workers, base.Record = 3, record
		o, err := j.Options(base)
		if err != nil {
			t.Fatal(err)
		}
		o.Targets = mustTargets(t, strings.Join(j.Header.Targets, ","))
		r := run(t, o)
		if got, want := stableIn(r, dir), stableIn(whole, wholeDir); got != want {
			t.Errorf("cut at %d of %d (%d cases journaled): resumed result differs from the uninterrupted one:\n%s\nwant\n%s", cut, len(jb), j.Done, got, want)
		}
		if r.Runs[0].Resumed != j.Done {
			t.Errorf("cut at %d: resumed_cases %d, want %d", cut, r.Runs[0].Resumed, j.Done)
		}
		if got := savedFiles(t, dir); !reflect.DeepEqual(got, wantFiles) {
			t.Errorf("cut at %d: saved files %v, want %v", cut, keys(got), keys(wantFiles))
		}
		// The resumed journal reads whole, and resuming it again is a no-op.
		j2, err := LoadJournal(dir)
		if err != nil || j2.Done != n+2 || !j2.Finished() {
			t.Errorf("cut at %d: journal after the resume: %v, %+v", cut, err, j2)
		}
	}
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Failures are on disk while the campaign is still running: the first of
// each target saved unshrunk as soon as no earlier case is pending, then
// replaced by the shrunk case.
func TestFailuresSavedBeforeShrinking(t *testing.T) {
	dir := t.TempDir()
	o := journalOpts(t, dir, 40)
	o.Corpus = nil
	var atShrink map[string]string
	o.Progress = func(p Progress) {
		if p.Phase == "shrink" && atShrink == nil {
			atShrink = savedFiles(t, dir)
		}
	}
	o.ProgressEvery = time.Hour
	r := run(t, o)
	final := savedFiles(t, dir)
	if len(final) != 2 || len(atShrink) != len(final) {
		t.Fatalf("saved %d files before shrinking, %d after; want 2 and 2", len(atShrink), len(final))
	}
	for name, body := range atShrink {
		c, err := cases.Parse([]byte(body))
		if err != nil {
			t.Fatalf("%s before shrinking: %v", name, err)
		}
		if tn, _ := FromDescription(c.Description); tn != "mutant:pr301-n1-stale-state" {
			t.Errorf("%s: description %q", name, c.Description)
		}
		var f *Failure
		for i := range r.Failures {
			if filepath.Base(r.Failures[i].File) == name {
				f = &r.Failures[i]
			}
		}
		if f == nil || f.Shrunk == nil {
			t.Fatalf("%s is not a listed, shrunk failure", name)
		}
		in := f.Input
		in.Description, in.Target, in.Criterion = c.Description, c.Target, c.Criterion // provenance, not the problem
		if !bytes.Equal(in.Marshal(), []byte(body)) {
			t.Errorf("%s before shrinking is not the case as run", name)
		}
		if sh := f.Shrunk.Marshal(); !bytes.Equal(sh, []byte(final[name])) {
			t.Errorf("%s after shrinking is not the shrunk case", name)
		}
	}
}

// A cancelled (SIGTERM) campaign is incomplete: not passed, its run says
// what it did not run, and its journal resumes to the complete result.
func TestInterruptedRunIsIncompleteAndResumes(t *testing.T) {
	dir := t.TempDir()
	o := journalOpts(t, dir, 400)
	o.Targets = mustTargets(t, "stream/fp16") // passes: only the interruption can fail it
	o.Corpus, o.Save = nil, 0
	o.Shard = Shard{1, 3}
	ctx, cancel := context.WithCancel(context.Background())
	o.Progress = func(p Progress) {
		if p.Cases >= 20 {
			cancel()
		}
	}
	o.ProgressEvery = time.Millisecond
	r, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	run0 := r.Runs[0]
	if r.Passed || r.Complete || run0.Stopped != "signal" || r.FailedChecks != 0 {
		t.Fatalf("interrupted run: passed %v complete %v stopped %s", r.Passed, r.Complete, run0.Stopped)
	}
	// Shard 1/3 of 400 cases: indices 1, 4, …, 397 (133 cases).
	want := Missing{From: 1 + 3*run0.Generated, To: 397, Step: 3, Cases: 133 - run0.Generated}
	if run0.Missing == nil || *run0.Missing != want || run0.Generated >= 133 {
		t.Fatalf("missing %+v after %d cases, want %+v", run0.Missing, run0.Generated, want)
	}
	back, err := ParseResult(r.Marshal())
	if err != nil || back.Complete || back.Passed || !reflect.DeepEqual(back.Runs[0].Missing, run0.Missing) {
		t.Fatalf("JSON round trip: %v, %+v", err, back)
	}
	if x := string(JUnit(r, "t", 0)); !strings.Contains(x, `type="incomplete"`) || strings.Contains(x, `errors="0"`) {
		t.Errorf("JUnit of an interrupted run does not say so:\n%s", x)
	}
	// The merge of it with the other two shards has a gap, named.
	others := []*Result{}
	for _, i := range []int{0, 2} {
		so := o
		so.Shard, so.OutDir, so.Progress = Shard{i, 3}, "", nil
		others = append(others, run(t, so))
	}
	m := Merge(others[0], r, others[1])
	if m.Passed || m.Complete || len(m.Gaps) != 1 || m.Gaps[0].Shard != "1/3" || m.Gaps[0].Missing != want {
		t.Errorf("merge with an interrupted shard: passed %v complete %v gaps %+v", m.Passed, m.Complete, m.Gaps)
	}
	if m := Merge(others...); m.Passed || len(m.Gaps) != 1 || !m.Gaps[0].Absent || m.Gaps[0].Missing != (Missing{From: 1, To: 397, Step: 3, Cases: 133}) {
		t.Errorf("merge without shard 1/3: passed %v gaps %+v", m.Passed, m.Gaps)
	}

	j, err := LoadJournal(dir)
	if err != nil || j.Finished() || j.End == nil || j.Done != r.Cases {
		t.Fatalf("journal of the interrupted run: %v, %+v", err, j)
	}
	base := DefaultOptions()
	ro, err := j.Options(base)
	if err != nil {
		t.Fatal(err)
	}
	ro.Targets = o.Targets
	done := run(t, ro)
	if !done.Passed || !done.Complete || done.Cases != 133 || done.Runs[0].Missing != nil {
		t.Errorf("resumed: passed %v complete %v cases %d missing %+v", done.Passed, done.Complete, done.Cases, done.Runs[0].Missing)
	}
	if m := Merge(others[0], done, others[1]); !m.Passed || len(m.Gaps) != 0 || m.Cases != 400 {
		t.Errorf("merge with the resumed shard: passed %v gaps %+v cases %d", m.Passed, m.Gaps, m.Cases)
	}
	// A journal is only resumed by its own campaign.
	ro.Seed++
	if _, err := Run(context.Background(), ro); err == nil || !strings.Contains(err.Error(), "not of this campaign") {
		t.Errorf("resume with another seed: %v", err)
	}
}

// Ties of the worst ratio break on case order, whatever the order of the
// merged files: shards merge to the unsharded run's worst (the docs
// promise "the first on ties").
func TestMergeWorstTieBreaksOnCaseOrder(t *testing.T) {
	const n = 31
	o := opts(t, n)
	o.Targets = mustTargets(t, "stream/fp16,mutant:pr301-n1-stale-state")
	o.Corpus = []NamedCase{{Name: "c0", Case: cases.Case{Family: problem.Window, Seed: 1, H: 2, D: 4, T: 3}}}
	whole := run(t, o)
	var parts []*Result
	for i := 0; i < 3; i++ {
		so := o
		so.Shard = Shard{i, 3}
		r, err := ParseResult(run(t, so).Marshal())
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, r)
	}
	infs := 0
	for _, p := range parts {
		if p.Worst != nil && p.Worst.Ratio == whole.Worst.Ratio {
			infs++
		}
	}
	if infs < 2 {
		t.Fatalf("want a tie of the worst ratio across shards; %d shards reach %v", infs, whole.Worst.Ratio)
	}
	for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}} {
		m := Merge(parts[order[0]], parts[order[1]], parts[order[2]])
		if !reflect.DeepEqual(m.Worst, whole.Worst) {
			t.Errorf("merge in order %v: worst %+v, unsharded %+v", order, m.Worst, whole.Worst)
		}
		for i := range m.Targets {
			a, b := m.Targets[i], whole.Targets[i]
			if a.Worst != b.Worst && !(a.Worst != a.Worst && b.Worst != b.Worst) || a.WorstCase != b.WorstCase {
				t.Errorf("merge in order %v: target %s worst %v on %s, unsharded %v on %s", order, a.Name, a.Worst, a.WorstCase, b.Worst, b.WorstCase)
			}
		}
	}
}

// FuzzReadJournal: any bytes read as a journal (or none) without a panic,
// and a journal read back re-encodes to a prefix of its input.
func FuzzReadJournal(f *testing.F) {
	hdr, _ := encodeRecord(&JournalHeader{Kind: "header", Version: 1, Targets: []string{"stream/bf16"}, Shard: "0/1", Criterion: "bound"})
	b1, _ := encodeRecord(&journalBatch{Kind: "batch", From: 0, To: 2, Cases: []journalCase{{Seq: 0, Checks: []journalCheck{{Status: Fail}}}},
		Plain: &journalPlain{Cases: 1, Classes: map[string]int{"n1": 1}, Targets: []journalPlainTarget{{Checks: 1, WorstSeq: 1}}}})
	end, _ := encodeRecord(&journalEnd{Kind: "end", Stopped: "cases", Cases: 2})
	f.Add(hdr)
	f.Add(append(append(bytes.Clone(hdr), b1...), end...))
	f.Add([]byte(`{"crc32":"00000000","rec":{}}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := scanJournal(bytes.NewReader(b), func(*journalBatch) {})
		if err != nil {
			return
		}
		if j.size > int64(len(b)) || j.Done < 0 {
			t.Fatalf("read %d bytes of %d, %d cases", j.size, len(b), j.Done)
		}
		again, err := readJournal(bytes.NewReader(b[:j.size]))
		if err != nil || again.Done != j.Done || again.size != j.size {
			t.Fatalf("the valid prefix reads differently: %v, %d/%d cases", err, again.Done, j.Done)
		}
	})
}
