package interop_test

import (
	"path/filepath"
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

func int4Case(kind string, paged bool) cases.Case {
	c := cases.Case{Family: problem.Dense, DType: "bf16", Seed: 43, H: 4, Hkv: 2, D: 8, Dv: 6, Sq: []int{2, 1}, Sk: []int{9, 14}, Int4KV: kind}
	if paged {
		c.Page = 3
	}
	return c
}

// An INT4-KV problem (ONNX Runtime's kv_cache_bit_width 4) survives Encode
// → Decode: U8 k, v [..., Hkv, D/2] with F32 k_scale, v_scale and
// kv_cache_bit_width=4, through safetensors and .npz (whose missing
// metadata the U8 caches with k_scale imply), dequantized back to the same
// BF16 values.
func TestInt4KVRoundTrip(t *testing.T) {
	for _, kind := range []string{"per_channel", "per_tensor"} {
		for _, paged := range []bool{false, true} {
			in, err := cases.Generate(int4Case(kind, paged), num.BF16)
			if err != nil {
				t.Fatal(err)
			}
			f, err := interop.Encode(in, profile.MustLookup("bf16rne"), nil)
			if err != nil {
				t.Fatal(err)
			}
			kn, vn := "k", "v"
			if paged {
				kn, vn = "k_cache", "v_cache"
			}
			kt, vt := f.Tensors[kn], f.Tensors[vn]
			if kt.DType != bundle.U8 || kt.Shape[len(kt.Shape)-1] != 4 || vt.Shape[len(vt.Shape)-1] != 3 ||
				f.Tensors["k_scale"] == nil || f.Tensors["v_scale"] == nil || f.Metadata["kv_cache_bit_width"] != "4" {
				t.Fatalf("%s paged %v: tensors %v, metadata %v", kind, paged, f.Order, f.Metadata)
			}
			for _, form := range []string{"", "safetensors", "npz"} {
				g := f
				if form != "" {
					path := filepath.Join(t.TempDir(), "b."+form)
					write := f.WriteSafetensors
					if form == "npz" {
						write = f.WriteNpz
					}
					if err := bundle.WriteFileAtomic(path, write); err != nil {
						t.Fatal(err)
					}
					if g, err = bundle.ReadFile(path); err != nil {
						t.Fatal(err)
					}
					if form == "npz" {
						g.Metadata = map[string]string{}
						for k, v := range f.Metadata {
							if k != "kv_cache_bit_width" {
								g.Metadata[k] = v
							}
						}
					}
				}
				b, err := interop.Decode(g, nil)
				if err != nil {
					t.Fatalf("%s paged %v %s: %v", kind, paged, form, err)
				}
				got := b.Inputs
				if got.Int4KV == nil || got.Int8KV != nil || !slices.Equal(got.Int4KV.KCodes, in.Int4KV.KCodes) || !slices.Equal(got.Int4KV.VCodes, in.Int4KV.VCodes) ||
					!slices.Equal(got.Int4KV.KScale, in.Int4KV.KScale) || !slices.Equal(got.Int4KV.VScale, in.Int4KV.VScale) ||
					!slices.Equal(got.K, in.K) || !slices.Equal(got.V, in.V) {
					t.Fatalf("%s paged %v %s: the INT4 caches differ", kind, paged, form)
				}
				for _, w := range b.Warnings {
					t.Errorf("%s paged %v %s: warning %s", kind, paged, form, w)
				}
			}
		}
	}
}

// The decoder reads bytes as ORT's DequantizeKernel does, independently of
// attnvet's quantizer: byte 0x1F holds code 0xF−8 = 7 in its low nibble
// (element 0) and 0x1−8 = −7 in its high nibble (element 1); 0x08 holds
// codes 0 and −8.
func TestInt4KVNibbles(t *testing.T) {
	in, err := cases.Generate(int4Case("per_tensor", false), num.BF16)
	if err != nil {
		t.Fatal(err)
	}
	f, err := interop.Encode(in, profile.MustLookup("bf16rne"), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.Tensors["k"].Data[0] = 0x1F
	f.Tensors["k"].Data[1] = 0x08 // element 2: code 0; element 3: code −8
	b, err := interop.Decode(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := f.Tensors["k_scale"]
	sv, _ := s.Float32s()
	k := b.Inputs.K
	want := []float32{num.Round32(num.BF16, 7*sv[0], num.RNE), num.Round32(num.BF16, -7*sv[0], num.RNE), 0, num.Round32(num.BF16, -8*sv[0], num.RNE)}
	if !slices.Equal(k[:4], want) {
		t.Fatalf("k[:4] = %v, want %v (scale %v)", k[:4], want, sv[0])
	}
}

func TestInt4KVErrors(t *testing.T) {
	for _, e := range []struct {
		name string
		edit func(f *bundle.File)
		want string
	}{
		{"no v_scale", func(f *bundle.File) { delete(f.Tensors, "v_scale") }, "tensor v_scale: missing"},
		{"float v", func(f *bundle.File) {
			v, _ := bundle.NewFloat32("v", bundle.F32, []int{23, 2, 6}, make([]float32, 23*12))
			f.Add(v)
		}, "tensor v: want U8 packed INT4 codes"},
		{"scale shape", func(f *bundle.File) {
			s, _ := bundle.NewFloat32("k_scale", bundle.F32, []int{2, 4}, []float32{1, 1, 1, 1, 1, 1, 1, 1})
			f.Add(s)
		}, "tensor k_scale: shape [2 4], want [1] (per tensor) or [Hkv, D] = [2, 8]"},
		{"zero scale", func(f *bundle.File) {
			s, _ := bundle.NewFloat32("v_scale", bundle.F32, []int{1}, []float32{0})
			f.Add(s)
		}, "tensor v_scale: value 0 at flat index 0: want a positive finite scale"},
		{"bit width 8", func(f *bundle.File) { f.Metadata["kv_cache_bit_width"] = "8" }, "metadata kv_cache_bit_width: 8, but k and v are not I8"},
		{"bit width 3", func(f *bundle.File) { f.Metadata["kv_cache_bit_width"] = "3" }, `metadata kv_cache_bit_width: "3", want 4`},
		{"odd head", func(f *bundle.File) {
			q := f.Tensors["q"]
			vals, _ := q.Float32s()
			n := len(vals) / 8
			odd := make([]float32, n*7)
			for i := range n {
				copy(odd[i*7:], vals[i*8:i*8+7])
			}
			nq, _ := bundle.NewFloat32("q", q.DType, append(append([]int(nil), q.Shape[:len(q.Shape)-1]...), 7), odd)
			f.Add(nq)
		}, "q's odd head size 7"},
	} {
		in, err := cases.Generate(int4Case("per_channel", false), num.BF16)
		if err != nil {
			t.Fatal(err)
		}
		f, err := interop.Encode(in, profile.MustLookup("bf16rne"), nil)
		if err != nil {
			t.Fatal(err)
		}
		e.edit(f)
		if _, err := interop.Decode(f, nil); err == nil || !strings.Contains(err.Error(), e.want) {
			t.Errorf("%s: %v, want %q", e.name, err, e.want)
		}
	}
}
