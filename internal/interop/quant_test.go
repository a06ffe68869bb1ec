package interop_test

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
)

func fp8Case(layout string) cases.Case {
	c := cases.Case{Family: problem.MLA, DType: "bf16", Seed: 5, H: 2, D: 576, Dv: 512, B: 1, TopK: 20, Invalid: 0.2,
		BlockSize: 8, Poison: true, KVLayout: layout, FP8Edges: true}
	if layout == "fp8_model1" {
		c.D, c.ExtraTopK = 512, 5
	}
	return c
}

// An FP8 mla problem survives Encode → Decode: the raw bytes, the layout
// keys and the dequantized caches (NaN rows included) come back.
func TestFP8RoundTrip(t *testing.T) {
	for _, l := range []string{"fp8_v32", "fp8_model1"} {
		in, err := cases.Generate(fp8Case(l), num.BF16)
		if err != nil {
			t.Fatal(err)
		}
		f, err := interop.Encode(in, profile.MustLookup("bf16rne"), nil)
		if err != nil {
			t.Fatal(err)
		}
		kc := f.Tensors["k_cache"]
		if kc.DType != bundle.U8 || f.Metadata["kv_layout"] != l || f.Metadata["dequant"] != "bf16" {
			t.Fatalf("%s: k_cache %s, metadata %v", l, kc.DType, f.Metadata)
		}
		b, err := interop.Decode(f, nil)
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		got := b.Inputs
		if got.MLAQuant == nil || !slices.Equal(got.MLAQuant.Raw, in.MLAQuant.Raw) || got.MLAQuant.Layout.String() != l {
			t.Fatalf("%s: quant %+v", l, got.MLAQuant)
		}
		same := func(a, b []float32) bool {
			return slices.EqualFunc(a, b, func(x, y float32) bool { return x == y || (x != x && y != y) })
		}
		if !same(got.Cache, in.Cache) || !same(got.ExtraCache, in.ExtraCache) {
			t.Fatalf("%s: dequantized caches differ", l)
		}
	}
}

func TestFP8DecodeErrors(t *testing.T) {
	in, err := cases.Generate(fp8Case("fp8_v32"), num.BF16)
	if err != nil {
		t.Fatal(err)
	}
	base := func() *bundle.File {
		f, err := interop.Encode(in, profile.MustLookup("bf16rne"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, tc := range []struct {
		name string
		edit func(f *bundle.File)
		want string
	}{
		{"unknown layout", func(f *bundle.File) { f.Metadata["kv_layout"] = "fp8_v4" }, "metadata kv_layout"},
		{"bad dequant", func(f *bundle.File) { f.Metadata["dequant"] = "fp8" }, "metadata dequant"},
		{"dequant on bf16", func(f *bundle.File) { delete(f.Metadata, "kv_layout") }, "nothing is dequantized"},
		{"wrong layout width", func(f *bundle.File) { f.Metadata["kv_layout"] = "fp8_model1" }, "584"},
		{"float cache", func(f *bundle.File) {
			x, _ := bundle.NewFloat32("k_cache", bundle.F32, []int{1, 1, 1, 656}, make([]float32, 656))
			f.Tensors["k_cache"] = x
		}, "want U8 or F8_E4M3"},
		{"exact non-BF16 product", func(f *bundle.File) {
			f.Metadata["dequant"] = "exact"
			raw := f.Tensors["k_cache"].Data
			binary.LittleEndian.PutUint32(raw[512:], math.Float32bits(0.0123)) // slot 0, tile 0
		}, "dequant=bf16"},
	} {
		f := base()
		tc.edit(f)
		_, err := interop.Decode(f, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}
