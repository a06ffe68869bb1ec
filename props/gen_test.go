package props

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

// TestClassCoverage draws the first 1,000 cases of a campaign (and 500 of
// the dense family, 100 of combine, 200 of mla and 300 of csa, hca and swa, which the default mix leaves out) and requires every
// edge class to be hit; it prints the counts.
func TestClassCoverage(t *testing.T) {
	const n, nDense, nCombine, nMLA, nPypto = 1000, 500, 100, 200, 300
	for _, seed := range []uint64{1, 2} {
		counts := map[string]int{}
		tiles := map[string]int{}
		fams := map[problem.Family]int{}
		for i := range n + nDense + nCombine + nMLA + nPypto {
			c := CaseAt(seed, i, "")
			switch {
			case i >= n+nDense+nCombine+nMLA:
				j := i - n - nDense - nCombine - nMLA
				c = CaseAt(seed, j/3, []problem.Family{problem.CSA, problem.HCA, problem.SWA}[j%3])
			case i >= n+nDense+nCombine:
				c = CaseAt(seed, i-n-nDense-nCombine, problem.MLA)
			case i >= n+nDense:
				c = CaseAt(seed, i-n-nDense, problem.Combine)
			case i >= n:
				c = CaseAt(seed, i-n, problem.Dense)
			}
			fams[c.Family]++
			for _, cl := range Classes(c) {
				counts[cl]++
			}
			for _, k := range rowKeys(c) {
				for _, bc := range TileSizes {
					for d, name := range map[int]string{-1: "minus1", 0: "", 1: "plus1"} {
						if k == bc+d {
							tiles[fmt.Sprintf("bc%d%s", bc, name)]++
						}
					}
				}
			}
		}
		var b strings.Builder
		fmt.Fprintf(&b, "seed %d: edge classes in the first %d cases of CaseAt and %d dense (%d sparse, %d window, %d dense):\n",
			seed, n, nDense, fams[problem.Sparse], fams[problem.Window], fams[problem.Dense])
		for _, cl := range ClassNames() {
			fmt.Fprintf(&b, "  %-24s %4d\n", cl, counts[cl])
			if counts[cl] == 0 {
				t.Errorf("seed %d: class %s never hit in %d cases", seed, cl, n)
			}
		}
		fmt.Fprintf(&b, "  rows at tile boundaries (cases with such a row):")
		for _, bc := range TileSizes {
			for _, name := range []string{"minus1", "", "plus1"} {
				k := fmt.Sprintf("bc%d%s", bc, name)
				fmt.Fprintf(&b, " %s:%d", k, tiles[k])
				if tiles[k] == 0 {
					t.Errorf("seed %d: no row at %s", seed, k)
				}
			}
		}
		t.Log(b.String())
	}
}

func TestCaseAtDeterministic(t *testing.T) {
	for i := range 50 {
		a, b := CaseAt(7, i, ""), CaseAt(7, i, "")
		if a.String() != b.String() {
			t.Fatalf("case %d differs between draws:\n%s\n%s", i, a, b)
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("case %d invalid: %v", i, err)
		}
	}
	if CaseAt(7, 0, "").String() == CaseAt(7, 1, "").String() || CaseAt(7, 0, "").String() == CaseAt(8, 0, "").String() {
		t.Fatal("different (seed, i) drew the same case")
	}
	for _, fam := range problem.Families() {
		for i := range 50 {
			if c := CaseAt(3, i, fam); c.Family != fam {
				t.Fatalf("CaseAt(…, %q) drew family %q", fam, c.Family)
			}
		}
	}
}

func TestGenSizes(t *testing.T) {
	for _, g := range []Gen{{Size: Campaign}, {Size: Small}} {
		r := rand.New(rand.NewPCG(1, 2))
		lim := g.Size.limits()
		for range 2000 {
			c := g.Draw(r)
			if w := work(c); w > lim.work {
				t.Fatalf("%v drew work %d > %d: %s", g, w, lim.work, c)
			}
		}
	}
	if s := (Gen{Family: problem.Sparse, Size: Small}).String(); s != `props.Gen{Family: "sparse", Size: props.Small}` {
		t.Errorf("String() = %s", s)
	}
}

