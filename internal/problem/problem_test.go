package problem_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

func gen(t testing.TB, c cases.Case) *problem.Inputs {
	t.Helper()
	in, err := cases.Generate(c, num.BF16)
	if err != nil {
		t.Fatalf("%v\ncase: %s", err, c)
	}
	return in
}

// TestTokenLens checks SPEC.md §1's lengths by hand-computed rows: per-token
// lengths with S = 2 (u_s = u − S + 1 + s), and lengths at WIN−1, WIN, WIN+1.
func TestTokenLens(t *testing.T) {
	const win, topk = 4, 4 + 3 // IDX_TOPK = 3
	in := &problem.Inputs{Family: problem.Sparse, Win: win, TopK: topk}
	type lens struct{ u, wv, cv, ct, k int }
	for _, tc := range []struct {
		name    string
		s       int
		seqused []int32
		want    []lens // per token
	}{
		{"S1/empty", 1, []int32{0}, []lens{{0, 0, 0, 0, 0}}},
		{"S1/one", 1, []int32{1}, []lens{{1, 1, 0, 0, 1}}},
		{"S1/WIN-1", 1, []int32{win - 1}, []lens{{3, 3, 0, 0, 3}}},
		{"S1/WIN", 1, []int32{win}, []lens{{4, 4, 0, 0, 4}}},
		{"S1/WIN+1", 1, []int32{win + 1}, []lens{{5, 4, 1, 1, 5}}},
		{"S1/full", 1, []int32{win + 3}, []lens{{7, 4, 3, 3, 7}}},
		{"S1/topk-capped", 1, []int32{win + 10}, []lens{{14, 4, 10, 3, 7}}},
		// S = 2: the earlier token sees one key fewer.
		{"S2/u=0 (negative, clamped)", 2, []int32{0}, []lens{{0, 0, 0, 0, 0}, {0, 0, 0, 0, 0}}},
		{"S2/u=1", 2, []int32{1}, []lens{{0, 0, 0, 0, 0}, {1, 1, 0, 0, 1}}},
		{"S2/u=2", 2, []int32{2}, []lens{{1, 1, 0, 0, 1}, {2, 2, 0, 0, 2}}},
		{"S2/WIN-1..WIN", 2, []int32{win}, []lens{{3, 3, 0, 0, 3}, {4, 4, 0, 0, 4}}},
		{"S2/WIN..WIN+1", 2, []int32{win + 1}, []lens{{4, 4, 0, 0, 4}, {5, 4, 1, 1, 5}}},
		{"S2/WIN+1..WIN+2", 2, []int32{win + 2}, []lens{{5, 4, 1, 1, 5}, {6, 4, 2, 2, 6}}},
		{"S2/capped", 2, []int32{win + 4}, []lens{{7, 4, 3, 3, 7}, {8, 4, 4, 3, 7}}},
		{"S2/two entries", 2, []int32{3, 9}, []lens{{2, 2, 0, 0, 2}, {3, 3, 0, 0, 3}, {8, 4, 4, 3, 7}, {9, 4, 5, 3, 7}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in.S, in.B, in.Seqused = tc.s, len(tc.seqused), tc.seqused
			in.T = in.B * in.S
			for tok, w := range tc.want {
				l := in.TokenLens(tok)
				got := lens{l.U, l.WindowValid, l.CmpValid, l.CmpTop, l.SparseK}
				if got != w || l.B != tok/tc.s || l.S != tok%tc.s {
					t.Errorf("token %d: (b,s)=(%d,%d) (u,wv,cv,ct,k) = %v, want (%d,%d) %v", tok, l.B, l.S, got, tok/tc.s, tok%tc.s, w)
				}
			}
		})
	}
}

