package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var hostileDir = flag.String("hostile-dir", "", "TestWriteHostileInputs: write issue 14's reproducers to this directory (scripts/hostile.sh)")

// TestWriteHostileInputs writes the reproducers TestHostileInputs runs,
// and the 1 MB and 6 MB zip bombs of issue 14, to -hostile-dir, for
// scripts/hostile.sh to run under /usr/bin/time -v (skipped without it).
func TestWriteHostileInputs(t *testing.T) {
	if *hostileDir == "" {
		t.Skip("no -hostile-dir")
	}
	hostileInputs(t, *hostileDir)
	for name, size := range map[string]int64{"bomb-1m.npz": 1 << 30, "bomb-6m.npz": 6 << 30} {
		if err := os.WriteFile(filepath.Join(*hostileDir, name), npzBomb(t, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
