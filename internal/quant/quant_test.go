package quant

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

var (
	tabE4M3 = newRefTable(refE4M3)
	tabE5M2 = newRefTable(refE5M2)
	tabE2M1 = newRefTable(refE2M1)
)

func sameF64(a, b float64) bool {
	return a == b && math.Signbit(a) == math.Signbit(b) || math.IsNaN(a) && math.IsNaN(b)
}

// TestDecodeEveryCode checks every code of every format against math/big.
// Catches a wrong bias, subnormal exponent, missing implicit bit, wrong
// NaN/Inf set (e4m3fn has one NaN per sign and no Inf; fnuz has only
// 0x80), a lost sign, or a float32 decoder that disagrees.
func TestDecodeEveryCode(t *testing.T) {
	type fmtCase struct {
		name string
		f64  func(uint8) float64
		f32  func(uint8) float32
		want func(c uint8) float64
		n    int
	}
	sig := func(c uint8, bit uint8, v *big.Rat) float64 {
		f := ratFloat64(v)
		if c&bit != 0 {
			return -f
		}
		return f
	}
	fnuz := refFormat{"e4m3fnuz", 4, 3, 8, nil, -1, 0x7f}
	cases := []fmtCase{
		{"e4m3fn", E4M3ToF64, E4M3ToF32, func(c uint8) float64 {
			if c&0x7f == 0x7f {
				return math.NaN()
			}
			return sig(c, 0x80, refE4M3.bigValue(uint32(c&0x7f)))
		}, 256},
		{"e5m2", E5M2ToF64, E5M2ToF32, func(c uint8) float64 {
			switch m := c & 0x7f; {
			case m == 0x7c:
				return sig(c, 0x80, big.NewRat(1, 1)) * math.Inf(1)
			case m > 0x7c:
				return math.NaN()
			}
			return sig(c, 0x80, refE5M2.bigValue(uint32(c&0x7f)))
		}, 256},
		{"e4m3fnuz", E4M3FNUZToF64, E4M3FNUZToF32, func(c uint8) float64 {
			if c == 0x80 {
				return math.NaN()
			}
			return sig(c, 0x80, fnuz.bigValue(uint32(c&0x7f)))
		}, 256},
		{"ue8m0", UE8M0ToF64, UE8M0ToF32, func(c uint8) float64 {
			if c == 0xff {
				return math.NaN()
			}
			v, _ := new(big.Float).SetMantExp(big.NewFloat(1), int(c)-127).Float64()
			return v
		}, 256},
		{"e2m1", E2M1ToF64, E2M1ToF32, func(c uint8) float64 {
			return sig(c, 0x8, refE2M1.bigValue(uint32(c&7)))
		}, 16},
	}
	for _, fc := range cases {
		t.Run(fc.name, func(t *testing.T) {
			for c := 0; c < fc.n; c++ {
				want := fc.want(uint8(c))
				if got := fc.f64(uint8(c)); !sameF64(got, want) {
					t.Errorf("code %#02x: got %v want %v", c, got, want)
				}
				if got := float64(fc.f32(uint8(c))); !sameF64(got, want) {
					t.Errorf("code %#02x: float32 decoder gives %v want %v", c, got, want)
				}
			}
		})
	}
	// Landmarks, written out.
	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"e4m3 max", E4M3ToF64(0x7e), 448},
		{"e4m3 min sub", E4M3ToF64(0x01), 0x1p-9},
		{"e4m3 min normal", E4M3ToF64(0x08), 0x1p-6},
		{"e5m2 max", E5M2ToF64(0x7b), 57344},
		{"e5m2 min sub", E5M2ToF64(0x01), 0x1p-16},
		{"fnuz max", E4M3FNUZToF64(0x7f), 240},
		{"fnuz min sub", E4M3FNUZToF64(0x01), 0x1p-10},
		{"ue8m0 1", UE8M0ToF64(127), 1},
		{"ue8m0 min", UE8M0ToF64(0), 0x1p-127},
		{"ue8m0 max", UE8M0ToF64(254), 0x1p127},
		{"e2m1 6", E2M1ToF64(7), 6},
		{"e2m1 -0.5", E2M1ToF64(9), -0.5},
	} {
		if !sameF64(tc.got, tc.want) {
			t.Errorf("%s: got %v want %v", tc.name, tc.got, tc.want)
		}
	}
	if !math.Signbit(E4M3ToF64(0x80)) || !math.Signbit(E5M2ToF64(0x80)) || math.Signbit(E4M3FNUZToF64(0)) {
		t.Error("signed zeros wrong")
	}
}