// TestRefKeysByHand: a hand-built sparse problem with block size 2,
// permuted block tables and an index row holding -1 pads, a window slot
// beyond window_valid, a compressed slot beyond cmp_valid and an entry
// after the prefix.
func TestRefKeysByHand(t *testing.T) {
	const D = 1
	in := &problem.Inputs{Family: problem.Sparse, Format: num.FP32, T: 2, H: 1, Hkv: 1, D: D, Dv: D,
		Scale: 1, B: 1, S: 2, Win: 4, TopK: 10, BS: 2, MBori: 2, MBcmp: 3}
	in.Q = []float32{1, 1}
	in.OriKV = []float32{10, 11, 12, 13}             // pool rows 0..3: blocks 0, 1
	in.CmpKV = []float32{20, 21, 22, 23, 24, 25}     // rows 0..5: blocks 0..2
	in.OriBT = []int32{1, 0}                         // window slots 0,1 → rows 2,3; 2,3 → rows 0,1
	in.CmpBT = []int32{2, 0, 1}                      // cmp slots 0,1 → rows 4,5; 2,3 → 0,1; 4,5 → 2,3
	in.Seqused = []int32{7}                          // token 0: u=6 (wv=4, cv=2); token 1: u=7 (wv=4, cv=3)
	in.Idx = []int32{0, 1, 2, 3, 4, 5, -1, 6, 3, -1, // token 0: window 0..3, cmp 0, 1, pad, cmp 2 (≥ cv: skipped), window 3 again, pad
		3, 2, 1, 0, 6, 4, 5, -1, -1, -1} // token 1: window 3..0, cmp 2, 0, 1
	if err := in.Check(); err != nil {
		t.Fatal(err)
	}
	vals := func(keys []problem.Key) []float32 {
		var v []float32
		for _, k := range keys {
			v = append(v, k.K[0])
		}
		return v
	}
	for _, tc := range []struct {
		tok          int
		ref, kernel  []float32
		sparseK      int
		wantViolName string
	}{
		// token 0: sparse_k = 4 + min(6, 2) = 6: the kernel reads entries 0..5.
		{0, []float32{12, 13, 10, 11, 24, 25, 11}, []float32{12, 13, 10, 11, 24, 25}, 6, problem.VValidAfter},
		{1, []float32{11, 10, 13, 12, 20, 24, 25}, []float32{11, 10, 13, 12, 20, 24, 25}, 7, ""},
	} {
		if l := in.TokenLens(tc.tok); l.SparseK != tc.sparseK {
			t.Errorf("token %d: sparse_k %d, want %d", tc.tok, l.SparseK, tc.sparseK)
		}
		if got := vals(in.RefKeys(tc.tok, 0, nil)); !slices.Equal(got, tc.ref) {
			t.Errorf("token %d: RefKeys %v, want %v", tc.tok, got, tc.ref)
		}
		if got := vals(in.KernelKeys(tc.tok, 0, nil)); !slices.Equal(got, tc.kernel) {
			t.Errorf("token %d: KernelKeys %v, want %v", tc.tok, got, tc.kernel)
		}
	}
	vs := in.Violations()
	if len(vs) != 1 || vs[0].Name != problem.VValidAfter || vs[0].Token != 0 {
		t.Errorf("violations %v, want one %s on token 0 (entry 8 = 3)", vs, problem.VValidAfter)
	}
}

func TestWindowKeys(t *testing.T) {
	for _, tc := range []struct{ T, W, Hkv int }{{1, 0, 1}, {6, 0, 2}, {6, 1, 1}, {7, 3, 2}, {5, 5, 1}, {4, 9, 2}} {
		c := cases.Case{Family: problem.Window, T: tc.T, Window: tc.W, H: 2 * tc.Hkv, Hkv: tc.Hkv, D: 3, Dv: 2, Seed: 1}
		in := gen(t, c)
		for tok := 0; tok < in.T; tok++ {
			lo := 0
			if tc.W > 0 {
				lo = max(0, tok-tc.W+1)
			}
			if l, h := in.WindowRange(tok); l != lo || h != tok {
				t.Errorf("T=%d W=%d token %d: range [%d,%d], want [%d,%d]", tc.T, tc.W, tok, l, h, lo, tok)
			}
			for g := 0; g < in.Hkv; g++ {
				ref, ker := in.RefKeys(tok, g, nil), in.KernelKeys(tok, g, nil)
				if len(ref) != tok-lo+1 || len(ker) != len(ref) {
					t.Fatalf("T=%d W=%d token %d: %d ref keys, %d kernel keys, want %d", tc.T, tc.W, tok, len(ref), len(ker), tok-lo+1)
				}
				for i, k := range ref {
					j := lo + i
					wantK := in.K[(j*in.Hkv+g)*in.D:][:in.D]
					wantV := in.V[(j*in.Hkv+g)*in.Dv:][:in.Dv]
					if &k.K[0] != &wantK[0] || len(k.K) != in.D || &k.V[0] != &wantV[0] || len(k.V) != in.Dv {
						t.Fatalf("token %d KV head %d key %d: wrong rows", tok, g, i)
					}
					if &ker[i].K[0] != &k.K[0] {
						t.Fatalf("token %d: kernel key %d differs", tok, i)
					}
				}
			}
		}
		for h := 0; h < in.H; h++ {
			if g := in.Group(h); g != h/2 {
				t.Errorf("Hkv=%d: Group(%d) = %d, want %d", tc.Hkv, h, g, h/2)
			}
		}
	}
}