// TestClassesExamples pins Classes on hand-made cases.
func TestClassesExamples(t *testing.T) {
	tests := []struct {
		c    cases.Case
		want []string
		not  []string
	}{
		{cases.Case{Family: problem.Sparse, H: 16, D: 1, B: 1, Win: 4, IdxTopK: 4, Seqused: []int{1}},
			[]string{ClassN1, ClassD1, ClassPadAfter}, []string{ClassHeads, ClassN0, ClassWin}},
		{cases.Case{Family: problem.Sparse, H: 3, D: 4, B: 1, S: 2, Win: 4, IdxTopK: 8, Seqused: []int{5}},
			[]string{ClassS2, ClassWin, ClassWinPlus1, ClassHeads}, []string{ClassTopK}},
		{cases.Case{Family: problem.Sparse, H: 3, D: 4, B: 1, Win: 4, IdxTopK: 2, Seqused: []int{9}},
			[]string{ClassTopK}, nil},
		{cases.Case{Family: problem.Sparse, H: 2, D: 4, B: 1, Win: 4, Seqused: []int{3}, Plant: []string{problem.VPadInPrefix}},
			[]string{ClassPadIn, ClassWinMinus1}, []string{ClassDuplicate}},
		{cases.Case{Family: problem.Window, H: 4, Hkv: 2, D: 2, T: 130, Window: 129, Values: cases.Values{Dist: "zeroq"}},
			[]string{ClassTileMinus1, ClassTile, ClassTilePlus1, ClassGQA, ClassWinBoundary, ClassEqual}, []string{ClassLarge}},
		{cases.Case{Family: problem.Window, H: 1, D: 8, T: 3, Values: cases.Values{Scale: 30},
			Sink: &cases.Sink{Kind: "const", Values: []cases.Float{cases.F(math.Inf(1))}}},
			[]string{ClassExpOverflow, ClassSinkPosInf}, []string{ClassSinkNegInf}},
		{cases.Case{Family: problem.Window, H: 1, D: 8, T: 3, DType: "fp16", Specials: []cases.Special{
			{Tensor: "q", Value: cases.F(math.Copysign(0, -1))}, {Tensor: "k", Value: cases.Float{Name: "minsub"}},
			{Tensor: "v", Value: cases.Float{Name: "max"}}}},
			[]string{ClassSignedZero, ClassSubnormal, ClassMaxFinite, ClassFP16}, []string{ClassExpOverflow}},
		// mla counts the keys its inputs hold: every index −1 is a row with
		// no key (corpus mla_all_indices_invalid), not one of topk keys.
		{cases.Case{Family: problem.MLA, H: 4, D: 8, B: 2, S: 1, BlockSize: 4, TopK: 6, Invalid: 1},
			[]string{ClassN0, ClassAllInvalid}, []string{ClassN1, ClassN2}},
		// The extra scope's own topk_length cuts its keys: 1 + 1, not 1 + 4.
		{cases.Case{Family: problem.MLA, H: 2, D: 8, B: 1, S: 1, BlockSize: 4, TopK: 1, ExtraTopK: 4, ExtraTopkLength: []int{1}},
			[]string{ClassExtraScope, ClassN2}, []string{ClassN0, ClassN1}},
	}
	for i, tc := range tests {
		got := Classes(tc.c)
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("case %d: Classes = %v, missing %s", i, got, w)
			}
		}
		for _, w := range tc.not {
			if slices.Contains(got, w) {
				t.Errorf("case %d: Classes = %v, should not hold %s", i, got, w)
			}
		}
	}
	if got := Classes(cases.Case{Family: "nope"}); got != nil {
		t.Errorf("invalid case: Classes = %v, want nil", got)
	}
}

// TestShrinkSynthetic shrinks against predicates with a known minimum.
func TestShrinkSynthetic(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 60 {
		c := (Gen{Size: Campaign}).Draw(r)
		c.Description = ""
		tests := []struct {
			name  string
			fails func(cases.Case) bool
			check func(cases.Case) string
		}{
			{"always", func(cases.Case) bool { return true }, func(d cases.Case) string {
				if d.Tokens() != 1 || d.H != 1 || d.D != 1 || d.Sink != nil || len(d.Specials) > 0 || len(d.Plant) > 0 {
					return "not minimal"
				}
				return ""
			}},
			{"h>=3", func(d cases.Case) bool { return d.H >= 3 }, func(d cases.Case) string {
				if d.H != 3 || d.Tokens() != 1 || d.D != 1 {
					return "want H = 3, one token, D = 1"
				}
				return ""
			}},
			{"has a key", func(d cases.Case) bool { return slices.Max(rowKeys(d)) >= 1 }, func(d cases.Case) string {
				if ks := rowKeys(d); len(ks) != 1 || ks[0] != 1 {
					return fmt.Sprintf("want one row with one key, got %v", ks)
				}
				return ""
			}},
		}
		for _, tc := range tests {
			if !tc.fails(c) {
				continue
			}
			calls := 0
			d := Shrink(c, func(x cases.Case) bool {
				calls++
				if err := x.Validate(); err != nil {
					t.Fatalf("shrink tried an invalid case: %v", err)
				}
				return tc.fails(x)
			}, 5000)
			if msg := tc.check(d); msg != "" {
				t.Errorf("case %d, %s: %s after %d calls: %s\nfrom %s", i, tc.name, msg, calls, d, c)
			}
		}
	}
	c := CaseAt(1, 3, "")
	if d := Shrink(c, func(cases.Case) bool { return false }, 100); !reflect.DeepEqual(c, d) {
		t.Error("Shrink changed a case that does not fail")
	}
}

