package mutant_test

import (
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/impl/mutant"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
)

// triggerCases reach every mutant's trigger: S = 2 entries with n = 0, 1
// and window edges, unused pool rows poisoned, batch entry 0 empty (pool
// row 0 unwritten); key sets longer than several tiles with n = 33
// (n mod 32 = 1); grouped-query heads with and without a sliding window;
// sinks throughout.
func triggerCases() []cases.Case {
	sink := &cases.Sink{Kind: "random", Scale: 2, Offset: 1}
	return append([]cases.Case{
		{Family: problem.Sparse, Seed: 1, H: 3, D: 8, B: 3, S: 2, Win: 4, IdxTopK: 6, BlockSize: 2,
			Seqused: []int{1, 2, 5}, Poison: true, Sink: sink},
		{Family: problem.Sparse, Seed: 2, H: 18, D: 6, B: 2, S: 2, Win: 40, IdxTopK: 100, BlockSize: 8,
			Seqused: []int{90, 150}, Indices: "shuffled", Sink: sink, Values: cases.Values{Scale: 2}},
		{Family: problem.Window, Seed: 3, T: 40, H: 4, Hkv: 2, D: 8, Dv: 5, Sink: sink, Values: cases.Values{Scale: 2}},
		{Family: problem.Window, Seed: 4, T: 40, H: 6, Hkv: 3, D: 8, Dv: 8, Window: 7, Sink: sink},
		{Family: problem.Window, Seed: 5, T: 6, H: 2, D: 4, Window: 1, Sink: sink},
		{Family: problem.Sparse, Seed: 6, H: 2, D: 4, B: 2, Win: 4, IdxTopK: 2, BlockSize: 2,
			Seqused: []int{0, 3}, Poison: true},
		// Dense: sq ≠ sk with causal, a left window, softcap with ALiBi under
		// GQA, an lse excluding the sink.
		{Family: problem.Dense, Seed: 7, H: 4, Hkv: 2, D: 8, Sq: []int{3, 6}, Sk: []int{9, 5}, Causal: true, WindowLeft: ip(2),
			Softcap: 2, Alibi: &cases.Alibi{Kind: "geometric", Scale: 4}, Sink: sink, Values: cases.Values{Scale: 2},
			LSE: &cases.LSESpec{Base: "e", Empty: "+inf", Sink: "excluded"}},
		// Dense: an empty key sequence before a full one, a right window,
		// base-2 lse with the sink included.
		{Family: problem.Dense, Seed: 8, H: 2, D: 4, Sq: []int{2, 3, 2}, Sk: []int{0, 6, 3}, WindowRight: ip(1),
			Sink: sink, LSE: &cases.LSESpec{Base: "2", Empty: "-inf", Sink: "included"}},
		// csa at p = 6, 7 (p+1 = 8: bound 2, idx_topk holding slots 1 and 2)
		// with ori_kv row 0 NaN/±Inf and an invalid compressed lane.
		{Family: problem.CSA, Seed: 9, B: 1, S: 2, H: 2, D: 4, Win: 4, IdxTopK: 4, Positions: []int{6, 7},
			Plant: []string{cases.PlantBoundEdge, cases.PlantRow0NonFinite}, Poison: true, Sink: sink},
		// hca with every valid lane in block 0; swa with a window of 3 < WIN.
		{Family: problem.HCA, Seed: 10, B: 1, H: 2, D: 4, Win: 4, IdxTopK: 3, Ratio: 2, Positions: []int{2}},
		{Family: problem.SWA, Seed: 11, B: 1, H: 2, D: 4, Win: 6, Positions: []int{2}, Sink: sink},
		// csa with the window's only page unmapped and no compressed slot (p = 1): no key, no sink.
		{Family: problem.CSA, Seed: 12, B: 1, H: 2, D: 4, Win: 4, IdxTopK: 2, BlockSize: 8, Positions: []int{1},
			Plant: []string{cases.PlantUnmappedPage}},
		// Dense paged: an odd page size, a permuted table, NaN past each
		// sequence's last key.
		{Family: problem.Dense, Seed: 9, H: 4, Hkv: 2, D: 8, Sq: []int{1, 3}, Sk: []int{7, 10}, Causal: true,
			Page: 3, BlockTable: "permuted", Poison: true, LSE: &cases.LSESpec{Base: "e", Empty: "-inf"}},
		// Combine: rows with every state empty (lse_empty = +inf).
		{Family: problem.Combine, Seed: 10, T: 4, H: 2, D: 4, States: 3, Empty: 0.7, LSE: &cases.LSESpec{Base: "e", Empty: "+inf"}},
		// MLA: an extra scope with topk_length cutting the main scope.
		{Family: problem.MLA, Seed: 11, H: 2, D: 8, B: 2, TopK: 8, ExtraTopK: 16, TopkLength: []int{3, 8}, BlockSize: 4},
		// MLA with a natural max_logit output (FlashMLA's max_logits).
		{Family: problem.MLA, Seed: 12, H: 3, D: 8, B: 1, S: 2, TopK: 12, BlockSize: 4, Invalid: 0.2,
			MaxLogit: &cases.MaxLogitSpec{Base: "e"}, LSE: &cases.LSESpec{Base: "e", Empty: "+inf"}},
	}, quantTriggerCases()...)
}

