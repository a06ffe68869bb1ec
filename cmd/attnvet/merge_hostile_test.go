package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/campaign"
)

// hostileResult is a small valid campaign result (one shard of two, so
// merging it alone is a gap: exit 2) with edit applied to it.
func hostileResult(t *testing.T, edit func(*campaign.Result)) []byte {
	t.Helper()
	return hostileResultF(edit)
}

// Text in a merged result reaches the terminal: an edge class of 500
// letters made printCoverage slice at LastIndex(",") = −1 (a panic, exit
// 3), and an ESC in one (or in a label, a target, a case) was printed
// raw (found reading the merge path while writing FuzzMergeResults).
func TestMergeHostileText(t *testing.T) {
	dir := t.TempDir()
	for name, edit := range map[string]func(*campaign.Result){
		"long-class": func(r *campaign.Result) { r.EdgeClasses = map[string]int{strings.Repeat("a", 500): 1} },
		"esc-class":  func(r *campaign.Result) { r.EdgeClasses = map[string]int{"e\x1b[2J": 1} },
		"esc-label": func(r *campaign.Result) {
			r.Runs[0].Command = "fuzz\x1b[31m\rPASS"
			r.Runs[0].Family = "w\x1b]0;x\x07"
		},
		"esc-failure": func(r *campaign.Result) {
			r.Failures = []campaign.Failure{{Target: "t\x1b[1m", Case: "c\r\x1b[K", Replay: "attnvet replay '\x1b[31m'"}}
			r.FailedChecks, r.FailedCases, r.Passed = 1, 1, false
		},
	} {
		p := filepath.Join(dir, name+".json")
		if err := os.WriteFile(p, hostileResult(t, edit), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errs := attnvet("report", "--merge", p, "--json", filepath.Join(dir, name+"-merged.json"))
		if code == exitInternal || code == exitPass {
			t.Errorf("%s: exit %d, want 2 (the gap) or 1\n%s\n%s", name, code, out, errs)
		}
		if i := strings.IndexFunc(out+errs, func(r rune) bool { return r < 0x20 && r != '\n' || r == 0x7f }); i >= 0 {
			t.Errorf("%s: a control character reaches the terminal: %q", name, (out + errs)[max(0, i-40):min(len(out+errs), i+40)])
		}
	}
}
