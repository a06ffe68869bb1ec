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

// TestProgressLines: off a terminal, the long commands print periodic
// progress lines on stderr (stdout keeps their results alone);
// --progress 0 silences them and a negative interval is bad usage.
// validate ran a minute with nothing on stderr before it had them.
func TestProgressLines(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // in a progress line
	}{
		{"mutants", []string{"mutants", "--cases", "10", "--correct=false", "--target", "sink-ignored", "--criterion", "bound"}, "/10 cases"},
		{"validate", []string{"validate", "--cases", "3", "--family", "sparse", "--kernels", "stream/bf16"}, "3/3 cases"},
		{"gate", []string{"gate", "--corpus", "none", "--cases", "20", "--kernels", "stream/bf16", "--out", t.TempDir()}, "gate: stream/bf16 "},
	} {
		prefix := "attnvet " + tc.name + ": "
		code, out, stderr := mutantsCLI(append(tc.args, "--progress", "1ms")...)
		if code != exitPass || !strings.Contains(stderr, prefix) || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want progress lines with %q", tc.name, code, stderr, tc.want)
		}
		if strings.Contains(out, tc.want) {
			t.Errorf("%s: progress on stdout:\n%s", tc.name, out)
		}
		code, _, stderr = mutantsCLI(append(tc.args, "--progress", "0")...)
		if code != exitPass || stderr != "" {
			t.Errorf("%s --progress 0: exit %d, stderr %q", tc.name, code, stderr)
		}
		code, _, stderr = mutantsCLI(append(tc.args, "--progress", "-1s")...)
		if code != exitUsage || !strings.HasPrefix(stderr, prefix) {
			t.Errorf("%s --progress -1s: exit %d, stderr %q", tc.name, code, stderr)
		}
	}
}