// randomSparse draws a contract-following sparse case.
func randomSparse(r *rand.Rand) cases.Case {
	c := cases.Case{Family: problem.Sparse, Seed: r.Uint64(), H: 1 + r.IntN(3), D: 1 + r.IntN(4),
		B: 1 + r.IntN(3), S: 1 + r.IntN(2), Win: r.IntN(6), IdxTopK: r.IntN(6), BlockSize: 1 + r.IntN(5)}
	if c.Win+c.IdxTopK == 0 {
		c.IdxTopK = 1
	}
	for range c.B {
		c.Seqused = append(c.Seqused, c.S-1+r.IntN(2*(c.Win+c.IdxTopK)+2)) // the contract: u ≥ S−1
	}
	if r.IntN(2) == 0 {
		c.Indices = "shuffled"
	}
	if r.IntN(2) == 0 {
		c.BlockTable = "permuted"
	}
	if r.IntN(3) == 0 {
		c.Plant = []string{"duplicate"}
	}
	c.Poison = r.IntN(2) == 0
	return c
}

func rowIDs(keys []problem.Key) []string {
	var ids []string
	for _, k := range keys {
		ids = append(ids, fmt.Sprintf("%p/%d", &k.K[0], len(k.K)))
	}
	slices.Sort(ids)
	return ids
}

// TestContractFollowingInputs: for inputs that follow the contract the two
// readings give the same multiset of rows, no poisoned (NaN) row is read,
// and there is no violation.
func TestContractFollowingInputs(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for i := range 400 {
		c := randomSparse(r)
		in := gen(t, c)
		if vs := in.Violations(); len(vs) != 0 {
			t.Fatalf("case %d: violations %v\ncase: %s", i, vs, c)
		}
		for tok := 0; tok < in.T; tok++ {
			ref, ker := in.RefKeys(tok, 0, nil), in.KernelKeys(tok, 0, nil)
			if len(ref) != in.TokenLens(tok).SparseK {
				t.Fatalf("case %d token %d: %d keys, sparse_k %d\ncase: %s", i, tok, len(ref), in.TokenLens(tok).SparseK, c)
			}
			if a, b := rowIDs(ref), rowIDs(ker); !slices.Equal(a, b) {
				t.Fatalf("case %d token %d: RefKeys %v, KernelKeys %v\ncase: %s", i, tok, a, b, c)
			}
			for _, k := range ref {
				if math.IsNaN(float64(k.K[0])) {
					t.Fatalf("case %d token %d: a poisoned row is attended\ncase: %s", i, tok, c)
				}
			}
		}
	}
}

