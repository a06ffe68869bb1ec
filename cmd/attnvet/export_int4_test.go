package main

import (
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/num"
)

// TestExportQuantizeInt4: export --quantize int4_per_tensor|int4_per_channel
// of a float case and of the float bundle exported from it decodes to the
// generator's int4_kv problem bit for bit (packed codes, scales, the
// dequantized K/V), within half a code of the float values; a correct
// emulation's output passes check and an INT4 mutant's fails; a quantized
// bundle is not quantized again and an odd head is refused.
func TestExportQuantizeInt4(t *testing.T) {
	for _, tc := range []struct{ scheme, field, kernel, mutant string }{
		{interop.QuantInt4PerTensor, "per_tensor", "tiled/bc32/bf16", "mutant:int4-bias-not-removed"},
		{interop.QuantInt4PerChannel, "per_channel", "splitkv/p2/bc32/bf16", "mutant:int4-channel-scale-no-head"},
	} {
		t.Run(tc.scheme, func(t *testing.T) {
			dir := t.TempDir()
			c := quantDense(6)
			cf := writeCase(t, dir, "float.json", c)
			float := filepath.Join(dir, "float.safetensors")
			if code, _, errs := attnvet("export", cf, float, "--profile", "bf16"); code != exitPass {
				t.Fatalf("export float: %s", errs)
			}
			qc := c
			qc.Int4KV = tc.field
			want, err := cases.Generate(qc, num.BF16)
			if err != nil {
				t.Fatal(err)
			}
			fin, err := cases.Generate(c, num.BF16)
			if err != nil {
				t.Fatal(err)
			}
			fromCase, fromBundle := filepath.Join(dir, "qcase.safetensors"), filepath.Join(dir, "qbundle.safetensors")
			if code, out, errs := attnvet("export", cf, fromCase, "--quantize", tc.scheme, "--kernel", tc.kernel); code != exitPass || errs != "" {
				t.Fatalf("export case --quantize: exit %d\n%s\n%s", code, out, errs)
			}
			if code, out, errs := attnvet("export", float, fromBundle, "--quantize", tc.scheme); code != exitPass {
				t.Fatalf("export bundle --quantize: exit %d\n%s\n%s", code, out, errs)
			}
			for _, p := range []string{fromCase, fromBundle} {
				got := decodeFile(t, p).Inputs
				if got.Int4KV == nil || !reflect.DeepEqual(got.Int4KV, want.Int4KV) || !reflect.DeepEqual(got.K, want.K) || !reflect.DeepEqual(got.V, want.V) || !reflect.DeepEqual(got.Q, want.Q) {
					t.Fatalf("%s: the INT4 problem differs from the generator's", filepath.Base(p))
				}
			}
			f, _ := bundle.ReadFile(fromCase)
			if kt := f.Tensors["k"]; kt.DType != bundle.U8 || kt.Shape[len(kt.Shape)-1] != c.D/2 || f.Metadata["kv_cache_bit_width"] != "4" {
				t.Errorf("k %s %v, kv_cache_bit_width %q", kt.DType, kt.Shape, f.Metadata["kv_cache_bit_width"])
			}
			if rc, err := cases.Parse([]byte(f.Metadata[interop.KeyCase])); err != nil || !reflect.DeepEqual(rc.Marshal(), qc.Marshal()) {
				t.Errorf("attnvet_case = %s (%v), want the quantized case", f.Metadata[interop.KeyCase], err)
			}
			changed := 0
			for _, pr := range [][2][]float32{{fin.K, want.K}, {fin.V, want.V}} {
				var amax float64
				for _, v := range pr[0] {
					amax = math.Max(amax, math.Abs(float64(v)))
				}
				for i := range pr[0] {
					x, y := float64(pr[0][i]), float64(pr[1][i])
					if bound := amax/7/2*1.01 + math.Abs(x)/128; math.Abs(x-y) > bound { // half a code (bf16 scale), then bf16
						t.Fatalf("value %d: %v quantized to %v (error beyond %v)", i, x, y, bound)
					}
					if x != y {
						changed++
					}
				}
			}
			if changed == 0 {
				t.Fatal("no value changed: nothing was quantized")
			}
			if code, out, errs := attnvet("check", fromCase); code != exitPass {
				t.Fatalf("check of a correct emulation's output: exit %d\n%s\n%s", code, out, errs)
			}
			mut := filepath.Join(dir, "mutant.safetensors")
			if code, _, errs := attnvet("export", cf, mut, "--quantize", tc.scheme, "--kernel", tc.mutant); code != exitPass {
				t.Fatalf("export --kernel %s: %s", tc.mutant, errs)
			}
			if code, out, _ := attnvet("check", mut); code != exitMismatch {
				t.Errorf("check of %s's output: exit %d, want 1\n%s", tc.mutant, code, out)
			}
			if code, _, errs := attnvet("export", fromBundle, filepath.Join(dir, "twice.safetensors"), "--quantize", tc.scheme); code != exitUsage || !strings.Contains(errs, "already quantized (INT4 K/V)") {
				t.Errorf("quantizing a quantized bundle: exit %d, %q", code, errs)
			}
			odd := quantDense(7)
			odd.D = 31
			of := writeCase(t, dir, "odd.json", odd)
			if code, _, errs := attnvet("export", of, filepath.Join(dir, "odd.safetensors"), "--quantize", tc.scheme); code != exitUsage || !strings.Contains(errs, "D=31 and Dv=31 must be even") || strings.Count(errs, "\n") != 1 {
				t.Errorf("odd head: exit %d, %q", code, errs)
			}
		})
	}
}