// TestEncodeTable pins hand-computed conversions (CUDA satfinite and
// PyTorch non-saturating semantics). It checks the reference as well as the
// production code, so a wrong reference cannot hide a wrong encoder.
func TestEncodeTable(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		x          float64
		sat, nosat uint8
		f5         bool // e5m2 instead of e4m3fn
	}{
		{0, 0x00, 0x00, false},
		{math.Copysign(0, -1), 0x80, 0x80, false},
		{0x1p-10, 0x00, 0x00, false},                // tie 0 / min sub → 0 (even)
		{0x1p-10 + 0x1p-40, 0x01, 0x01, false},      // just above the tie
		{3 * 0x1p-10, 0x02, 0x02, false},            // tie 1/2 → 2
		{448, 0x7e, 0x7e, false},                    // max
		{464, 0x7e, 0x7e, false},                    // tie 448/480 → 448 (even mantissa)
		{464 + 0x1p-40, 0x7e, 0x7f, false},          // overflow: NaN or saturate
		{-500, 0xfe, 0xff, false},                   //
		{math.Inf(1), 0x7e, 0x7f, false},            // no Inf in e4m3fn
		{nan, 0x7f, 0x7f, false},                    //
		{17, 0x58, 0x58, false},                     // 17 = tie 16/18 → 16
		{19, 0x5a, 0x5a, false},                     // 19 = tie 18/20 → 20
		{57344, 0x7b, 0x7b, true},                   // e5m2 max
		{61440, 0x7b, 0x7c, true},                   // tie max/2^16 → Inf (even)
		{61439.99, 0x7b, 0x7b, true},                //
		{math.Inf(-1), 0xfb, 0xfc, true},            //
		{0x1p-17, 0x00, 0x00, true},                 // tie 0 / min sub
		{0x1p-17 * 3, 0x02, 0x02, true},             // tie → 2
		{math.Float64frombits(1), 0x00, 0x00, true}, // float64 subnormal
		{math.SmallestNonzeroFloat64 * -1, 0x80, 0x80, true},
	}
	for _, c := range cases {
		enc, tab := E4M3FromF64, tabE4M3
		if c.f5 {
			enc, tab = E5M2FromF64, tabE5M2
		}
		for _, m := range []struct {
			ov   Overflow
			want uint8
		}{{Saturate, c.sat}, {NoSaturate, c.nosat}} {
			if got := enc(c.x, m.ov); got != m.want {
				t.Errorf("e5m2=%v %v (%v): got %#02x want %#02x", c.f5, c.x, m.ov, got, m.want)
			}
			if got := tab.refEncode8(c.x, m.ov); got != m.want {
				t.Errorf("reference e5m2=%v %v (%v): got %#02x want %#02x", c.f5, c.x, m.ov, got, m.want)
			}
		}
	}
	for _, c := range []struct {
		x    float64
		code uint8
		ok   bool // under NoSaturate
	}{
		{0.25, 0, true}, {0.75, 2, true}, {1.25, 2, true}, {1.75, 4, true}, {2.5, 4, true},
		{3.5, 6, true}, {5, 6, true}, {5.0001, 7, true}, {6, 7, true}, {6.99, 7, true}, {7, 7, false},
		{-7, 15, false}, {math.Copysign(0, -1), 8, true}, {math.Inf(1), 7, false},
	} {
		got, ok := E2M1FromF64(c.x, NoSaturate)
		rgot, rok := tabE2M1.refEncodeE2M1(c.x, NoSaturate)
		if got != c.code || ok != c.ok || rgot != c.code || rok != c.ok {
			t.Errorf("e2m1 %v: got %d,%v ref %d,%v want %d,%v", c.x, got, ok, rgot, rok, c.code, c.ok)
		}
		if got, ok := E2M1FromF64(c.x, Saturate); got != c.code || !ok {
			t.Errorf("e2m1 sat %v: got %d,%v", c.x, got, ok)
		}
	}
	if _, ok := E2M1FromF64(math.NaN(), Saturate); ok {
		t.Error("e2m1 NaN must not be ok")
	}
}

