package tolerance

import (
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/ref"
)

// fa2x is a max-error rule over the whole output: when the max error
// exceeds its allowance, the verdict must say so and count the elements
// above it, never "FAIL … 0 of N elements".
func TestFA2xFailCountsAndSays(t *testing.T) {
	c := cases.Case{Seed: 3, Family: "window", T: 12, H: 2, Hkv: 1, D: 8, Window: 4, Values: cases.Values{Dist: "normal"}}
	pf := profile.MustLookup("bf16")
	in, err := cases.Generate(c, pf.In)
	if err != nil {
		t.Fatal(err)
	}
	r := ref.Compute(in, ref.Options{})
	same := SamePrecision(in, pf)
	out := append([]float32(nil), same...)
	x := &Input{In: in, Ref: r, Out: out, Profile: pf, SamePrec: same}
	if v := (FA2x{}).Judge(x); !v.Pass || v.Failed != 0 || !strings.Contains(v.Detail, "≤ allowance") {
		t.Fatalf("the same-precision output itself: %+v", v)
	}
	// Three elements far off: a fail on the max error, with 3 elements above the allowance.
	for _, e := range []int{1, 5, 9} {
		out[e] = num.Round32(num.BF16, out[e]+1, num.RNE)
	}
	v := (FA2x{}).Judge(x)
	if v.Pass || v.Failed != 3 || v.Worst <= 1 {
		t.Errorf("perturbed: pass %v, failed %d, worst %g; want a fail with 3 elements above the allowance", v.Pass, v.Failed, v.Worst)
	}
	if !strings.Contains(v.Detail, "> allowance") {
		t.Errorf("detail %q does not say the max error exceeds the allowance", v.Detail)
	}
}
