package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Off a terminal, progress is a line per interval with the count done and
// an ETA, and a last line at the end.
func TestReportProgressLines(t *testing.T) {
	var b bytes.Buffer
	p := newCountProgress(&b, time.Hour, "report", "(case, family) pairs", 0)
	p.start = time.Now().Add(-time.Minute)
	p.update(10, 40)
	p.print()
	p.update(40, 40)
	p.finish()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "attnvet report: ") || !strings.Contains(lines[0], "10/40 (case, family) pairs") ||
		!strings.Contains(lines[0], "ETA 3m0s") || !strings.Contains(lines[1], "40/40 (case, family) pairs") || strings.Contains(lines[1], "ETA") {
		t.Errorf("progress output %q", b.String())
	}
}