// TestFloat64DirectRounding: a float64 just beyond an e4m3 tie must round
// away from the tie, where going through float32 would land on the tie and
// round to even. Pins the single-rounding property.
func TestFloat64DirectRounding(t *testing.T) {
	x := math.Nextafter(17, 18) // float32(x) == 17, the tie 16/18
	if float32(x) != 17 {
		t.Fatal("test premise")
	}
	if got := E4M3FromF64(x, Saturate); got != 0x59 { // 18
		t.Errorf("E4M3FromF64(17+ulp) = %#02x, want 0x59 (18)", got)
	}
	if got := E4M3FromF32(float32(x), Saturate); got != 0x58 { // 16
		t.Errorf("E4M3FromF32(17) = %#02x, want 0x58", got)
	}
	if got, _ := E2M1FromF64(math.Nextafter(2.5, 3), Saturate); got != 5 {
		t.Errorf("E2M1FromF64(2.5+ulp) = %d, want 5 (3)", got)
	}
	if got := E5M2FromF64(math.Nextafter(61440, 0), NoSaturate); got != 0x7b {
		t.Errorf("E5M2FromF64(61440−ulp) = %#02x, want 0x7b", got)
	}
}

// sampleInputs returns float64 inputs around every value and every midpoint
// of t (±1 float64 ulp, ±1 float32 ulp, both signs), the special values,
// and n random float32 and float64 values from seed.
func sampleInputs(tab *refTable, n int, seed uint64) []float64 {
	var xs []float64
	add := func(v float64) {
		xs = append(xs, v, -v)
		for _, w := range []float64{math.Nextafter(v, math.Inf(1)), math.Nextafter(v, 0),
			float64(math.Nextafter32(float32(v), float32(math.Inf(1)))), float64(math.Nextafter32(float32(v), 0))} {
			xs = append(xs, w, -w)
		}
	}
	for _, v := range tab.vals {
		add(v)
	}
	for _, v := range tab.mids {
		add(v)
	}
	xs = append(xs, math.Inf(1), math.Inf(-1), math.NaN(), math.MaxFloat64, math.SmallestNonzeroFloat64, 1e-300)
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	top := tab.vals[len(tab.vals)-1]
	for range n {
		xs = append(xs, float64(math.Float32frombits(r.Uint32())))
		// float64 with an exponent near the format's range, all 52 bits random
		e := r.IntN(40) - 30 + int(math.Log2(top))
		xs = append(xs, math.Ldexp(1+r.Float64(), e)*float64(1-2*r.IntN(2)))
		xs = append(xs, math.Float64frombits(r.Uint64()))
	}
	return xs
}

