package props

import (
	"testing"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/testkit"
)

// TestExpOverflowsShortcut: the exp_overflow_scores class with the
// shortcut is the full scan's on cases of every family (the campaign mix:
// planted huge values, ±Inf, NaN, long windows).
func TestExpOverflowsShortcut(t *testing.T) {
	// 100 cases per family (300 in the long step): a shortcut that takes
	// a row's or the case's bound for four times the limit fails at 100.
	n := 100
	if testkit.Long() {
		n = 300
	}
	hits := 0
	for _, fam := range problem.Families() {
		for i := 0; i < n; i++ {
			c := CaseAt(5, i, fam)
			in, err := cases.Generate(c, c.Format(num.BF16))
			if err != nil {
				continue
			}
			fast, full := expOverflowsScan(in, true), expOverflowsScan(in, false)
			if fast != full {
				t.Fatalf("%s case %d: shortcut %v, full scan %v\n%s", fam, i, fast, full, c)
			}
			if full {
				hits++
			}
		}
	}
	if hits == 0 {
		t.Fatal("no case overflows: the comparison cannot fail")
	}
}
