package testkit

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// CaseFiles maps each case file (*.json) in dir to its content: what a
// campaign saved there, to compare a killed-then-resumed campaign's
// files with an uninterrupted one's.
func CaseFiles(t testing.TB, dir string) map[string]string {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	out := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = string(b)
	}
	return out
}

// PanicReachesCaller runs f with GOMAXPROCS 2, f being a call that
// panics in one of the goroutines it starts: the panic must be raised
// again in the caller (where attnvet's recover makes it exit 3; a Go
// panic left in a goroutine ends the process with exit 2, the code for
// bad input), and check must accept what was recovered.
func PanicReachesCaller(t testing.TB, f func(), check func(recovered any) error) {
	t.Helper()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	defer func() {
		p := recover()
		if p == nil {
			t.Fatal("it returned without a panic")
		}
		if err := check(p); err != nil {
			t.Fatalf("recovered %v: %v", p, err)
		}
	}()
	f()
}

// Is is a check for PanicReachesCaller: the recovered value is want.
func Is(want any) func(any) error {
	return func(p any) error {
		if p != want {
			return fmt.Errorf("want %v", want)
		}
		return nil
	}
}

// Long reports whether the long tests run (ATTNVET_LONG set, as in
// .ci/run's long step): the README's quick `go test ./...` checks samples
// of the long sweeps, the long step checks them in full.
func Long() bool { return os.Getenv("ATTNVET_LONG") != "" }
