package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Off a terminal, progress is a line per interval with the pairs done and
// an ETA, and nothing at the end (the summary follows).
func TestReportProgressLines(t *testing.T) {
	var b bytes.Buffer
	p := newReportProgress(&b, time.Now().Add(-time.Minute))
	p.last = time.Now().Add(-time.Hour)
	p.update(10, 40)
	p.update(11, 40) // within the interval: no line
	p.update(40, 40)
	p.finish()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "10/40 (case, family) pairs") || !strings.Contains(lines[0], "ETA 3m0s") {
		t.Errorf("progress output %q", b.String())
	}
}
