package problem_test

import (
	"math"
	"testing"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

// TestQuantizeKVScales pins the amax-based scales of the shared dense
// quantizers (the generator's int8_kv and nvfp4_kv, export --quantize):
// ORT's per-tensor scale T(amax/127) and per-channel scales, flashinfer's
// global scale FP32(1/FP32(448/amax)); and that the dequantized K/V stay
// within half a code of the input.
func TestQuantizeKVScales(t *testing.T) {
	k := make([]float32, 2*2*16) // [rows 2][hkv 2][16]
	for i := range k {
		k[i] = float32(num.Round64(num.BF16, math.Sin(float64(i))*float64(1+i%16), num.RNE))
	}
	k[37] = -20 // amax: row 1, head 0, column 5
	in := &problem.Inputs{Family: problem.Dense, Format: num.BF16, Hkv: 2, D: 16, Dv: 16, K: append([]float32(nil), k...), V: append([]float32(nil), k...)}
	in.QuantizeInt8KV(false)
	if s, want := in.Int8KV.KScale[0], float32(num.Round64(num.BF16, 20.0/127, num.RNE)); len(in.Int8KV.KScale) != 1 || s != want {
		t.Fatalf("per-tensor scale %v, want bf16(20/127) = %v", in.Int8KV.KScale, want)
	}
	for i, x := range k {
		if d := math.Abs(float64(in.K[i] - x)); d > float64(in.Int8KV.KScale[0])/2+math.Abs(float64(x))/128 {
			t.Fatalf("k[%d] = %v dequantized to %v", i, x, in.K[i])
		}
	}
	in = &problem.Inputs{Family: problem.Dense, Format: num.BF16, Hkv: 2, D: 16, Dv: 16, K: append([]float32(nil), k...), V: append([]float32(nil), k...)}
	in.QuantizeInt8KV(true)
	ch := 5 // head 0, column 5: amax over rows 0 and 1
	amax := math.Max(math.Abs(float64(k[ch])), math.Abs(float64(k[32+ch])))
	if s := in.Int8KV.KScale[ch]; len(in.Int8KV.KScale) != 32 || s != float32(num.Round64(num.BF16, amax/127, num.RNE)) {
		t.Fatalf("per-channel scale[%d] = %v (of %d), want bf16(%v/127)", ch, s, len(in.Int8KV.KScale), amax)
	}
	in = &problem.Inputs{Family: problem.Dense, Format: num.BF16, Hkv: 2, D: 16, Dv: 16, K: append([]float32(nil), k...), V: append([]float32(nil), k...)}
	if err := in.QuantizeNVFP4KV(nil); err != nil {
		t.Fatal(err)
	}
	if g, want := in.NVFP4KV.KGlobal, 1/float32(448.0/20); g != want {
		t.Fatalf("NVFP4 global scale %v, want FP32(1/FP32(448/20)) = %v", g, want)
	}
	for i, x := range k {
		if d := math.Abs(float64(in.K[i] - x)); d > 20.0/6 { // e2m1's widest gap, 2 codes of the scale amax/6
			t.Fatalf("k[%d] = %v dequantized to %v", i, x, in.K[i])
		}
	}
}