// TestCandidatesValidAndSimpler: every shrink step is a valid, strictly
// simpler case.
func TestCandidatesValidAndSimpler(t *testing.T) {
	for i := range 300 {
		c := CaseAt(11, i, "")
		for _, d := range shrinkCandidates(c, nil) {
			if err := d.Validate(); err != nil {
				t.Fatalf("invalid candidate: %v\n%s", err, d)
			}
			if compareComplexity(Complexity(d), Complexity(c)) >= 0 {
				t.Fatalf("candidate not simpler:\n%s\n%s", d, c)
			}
		}
	}
}

func TestBigExp(t *testing.T) {
	for _, x := range []float64{0, 1, -1, 0.5, -1e-9, 10, -30, -700, 700, -5000.25, 88.5} {
		got, _ := BigExp(bigF(x)).Float64()
		want := math.Exp(x)
		if x == -5000.25 {
			// e^-5000.25 is below float64's range: check e^x·e^-x = 1.
			p := new(big.Float).SetPrec(exactPrec).Mul(BigExp(bigF(x)), BigExp(bigF(-x)))
			if d, _ := p.Sub(p, bigF(1)).Float64(); math.Abs(d) > 1e-60 {
				t.Errorf("e^%v·e^%v − 1 = %v", x, -x, d)
			}
			continue
		}
		if math.Abs(got-want) > 2e-16*want {
			t.Errorf("BigExp(%v) = %v, want %v", x, got, want)
		}
	}
	if got, _ := BigExp(bigF(-2e6)).Float64(); got != 0 {
		t.Errorf("BigExp(-2e6) = %v, want 0", got)
	}
}

// TestExactRowKnown checks the math/big oracle on rows with known answers.
func TestExactRowKnown(t *testing.T) {
	in := &problem.Inputs{Family: problem.Window, T: 1, H: 1, Hkv: 1, D: 1, Dv: 1, Scale: 1,
		Q: []float32{1}, K: []float32{2}, V: []float32{3}, Sink: []float32{2}, HasSinkTensor: true}
	keys := in.RefKeys(0, 0, nil)
	if got := ExactRow(in, 0, 0, keys)[0]; math.Abs(got-1.5) > 1e-16 { // x = σ: half the weight
		t.Errorf("one key with x = σ: %v, want 1.5", got)
	}
	in.Sink = nil
	if got := ExactRow(in, 0, 0, keys)[0]; got != 3 {
		t.Errorf("one key, no sink: %v, want 3", got)
	}
	in.Sink = []float32{float32(math.Inf(1))}
	if got := ExactRow(in, 0, 0, keys)[0]; got != 0 {
		t.Errorf("+Inf sink: %v, want 0", got)
	}
}

func BenchmarkCaseAt(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		CaseAt(1, i, "")
	}
}

func BenchmarkClasses(b *testing.B) {
	cs := make([]cases.Case, 256)
	for i := range cs {
		cs[i] = CaseAt(1, i, "")
	}
	for i := 0; b.Loop(); i++ {
		Classes(cs[i%len(cs)])
	}
}

// TestExpectedViolations pins which planted violations must be reported.
func TestExpectedViolations(t *testing.T) {
	base := cases.Case{Family: problem.Sparse, Seed: 6215, H: 4, D: 16, B: 1, Win: 48, IdxTopK: 1, BlockSize: 55, Seqused: []int{49}}
	tests := []struct {
		plant   []string
		seqused int
		must    int
	}{
		{[]string{problem.VPadInPrefix}, 49, 1},
		{[]string{problem.VWindowSlot, "duplicate"}, 49, 0}, // the duplicate may copy over it (found by FuzzDifferential)
		{[]string{"duplicate", problem.VWindowSlot}, 49, 1},
		{[]string{problem.VPadInPrefix}, 0, 0}, // no token has a key: nothing to plant
		{[]string{problem.VValidAfter}, 30, 1},
		{[]string{problem.VValidAfter}, 49, 0}, // a full row: no room after the prefix
	}
	for i, tc := range tests {
		c := base
		c.Plant, c.Seqused = tc.plant, []int{tc.seqused}
		must, may := ExpectedViolations(c, num.BF16)
		if len(must) != tc.must {
			t.Errorf("%d: must = %v, want %d entries", i, must, tc.must)
		}
		in, err := cases.Generate(c, num.BF16)
		if err != nil {
			t.Fatal(err)
		}
		vs := in.Violations()
		if tc.must > 0 && len(vs) == 0 {
			t.Errorf("%d: nothing reported", i)
		}
		if err := CheckViolations(c, in, vs); err != nil {
			t.Errorf("%d: %v (may %v)", i, err, may)
		}
	}
	// A violation that nobody planted is an error.
	c := base
	in, _ := cases.Generate(c, num.BF16)
	if err := CheckViolations(c, in, []problem.Violation{{Name: problem.VPadInPrefix}}); err == nil {
		t.Error("an unplanted violation passed")
	}
	c.Plant = []string{problem.VPadInPrefix}
	if err := CheckViolations(c, in, nil); err == nil {
		t.Error("a planted violation that was not reported passed")
	}
}
