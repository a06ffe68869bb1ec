package impl

import (
	"testing"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/internal/testkit"
)

// TestRunPanicReachesCaller: a panic in one of Run's goroutines (a
// mutant's hook, a bug) is raised again in the caller, whose recover
// reports it; it used to end the process with exit 2.
func TestRunPanicReachesCaller(t *testing.T) {
	in, err := cases.Generate(cases.Case{Version: 1, Family: problem.Window, Seed: 1, H: 4, D: 64, T: 64}, num.FP32)
	if err != nil {
		t.Fatal(err)
	}
	k := New(Config{Kind: Tiled, Bc: 32, Profile: profile.MustLookup("fp32"), Hooks: &Hooks{
		Keys: func(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
			if t == 40 {
				panic("hook panicked")
			}
			return keys
		}}})
	testkit.PanicReachesCaller(t, func() { k.Run(in) }, testkit.Is("hook panicked"))
}