// TestRoundSampled is the fast version of the exhaustive test: edges, all
// halfway points, ~10^6 random values per format (float32 and float64).
func TestRoundSampled(t *testing.T) {
	const seed = 11
	n := 350_000
	if testing.Short() {
		n = 20_000
	}
	for _, fc := range []struct {
		name string
		tab  *refTable
	}{{"e4m3fn", tabE4M3}, {"e5m2", tabE5M2}, {"e2m1", tabE2M1}} {
		t.Run(fc.name, func(t *testing.T) {
			xs := sampleInputs(fc.tab, n, seed)
			bad := 0
			for _, x := range xs {
				for _, ov := range []Overflow{Saturate, NoSaturate} {
					var got, want uint8
					var gok, wok = true, true
					switch fc.name {
					case "e4m3fn":
						got, want = E4M3FromF64(x, ov), fc.tab.refEncode8(x, ov)
					case "e5m2":
						got, want = E5M2FromF64(x, ov), fc.tab.refEncode8(x, ov)
					default:
						got, gok = E2M1FromF64(x, ov)
						want, wok = fc.tab.refEncode2(x, ov)
					}
					if got != want || gok != wok {
						if bad++; bad <= 20 {
							t.Errorf("x=%v (%#016x) %v: got %#02x,%v want %#02x,%v (seed %d)", x, math.Float64bits(x), ov, got, gok, want, wok, seed)
						}
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d failures of %d inputs", bad, len(xs))
			}
			t.Logf("%d inputs × 2 overflow modes", len(xs))
		})
	}
}

func (t *refTable) refEncode2(x float64, ov Overflow) (uint8, bool) { return t.refEncodeE2M1(x, ov) }

func TestInt8(t *testing.T) {
	for _, c := range []struct {
		x    float64
		want int8
	}{{0.5, 0}, {1.5, 2}, {2.5, 2}, {-0.5, 0}, {-1.5, -2}, {126.5, 126}, {127.4, 127}, {127.5, 127},
		{1e9, 127}, {-128.5, -128}, {-1e9, -128}, {math.Inf(1), 127}, {math.Inf(-1), -128}, {math.NaN(), 0},
		{0.49999999999999994, 0}, {-127.5, -128}} {
		if got := Int8FromF64(c.x); got != c.want {
			t.Errorf("Int8FromF64(%v) = %d want %d", c.x, got, c.want)
		}
		if got := refInt8(c.x); got != c.want {
			t.Errorf("refInt8(%v) = %d want %d", c.x, got, c.want)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 200_000 {
		x := (r.Float64()*300 - 150)
		if i%2 == 0 {
			x = math.Round(x*2) / 2 // halfway points
		}
		if got, want := Int8FromF64(x), refInt8(x); got != want {
			t.Fatalf("Int8FromF64(%v) = %d want %d", x, got, want)
		}
		if got, want := Int8FromF32(float32(x)), refInt8(float64(float32(x))); got != want {
			t.Fatalf("Int8FromF32(%v) = %d want %d", float32(x), got, want)
		}
	}
}

func TestUE8M0FromF64(t *testing.T) {
	for k := -127; k <= 127; k++ {
		x := math.Ldexp(1, k)
		for _, r := range []ScaleRounding{ScaleRZ, ScaleRU} {
			if got := UE8M0FromF64(x, r, NoSaturate); int(got) != k+127 {
				t.Fatalf("2^%d (%d): got %d", k, r, got)
			}
		}
	}
	for _, c := range []struct {
		x      float64
		r      ScaleRounding
		ov     Overflow
		want   uint8
		reason string
	}{
		{3, ScaleRZ, Saturate, 128, "3 → 2"},
		{3, ScaleRU, Saturate, 129, "3 → 4"},
		{0.75, ScaleRZ, Saturate, 126, "0.75 → 0.5"},
		{math.Nextafter(1, 2), ScaleRU, Saturate, 128, "1+ → 2"},
		{math.Nextafter(1, 0), ScaleRZ, Saturate, 126, "1− → 0.5"},
		{0x1p-140, ScaleRU, Saturate, 0, "underflow"},
		{0, ScaleRZ, Saturate, 0, "zero"},
		{0x1p128, ScaleRZ, Saturate, 254, "overflow sat"},
		{0x1p128, ScaleRZ, NoSaturate, 255, "overflow nosat"},
		{math.Nextafter(0x1p127, math.Inf(1)), ScaleRU, NoSaturate, 255, "rounds up past 2^127"},
		{math.Nextafter(0x1p127, math.Inf(1)), ScaleRZ, NoSaturate, 254, "rounds down to 2^127"},
		{math.Inf(1), ScaleRZ, Saturate, 254, "inf sat"},
		{math.Inf(1), ScaleRZ, NoSaturate, 255, "inf nosat"},
		{math.NaN(), ScaleRZ, Saturate, 255, "nan"},
		{-1, ScaleRZ, Saturate, 255, "negative"},
	} {
		if got := UE8M0FromF64(c.x, c.r, c.ov); got != c.want {
			t.Errorf("%s: UE8M0FromF64(%v) = %d want %d", c.reason, c.x, got, c.want)
		}
	}
	// Random: the result brackets x as its rounding says.
	r := rand.New(rand.NewPCG(5, 6))
	for range 100_000 {
		x := math.Ldexp(1+r.Float64(), r.IntN(250)-125)
		lo, hi := UE8M0ToF64(UE8M0FromF64(x, ScaleRZ, Saturate)), UE8M0ToF64(UE8M0FromF64(x, ScaleRU, Saturate))
		if !(lo <= x && x < 2*lo) || !(hi >= x && hi/2 < x) {
			t.Fatalf("x=%v: RZ %v RU %v", x, lo, hi)
		}
	}
}

func TestDequantize(t *testing.T) {
	// 1.5 × (1 + 2^−10): exact keeps it; BF16 rounds the scale to 1 first;
	// FP32 keeps the scale and the product is exact in FP32.
	s := 1 + 0x1p-10
	if got := Dequantize(Exact, 1.5, s); got != 1.5*s {
		t.Errorf("exact: %v", got)
	}
	if got := Dequantize(BF16, 1.5, s); got != 1.5 {
		t.Errorf("bf16: %v", got)
	}
	if got := Dequantize(FP32, 1.5, s); got != 1.5*s {
		t.Errorf("fp32: %v", got)
	}
	// The scale is rounded to BF16 before the product: 1+2^-8+2^-12 → 1+2^-7,
	// so 1.875 × it gives 1.890625, where the unrounded product gives 1.8828125.
	if got := Dequantize(BF16, 1.875, 1+0x1p-8+0x1p-12); got != 1.890625 {
		t.Errorf("bf16 with a rounded scale: %v", got)
	}
	// BF16 product rounding: 1.875 × 1.0078125 = 1.8896484375 (needs 11 bits) → bf16 1.890625.
	if got := Dequantize(BF16, 1.875, 1.0078125); got != 1.890625 {
		t.Errorf("bf16 product: %v", got)
	}
	// FP32 product rounding: a product needing more than 24 bits.
	a, b := 1.875, float64(float32(1+0x1p-23))
	if got, want := Dequantize(FP32, a, b), float64(float32(a)*float32(b)); got != want {
		t.Errorf("fp32 product: %v want %v", got, want)
	}
	if !math.IsNaN(Dequantize(BF16, math.NaN(), 1)) || !math.IsNaN(Dequantize(Exact, 1, math.NaN())) {
		t.Error("NaN must propagate")
	}
	for _, s := range []string{"exact", "bf16", "fp32"} {
		d, err := ParseDequant(s)
		if err != nil || d.String() != s {
			t.Errorf("ParseDequant(%q) = %v, %v", s, d, err)
		}
	}
	if _, err := ParseDequant("fp8"); err == nil {
		t.Error("ParseDequant(fp8) must fail")
	}
}

func BenchmarkE4M3FromF32(b *testing.B) {
	x := float32(0.3)
	var s uint8
	for i := 0; b.Loop(); i++ {
		s += E4M3FromF32(x+float32(i&1023)*0x1p-12, Saturate)
	}
	_ = s
}

func BenchmarkE4M3ToF64(b *testing.B) {
	var s float64
	for i := 0; b.Loop(); i++ {
		s += E4M3ToF64(uint8(i))
	}
	_ = s
}
