package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/report"
)

// runReportCLI runs attnvet in-process and returns its exit code and output.
func runReportCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	kernels := "stream/bf16,tiled/bc32/fp32"
	base := []string{"report", "--cases", "4", "--seed", "3", "--kernels", kernels}

	full := filepath.Join(dir, "full")
	code, out, errs := runReportCLI(t, append(base, "--out", full)...)
	if code != exitPass && code != exitMismatch {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	for _, f := range []string{report.FileJSON, report.FileMarkdown, report.FileHTML} {
		if st, err := os.Stat(filepath.Join(full, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(full, report.FileJSON))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("report.json does not parse: %v", err)
	}
	if raw["version"] != float64(report.Version) {
		t.Errorf("report.json version %v, want %d", raw["version"], report.Version)
	}
	want, err := report.Load(filepath.Join(full, report.FileJSON))
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Kernels) != 2 {
		t.Errorf("kernels %v, want the two selected", want.Kernels)
	}

	// Two shards, JSON only, then --merge (files before and after flags).
	var parts []string
	for _, sh := range []string{"0/2", "1/2"} {
		d := filepath.Join(dir, "shard"+sh[:1])
		code, out, errs := runReportCLI(t, append(base, "--shard", sh, "--json-only", "--out", d)...)
		if code != exitPass && code != exitMismatch {
			t.Fatalf("shard %s: exit %d\n%s%s", sh, code, out, errs)
		}
		if _, err := os.Stat(filepath.Join(d, report.FileHTML)); err == nil {
			t.Errorf("--json-only wrote report.html")
		}
		parts = append(parts, filepath.Join(d, report.FileJSON))
	}
	merged := filepath.Join(dir, "merged")
	code, out, errs = runReportCLI(t, "report", "--merge", parts[0], "--out", merged, parts[1])
	if code != exitPass && code != exitMismatch {
		t.Fatalf("merge: exit %d\n%s%s", code, out, errs)
	}
	got, err := report.Load(filepath.Join(merged, report.FileJSON))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Complete() {
		t.Errorf("merged report covers shards %v of %d", got.ShardIDs, got.Shards)
	}
	for i, w := range want.Entries {
		g := got.Entries[i]
		if g.Cases != w.Cases || g.Elements != w.Elements || g.Abs.N() != w.Abs.N() ||
			g.Abs.Max != w.Abs.Max || g.ULP.Max != w.ULP.Max || g.Ratio.Max != w.Ratio.Max {
			t.Errorf("%s/%s: merged (cases %d, elements %d, abs max %v, ulp max %v, ratio max %v) != unsharded (%d, %d, %v, %v, %v)",
				w.Kernel, w.Family, g.Cases, g.Elements, g.Abs.Max, g.ULP.Max, g.Ratio.Max,
				w.Cases, w.Elements, w.Abs.Max, w.ULP.Max, w.Ratio.Max)
		}
	}
	if _, err := os.Stat(filepath.Join(merged, report.FileHTML)); err != nil {
		t.Errorf("merge did not write report.html: %v", err)
	}
}

func TestReportUsageErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"bad shard", []string{"--shard", "2/2"}, "--shard"},
		{"bad shard syntax", []string{"--shard", "x"}, "--shard"},
		{"negative cases", []string{"--cases", "-1"}, "--cases"},
		{"unknown kernel", []string{"--kernels", "nosuch/*"}, "--kernels"},
		{"bad family", []string{"--family", "densest"}, "mla"},
		{"stray argument", []string{"file.json"}, "unexpected argument"},
		{"merge without files", []string{"--merge"}, "--merge"},
		{"merge with seed", []string{"--merge", "--seed", "2", "a.json"}, "--seed"},
		{"merge missing file", []string{"--merge", filepath.Join(dir, "none.json")}, "none.json"},
		{"unknown flag", []string{"--colour"}, "colour"},
		{"too many workers", []string{"--workers", "4097"}, "--workers 4097: want 0 (all cores) to 4096"}, // gate's and fuzz's range
		{"negative workers", []string{"--workers", "-1"}, "--workers -1: want 0 (all cores) to 4096"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"report", "--out", dir}, tt.args...)
			code, _, errs := runReportCLI(t, args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d (stderr %q)", code, exitUsage, errs)
			}
			if !strings.Contains(errs, tt.msg) || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
				t.Errorf("stderr %q: want one line naming %q", errs, tt.msg)
			}
		})
	}
}

// Every family can be reported on its own (the default stays sparse and
// window, for the default report's time).
func TestReportFamilies(t *testing.T) {
	for _, f := range []string{"dense", "combine", "mla"} {
		dir := t.TempDir()
		code, _, errs := runReportCLI(t, "report", "--family", f, "--cases", "3", "--kernels", "stream/bf16", "--json-only", "--out", dir)
		if code != 0 {
			t.Fatalf("report --family %s: exit %d: %s", f, code, errs)
		}
		b, err := os.ReadFile(filepath.Join(dir, "report.json"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"family": "`+f+`"`) && !strings.Contains(string(b), `"family":"`+f+`"`) {
			t.Errorf("report --family %s: report.json has no entry of the family", f)
		}
	}
}

func TestReportHelp(t *testing.T) {
	code, out, _ := runReportCLI(t, "help", "report")
	if code != exitPass || !strings.Contains(out, "-merge") || !strings.Contains(out, "-shard") {
		t.Errorf("help report: exit %d\n%s", code, out)
	}
}
