package cases_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/quant"
)

func nvfp4Case(edge string) cases.Case {
	return cases.Case{Family: problem.Dense, DType: "bf16", Seed: 51, H: 4, Hkv: 2, D: 32, Dv: 16,
		Sq: []int{2, 1}, Sk: []int{9, 20}, NVFP4KV: true, NVFP4Edge: edge}
}

// The generated K and V are the dequantized caches, T(FP32(e2m1·e4m3·g)),
// with flashinfer's global scale amax/448 (so block scales ≤ 448/6), and
// each edge class puts what it names into both caches.
func TestNVFP4KVGenerate(t *testing.T) {
	for _, edge := range []string{"", cases.NVFP4EdgeZero, cases.NVFP4EdgeMax, cases.NVFP4EdgeScale} {
		in, err := cases.Generate(nvfp4Case(edge), num.BF16)
		if err != nil {
			t.Fatalf("%q: %v", edge, err)
		}
		q := in.NVFP4KV
		if q == nil {
			t.Fatalf("%q: no NVFP4 caches", edge)
		}
		if vs := in.Violations(); len(vs) != 0 {
			t.Errorf("%q: violations %v", edge, vs)
		}
		for i, x := range []struct {
			vals          []float32
			codes, blocks []uint8
			g             float32
		}{{in.K, q.KCodes, q.KBlock, q.KGlobal}, {in.V, q.VCodes, q.VBlock, q.VGlobal}} {
			// an independent dequantization: unpack, decode, multiply in float64
			codes := make([]uint8, len(x.vals))
			if err := quant.UnpackE2M1(codes, x.codes); err != nil {
				t.Fatal(err)
			}
			var zero, max6, tiny, big, over int
			for b := range x.blocks {
				s := quant.E4M3ToF64(x.blocks[b])
				all0 := true
				for j := range 16 {
					e := 16*b + j
					want := float32(num.Round64(num.BF16, float64(float32(quant.E2M1ToF64(codes[e])*s*float64(x.g))), num.RNE))
					if math.Float32bits(x.vals[e]) != math.Float32bits(want) {
						t.Fatalf("%q cache %d element %d: %v, want %v", edge, i, e, x.vals[e], want)
					}
					all0 = all0 && codes[e]&7 == 0
					if codes[e]&7 == 7 {
						max6++
					}
				}
				if all0 && x.blocks[b] == 0 {
					zero++
				}
				switch x.blocks[b] {
				case 0x01:
					tiny++
				case 0x7e:
					big++
				}
				if s > 448.0/6*1.0625 && x.blocks[b] != 0x7e {
					over++
				}
			}
			nb := len(x.blocks)
			switch edge {
			case cases.NVFP4EdgeZero:
				if zero == 0 || zero == nb {
					t.Errorf("zero_blocks cache %d: %d of %d blocks zero", i, zero, nb)
				}
			case cases.NVFP4EdgeMax:
				if max6 < nb {
					t.Errorf("block_max cache %d: %d codes ±6 in %d blocks", i, max6, nb)
				}
			case cases.NVFP4EdgeScale:
				if tiny == 0 || big == 0 {
					t.Errorf("scale_extremes cache %d: %d scales 2^-9, %d scales 448 of %d", i, tiny, big, nb)
				}
			}
			if over != 0 {
				t.Errorf("%q cache %d: %d block scales above 448/6 (flashinfer's global scale amax/448)", edge, i, over)
			}
		}
	}
}

// Malformed NVFP4 inputs are Check errors or violations, never panics.
func TestNVFP4KVChecks(t *testing.T) {
	bad := []struct {
		name string
		edit func(c *cases.Case)
		want string
	}{
		{"d not 16k", func(c *cases.Case) { c.D = 24 }, "multiples of 16"},
		{"with int8", func(c *cases.Case) { c.Int8KV = "per_tensor" }, "not with fp8 or int8_kv"},
		{"edge junk", func(c *cases.Case) { c.NVFP4Edge = "x" }, "nvfp4_edge"},
		{"edge alone", func(c *cases.Case) { c.NVFP4KV, c.NVFP4Edge = false, cases.NVFP4EdgeMax }, "without nvfp4_kv"},
		{"poison", func(c *cases.Case) { c.Poison = true }, "poison"},
	}
	for _, b := range bad {
		c := nvfp4Case("")
		b.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: %v, want %q", b.name, err, b.want)
		}
	}
	gen := func() *problem.Inputs {
		in, err := cases.Generate(nvfp4Case(""), num.BF16)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	for _, e := range []struct {
		name string
		edit func(in *problem.Inputs)
		want string
	}{
		{"short codes", func(in *problem.Inputs) { in.NVFP4KV.KCodes = in.NVFP4KV.KCodes[1:] }, "tensor k (packed e2m1 codes)"},
		{"short scales", func(in *problem.Inputs) { in.NVFP4KV.VBlock = append(in.NVFP4KV.VBlock, 0) }, "tensor v_block_scale"},
		{"dv not 16k", func(in *problem.Inputs) { in.Dv, in.V = 8, in.V[:len(in.V)/2] }, "multiples of 16"},
	} {
		in := gen()
		e.edit(in)
		if err := in.Check(); err == nil || !strings.Contains(err.Error(), e.want) {
			t.Errorf("%s: %v, want %q", e.name, err, e.want)
		}
	}
	for _, e := range []struct {
		name string
		edit func(q *problem.DenseNVFP4KV)
		want string
	}{
		{"nan global", func(q *problem.DenseNVFP4KV) { q.KGlobal = float32(math.NaN()) }, "k_global_scale = NaN"},
		{"zero global", func(q *problem.DenseNVFP4KV) { q.VGlobal = 0 }, "v_global_scale = 0"},
		{"nan block", func(q *problem.DenseNVFP4KV) { q.VBlock[3] = 0xff }, "v_block_scale[3] is e4m3's NaN"},
	} {
		in := gen()
		e.edit(in.NVFP4KV)
		if err := in.Check(); err != nil {
			t.Errorf("%s: Check: %v", e.name, err)
		}
		found := slices.ContainsFunc(in.Violations(), func(v problem.Violation) bool {
			return v.Name == problem.VNVFP4Scale && strings.Contains(v.Detail, e.want)
		})
		if !found {
			t.Errorf("%s: violations %v, want %s %q", e.name, in.Violations(), problem.VNVFP4Scale, e.want)
		}
	}
	// the low nibble is element 2i (flashinfer's reference_dequant)
	dst := make([]float32, 16)
	packed := []uint8{0x72, 0, 0, 0, 0, 0, 0, 0}
	if err := problem.DequantNVFP4KV(dst, packed, []uint8{0x38}, 0.5, num.FP32); err != nil || dst[0] != 0.5 || dst[1] != 3 {
		t.Errorf("byte 0x72, scale 1, global 0.5: %v %v, want 0.5 3 (%v)", dst[0], dst[1], err)
	}
	if err := problem.DequantNVFP4KV(dst, packed[1:], []uint8{0x38}, 1, num.FP32); err == nil {
		t.Error("7 bytes for 16 values: no error")
	}
}
