package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/cases"
)

func mutantsCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestMutantsUsage(t *testing.T) {
	for _, args := range [][]string{
		{"mutants", "--cases", "0"},
		{"mutants", "--workers", "-1"},
		{"mutants", "--criterion", "nope"},
		{"mutants", "--target", "nope"},
		{"mutants", "--targeted-every", "-1"},
		{"mutants", "--bogus"},
		{"mutants", "extra"},
	} {
		code, _, stderr := mutantsCLI(args...)
		if code != exitUsage || !strings.HasPrefix(stderr, "attnvet mutants: ") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line", args, code, stderr)
		}
	}
}

func TestMutantsListAndCase(t *testing.T) {
	code, out, _ := mutantsCLI("mutants", "--list")
	if code != exitPass || !strings.Contains(out, "pr301-n1-stale-state") || !strings.Contains(out, "n0-stale-scratch") {
		t.Errorf("--list: exit %d\n%s", code, out)
	}
	code, out, _ = mutantsCLI("mutants", "--seed", "3", "--case", "4")
	if code != exitPass {
		t.Fatalf("--case: exit %d", code)
	}
	if _, err := cases.Parse([]byte(out)); err != nil {
		t.Errorf("--case printed an invalid case: %v\n%s", err, out)
	}
}

func TestMutantsRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.json")
	code, out, stderr := mutantsCLI("mutants", "--cases", "4", "--correct=false", "--target", "pr301-n1-poison",
		"--criterion", "bound", "--workers", "2", "--json", path)
	if code != exitPass {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "pr301-n1-poison") || !strings.Contains(out, "bound") {
		t.Errorf("table:\n%s", out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil || doc["criteria"] == nil || doc["mutants"] == nil {
		t.Errorf("JSON %v: %s", err, b)
	}
}

// TestMutantsProgress: off a terminal, periodic progress lines on stderr
// (stdout keeps the table alone); --progress 0 silences them.
func TestMutantsProgress(t *testing.T) {
	args := []string{"mutants", "--cases", "10", "--correct=false", "--target", "sink-ignored", "--criterion", "bound"}
	code, out, stderr := mutantsCLI(append(args, "--progress", "1ms")...)
	if code != exitPass || !strings.Contains(stderr, "attnvet mutants: ") || !strings.Contains(stderr, "/10 cases") {
		t.Errorf("exit %d, stderr %q; want progress lines", code, stderr)
	}
	if strings.Contains(out, "cases  ") && strings.Contains(out, "/10 cases") {
		t.Errorf("progress on stdout:\n%s", out)
	}
	code, _, stderr = mutantsCLI(append(args, "--progress", "0")...)
	if code != exitPass || stderr != "" {
		t.Errorf("--progress 0: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = mutantsCLI(append(args, "--progress", "-1s")...)
	if code != exitUsage || !strings.HasPrefix(stderr, "attnvet mutants: ") {
		t.Errorf("--progress -1s: exit %d, stderr %q", code, stderr)
	}
}

// TestValidateProgress: validate shows progress on stderr as mutants does
// (it ran a minute with nothing on stderr before).
func TestValidateProgress(t *testing.T) {
	args := []string{"validate", "--cases", "3", "--family", "sparse", "--kernels", "stream/bf16"}
	code, out, stderr := mutantsCLI(append(args, "--progress", "1ms")...)
	if code != exitPass || !strings.Contains(stderr, "attnvet validate: ") || !strings.Contains(stderr, "3/3 cases") {
		t.Errorf("exit %d, stderr %q; want progress lines ending at 3/3", code, stderr)
	}
	if strings.Contains(out, "/3 cases") {
		t.Errorf("progress on stdout:\n%s", out)
	}
	code, _, stderr = mutantsCLI(append(args, "--progress", "0")...)
	if code != exitPass || stderr != "" {
		t.Errorf("--progress 0: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = mutantsCLI(append(args, "--progress", "-1s")...)
	if code != exitUsage || !strings.HasPrefix(stderr, "attnvet validate: ") {
		t.Errorf("--progress -1s: exit %d, stderr %q", code, stderr)
	}
}

// TestGateProgress: gate shows the campaign's progress lines as fuzz does.
func TestGateProgress(t *testing.T) {
	args := []string{"gate", "--corpus", "none", "--cases", "20", "--kernels", "stream/bf16", "--out", t.TempDir()}
	code, out, stderr := mutantsCLI(append(args, "--progress", "1ms")...)
	if code != exitPass || !strings.Contains(stderr, "attnvet gate: stream/bf16 ") {
		t.Errorf("exit %d, stderr %q; want progress lines", code, stderr)
	}
	if strings.Contains(out, "attnvet gate: stream/bf16 ") {
		t.Errorf("progress on stdout:\n%s", out)
	}
	code, _, stderr = mutantsCLI(append(args, "--progress", "0")...)
	if code != exitPass || stderr != "" {
		t.Errorf("--progress 0: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = mutantsCLI(append(args, "--progress", "-1s")...)
	if code != exitUsage || !strings.HasPrefix(stderr, "attnvet gate: ") {
		t.Errorf("--progress -1s: exit %d, stderr %q", code, stderr)
	}
}
