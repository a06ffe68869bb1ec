package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/cases"
)

// fuzz lists findings; --known with every signature of the run passes
// (exit 0), with one left out fails (exit 1); attnvet case prints the
// case the campaign ran at an index, and replay of it reproduces the
// failure.
func TestFuzzFindingsKnownAndCase(t *testing.T) {
	dir := t.TempDir()
	js := filepath.Join(dir, "r.json")
	args := []string{"fuzz", "--seed", "11", "--cases", "80", "--target", "mutant:pr301-n1-poison", "--save", "0", "--json", js, "--out", filepath.Join(dir, "out")}
	code, out, errs := cli(t, args...)
	if code != 1 || !strings.Contains(out, "findings") || !strings.Contains(out, "NEW") {
		t.Fatalf("fuzz: exit %d, want 1 with findings:\n%s\n%s", code, out, errs)
	}
	r, err := campaign.LoadResult(js)
	if err != nil || len(r.Findings) == 0 {
		t.Fatalf("%v, %d findings", err, len(r.Findings))
	}
	known := filepath.Join(dir, "known.txt")
	var lines []string
	for _, f := range r.Findings {
		lines = append(lines, f.Signature)
	}
	os.WriteFile(known, []byte("# all of them\n"+strings.Join(lines, "\n")+"\n"), 0o644)
	if code, out, errs := cli(t, append(args, "--known", known)...); code != 0 || !strings.Contains(out, "KNOWN") {
		t.Errorf("--known all: exit %d, want 0:\n%s\n%s", code, out, errs)
	}
	// The result JSON itself is a --known file.
	if code, _, errs := cli(t, append(args, "--known", js)...); code != 0 {
		t.Errorf("--known result.json: exit %d, want 0: %s", code, errs)
	}
	os.WriteFile(known, []byte(strings.Join(lines[:len(lines)-1], "\n")+"\n"), 0o644)
	if code, _, _ := cli(t, append(args, "--known", known)...); code != 1 {
		t.Errorf("--known without %q: exit %d, want 1", lines[len(lines)-1], code)
	}
	os.WriteFile(known, []byte("not a signature\n x\n"), 0o644)
	if code, _, errs := cli(t, append(args, "--known", known)...); code != 2 || !strings.Contains(errs, "line 2") {
		t.Errorf("bad --known: exit %d, want 2: %s", code, errs)
	}

	ex := r.Findings[0].Example
	code, cj, errs := cli(t, "case", "--seed", "11", "--index", strconv.Itoa(ex.Index))
	if code != 0 {
		t.Fatalf("case: exit %d: %s", code, errs)
	}
	c, err := cases.Parse([]byte(cj))
	if err != nil {
		t.Fatal(err)
	}
	want := ex.Input
	c.Description, want.Description = "", ""
	if string(c.Marshal()) != string(want.Marshal()) {
		t.Errorf("case --index %d:\n%s\nwant the case fuzz ran:\n%s", ex.Index, c.Marshal(), want.Marshal())
	}
	cf := filepath.Join(dir, "c.json")
	os.WriteFile(cf, []byte(cj), 0o644)
	if code, out, errs := cli(t, "replay", cf, "--kernel", "mutant:pr301-n1-poison"); code != 1 {
		t.Errorf("replay of the printed case: exit %d, want 1 (it failed in the campaign):\n%s\n%s", code, out, errs)
	}
	for _, bad := range [][]string{{"case", "--seed", "1"}, {"case", "--seed", "1", "--index", "-2"}, {"case", "--seed", "1", "--index", "0", "--family", "nope"}} {
		if code, _, _ := cli(t, bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}
