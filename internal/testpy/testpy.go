// Package testpy finds the Python that the interop tests drive: one that
// imports torch and numpy (Debian's python3-torch and python3-numpy).
package testpy

import (
	"os"
	"os/exec"
	"testing"
)

// Torch returns a python3 that imports torch and numpy. Without one the
// test is skipped, except in CI (CI=true), where .ci/run installs them and
// a skip would hide a broken integration.
func Torch(t testing.TB) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if p, err := exec.LookPath(py); err == nil {
			if exec.Command(p, "-c", "import torch, numpy").Run() == nil {
				return p
			}
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true but no python3 can import torch and numpy (.ci/run installs python3-torch and python3-numpy)")
	}
	t.Skip("no python3 with torch and numpy")
	return ""
}
