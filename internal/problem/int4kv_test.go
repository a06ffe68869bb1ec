package problem_test

import (
	"math"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

// TestQuantizeInt4KV pins ORT's INT4 convention in the shared quantizer
// (the generator's int4_kv, export --quantize int4_*): scale T(amax/7) per
// tensor or per (KV head, column); every byte holds element 2i low and
// 2i+1 high with the +8 bias; the largest value becomes code 7; K/V are
// T(code·scale), within half a code of the input; an odd head is refused.
func TestQuantizeInt4KV(t *testing.T) {
	k := make([]float32, 3*2*8) // [rows 3][hkv 2][8]
	for i := range k {
		k[i] = float32(num.Round64(num.BF16, math.Sin(float64(i))*float64(1+i%8), num.RNE))
	}
	k[21] = -14 // amax: row 1, head 0, column 5
	k[10] = 0   // code 0: nibble 8
	for _, perChannel := range []bool{false, true} {
		in := &problem.Inputs{Family: problem.Dense, Format: num.BF16, Hkv: 2, D: 8, Dv: 8, K: append([]float32(nil), k...), V: append([]float32(nil), k...)}
		if err := in.QuantizeInt4KV(perChannel); err != nil {
			t.Fatal(err)
		}
		q := in.Int4KV
		if len(q.KCodes) != len(k)/2 {
			t.Fatalf("%d packed bytes for %d values", len(q.KCodes), len(k))
		}
		s0 := q.KScale[0]
		if !perChannel {
			if want := float32(num.Round64(num.BF16, 14.0/7, num.RNE)); len(q.KScale) != 1 || s0 != want {
				t.Fatalf("per-tensor scale %v, want bf16(14/7) = %v", q.KScale, want)
			}
		} else {
			ch := 5 // head 0, column 5
			amax := 0.0
			for r := range 3 {
				amax = math.Max(amax, math.Abs(float64(k[r*16+ch])))
			}
			if s := q.KScale[ch]; len(q.KScale) != 16 || s != float32(num.Round64(num.BF16, amax/7, num.RNE)) {
				t.Fatalf("per-channel scale[%d] = %v (of %d), want bf16(%v/7)", ch, s, len(q.KScale), amax)
			}
		}
		if c := problem.Int4Code(q.KCodes, 21); c != -7 {
			t.Errorf("the amax value's code %d, want -7", c)
		}
		if b := q.KCodes[5]; b&0xf != 8 {
			t.Errorf("byte 5 = %#x: element 10 (zero) must be the low nibble 8", b)
		}
		for i, x := range k {
			c := problem.Int4Code(q.KCodes, i)
			b := q.KCodes[i/2]
			if nib := int(b>>(4*(i%2))) & 0xf; nib != c+8 || c < -8 || c > 7 {
				t.Fatalf("element %d: code %d, nibble %d", i, c, nib)
			}
			s := problem.Int8Scale(q.KScale, i, 2, 8)
			if in.K[i] != num.Round32(num.BF16, float32(c)*s, num.RNE) {
				t.Fatalf("k[%d] = %v, want bf16(%d·%v)", i, in.K[i], c, s)
			}
			if d := math.Abs(float64(in.K[i] - x)); d > float64(s)/2+math.Abs(float64(x))/128 {
				t.Fatalf("k[%d] = %v dequantized to %v", i, x, in.K[i])
			}
		}
	}
	odd := &problem.Inputs{Family: problem.Dense, Format: num.BF16, Hkv: 1, D: 7, Dv: 7, K: make([]float32, 7), V: make([]float32, 7)}
	if err := odd.QuantizeInt4KV(false); err == nil || !strings.Contains(err.Error(), "must be even") {
		t.Errorf("odd head: %v", err)
	}
}
