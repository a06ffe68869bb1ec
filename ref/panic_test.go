package ref

import (
	"errors"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/testkit"
)

// TestComputePanicReachesCaller: a panic in one of Compute's goroutines is
// raised again in the caller, where a recover turns it into exit 3; it
// used to end the process (a Go panic exits 2, the code for bad input).
func TestComputePanicReachesCaller(t *testing.T) {
	in, err := cases.Generate(cases.Case{Version: 1, Family: problem.Window, Seed: 1, H: 4, D: 64, T: 64}, num.FP32)
	if err != nil {
		t.Fatal(err)
	}
	in.Q = in.Q[: len(in.Q)/2 : len(in.Q)/2] // inconsistent (Compute's callers Check first): the goroutines index past it
	testkit.PanicReachesCaller(t, func() { Compute(in, Options{Workers: 2}) }, func(p any) error {
		if err, ok := p.(error); !ok || !strings.Contains(err.Error(), "out of range") {
			return errors.New("want the goroutine's out-of-range panic")
		}
		return nil
	})
}
