package tolerance

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/ref"
)

// firstKills runs kernel k (judged as profile p) over cases and returns, per
// criterion, the 1-based index of the first case it fails (0: never).
func firstKills(t *testing.T, gen func(i int) cases.Case, ncases int, k *impl.Emulation, p profile.Profile) map[string]int {
	t.Helper()
	first := map[string]int{}
	for i := 0; i < ncases; i++ {
		c := gen(i)
		in, err := cases.Generate(c, p.In)
		if err != nil {
			t.Fatal(err)
		}
		if len(in.Violations()) > 0 {
			continue
		}
		r := ref.Compute(in, ref.Options{})
		out, err := k.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		x := &Input{In: in, Ref: r, Out: out.O, OutLSE: out.LSE, Profile: p, Shape: ShapeOf(k.Config)}
		for _, crit := range All() {
			if first[crit.Name()] == 0 && !crit.Judge(x).Pass {
				first[crit.Name()] = i + 1
			}
		}
		if len(first) == len(All()) { // every criterion has caught it
			break
		}
	}
	return first
}

// dropOneKey removes, from every key set of n ≥ 2, the key whose weight
// for the group's first head is closest to 1/n: the subtle version of the
// defect.
func dropOneKey() *impl.Hooks {
	return &impl.Hooks{Keys: func(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
		if len(keys) < 2 {
			return keys
		}
		q := in.QRow(t, g*(in.H/in.Hkv))
		x := make([]float64, len(keys))
		m := math.Inf(-1)
		for i, k := range keys {
			for d, qd := range q {
				x[i] += float64(qd) * float64(k.K[d])
			}
			x[i] *= in.Scale
			m = math.Max(m, x[i])
		}
		l := 0.0
		for i := range x {
			x[i] = math.Exp(x[i] - m)
			l += x[i]
		}
		j, best := 0, math.Inf(1)
		for i := range x {
			if d := math.Abs(x[i]/l - 1/float64(len(x))); d < best {
				j, best = i, d
			}
		}
		out := append([]problem.Key(nil), keys[:j]...)
		return append(out, keys[j+1:]...)
	}}
}

// TestDropOneKeyOfMany: an output that drops one key out of n ≥ 1024 is
// caught by bound within 1,000 cases, for BF16 profiles with FP32 and with
// BF16 P.
func TestDropOneKeyOfMany(t *testing.T) {
	gen := func(i int) cases.Case {
		r := rand.New(rand.NewPCG(7, uint64(i)))
		return cases.Case{Family: problem.Sparse, Seed: r.Uint64(), B: 1, H: 1 + r.IntN(4), D: 16 + r.IntN(49),
			Win: 128, IdxTopK: 896 + r.IntN(200), BlockSize: 64, Seqused: []int{1100 + r.IntN(2000)}}
	}
	for _, pn := range []string{"bf16p32", "bf16"} {
		p := profile.MustLookup(pn)
		k := impl.New(impl.Config{Kind: impl.Tiled, Bc: 128, Profile: p, Hooks: dropOneKey()})
		first := firstKills(t, gen, 1000, k, p)
		t.Logf("drop one key of n≥1024, profile %s: first kill (case #, 0 = never in 1000): %v", pn, first)
		if first[NameBound] == 0 {
			t.Errorf("profile %s: bound never caught a dropped key in 1000 cases", pn)
		}
	}
}

// TestPRoundedUndeclared: a kernel that rounds P to BF16 while its profile
// declares FP32 P is caught by bound within 1,000 cases.
func TestPRoundedUndeclared(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	gen := func(i int) cases.Case { return quickCase(r) }
	declared := profile.MustLookup("bf16p32")
	k := impl.New(impl.Config{Kind: impl.Tiled, Bc: 64, Profile: profile.MustLookup("bf16")})
	first := firstKills(t, gen, 1000, k, declared)
	t.Logf("P rounded to bf16, declared fp32: first kill (case #, 0 = never in 1000): %v", first)
	if first[NameBound] == 0 {
		t.Errorf("bound never caught undeclared P rounding in 1000 cases")
	}
}
