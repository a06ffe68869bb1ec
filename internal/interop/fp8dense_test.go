package interop_test

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
)

func fp8DenseCase(paged bool) cases.Case {
	c := cases.Case{Family: problem.Dense, DType: "fp32", Seed: 31, H: 4, Hkv: 2, D: 16, Sq: []int{3, 1}, Sk: []int{20, 9},
		Causal: true, FP8: "e4m3", AccBits: 14, LSE: &cases.LSESpec{Base: "e", Empty: "-inf"}}
	if paged {
		c.Page = 4
	}
	return c
}

func fp8Bundle(t *testing.T, paged bool) (*problem.Inputs, *bundle.File) {
	t.Helper()
	in, err := cases.Generate(fp8DenseCase(paged), num.FP32)
	if err != nil {
		t.Fatal(err)
	}
	out, err := impl.New(impl.Config{Kind: impl.FA3, Bc: 128, Profile: impl.FA3Profile}).Run(in)
	if err != nil {
		t.Fatal(err)
	}
	f, err := interop.Encode(in, impl.FA3Profile, out.O)
	if err != nil {
		t.Fatal(err)
	}
	return in, f
}

// A dense FP8 problem survives Encode → Decode: F8_E4M3 q, k, v (or
// k_cache, v_cache), the [B, Hkv] descales, p_dtype=e4m3 and acc_bits.
func TestFP8DenseRoundTrip(t *testing.T) {
	for _, paged := range []bool{false, true} {
		in, f := fp8Bundle(t, paged)
		kn := "k"
		if paged {
			kn = "k_cache"
		}
		if f.Tensors["q"].DType != bundle.F8E4M3 || f.Tensors[kn].DType != bundle.F8E4M3 || f.Tensors["q_descale"] == nil ||
			f.Metadata["in_dtype"] != "e4m3" || f.Metadata["p_dtype"] != "e4m3" || f.Metadata["acc_bits"] != "14" {
			t.Fatalf("paged %v: tensors %v, metadata %v", paged, f.Order, f.Metadata)
		}
		b, err := interop.Decode(f, nil)
		if err != nil {
			t.Fatalf("paged %v: %v", paged, err)
		}
		for _, w := range b.Warnings {
			t.Errorf("paged %v: warning %s", paged, w)
		}
		got := b.Inputs
		if got.FP8 == nil || !got.FP8.PE4M3 || got.FP8.AccBits != 14 || !slices.Equal(got.FP8.QDescale, in.FP8.QDescale) ||
			!slices.Equal(got.FP8.KDescale, in.FP8.KDescale) || !slices.Equal(got.FP8.VDescale, in.FP8.VDescale) {
			t.Fatalf("paged %v: fp8 %+v, want %+v", paged, got.FP8, in.FP8)
		}
		if !slices.Equal(got.Q, in.Q) || b.Profile.Out != num.BF16 || b.Profile.P != num.FP32 {
			t.Fatalf("paged %v: q or profile %v differ", paged, b.Profile)
		}
	}
}

