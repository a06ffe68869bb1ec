package main

import (
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

// quantizeCases are float cases for each --quantize scheme, the case
// field that makes the generator quantize the same way, a correct
// emulation and a mutant that dequantizes otherwise.
var quantizeCases = []struct {
	scheme         string
	c              cases.Case
	field          func(*cases.Case)
	kernel, mutant string
}{
	{interop.QuantInt8PerTensor, quantDense(1), func(c *cases.Case) { c.Int8KV = "per_tensor" }, "tiled/bc32/bf16", "mutant:int8-codes-as-uint8"},
	{interop.QuantInt8PerChannel, quantDense(2), func(c *cases.Case) { c.Int8KV = "per_channel" }, "splitkv/p2/bc32/bf16", "mutant:int8-channel-scale-no-head"},
	{interop.QuantNVFP4, quantDense(3), func(c *cases.Case) { c.NVFP4KV = true }, "stream/bf16", "mutant:nvfp4-next-block-scale"},
	{interop.QuantFP8V32, quantMLA(4, 576), func(c *cases.Case) { c.KVLayout = "fp8_v32" }, "tiled/bc32/bf16", "mutant:fp8-scale-twice"},
	{interop.QuantFP8Model1, quantMLA(5, 512), func(c *cases.Case) { c.KVLayout = "fp8_model1" }, "tiled/bc64/bf16", "mutant:fp8-model1-per-token"},
}

func quantDense(seed uint64) cases.Case {
	return cases.Case{Version: 1, Family: problem.Dense, DType: "bf16", Seed: seed, H: 4, Hkv: 2, D: 32, Sq: []int{2, 3}, Sk: []int{20, 31}, Causal: true}
}

func quantMLA(seed uint64, d int) cases.Case {
	return cases.Case{Version: 1, Family: problem.MLA, DType: "bf16", Seed: seed, H: 2, D: d, Dv: 512, B: 2, S: 1, BlockSize: 4, TopK: 8, ExtraTopK: 4}
}

func writeCase(t *testing.T, dir, name string, c cases.Case) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, c.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func decodeFile(t *testing.T, path string) *interop.Bundle {
	t.Helper()
	f, err := bundle.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := interop.Decode(f, nil)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// editTensor rewrites one tensor of a safetensors bundle.
func editTensor(t *testing.T, src, dst, name string, edit func([]float32)) {
	t.Helper()
	f, err := bundle.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	ot := f.Tensors[name]
	if ot == nil {
		t.Fatalf("%s: no tensor %s", src, name)
	}
	v, err := ot.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	edit(v)
	nt, err := bundle.NewFloat32(name, ot.DType, ot.Shape, v)
	if err != nil {
		t.Fatal(err)
	}
	f.Add(nt)
	if err := bundle.WriteFileAtomic(dst, func(w io.Writer) error { return f.WriteSafetensors(w) }); err != nil {
		t.Fatal(err)
	}
}

// TestExportQuantize: for each scheme, a float case and the float bundle
// exported from it are quantized by export --quantize into the problem
// the generator builds for the quantized case (codes, scales and the
// dequantized K/V, bit for bit); the dequantized values are within the
// quantizer's error of the float ones; a correct emulation's output
// passes check, the same output with one element perturbed fails, and so
// does a mutant that dequantizes otherwise.
func TestExportQuantize(t *testing.T) {
	for _, tc := range quantizeCases {
		t.Run(tc.scheme, func(t *testing.T) {
			dir := t.TempDir()
			cf := writeCase(t, dir, "float.json", tc.c)
			float := filepath.Join(dir, "float.safetensors")
			if code, _, errs := attnvet("export", cf, float, "--profile", "bf16"); code != exitPass {
				t.Fatalf("export float: %s", errs)
			}
			qc := tc.c
			tc.field(&qc)
			want, err := cases.Generate(qc, num.BF16)
			if err != nil {
				t.Fatal(err)
			}
			fin, err := cases.Generate(tc.c, num.BF16)
			if err != nil {
				t.Fatal(err)
			}
			fromCase, fromBundle := filepath.Join(dir, "qcase.safetensors"), filepath.Join(dir, "qbundle.safetensors")
			code, out, errs := attnvet("export", cf, fromCase, "--quantize", tc.scheme, "--kernel", tc.kernel)
			if code != exitPass || !strings.Contains(out, "inputs quantized "+tc.scheme+" and the output of "+tc.kernel) || errs != "" {
				t.Fatalf("export case --quantize: exit %d\n%s\n%s", code, out, errs)
			}
			if code, out, errs := attnvet("export", float, fromBundle, "--quantize", tc.scheme); code != exitPass {
				t.Fatalf("export bundle --quantize: exit %d\n%s\n%s", code, out, errs)
			}
			// (a) Both decode to the generator's quantized problem.
			for _, p := range []string{fromCase, fromBundle} {
				got := decodeFile(t, p).Inputs
				if !reflect.DeepEqual(got.Int8KV, want.Int8KV) || !reflect.DeepEqual(got.NVFP4KV, want.NVFP4KV) {
					t.Fatalf("%s: dense codes and scales differ from the generator's", filepath.Base(p))
				}
				// The float bundle's mla caches are pages of one row (MODEL1's
				// bytes depend on the page size): its dequantized rows are compared.
				if (got.MLAQuant == nil) != (want.MLAQuant == nil) ||
					(got.MLAQuant != nil && (got.MLAQuant.Dequant != want.MLAQuant.Dequant || got.MLAQuant.Layout != want.MLAQuant.Layout)) ||
					(got.MLAQuant != nil && p == fromCase && (!reflect.DeepEqual(got.MLAQuant.Raw, want.MLAQuant.Raw) || !reflect.DeepEqual(got.MLAQuant.ExtraRaw, want.MLAQuant.ExtraRaw))) {
					t.Fatalf("%s: mla cache bytes differ from the generator's", filepath.Base(p))
				}
				for _, x := range []struct {
					name      string
					got, want []float32
				}{{"k", got.K, want.K}, {"v", got.V, want.V}, {"k_cache", got.Cache, want.Cache}, {"extra_k_cache", got.ExtraCache, want.ExtraCache}, {"q", got.Q, want.Q}} {
					if len(x.got) != len(x.want) {
						t.Fatalf("%s: %s has %d values, want %d", filepath.Base(p), x.name, len(x.got), len(x.want))
					}
					for i := range x.got {
						if math.Float32bits(x.got[i]) != math.Float32bits(x.want[i]) {
							t.Fatalf("%s: %s[%d] = %v, want the dequantized %v", filepath.Base(p), x.name, i, x.got[i], x.want[i])
						}
					}
				}
			}
			checkQuantError(t, tc.scheme, fin, want)
			// The case recorded is the quantized one.
			f, _ := bundle.ReadFile(fromCase)
			if rc, err := cases.Parse([]byte(f.Metadata[interop.KeyCase])); err != nil || !reflect.DeepEqual(rc.Marshal(), qc.Marshal()) {
				t.Errorf("attnvet_case = %s (%v), want the quantized case", f.Metadata[interop.KeyCase], err)
			}
			// (b) check: the correct output passes, one element off fails.
			if code, out, errs := attnvet("check", fromCase); code != exitPass {
				t.Fatalf("check of a correct emulation's output: exit %d\n%s\n%s", code, out, errs)
			}
			bad := filepath.Join(dir, "perturbed.safetensors")
			editTensor(t, fromCase, bad, interop.TOut, func(o []float32) { o[len(o)/2] += 0.25 + float32(math.Abs(float64(o[len(o)/2]))) })
			if code, out, _ := attnvet("check", bad); code != exitMismatch {
				t.Errorf("check with one output element perturbed: exit %d, want 1\n%s", code, out)
			}
			mut := filepath.Join(dir, "mutant.safetensors")
			if code, _, errs := attnvet("export", cf, mut, "--quantize", tc.scheme, "--kernel", tc.mutant); code != exitPass {
				t.Fatalf("export --kernel %s: %s", tc.mutant, errs)
			}
			if code, out, _ := attnvet("check", mut); code != exitMismatch {
				t.Errorf("check of %s's output: exit %d, want 1\n%s", tc.mutant, code, out)
			}
			// (c) A quantized bundle is not quantized again.
			if code, _, errs := attnvet("export", fromBundle, filepath.Join(dir, "twice.safetensors"), "--quantize", tc.scheme); code != exitUsage || !strings.Contains(errs, "already quantized") || strings.Count(errs, "\n") != 1 {
				t.Errorf("quantizing a quantized bundle: exit %d, %q", code, errs)
			}
		})
	}
}

// checkQuantError checks that the quantized values are within the scheme's
// quantization error of the float ones (and not all equal to them): the
// values really went through the quantizer.
func checkQuantError(t *testing.T, scheme string, fin, q *problem.Inputs) {
	t.Helper()
	pairs := [][2][]float32{{fin.K, q.K}, {fin.V, q.V}}
	if q.Family == problem.MLA {
		pairs = [][2][]float32{{fin.Cache, q.Cache}, {fin.ExtraCache, q.ExtraCache}}
	}
	changed := 0
	for _, p := range pairs {
		var amax float64
		for _, v := range p[0] {
			amax = math.Max(amax, math.Abs(float64(v)))
		}
		for i := range p[0] {
			x, y := float64(p[0][i]), float64(p[1][i])
			var bound float64
			switch scheme {
			case interop.QuantInt8PerTensor, interop.QuantInt8PerChannel:
				bound = amax/127/2*1.01 + math.Abs(x)/128 // half a code (the scale rounded to bf16), then the bf16 rounding
			case interop.QuantNVFP4:
				bound = amax/6*1.01 + math.Abs(x)/128 // e2m1's widest gap (4 → 6) is 2 codes of the block's scale amax/6
			default:
				bound = math.Abs(x)/8 + math.Abs(x)/128 + amax*math.Ldexp(1, -9) // e4m3 (3 bits) or its subnormals, then bf16
			}
			if math.Abs(x-y) > bound {
				t.Fatalf("%s: value %d: %v quantized to %v (error beyond %v)", scheme, i, x, y, bound)
			}
			if x != y {
				changed++
			}
		}
	}
	if changed == 0 {
		t.Fatalf("%s: no value changed: nothing was quantized", scheme)
	}
}

// TestExportQuantizeErrors: the refusals are one line, exit 2, and name
// what is wrong.
func TestExportQuantizeErrors(t *testing.T) {
	dir := t.TempDir()
	dense := writeCase(t, dir, "dense.json", quantDense(1))
	mla := writeCase(t, dir, "mla.json", quantMLA(2, 576))
	d24 := quantDense(3)
	d24.D = 24
	odd := writeCase(t, dir, "d24.json", d24)
	int8c := quantDense(4)
	int8c.Int8KV = "per_tensor"
	int8case := writeCase(t, dir, "int8.json", int8c)
	out := filepath.Join(dir, "out.safetensors")
	float := filepath.Join(dir, "float.safetensors")
	if code, _, errs := attnvet("export", dense, float); code != exitPass {
		t.Fatal(errs)
	}
	mfloat := filepath.Join(dir, "mfloat.safetensors")
	if code, _, errs := attnvet("export", mla, mfloat); code != exitPass {
		t.Fatal(errs)
	}
	// NaN in a float bundle's values: the tensor and row are named.
	nanK := filepath.Join(dir, "nank.safetensors")
	editTensor(t, float, nanK, interop.TK, func(k []float32) { k[2*2*32+32+5] = float32(math.NaN()) })
	infV := filepath.Join(dir, "infv.safetensors")
	editTensor(t, float, infV, interop.TV, func(v []float32) { v[7] = float32(math.Inf(-1)) })
	nanCache := filepath.Join(dir, "nancache.safetensors")
	editTensor(t, mfloat, nanCache, interop.TKCache, func(c []float32) { c[3*576+100] = float32(math.NaN()) })
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"export", dense, out, "--quantize", "fp8_v32"}, "--quantize fp8_v32 is a mla scheme, and this is a dense problem"},
		{[]string{"export", mla, out, "--quantize", "nvfp4"}, "--quantize nvfp4 is a dense scheme, and this is a mla problem"},
		{[]string{"export", mla, out, "--quantize", "int8_per_channel"}, "--quantize int8_per_channel is a dense scheme"},
		{[]string{"export", mfloat, out, "--quantize", "int8_per_tensor"}, "is a dense scheme, and this is a mla problem"},
		{[]string{"export", mfloat, out, "--quantize", "fp8_model1"}, "--quantize fp8_model1: d_qk must be 512"},
		{[]string{"export", dense, out, "--quantize", "int4"}, `--quantize "int4": want int8_per_tensor, int8_per_channel, nvfp4, fp8_v32, fp8_model1`},
		{[]string{"export", odd, out, "--quantize", "nvfp4"}, "D=24 and Dv=24 must be multiples of the block size 16"},
		{[]string{"export", int8case, out, "--quantize", "int8_per_channel"}, "already quantized (INT8 K/V)"},
		{[]string{"export", nanK, out, "--quantize", "int8_per_tensor"}, "tensor k: NaN at key row 2, kv head 1, column 5: the values to quantize must be finite"},
		{[]string{"export", infV, out, "--quantize", "nvfp4"}, "tensor v: -Inf at key row 0, kv head 0, column 7"},
		{[]string{"export", nanCache, out, "--quantize", "fp8_v32"}, "tensor k_cache: NaN at row 3, column 100"},
		{[]string{"export", float, out}, "a bundle IN is re-exported only with --quantize"},
		{[]string{"export", float, out, "--quantize", "nvfp4", "--dtype", "fp16"}, "--dtype: a bundle IN keeps"},
		{[]string{"export", dense, out, "--quantize", "nvfp4", "--window", "3"}, "metadata flags (--window, …) describe a bundle IN"},
	} {
		code, _, errs := attnvet(tc.args...)
		if code != exitUsage || !strings.Contains(errs, tc.want) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q, want one line with %q", tc.args[1:], code, errs, tc.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a refused export wrote %s", out)
	}
}

