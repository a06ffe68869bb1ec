package cases

import (
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/problem"
)

// Every family has its case knowledge, complete; an unknown one is an
// error from Validate and Generate, and a programming error (panic) from
// the accessors of an unvalidated case.
func TestFamilyRegistry(t *testing.T) {
	for _, fam := range problem.Families() {
		f, err := lookup(fam)
		if err != nil {
			t.Fatal(err)
		}
		if f.validate == nil || f.elements == nil || f.tokens == nil || f.hkv == nil || f.dv == nil || f.generate == nil || f.specialKeys == nil {
			t.Errorf("%s: incomplete case knowledge", fam)
		}
	}
	if len(families) != len(problem.Families()) {
		t.Errorf("%d registered for %d families", len(families), len(problem.Families()))
	}
	c := Case{Family: "bogus", H: 1, D: 1}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `"bogus"`) {
		t.Errorf("Validate: %v, want an error naming the family", err)
	}
	if _, err := Generate(c, 0); err == nil {
		t.Error("Generate of family bogus: no error")
	}
	defer func() {
		if recover() == nil {
			t.Error("Tokens of family bogus: no panic")
		}
	}()
	c.Tokens()
}
