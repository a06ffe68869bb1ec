package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// JSON printed or written for people keeps <, > and & as written
// (encoding/json's default escapes them as \u003c, \u003e, \u0026).
func TestJSONNotHTMLEscaped(t *testing.T) {
	code, out, errs := attnvet("kernels", "--json")
	if code != exitPass {
		t.Fatalf("kernels --json: exit %d: %s", code, errs)
	}
	if strings.Contains(out, `\u003`) || strings.Contains(out, `\u0026`) || !strings.ContainsAny(out, "<>&") {
		t.Errorf("kernels --json escapes HTML characters (or has none to test with):\n%.400s", out)
	}
	dir := t.TempDir()
	if code, _, errs := attnvet("report", "--cases", "2", "--family", "window", "--kernels", "stream/bf16", "--mutants=false", "--out", dir); code != exitPass {
		t.Fatalf("report: exit %d: %s", code, errs)
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `\u003`) {
		t.Errorf("report.json escapes HTML characters")
	}
}
