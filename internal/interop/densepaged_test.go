package interop

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
)

func pagedCase() cases.Case {
	return cases.Case{Family: problem.Dense, Seed: 3, H: 4, Hkv: 2, D: 8, Sq: []int{1, 3}, Sk: []int{5, 0}, Causal: true,
		Page: 2, BlockTable: "permuted", Poison: true, SequsedK: []int{4, 0}, LSE: &cases.LSESpec{Base: "e", Empty: "-inf"}}
}

// TestDensePagedRoundTrip: a paged case (with seqused_k, NaN pages, an
// empty sequence) and a varlen one with seqused_k survive Encode + Decode
// with the same keys per row.
func TestDensePagedRoundTrip(t *testing.T) {
	vl := pagedCase()
	vl.Page, vl.BlockTable, vl.Poison = 0, "", false
	for _, c := range []cases.Case{pagedCase(), vl} {
		in, err := cases.Generate(c, num.BF16)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Encode(in, profile.MustLookup("bf16"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := f.Tensors[TBlockTable]; ok != (c.Page > 0) {
			t.Fatalf("page %d: block_table written %v", c.Page, ok)
		}
		got := reparse(t, f).Inputs
		if got.Page != in.Page || !reflect.DeepEqual(got.CuK, in.CuK) || !reflect.DeepEqual(got.SequsedK, in.SequsedK) ||
			!reflect.DeepEqual(got.BlockTable, in.BlockTable) || !reflect.DeepEqual(got.CacheSeqlens, in.CacheSeqlens) {
			t.Fatalf("page %d: decoded %+v", c.Page, got)
		}
		for tk := 0; tk < in.T; tk++ {
			for g := 0; g < in.Hkv; g++ {
				a, b := in.RefKeys(tk, g, nil), got.RefKeys(tk, g, nil)
				if len(a) != len(b) {
					t.Fatalf("page %d token %d: %d keys, want %d", c.Page, tk, len(b), len(a))
				}
				for j := range a {
					if !reflect.DeepEqual(bitsOf(a[j].K), bitsOf(b[j].K)) || !reflect.DeepEqual(bitsOf(a[j].V), bitsOf(b[j].V)) {
						t.Fatalf("page %d token %d key %d differs", c.Page, tk, j)
					}
				}
			}
		}
		if len(got.Violations()) != 0 {
			t.Fatalf("page %d: violations %v", c.Page, got.Violations())
		}
	}
}

func bitsOf(x []float32) []uint32 {
	out := make([]uint32, len(x))
	for i, v := range x {
		out[i] = math.Float32bits(v)
	}
	return out
}

// TestDensePagedBadInput: malformed paged bundles are one-line errors
// naming the tensor (exit 2), never a panic.
func TestDensePagedBadInput(t *testing.T) {
	in, err := cases.Generate(pagedCase(), num.BF16)
	if err != nil {
		t.Fatal(err)
	}
	base, err := Encode(in, profile.MustLookup("bf16"), nil)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(g *bundle.File)) *bundle.File {
		g := &bundle.File{Tensors: map[string]*bundle.Tensor{}, Metadata: map[string]string{}}
		for n, t := range base.Tensors {
			g.Tensors[n] = t
		}
		for _, n := range base.Order {
			g.Order = append(g.Order, n)
		}
		for k, v := range base.Metadata {
			g.Metadata[k] = v
		}
		f(g)
		return g
	}
	for _, tc := range []struct {
		name, want string
		f          func(g *bundle.File)
	}{
		{"no k_cache", "k_cache", func(g *bundle.File) { delete(g.Tensors, TKCache) }},
		{"negative cache_seqlens", "cache_seqlens", func(g *bundle.File) {
			g.Tensors[TCacheSeqlens] = bundle.NewInt32(TCacheSeqlens, []int{2}, []int32{-1, 0})
		}},
		{"no lengths", "cache_seqlens", func(g *bundle.File) { delete(g.Tensors, TCacheSeqlens); delete(g.Tensors, TSequsedK) }},
		{"table rows", "cu_seqlens_q", func(g *bundle.File) {
			g.Tensors[TBlockTable] = bundle.NewInt32(TBlockTable, []int{3, 1}, []int32{0, 1, 2})
		}},
		{"seqused_k length", "seqused_k", func(g *bundle.File) {
			g.Tensors[TSequsedK] = bundle.NewInt32(TSequsedK, []int{3}, []int32{1, 1, 1})
		}},
	} {
		_, err := Decode(edit(tc.f), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want a one-line error naming %s", tc.name, err, tc.want)
		}
	}
}