// TestPlantedViolations: every contract violation Case.Plant can plant is
// reported under its name (and a duplicate is not a violation).
func TestPlantedViolations(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	for _, name := range []string{problem.VPadInPrefix, problem.VValidAfter, problem.VWindowSlot, problem.VBlockTable, "duplicate"} {
		t.Run(name, func(t *testing.T) {
			planted := 0
			for i := range 300 {
				c := randomSparse(r)
				c.Plant = []string{name}
				c.Poison = false
				in := gen(t, c)
				clean := c
				clean.Plant = nil
				orig := gen(t, clean)
				if slices.Equal(in.Idx, orig.Idx) && slices.Equal(in.OriBT, orig.OriBT) && slices.Equal(in.CmpBT, orig.CmpBT) {
					continue // no token could hold the edit (or the edit was a no-op)
				}
				planted++
				vs := in.Violations()
				var names []string
				for _, v := range vs {
					names = append(names, v.Name)
				}
				if name == "duplicate" {
					if len(vs) != 0 {
						t.Fatalf("case %d: a duplicate gave violations %v\ncase: %s", i, vs, c)
					}
					continue
				}
				if !slices.Contains(names, name) {
					t.Fatalf("case %d: planted %s, violations %v\ncase: %s", i, name, vs, c)
				}
			}
			if planted < 50 {
				t.Errorf("only %d of 300 cases planted %s", planted, name)
			}
		})
	}
}

func TestOtherViolations(t *testing.T) {
	// seqused below S−1.
	c := cases.Case{Family: problem.Sparse, Seed: 1, H: 1, D: 2, B: 2, S: 2, Win: 2, IdxTopK: 2, Seqused: []int{0, 3}}
	in := gen(t, c)
	vs := in.Violations()
	if len(vs) != 1 || vs[0].Name != problem.VNegativeSeqused || vs[0].Token != -1 || !strings.Contains(vs[0].String(), "seqused_kv[0] = 0") {
		t.Errorf("violations %v, want one %s for entry 0", vs, problem.VNegativeSeqused)
	}
	// A non-finite q value, key value and sink.
	for _, tc := range []struct {
		c     cases.Case
		token int
	}{
		{cases.Case{Family: problem.Window, T: 3, H: 2, D: 2, Seed: 1,
			Specials: []cases.Special{{Tensor: "q", Token: 2, Head: 1, Dim: 1, Value: cases.F(math.Inf(1))}}}, 2},
		{cases.Case{Family: problem.Window, T: 3, H: 2, D: 2, Seed: 1,
			Specials: []cases.Special{{Tensor: "v", Key: 1, Head: 1, Dim: 0, Value: cases.F(math.NaN())}}}, 1},
		{cases.Case{Family: problem.Sparse, Seed: 1, H: 1, D: 2, B: 1, Win: 2, IdxTopK: 2, Seqused: []int{4},
			Specials: []cases.Special{{Tensor: "kv", Token: 0, Key: 3, Dim: 1, Value: cases.F(math.Inf(-1))}}}, 0},
		{cases.Case{Family: problem.Window, T: 3, H: 2, D: 2, Seed: 1,
			Sink: &cases.Sink{Kind: "const", Values: []cases.Float{cases.F(0), cases.F(math.NaN())}}}, -1},
	} {
		vs := gen(t, tc.c).Violations()
		if len(vs) == 0 || vs[0].Name != problem.VNonFinite || vs[0].Token != tc.token {
			t.Errorf("case %s: violations %v, want %s on token %d first", tc.c, vs, problem.VNonFinite, tc.token)
		}
	}
	// ±Inf sinks are not violations.
	c = cases.Case{Family: problem.Window, T: 3, H: 2, D: 2, Seed: 1,
		Sink: &cases.Sink{Kind: "const", Values: []cases.Float{cases.F(math.Inf(1)), cases.F(math.Inf(-1))}}}
	if vs := gen(t, c).Violations(); len(vs) != 0 {
		t.Errorf("±Inf sinks: violations %v", vs)
	}
}

// TestKernelKeysPoison: an entry that maps outside its pool reads the NaN
// poison row, so the garbage shows in the kernel's output.
func TestKernelKeysPoison(t *testing.T) {
	c := cases.Case{Family: problem.Sparse, Seed: 3, H: 1, D: 3, B: 1, Win: 4, IdxTopK: 4, BlockSize: 2,
		Seqused: []int{6}, Plant: []string{problem.VBlockTable}}
	in := gen(t, c)
	keys := in.KernelKeys(0, 0, nil)
	nan := 0
	for _, k := range keys {
		if len(k.K) != in.D {
			t.Fatalf("row width %d", len(k.K))
		}
		if math.IsNaN(float64(k.K[0])) {
			nan++
		}
	}
	if nan == 0 || len(keys) != 6 {
		t.Errorf("%d keys, %d poisoned; want 6 keys, some poisoned", len(keys), nan)
	}
	if ref := in.RefKeys(0, 0, nil); len(ref) != 6-nan {
		t.Errorf("RefKeys: %d keys, want %d (unreadable rows skipped)", len(ref), 6-nan)
	}
}