func ip(v int) *int { return &v }

func TestCatalog(t *testing.T) {
	ms := mutant.All()
	if len(ms) < 24 {
		t.Fatalf("%d mutants, want at least 24", len(ms))
	}
	kebab := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	seen := map[string]bool{}
	for _, m := range ms {
		if seen[m.Name] {
			t.Errorf("duplicate mutant name %q", m.Name)
		}
		seen[m.Name] = true
		if !kebab.MatchString(m.Name) {
			t.Errorf("%q is not kebab-case", m.Name)
		}
		if m.BugClass == "" || m.Doc == "" {
			t.Errorf("%s: bug class %q, doc %q: both needed", m.Name, m.BugClass, m.Doc)
		}
		base, err := impl.Lookup(m.Base)
		if err != nil {
			t.Errorf("%s: base: %v", m.Name, err)
			continue
		}
		if m.Kernel.Profile() != base.Profile() {
			t.Errorf("%s declares %+v, its base %+v", m.Name, m.Kernel.Profile(), base.Profile())
		}
		if m.Shape.Kind != string(base.Kind) || m.Shape.Bc != base.Bc || m.Shape.Parts != base.Parts {
			t.Errorf("%s: shape %+v, base %s", m.Name, m.Shape, m.Base)
		}
		if m.Kernel.Name() != "mutant:"+m.Name {
			t.Errorf("%s: kernel name %q", m.Name, m.Kernel.Name())
		}
		if l, err := mutant.Lookup(m.Name); err != nil || l.Name != m.Name {
			t.Errorf("Lookup(%q) = %q, %v", m.Name, l.Name, err)
		}
	}
	if _, err := mutant.Lookup("no-such-mutant"); err == nil || !strings.Contains(err.Error(), "pr301-n1-stale-state") {
		t.Errorf("Lookup of an unknown name: %v, want an error listing the names", err)
	}
	if got := mutant.Names(); len(got) != len(ms) || got[0] != ms[0].Name {
		t.Errorf("Names() = %v", got)
	}
	// The seed defects and the §3 classes the issue names are covered.
	classes := map[string]bool{}
	for _, m := range ms {
		classes[m.BugClass] = true
	}
	for _, c := range []string{"seed", "§3.1", "§3.3", "§3.4", "§3.5", "§3.6", "§3.7", "§3.9", "§3.10", "§3.12", "§3.15", "§3.16", "§3.20"} {
		if !classes[c] {
			t.Errorf("no mutant of class %s", c)
		}
	}
}

