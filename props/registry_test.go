package props

import (
	"math/rand/v2"
	"testing"

	"github.com/attnvet/attnvet/internal/problem"
)

// Every family has its generator; an unknown one is refused loudly.
func TestGenRegistry(t *testing.T) {
	for _, fam := range problem.Families() {
		g := genFamilies[fam]
		if g == nil || g.draw == nil || g.classes == nil || g.rowKeys == nil || g.candidates == nil {
			t.Fatalf("%s: incomplete generator", fam)
		}
		c := Gen{Family: fam, Size: Small}.Draw(rand.New(rand.NewPCG(1, 2)))
		if c.Family != fam {
			t.Errorf("Gen{%s} drew a %s case", fam, c.Family)
		}
	}
	if len(genFamilies) != len(problem.Families()) {
		t.Errorf("%d generators for %d families", len(genFamilies), len(problem.Families()))
	}
	defer func() {
		if recover() == nil {
			t.Error("Gen{bogus}.Draw: no panic")
		}
	}()
	Gen{Family: "bogus"}.Draw(rand.New(rand.NewPCG(1, 2)))
}