func TestCheck(t *testing.T) {
	good := func() *problem.Inputs {
		return gen(t, cases.Case{Family: problem.Sparse, Seed: 1, H: 2, D: 4, B: 2, S: 2, Win: 2, IdxTopK: 2, Seqused: []int{3, 5}})
	}
	goodW := func() *problem.Inputs {
		return gen(t, cases.Case{Family: problem.Window, T: 3, H: 4, Hkv: 2, D: 2, Dv: 3, Seed: 1, Sink: &cases.Sink{Kind: "random"}})
	}
	if err := good().Check(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   func() *problem.Inputs
		edit func(in *problem.Inputs)
		want string
	}{
		{"H=0", good, func(in *problem.Inputs) { in.H = 0 }, "bad shape"},
		{"Hkv∤H", goodW, func(in *problem.Inputs) { in.Hkv = 3 }, "not a multiple"},
		{"scale 0", good, func(in *problem.Inputs) { in.Scale = 0 }, "softmax_scale"},
		{"scale NaN", good, func(in *problem.Inputs) { in.Scale = math.NaN() }, "softmax_scale"},
		{"scale Inf", good, func(in *problem.Inputs) { in.Scale = math.Inf(1) }, "softmax_scale"},
		{"q short", good, func(in *problem.Inputs) { in.Q = in.Q[1:] }, "tensor q"},
		{"sink short", goodW, func(in *problem.Inputs) { in.Sink = in.Sink[1:] }, "attn_sink"},
		{"k short", goodW, func(in *problem.Inputs) { in.K = in.K[1:] }, "tensor k"},
		{"v short", goodW, func(in *problem.Inputs) { in.V = in.V[1:] }, "tensor v"},
		{"W<0", goodW, func(in *problem.Inputs) { in.W = -1 }, "negative"},
		{"sparse Hkv", good, func(in *problem.Inputs) { in.Hkv = 2 }, "one KV head"},
		{"T≠B·S", good, func(in *problem.Inputs) { in.S = 3 }, "B·S"},
		{"TopK<Win", good, func(in *problem.Inputs) { in.Win = 5 }, "geometry"},
		{"ori_kv", good, func(in *problem.Inputs) { in.OriKV = in.OriKV[1:] }, "ori_kv"},
		{"cmp_kv", good, func(in *problem.Inputs) { in.CmpKV = append(in.CmpKV, 0) }, "cmp_kv"},
		{"ori_bt", good, func(in *problem.Inputs) { in.OriBT = in.OriBT[1:] }, "ori_block_table"},
		{"cmp_bt", good, func(in *problem.Inputs) { in.CmpBT = nil }, "cmp_block_table"},
		{"idx", good, func(in *problem.Inputs) { in.Idx = in.Idx[1:] }, "cmp_sparse_indices"},
		{"seqused", good, func(in *problem.Inputs) { in.Seqused = nil }, "seqused_kv"},
		{"family", good, func(in *problem.Inputs) { in.Family = "bogus" }, "unknown family"},
	} {
		in := tc.in()
		tc.edit(in)
		err := in.Check()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Check() = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// Every family is named in the messages that list them.
func TestFamilyNamesListsEveryFamily(t *testing.T) {
	names := problem.FamilyNames()
	for _, f := range problem.Families() {
		if !strings.Contains(names, string(f)) {
			t.Errorf("FamilyNames() = %q lacks %s", names, f)
		}
	}
	if _, err := problem.ParseFamily("nope"); err == nil || !strings.Contains(err.Error(), names) {
		t.Errorf("ParseFamily error %v does not list the families", err)
	}
}
