package interop

import (
	"math"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
)

// TestViolationTensorsAreInTheBundle: every tensor check names for a
// contract violation is a tensor of that problem's bundle (the corpus's
// violation cases, and dense/mla problems made to break the contract).
// Before, a dense bundle's block_table_out_of_range named
// cmp_sparse_indices → ori_block_table/cmp_block_table.
func TestViolationTensorsAreInTheBundle(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("..", "..", "corpus", "*_violation.json"))
	var ins []*problem.Inputs
	for _, p := range paths {
		c, err := cases.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, gen(t, c, num.BF16))
	}
	if len(ins) < 10 {
		t.Fatalf("%d violation cases in the corpus", len(ins))
	}
	load := func(name string) cases.Case {
		c, err := cases.Load(filepath.Join("..", "..", "corpus", name))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// Dense, paged: a NaN key; an NVFP4 block scale that is e4m3's NaN.
	paged := gen(t, load("dense_paged_seqused_k.json"), num.BF16)
	for i := range paged.K { // every page: the unattended ones are no violation
		paged.K[i] = float32(math.NaN())
	}
	nv := gen(t, load("dense_nvfp4kv_zero_blocks_window.json"), num.BF16)
	nv.NVFP4KV.VBlock[0] = 0x7f
	ins = append(ins, paged, nv)
	// mla, with an extra scope: an index past each cache.
	for _, extra := range []bool{false, true} {
		m := gen(t, cases.Case{Family: problem.MLA, Seed: 11, H: 2, D: 8, B: 2, TopK: 8, ExtraTopK: 16, TopkLength: []int{3, 8}, BlockSize: 4}, num.BF16)
		if extra {
			m.ExtraIdx[0] = int32(len(m.ExtraCache)/m.D + 5)
		} else {
			m.Idx[0] = int32(len(m.Cache)/m.D + 5)
		}
		ins = append(ins, m)
	}
	split := regexp.MustCompile(` → |/| / `)
	seen := map[string]bool{}
	for _, in := range ins {
		vs := in.Violations()
		if len(vs) == 0 {
			t.Errorf("%s: no violation", Describe(in))
			continue
		}
		f, err := Encode(in, profile.MustLookup("bf16"), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			named := ViolationTensor(in, v)
			if named == "" {
				if v.Name != problem.VScale { // softmax_scale is metadata
					t.Errorf("%s: %v names no tensor", in.Family, v)
				}
				continue
			}
			for _, n := range split.Split(named, -1) {
				if f.Tensors[n] == nil {
					t.Errorf("%s %s: names %q (%s); the bundle has no tensor %s", in.Family, v.Name, named, v.Detail, n)
				}
			}
			seen[string(in.Family)+" "+v.Name] = true
		}
	}
	for _, want := range []string{"dense block_table_out_of_range", "dense seqused_k_out_of_range", "dense nonfinite_input", "dense nvfp4_scale_invalid", "mla index_out_of_range"} {
		if !seen[want] {
			t.Errorf("no %s violation was checked", want)
		}
	}
}

// TestEncodedKeysAreKnown: every metadata key Encode writes, for every
// family, is one check knows (an unknown key draws "not part of the
// contract; ignored"; mla's d_v did, though the decoder reads it).
func TestEncodedKeysAreKnown(t *testing.T) {
	cs := []cases.Case{
		{Family: problem.MLA, Seed: 11, H: 2, D: 8, B: 2, TopK: 8, ExtraTopK: 16, TopkLength: []int{3, 8}, BlockSize: 4},
	}
	paths, _ := filepath.Glob(filepath.Join("..", "..", "corpus", "*.json"))
	for _, p := range paths {
		c, err := cases.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	fams := map[problem.Family]bool{}
	for _, c := range cs {
		in := gen(t, c, num.BF16)
		f, err := Encode(in, profile.MustLookup("bf16"), nil)
		if err != nil {
			t.Fatal(err)
		}
		for k := range f.Metadata {
			if !KnownKey(k) {
				t.Errorf("%s: Encode writes metadata %s, which KnownKey does not know", in.Family, k)
			}
		}
		fams[in.Family] = true
	}
	if len(fams) < 7 {
		t.Errorf("only the families %v were encoded", fams)
	}
}
