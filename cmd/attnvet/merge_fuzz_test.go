package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/report"
	"github.com/attnvet/attnvet/internal/summary"
)

// FuzzMergeResults: two documents as 'report --merge' reads them (a
// campaign result, or a journal: as its result so far), merged and
// summarized as mergeCampaigns does. Never a panic; the summary is
// printable (no control character but newlines); the merged document
// parses back with the same gaps; the gaps stay bounded (each campaign
// lists at most 64 absent shards, then one gap for the rest).
func FuzzMergeResults(f *testing.F) {
	// A real journal and result: a 4-case campaign, shard 0 of 2.
	dir := f.TempDir()
	if code, out, errs := attnvet("fuzz", "--cases", "8", "--seed", "3", "--shard", "0/2", "--progress", "0",
		"--out", filepath.Join(dir, "out"), "--json", filepath.Join(dir, "r.json")); code != exitPass {
		f.Fatalf("seed campaign: exit %d\n%s\n%s", code, out, errs)
	}
	journal, err := os.ReadFile(filepath.Join(dir, "out", "journal.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	result, err := os.ReadFile(filepath.Join(dir, "r.json"))
	if err != nil {
		f.Fatal(err)
	}
	seeds := [][]byte{
		hostileResultF(nil),
		hostileResultF(func(r *campaign.Result) { r.Runs[0].Shard = "1/2" }),
		hostileResultF(func(r *campaign.Result) { r.Runs[0].Shard = "0/2000000000"; r.Runs[0].CaseBudget = 0 }),
		hostileResultF(func(r *campaign.Result) {
			r.Runs[0].Stopped = "signal"
			r.Runs[0].Missing = &campaign.Missing{From: 4, To: 8, Step: 2, Cases: 3}
			r.Complete, r.Passed = false, false
		}),
		hostileResultF(func(r *campaign.Result) {
			r.Failures = []campaign.Failure{{Target: "tiled/bc128/bf16", Case: "seed 1 index 0", Replay: "attnvet replay 'a b.json'"}}
			r.FailedChecks, r.FailedCases, r.Passed = 1, 1, false
			r.EdgeClasses = map[string]int{strings.Repeat("a", 500): 1, "e\x1b[2J": 2}
		}),
		journal,
		journal[:len(journal)/2],
		result,
		[]byte(`{"version":1,"runs":[{"shard":"9223372036854775806/9223372036854775807","case_budget":9223372036854775807}]}`),
	}
	for i, a := range seeds {
		f.Add(a, seeds[(i+1)%len(seeds)])
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var rs []*campaign.Result
		for _, d := range [][]byte{a, b} {
			var r *campaign.Result
			var err error
			if campaign.IsJournal(d) {
				j, jerr := campaign.ParseJournal(d)
				if jerr != nil {
					continue
				}
				r, err = campaign.Rebuild(j)
			} else {
				r, err = campaign.ParseResult(d)
			}
			if err != nil {
				continue
			}
			rs = append(rs, r)
		}
		m := campaign.Merge(rs...)
		if limit := 65*len(m.Runs) + len(m.Runs); len(m.Gaps) > limit {
			t.Fatalf("%d gaps from %d runs", len(m.Gaps), len(m.Runs))
		}
		if m.Passed && (!m.Complete || len(m.Gaps) > 0) {
			t.Fatalf("merged result passed with complete=%v and %d gaps", m.Complete, len(m.Gaps))
		}
		var out bytes.Buffer
		summary.Merge(&out, len(rs), m, false)
		if i := strings.IndexFunc(out.String(), func(r rune) bool { return r < 0x20 && r != '\n' || r == 0x7f }); i >= 0 {
			t.Fatalf("control character in the summary: %q", out.String()[max(0, i-40):min(out.Len(), i+40)])
		}
		back, err := campaign.ParseResult(m.Marshal())
		if err != nil {
			t.Fatalf("the merged document does not parse back: %v", err)
		}
		if len(back.Gaps) != len(m.Gaps) {
			t.Fatalf("the merged document has %d gaps, read back %d", len(m.Gaps), len(back.Gaps))
		}
	})
}

// hostileResultF is hostileResult for a fuzz target's seeds.
func hostileResultF(edit func(*campaign.Result)) []byte {
	r := &campaign.Result{Version: campaign.Version, Complete: true, Passed: true, Cases: 2,
		EdgeClasses: map[string]int{"n1": 1},
		Targets:     []campaign.TargetStats{{Name: "tiled/bc128/bf16", Checks: 2}},
		Runs: []campaign.RunInfo{{Command: "fuzz", Seed: 1, Shard: "0/2", Criterion: "bound",
			Targets: []string{"tiled/bc128/bf16"}, CaseBudget: 4, Generated: 2, Stopped: "cases"}}}
	if edit != nil {
		edit(r)
	}
	return r.Marshal()
}

// FuzzMergeReports: two report.json documents as 'report --merge' reads
// them (report.Parse; partial ones refused), merged and rendered as
// mergeReports writes them (JSON, Markdown, HTML). Never a panic; the
// merged JSON parses back.
func FuzzMergeReports(f *testing.F) {
	dir := f.TempDir()
	var shards [][]byte
	for i := range 2 {
		out := filepath.Join(dir, strconv.Itoa(i))
		if code, stdout, errs := attnvet("report", "--cases", "4", "--kernels", "stream/bf16", "--family", "window",
			"--shard", strconv.Itoa(i)+"/2", "--json-only", "--out", out); code != exitPass {
			f.Fatalf("seed report: exit %d\n%s\n%s", code, stdout, errs)
		}
		b, err := os.ReadFile(filepath.Join(out, report.FileJSON))
		if err != nil {
			f.Fatal(err)
		}
		shards = append(shards, b)
	}
	f.Add(shards[0], shards[1])
	f.Add(shards[1], shards[1])
	f.Add(shards[0], []byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var rs []*report.Report
		for _, d := range [][]byte{a, b} {
			r, err := report.Parse(d)
			if err != nil || r.Partial {
				return
			}
			rs = append(rs, r)
		}
		m, err := report.Merge(rs...)
		if err != nil {
			return
		}
		js := m.JSON()
		if _, err := report.Parse(js); err != nil {
			t.Fatalf("the merged report.json does not parse back: %v", err)
		}
		report.Markdown(m)
		if _, err := report.HTML(m); err != nil {
			t.Logf("HTML: %v", err)
		}
	})
}
