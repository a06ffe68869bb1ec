// Package testpy finds the Python that the interop tests drive: one that
// has torch and numpy (Debian's python3-torch and python3-numpy).
package testpy

import (
	"os"
	"os/exec"
	"sync"
	"testing"
)

// find looks once per test binary. It asks importlib whether the modules
// are installed rather than importing them: importing torch costs about
// 1.7 CPU-s, paid again by the test that then runs the script (a broken
// install fails that test, which is what it should do).
var find = sync.OnceValue(func() string {
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if p, err := exec.LookPath(py); err == nil {
			probe := "import importlib.util as u, sys; sys.exit(0 if u.find_spec('torch') and u.find_spec('numpy') else 1)"
			if exec.Command(p, "-c", probe).Run() == nil {
				return p
			}
		}
	}
	return ""
})

// Torch returns a python3 that has torch and numpy. Without one the
// test is skipped, except in CI (CI=true), where .ci/run installs them and
// a skip would hide a broken integration.
func Torch(t testing.TB) string {
	t.Helper()
	if p := find(); p != "" {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true but no python3 has torch and numpy (.ci/run installs python3-torch and python3-numpy)")
	}
	t.Skip("no python3 with torch and numpy")
	return ""
}
