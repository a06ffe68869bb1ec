package mutant_test

import (
	"math"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/impl/mutant"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/ref"
)

// TestInt4MutantsKilled: every INT4-KV mutant fails the rigorous bound on a
// per-channel GQA case (the per-tensor one spares int4-channel-scale-no-head
// only); their base passes both.
func TestInt4MutantsKilled(t *testing.T) {
	names := []string{"int4-nibble-swap", "int4-bias-not-removed", "int4-int8-scale", "int4-channel-scale-no-head"}
	for _, kind := range []string{"per_channel", "per_tensor"} {
		c := cases.Case{Family: problem.Dense, Seed: 29, H: 4, Hkv: 2, D: 8, Dv: 6, Sq: []int{2, 1}, Sk: []int{12, 30}, Int4KV: kind}
		in, err := cases.Generate(c, num.BF16)
		if err != nil {
			t.Fatal(err)
		}
		r := ref.Compute(in, ref.Options{})
		fails := func(k impl.Kernel, sh tolerance.Shape) bool {
			out, err := k.Run(in)
			if err != nil {
				t.Fatal(err)
			}
			x := &tolerance.Input{In: in, Ref: r, Out: out.O, Profile: k.Profile(), Shape: sh}
			allowed, _, skip := tolerance.Bounds(x, tolerance.Rigorous)
			for e, ro := range r.O {
				if d := math.Abs(float64(out.O[e]) - ro); !skip[e] && !(d <= allowed[e]) {
					return true
				}
			}
			return false
		}
		base, _ := impl.Lookup("tiled/bc128/bf16rne")
		if fails(base, tolerance.Shape{Kind: "tiled", Bc: 128}) {
			t.Errorf("tiled/bc128/bf16rne fails the INT4-KV %s case", kind)
		}
		for _, name := range names {
			m, err := mutant.Lookup(name)
			if err != nil {
				t.Fatal(err)
			}
			want := kind == "per_channel" || name != "int4-channel-scale-no-head"
			if got := fails(m.Kernel, m.Shape); got != want {
				t.Errorf("%s on the %s case: fails %v, want %v", name, kind, got, want)
			}
		}
	}
}
