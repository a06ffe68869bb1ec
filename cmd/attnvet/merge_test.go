package main

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/campaign"
)

// What examples/github-actions.yml and examples/k8s-fuzz-job.yaml do:
// shards of one fuzz campaign with --json, then 'report --merge
// shard-*.json --out DIR'. The merge equals the unsharded run in every
// count, edge class and failure, and exits 1 because it has failures.
func TestReportMergeCampaignShards(t *testing.T) {
	dir := t.TempDir()
	fuzz := func(name string, extra ...string) *campaign.Result {
		t.Helper()
		js := filepath.Join(dir, name+".json")
		args := append([]string{"fuzz", "--target", "mutant:pr301-n1-poison", "--cases", "24", "--seed", "7", "--save", "1",
			"--shrink-budget", "20", "--progress", "0", "--json", js, "--out", filepath.Join(dir, "failures-"+name)}, extra...)
		if code, out, errs := cli(t, args...); code != exitMismatch {
			t.Fatalf("%s: exit %d, want 1\n%s\n%s", name, code, out, errs)
		}
		r, err := campaign.LoadResult(js)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	whole := fuzz("whole")
	fuzz("shard-0", "--shard", "0/2")
	fuzz("shard-1", "--shard", "1/2")

	out := filepath.Join(dir, "nightly")
	code, stdout, errs := cli(t, "report", "--merge", filepath.Join(dir, "shard-0.json"), filepath.Join(dir, "shard-1.json"), "--out", out)
	if code != exitMismatch {
		t.Fatalf("merge: exit %d, want 1 (the shards found failures)\n%s\n%s", code, stdout, errs)
	}
	m, err := campaign.LoadResult(filepath.Join(out, mergedCampaignFile))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mergeCounts(m), mergeCounts(whole); !reflect.DeepEqual(got, want) {
		t.Errorf("merged counts %v, unsharded %v", got, want)
	}
	if !reflect.DeepEqual(m.EdgeClasses, whole.EdgeClasses) || !reflect.DeepEqual(m.Violations, whole.Violations) {
		t.Errorf("edge classes or violations differ:\n%v\n%v", m.EdgeClasses, whole.EdgeClasses)
	}
	if got, want := failureCases(m), failureCases(whole); !reflect.DeepEqual(got, want) {
		t.Errorf("merged failures %v, unsharded %v", got, want)
	}
	if m.Passed || len(m.Runs) != 2 {
		t.Errorf("merged: passed %v, %d runs", m.Passed, len(m.Runs))
	}
	for _, want := range []string{
		"attnvet report: merged 2 campaign results: fuzz seed 7, shards 0,1 of 2",
		"cases       24 (0 corpus, 24 generated)",
		"edge classes ",
		"FAIL mutant:pr301-n1-poison on seed 7 index ",
		"replay: attnvet replay " + filepath.Join(dir, "failures-shard-0") + "/",
		"replay: attnvet replay " + filepath.Join(dir, "failures-shard-1") + "/",
		"FAIL: ",
		"wrote " + filepath.Join(out, mergedCampaignFile),
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("merge summary lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "note ") {
		t.Errorf("complete shards reported as incomplete:\n%s", stdout)
	}

	// --json FILE writes there (and not to --out's default directory).
	js := filepath.Join(dir, "merged.json")
	if code, _, errs := cli(t, "report", "--merge", "--json", js, filepath.Join(dir, "shard-1.json")); code != exitMismatch {
		t.Errorf("merge --json: exit %d\n%s", code, errs)
	}
	one, err := campaign.LoadResult(js)
	if err != nil || one.Cases != 12 {
		t.Errorf("merge --json: %v, %+v", err, one)
	}
	if _, err := os.Stat(defaultReportDir); err == nil {
		t.Errorf("merge --json also wrote %s/", defaultReportDir)
	}
	// A missing shard is a gap, named with its index range (the failures
	// found still make it exit 1).
	code, stdout, errs = cli(t, "report", "--merge", "--json", js, filepath.Join(dir, "shard-1.json"))
	if code != exitMismatch || !strings.Contains(stdout, "GAP         fuzz seed 7: shard 0/2 is missing (no result of it merged): indices 0..22 step 2 (12 cases) not run") ||
		!strings.Contains(errs, "1 gaps") {
		t.Errorf("missing shard: exit %d\n%s\n%s", code, stdout, errs)
	}
}

func mergeCounts(r *campaign.Result) []int64 {
	return []int64{int64(r.Cases), int64(r.CorpusCases), int64(r.InvalidCases), int64(r.ContractCases), int64(r.Checks),
		int64(r.FailedChecks), int64(r.FailedCases), int64(r.IncompatibleChecks), r.Elements, r.SkippedElements,
		int64(r.WorkerFailedChecks), int64(len(r.Failures) + r.FailuresOmitted)}
}

func failureCases(r *campaign.Result) []string {
	var ks []string
	for _, f := range r.Failures {
		ks = append(ks, f.Target+" "+f.Case)
	}
	sort.Strings(ks)
	return ks
}

// A merge of passing shards exits 0; mixing kinds, or a file of neither
// kind, exits 2 naming the file.
func TestReportMergeKinds(t *testing.T) {
	dir := t.TempDir()
	var shards []string
	for _, sh := range []string{"0/2", "1/2"} {
		js := filepath.Join(dir, "shard-"+sh[:1]+".json")
		if code, out, errs := cli(t, "fuzz", "--target", "stream/bf16", "--cases", "6", "--seed", "2", "--shard", sh,
			"--json", js, "--progress", "0", "--out", dir); code != exitPass {
			t.Fatalf("exit %d\n%s\n%s", code, out, errs)
		}
		shards = append(shards, js)
	}
	code, out, errs := cli(t, append([]string{"report", "--merge", "--out", filepath.Join(dir, "m")}, shards...)...)
	if code != exitPass || !strings.Contains(out, "PASS: no failure in 6 cases") {
		t.Errorf("passing merge: exit %d\n%s\n%s", code, out, errs)
	}

	rep := filepath.Join(dir, "report.json")
	os.WriteFile(rep, []byte(`{"version": 1, "seed": 1, "shards": 2, "shard_ids": [0], "entries": []}`), 0o644)
	other := filepath.Join(dir, "other.json")
	os.WriteFile(other, []byte(`{"hello": "world"}`), 0o644)
	list := filepath.Join(dir, "list.json")
	os.WriteFile(list, []byte(`[1, 2]`), 0o644)
	for _, tc := range []struct {
		files []string
		want  string
	}{
		{[]string{shards[0], rep}, rep + " is a report.json"},
		{[]string{rep, shards[1]}, shards[1] + " is a campaign result"},
		{[]string{shards[0], other}, other + ": neither a campaign result"},
		{[]string{list}, list + ": not a JSON object"},
		{[]string{filepath.Join(dir, "none.json")}, "no such file"},
	} {
		code, _, errs := cli(t, append([]string{"report", "--merge", "--out", filepath.Join(dir, "x")}, tc.files...)...)
		if code != exitUsage || !strings.Contains(errs, tc.want) || strings.Count(errs, "\n") != 1 {
			t.Errorf("merge %v: exit %d, stderr %q; want 2 and %q", tc.files, code, errs, tc.want)
		}
	}
	if code, _, errs := cli(t, "report", "--merge", "--json", filepath.Join(dir, "r.json"), rep); code != exitUsage || !strings.Contains(errs, "--json applies to campaign results") {
		t.Errorf("--json with report.json: exit %d %q", code, errs)
	}
}