func TestFP8DenseDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(f *bundle.File)
		want string
	}{
		{"descale shape", func(f *bundle.File) {
			d, _ := bundle.NewFloat32("k_descale", bundle.F32, []int{2, 4}, make([]float32, 8))
			f.Add(d)
		}, "tensor k_descale: shape [2 4], want [B, Hkv] = [2, 2]"},
		{"acc_bits range", func(f *bundle.File) { f.Metadata["acc_bits"] = "40" }, "metadata acc_bits: 40, want 2..24"},
		{"p_dtype without fp8", func(f *bundle.File) {
			for _, n := range []string{"q", "k", "v"} {
				v, _ := f.Tensors[n].Float32s()
				t, _ := bundle.NewFloat32(n, bundle.F32, f.Tensors[n].Shape, v)
				f.Add(t)
			}
			delete(f.Tensors, "q_descale")
			delete(f.Tensors, "k_descale")
			delete(f.Tensors, "v_descale")
			f.Order = slices.DeleteFunc(f.Order, func(s string) bool { return strings.HasSuffix(s, "_descale") })
			f.Metadata["in_dtype"] = "fp32"
		}, "p_dtype=e4m3 and acc_bits declare FP8 GEMMs"},
		{"not e4m3", func(f *bundle.File) {
			v, _ := f.Tensors["k"].Float32s()
			v[3] = 0.3
			t, _ := bundle.NewFloat32("k", bundle.F32, f.Tensors["k"].Shape, v)
			f.Add(t)
		}, "tensor k: value 0.3 at flat index 3 is not an e4m3 value"},
	} {
		_, f := fp8Bundle(t, false)
		tc.edit(f)
		_, err := interop.Decode(f, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// Contract violations of FP8 inputs: a descale ≤ 0, NaN or beyond FP32's
// normal range, an exponent scale that is not a normal FP32 number, and
// e4m3's NaN code in an input (nonfinite_input).
func TestFP8DenseViolations(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(in *problem.Inputs)
		want string
	}{
		{"zero descale", func(in *problem.Inputs) { in.FP8.VDescale[1] = 0 }, "fp8_descale_out_of_range: v_descale[0, 1] = 0"},
		{"nan descale", func(in *problem.Inputs) { in.FP8.QDescale[2] = float32(math.NaN()) }, "q_descale[1, 0] = NaN"},
		{"negative descale", func(in *problem.Inputs) { in.FP8.KDescale[0] = -1 }, "k_descale[0, 0] = -1"},
		{"scale overflow", func(in *problem.Inputs) { in.FP8.QDescale[0], in.FP8.KDescale[0] = 1e30, 1e30 }, "softmax_scale·q_descale·k_descale at [0, 0]"},
		{"nan code", func(in *problem.Inputs) { in.K[5] = float32(math.NaN()) }, "nonfinite_input"},
	} {
		in, err := cases.Generate(fp8DenseCase(false), num.FP32)
		if err != nil {
			t.Fatal(err)
		}
		if vs := in.Violations(); len(vs) != 0 {
			t.Fatalf("generated case: %v", vs)
		}
		tc.edit(in)
		var got []string
		for _, v := range in.Violations() {
			got = append(got, v.String())
		}
		if !strings.Contains(strings.Join(got, "; "), tc.want) {
			t.Errorf("%s: violations %v, want %q", tc.name, got, tc.want)
		}
	}
}

// An INT8-KV problem (ONNX Runtime's convention) survives Encode → Decode:
// I8 k, v with F32 k_scale, v_scale ([Hkv, D] per channel, [1] per tensor),
// dequantized back to the same BF16 values.
func TestInt8KVRoundTrip(t *testing.T) {
	for _, kind := range []string{"per_channel", "per_tensor"} {
		for _, paged := range []bool{false, true} {
			c := cases.Case{Family: problem.Dense, DType: "bf16", Seed: 41, H: 4, Hkv: 2, D: 8, Sq: []int{2, 1}, Sk: []int{9, 14}, Int8KV: kind}
			if paged {
				c.Page = 3
			}
			in, err := cases.Generate(c, num.BF16)
			if err != nil {
				t.Fatal(err)
			}
			f, err := interop.Encode(in, profile.MustLookup("bf16rne"), nil)
			if err != nil {
				t.Fatal(err)
			}
			kn := "k"
			if paged {
				kn = "k_cache"
			}
			if f.Tensors[kn].DType != bundle.I8 || f.Tensors["k_scale"] == nil || f.Tensors["v_scale"] == nil {
				t.Fatalf("%s paged %v: tensors %v", kind, paged, f.Order)
			}
			b, err := interop.Decode(f, nil)
			if err != nil {
				t.Fatalf("%s paged %v: %v", kind, paged, err)
			}
			got := b.Inputs
			if got.Int8KV == nil || !slices.Equal(got.Int8KV.KCodes, in.Int8KV.KCodes) || !slices.Equal(got.Int8KV.VScale, in.Int8KV.VScale) ||
				!slices.Equal(got.K, in.K) || !slices.Equal(got.V, in.V) {
				t.Fatalf("%s paged %v: the INT8 caches differ", kind, paged)
			}
			for _, w := range b.Warnings {
				t.Errorf("%s paged %v: warning %s", kind, paged, w)
			}
		}
	}
	_, f := fp8Bundle(t, false)
	s, _ := bundle.NewFloat32("k_scale", bundle.F32, []int{1}, []float32{1})
	f.Add(s)
	if _, err := interop.Decode(f, nil); err == nil || !strings.Contains(err.Error(), "tensor k_scale: given, but k and v are not I8") {
		t.Errorf("k_scale without I8 caches: %v", err)
	}
}

// An NVFP4-KV problem (flashinfer's convention) survives Encode → Decode:
// U8 packed k, v with U8 k/v_block_scale and F32 k/v_global_scale,
// dequantized back to the same BF16 values; F8_E4M3 block scales read alike.
func TestNVFP4KVRoundTrip(t *testing.T) {
	for _, paged := range []bool{false, true} {
		c := cases.Case{Family: problem.Dense, DType: "bf16", Seed: 42, H: 4, Hkv: 2, D: 32, Dv: 16, Sq: []int{2, 1}, Sk: []int{9, 14},
			NVFP4KV: true, NVFP4Edge: cases.NVFP4EdgeScale}
		if paged {
			c.Page = 3
		}
		in, err := cases.Generate(c, num.BF16)
		if err != nil {
			t.Fatal(err)
		}
		f, err := interop.Encode(in, profile.MustLookup("bf16rne"), nil)
		if err != nil {
			t.Fatal(err)
		}
		kn := "k"
		if paged {
			kn = "k_cache"
		}
		kt, bs := f.Tensors[kn], f.Tensors["k_block_scale"]
		if kt.DType != bundle.U8 || kt.Shape[len(kt.Shape)-1] != 16 || bs == nil || bs.Shape[len(bs.Shape)-1] != 2 ||
			f.Tensors["v_block_scale"] == nil || f.Tensors["k_global_scale"] == nil || f.Tensors["v_global_scale"] == nil {
			t.Fatalf("paged %v: tensors %v", paged, f.Order)
		}
		for _, form := range []string{"", "safetensors", "npz", "e4m3"} {
			g := f
			switch form {
			case "e4m3":
				bs.DType = bundle.F8E4M3
			case "safetensors", "npz":
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
				g.Metadata = f.Metadata // .npz holds none: as check's flags give it
			}
			b, err := interop.Decode(g, nil)
			if err != nil {
				t.Fatalf("paged %v: %v", paged, err)
			}
			got := b.Inputs
			if got.NVFP4KV == nil || !slices.Equal(got.NVFP4KV.KCodes, in.NVFP4KV.KCodes) || !slices.Equal(got.NVFP4KV.VBlock, in.NVFP4KV.VBlock) ||
				got.NVFP4KV.KGlobal != in.NVFP4KV.KGlobal || !slices.Equal(got.K, in.K) || !slices.Equal(got.V, in.V) {
				t.Fatalf("paged %v %s: the NVFP4 caches differ", paged, form)
			}
			for _, w := range b.Warnings {
				t.Errorf("paged %v: warning %s", paged, w)
			}
		}
	}
	for _, e := range []struct {
		name string
		edit func(f *bundle.File)
		want string
	}{
		{"no global", func(f *bundle.File) { delete(f.Tensors, "v_global_scale") }, "tensor v_global_scale: missing"},
		{"float k", func(f *bundle.File) {
			k, _ := bundle.NewFloat32("k", bundle.F32, []int{23, 2, 32}, make([]float32, 23*64))
			f.Add(k)
		}, "k must be U8 packed e2m1 codes"},
		{"short scales", func(f *bundle.File) {
			s, _ := bundle.NewBytes("k_block_scale", bundle.U8, []int{23, 2, 1}, make([]byte, 46))
			f.Add(s)
		}, "tensor k_block_scale: shape [23 2 1], want [23 2 2]"},
		{"odd d", func(f *bundle.File) {
			k, _ := bundle.NewBytes("k", bundle.U8, []int{23, 2, 12}, make([]byte, 23*24))
			f.Add(k)
		}, "not a multiple of 16"},
	} {
		c := cases.Case{Family: problem.Dense, DType: "bf16", Seed: 42, H: 4, Hkv: 2, D: 32, Dv: 16, Sq: []int{2, 1}, Sk: []int{9, 14}, NVFP4KV: true}
		in, err := cases.Generate(c, num.BF16)
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
