package testkit

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

// Update is the -update flag of every test that keeps golden files (one
// flag for all: two packages defining it would clash when linked together).
var Update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Golden compares got with the file at path, or rewrites the file when
// the test runs with -update (after a deliberate change: read the diff).
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *Update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("printout differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
