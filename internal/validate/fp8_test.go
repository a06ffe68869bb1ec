package validate

import (
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/props"
)

// fp8Cases is the FP8 dense validation's size: ATTNVET_FP8_CASES (read
// once), default 200 (the quick suite); docs/tolerance.md "FP8 dense"
// reports 10^4.
var fp8Cases = sync.OnceValue(func() int {
	if n, err := strconv.Atoi(os.Getenv("ATTNVET_FP8_CASES")); err == nil && n > 0 {
		return n
	}
	return 200
})

// TestFP8DenseValidation runs every correct emulation that takes FP8
// dense inputs (FP32 operands: the fa3 kind and the fp32 profiles) on the
// FP8 cases of the dense campaign with seed 20261202 (CaseAt's dense cases
// whose fp8 is set): zero bound failures.
func TestFP8DenseValidation(t *testing.T) {
	ks, err := impl.Match("*/*/fp8bf16")
	if err != nil {
		t.Fatal(err)
	}
	more, err := impl.Match("tiled/bc64/fp32")
	if err != nil {
		t.Fatal(err)
	}
	ks = append(ks, more...)
	want := fp8Cases()
	stats := map[key]*Stat{}
	edges := map[string]int{}
	viol := 0
	for i, n := 0, 0; n < want; i++ {
		c := props.CaseAt(20261202, i, problem.Dense)
		if c.FP8 == "" {
			continue
		}
		n++
		edges[c.FP8Edge+"/p="+c.FP8P+"/acc="+strconv.Itoa(c.AccBits)]++
		local, v := runCase(c, ks)
		if v {
			viol++
		}
		for _, s := range local {
			merge(stats, s)
		}
	}
	var names []string
	for k := range stats {
		names = append(names, k.kernel)
	}
	sort.Strings(names)
	for _, n := range names {
		s := stats[key{n, problem.Dense}]
		t.Logf("%s: cases %d elements %d skipped %d bound %d prob %d tight bound %.3f prob %.3f worst %.3f lse rows %d fails %d worst %.3f",
			n, s.Cases, s.Elements, s.Skipped, s.BoundFail, s.ProbFail, s.TightBound, s.TightProb, s.WorstBound, s.LSERows, s.LSEBoundFail, s.LSEWorst)
		if s.BoundFail > 0 || s.LSEBoundFail > 0 {
			t.Errorf("%s: %d bound failures, %d lse; first: %s", n, s.BoundFail, s.LSEBoundFail, s.FirstFail)
		}
	}
	t.Logf("%d FP8 cases (%d contract violations), classes %v", want, viol, edges)
}