// TestExportQuantizeNpz: an .npz float bundle, read with the metadata
// flags export prints for it (as check reads it), quantizes like the case.
func TestExportQuantizeNpz(t *testing.T) {
	dir := t.TempDir()
	cf := writeCase(t, dir, "mla.json", quantMLA(6, 576))
	npz := filepath.Join(dir, "float.npz")
	code, out, errs := attnvet("export", cf, npz)
	i := strings.Index(out, "attnvet check ")
	if code != exitPass || i < 0 {
		t.Fatalf("export npz: exit %d\n%s\n%s", code, out, errs)
	}
	flags := strings.Fields(strings.TrimSpace(out[i+len("attnvet check "):]))[1:] // the path, then the flags
	q := filepath.Join(dir, "q.safetensors")
	args := append([]string{"export", npz, q, "--quantize", "fp8_v32"}, flags...)
	if code, out, errs := attnvet(args...); code != exitPass {
		t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, errs)
	}
	c := quantMLA(6, 576)
	c.KVLayout = "fp8_v32"
	want, _ := cases.Generate(c, num.BF16)
	got := decodeFile(t, q).Inputs
	if got.MLAQuant == nil || !reflect.DeepEqual(got.Cache, want.Cache) || !reflect.DeepEqual(got.ExtraCache, want.ExtraCache) {
		t.Fatalf("npz --quantize fp8_v32: the caches differ from the generator's")
	}
	// Without the flags q's F32 values are BF16 ones: refused as check refuses.
	if code, _, errs := attnvet("export", npz, q, "--quantize", "fp8_v32"); code != exitUsage || !strings.Contains(errs, "declare in_dtype") || strings.Count(errs, "\n") != 1 {
		t.Errorf("npz without its metadata: exit %d, %q", code, errs)
	}
}