func bits(x []float32) []uint32 {
	b := make([]uint32, len(x))
	for i, v := range x {
		b[i] = math.Float32bits(v)
	}
	return b
}

func snapshot(in *problem.Inputs) [][]uint32 {
	var s [][]uint32
	for _, x := range [][]float32{in.Q, in.K, in.V, in.OriKV, in.CmpKV, in.Sink} {
		s = append(s, bits(x))
	}
	return s
}

// TestMutantsDiffer checks that no mutant is a no-op: each differs from
// its base on at least one trigger case. It also checks that mutants leave
// their inputs alone and are deterministic.
func TestMutantsDiffer(t *testing.T) {
	cs := triggerCases()
	for _, m := range mutant.All() {
		t.Run(m.Name, func(t *testing.T) {
			base, _ := impl.Lookup(m.Base)
			differs := 0
			for _, c := range cs {
				if c.KVLayout != "" && m.Family != problem.MLA {
					continue // FP8 caches are BF16 problems: not for FP16 kernels
				}
				if pf := m.Kernel.Profile(); !impl.Compatible(c.Format(pf.In), pf) {
					continue // FP8 dense cases are FP32 problems
				}
				in, err := cases.Generate(c, m.Kernel.Profile().In)
				if err != nil {
					t.Fatal(err)
				}
				before := snapshot(in)
				got, err := m.Kernel.Run(in)
				if err != nil {
					t.Fatalf("%v\ncase: %s", err, c)
				}
				if !slices.EqualFunc(before, snapshot(in), slices.Equal) {
					t.Fatalf("the mutant modified its inputs\ncase: %s", c)
				}
				again, err := m.Kernel.Run(in)
				if err != nil || !slices.Equal(bits(got.O), bits(again.O)) {
					t.Fatalf("two runs differ (%v)\ncase: %s", err, c)
				}
				want, err := base.Run(in)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(bits(got.O), bits(want.O)) || !slices.Equal(bits(got.LSE), bits(want.LSE)) ||
					!slices.Equal(bits(got.MaxLogit), bits(want.MaxLogit)) {
					differs++
				}
			}
			if differs == 0 {
				t.Errorf("%s computes what %s computes on every trigger case", m.Name, m.Base)
			}
		})
	}
}

// TestQuiet checks that mutants are their base, bit for bit, on a case
// with none of their triggers.
func TestQuiet(t *testing.T) {
	// Sparse, S = 1, no sink, every token with 3 keys (one tile for every
	// tiled base), D = 16 (a power of 4: the BF16 scale is exact).
	c := cases.Case{Family: problem.Sparse, Seed: 9, H: 2, D: 16, B: 2, Win: 2, IdxTopK: 1, BlockSize: 2, Seqused: []int{3, 3}}
	quiet := []string{
		"pr301-n1-stale-state", "pr301-n1-poison", "n0-stale-scratch", "s2-shared-length", "s2-stage-revert",
		"len-off-by-s", "short-set-merged-twice", "ring-overwrite-oldest", "head-tile-row0-corrupt",
		"maskinf-empty-row-nan", "cold-tail-pool-row0", "scale-bf16", "sink-ignored", "sink-sign-flipped",
		"no-alpha-l", "beta-tile-max", "window-start-off-by-one", "last-partial-tile-dropped",
		"gqa-wrong-kv-head", "lone-key-tile-skipped", "sink-bf16", "splitkv-last-split-off-by-one",
	}
	for _, name := range quiet {
		m, err := mutant.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		base, _ := impl.Lookup(m.Base)
		in, err := cases.Generate(c, m.Kernel.Profile().In)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Kernel.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := base.Run(in)
		if !slices.Equal(bits(got.O), bits(want.O)) {
			t.Errorf("%s differs from %s on a case without its trigger", name, m.Base)
		}
	}
}
