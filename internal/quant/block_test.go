package quant

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

func TestFlashMLAScale(t *testing.T) {
	for _, c := range []struct {
		amax, want float32
	}{
		{0, 0x1p-13}, // floor: 1e-4 → 2^⌈−13.29⌉
		{448 * 0x1p-20, 0x1p-13},
		{448 * 0x1p-13, 0x1p-13}, // exactly the floor power
		{448 * 0x1p-14, 0x1p-13}, // a = 2^−14 < 1e−4
		{448, 1},
		{449, 2},
		{447, 1},
		{448 * 8, 8},
		{448*8 + 1, 16},
		{0.4, 0x1p-10}, // 0.4/448 ≈ 2^−10.13 → 2^−10
		{math.MaxFloat32, 0x1p120},
	} {
		if got := FlashMLAScale(c.amax); got != c.want {
			t.Errorf("FlashMLAScale(%v) = %v want %v", c.amax, got, c.want)
		}
	}
	// The FP32 quotient decides: (448 + 2^−15)/448 = 1 + 2^−23.8 rounds in
	// FP32 to 1 + 2^−23 > 1 (inv 2), and amax just below 448·2 gives a < 2.
	for _, c := range []struct{ amax, want float32 }{
		{448 + 0x1p-15, 2},
		{math.Nextafter32(896, 0), 2},
		{math.Nextafter32(448, 0), 1},
	} {
		if got := FlashMLAScale(c.amax); got != c.want {
			t.Errorf("FlashMLAScale(%v) = %v want %v", c.amax, got, c.want)
		}
	}
}

func TestQuantizeTileFlashMLA(t *testing.T) {
	x := []float32{448, 17, 19, -17, 0x1p-10, 3 * 0x1p-10, -448, 0}
	codes := make([]uint8, len(x))
	inv, err := QuantizeTileFlashMLA(codes, x)
	if err != nil || inv != 1 {
		t.Fatalf("inv %v err %v", inv, err)
	}
	want := []uint8{0x7e, 0x58, 0x5a, 0xd8, 0x00, 0x02, 0xfe, 0x00}
	for i := range want {
		if codes[i] != want[i] {
			t.Errorf("x=%v: code %#02x want %#02x", x[i], codes[i], want[i])
		}
	}
	// 464 → inv 2, 464/2 = 232 ties 224/240 → 224; 232/2 = 116 ties 112/120 → 112.
	x = []float32{464, 232, -464}
	codes = codes[:3]
	inv, _ = QuantizeTileFlashMLA(codes, x)
	if inv != 2 || E4M3ToF64(codes[0]) != 224 || E4M3ToF64(codes[1]) != 112 || E4M3ToF64(codes[2]) != -224 {
		t.Errorf("inv %v codes % x", inv, codes)
	}
	r := rand.New(rand.NewPCG(9, 9))
	for range 2000 {
		x := make([]float32, 64)
		sc := math.Ldexp(1, r.IntN(60)-30)
		for i := range x {
			x[i] = float32(r.NormFloat64() * sc)
		}
		codes := make([]uint8, 64)
		inv, err := QuantizeTileFlashMLA(codes, x)
		if err != nil {
			t.Fatal(err)
		}
		fr, _ := math.Frexp(float64(inv))
		if fr != 0.5 || inv < 0x1p-13 {
			t.Fatalf("inv %v is not a power of two ≥ 2^−13", inv)
		}
		for i, v := range x {
			if want := tabE4M3.refEncode8(float64(v)/float64(inv), NoSaturate); codes[i] != want {
				t.Fatalf("x=%v inv=%v: code %#02x want %#02x", v, inv, codes[i], want)
			}
			if codes[i]&0x7f == 0x7f {
				t.Fatalf("x=%v inv=%v: NaN code (x/inv beyond 448)", v, inv)
			}
		}
	}
	if _, err := QuantizeTileFlashMLA(make([]uint8, 2), []float32{1, float32(math.NaN())}); err == nil {
		t.Error("NaN must fail")
	}
	if _, err := QuantizeTileFlashMLA(make([]uint8, 1), []float32{1, 2}); err == nil {
		t.Error("length mismatch must fail")
	}
}

// refMXFP4 is the OCP MX v1.0 conversion algorithm with math/big: the shared exponent
// found by comparing amax with powers of two, elements rounded as exact
// rationals.
func refMXFP4(x []float32) (codes []uint8, scales []uint8) {
	for b := 0; b < len(x); b += MXBlock {
		blk := x[b : b+MXBlock]
		amax := new(big.Rat)
		bad := false
		for _, v := range blk {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				bad = true
				break
			}
			a := new(big.Rat).SetFloat64(math.Abs(float64(v)))
			if a.Cmp(amax) > 0 {
				amax = a
			}
		}
		if bad || amax.Sign() == 0 {
			s := uint8(0)
			if bad {
				s = 0xff
			}
			scales = append(scales, s)
			codes = append(codes, make([]uint8, MXBlock)...)
			continue
		}
		lo, hi := -200, 200 // ⌊log2 amax⌋: largest k with 2^k ≤ amax, by bisection
		for hi-lo > 1 {
			if mid := (lo + hi) / 2; pow2Rat(mid).Cmp(amax) <= 0 {
				lo = mid
			} else {
				hi = mid
			}
		}
		k := lo
		shared := min(max(k-2, -127), 127)
		scales = append(scales, uint8(shared+127))
		for _, v := range blk {
			q := new(big.Rat).Quo(new(big.Rat).SetFloat64(float64(v)), pow2Rat(shared))
			codes = append(codes, refE2M1Rat(q))
		}
	}
	return codes, scales
}

func pow2Rat(k int) *big.Rat {
	p := new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), uint(abs(k))))
	if k < 0 {
		return p.Inv(p)
	}
	return p
}

// refE2M1Rat rounds an exact rational to e2m1, saturating.
func refE2M1Rat(q *big.Rat) uint8 {
	sign := uint8(0)
	if q.Sign() < 0 {
		sign = 8
	}
	c := tabE2M1.nearestRat(new(big.Rat).Abs(q))
	return sign | uint8(min(c, 7))
}

func randBlockValues(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	sc := math.Ldexp(1, r.IntN(80)-40)
	for i := range x {
		switch r.IntN(8) {
		case 0: // e2m1 ties at some scale
			x[i] = float32(math.Ldexp([]float64{0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5}[r.IntN(7)], r.IntN(8)-4) * sc)
		case 1:
			x[i] = 0
		default:
			x[i] = float32(r.NormFloat64() * sc)
		}
	}
	return x
}

// blockIters is the number of random 4-block tensors per block test.
func blockIters() int {
	if testing.Short() {
		return 100
	}
	return 800
}

func TestMXFP4(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for it := range blockIters() {
		x := randBlockValues(r, 4*MXBlock)
		if it%50 == 0 {
			clear(x[:MXBlock]) // an all-zero block
			x[2*MXBlock+3] = float32(math.NaN())
		}
		codes, scales := make([]uint8, len(x)), make([]uint8, len(x)/MXBlock)
		if err := QuantizeMXFP4(codes, scales, x); err != nil {
			t.Fatal(err)
		}
		wc, ws := refMXFP4(x)
		for i := range wc {
			if codes[i] != wc[i] {
				t.Fatalf("iter %d value %d (%v): code %d want %d (scale %d)", it, i, x[i], codes[i], wc[i], scales[i/MXBlock])
			}
		}
		for i := range ws {
			if scales[i] != ws[i] {
				t.Fatalf("iter %d block %d: scale %d want %d", it, i, scales[i], ws[i])
			}
		}
		deq := make([]float64, len(x))
		if err := DequantMXFP4(deq, codes, scales); err != nil {
			t.Fatal(err)
		}
		for i, v := range deq {
			if want := E2M1ToF64(codes[i]) * math.Ldexp(1, int(scales[i/MXBlock])-127); !sameF64(v, want) && scales[i/MXBlock] != 0xff {
				t.Fatalf("dequant %d: %v want %v", i, v, want)
			}
		}
	}
	if !math.IsNaN(UE8M0ToF64(0xff)) {
		t.Error("NaN scale")
	}
	if err := QuantizeMXFP4(make([]uint8, 31), make([]uint8, 1), make([]float32, 31)); err == nil {
		t.Error("31 values must fail")
	}
	if err := QuantizeMXFP4(make([]uint8, 32), make([]uint8, 2), make([]float32, 32)); err == nil {
		t.Error("wrong scale count must fail")
	}
}

// refNVFP4 computes NVFP4 with exact rationals.
func refNVFP4(x []float32, g float32) (codes, scales []uint8) {
	G := new(big.Rat).SetFloat64(float64(g))
	for b := 0; b < len(x); b += NVBlock {
		blk := x[b : b+NVBlock]
		amax := new(big.Rat)
		bad := false
		for _, v := range blk {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				bad = true
				break
			}
			if a := new(big.Rat).SetFloat64(math.Abs(float64(v))); a.Cmp(amax) > 0 {
				amax = a
			}
		}
		if bad {
			scales = append(scales, 0x7f)
			codes = append(codes, make([]uint8, NVBlock)...)
			continue
		}
		q := new(big.Rat).Quo(amax, new(big.Rat).Mul(big.NewRat(6, 1), G))
		sc := uint8(min(tabE4M3.nearestRat(q), 0x7e))
		scales = append(scales, sc)
		d := new(big.Rat).Mul(new(big.Rat).SetFloat64(ratFloat64(refE4M3.bigValue(uint32(sc)))), G)
		for _, v := range blk {
			if d.Sign() == 0 {
				codes = append(codes, 0)
				continue
			}
			codes = append(codes, refE2M1Rat(new(big.Rat).Quo(new(big.Rat).SetFloat64(float64(v)), d)))
		}
	}
	return codes, scales
}

func TestNVFP4(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for it := range blockIters() {
		x := randBlockValues(r, 4*NVBlock)
		var amax float32
		for _, v := range x {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		g := NVFP4TensorScale(amax)
		switch it % 4 {
		case 1:
			g *= float32(1 + r.Float64()) // non-canonical tensor scales
		case 2:
			g = float32(math.Ldexp(1+r.Float64(), r.IntN(40)-20)) // saturating or underflowing block scales
		}
		if it%100 == 0 {
			x[NVBlock+1] = float32(math.Inf(-1))
		}
		codes, scales := make([]uint8, len(x)), make([]uint8, len(x)/NVBlock)
		if err := QuantizeNVFP4(codes, scales, x, g); err != nil {
			t.Fatal(err)
		}
		wc, ws := refNVFP4(x, g)
		for i := range ws {
			if scales[i] != ws[i] {
				t.Fatalf("iter %d block %d: scale %#02x want %#02x (g=%v)", it, i, scales[i], ws[i], g)
			}
		}
		for i := range wc {
			if codes[i] != wc[i] {
				t.Fatalf("iter %d value %d (%v): code %d want %d", it, i, x[i], codes[i], wc[i])
			}
		}
		deq := make([]float64, len(x))
		if err := DequantNVFP4(deq, codes, scales, g); err != nil {
			t.Fatal(err)
		}
		for i, v := range deq {
			if scales[i/NVBlock] == 0x7f {
				continue
			}
			want, _ := new(big.Rat).Mul(new(big.Rat).SetFloat64(E2M1ToF64(codes[i])*E4M3ToF64(scales[i/NVBlock])), new(big.Rat).SetFloat64(float64(g))).Float64()
			if v != want {
				t.Fatalf("dequant %d: %v want %v (not exact)", i, v, want)
			}
		}
	}
	for _, g := range []float32{0, -1, float32(math.Inf(1)), float32(math.NaN())} {
		if err := QuantizeNVFP4(make([]uint8, 16), make([]uint8, 1), make([]float32, 16), g); err == nil {
			t.Errorf("tensor scale %v must fail", g)
		}
	}
	if err := QuantizeNVFP4(make([]uint8, 8), make([]uint8, 1), make([]float32, 8), 1); err == nil {
		t.Error("8 values must fail")
	}
}

func TestPackE2M1(t *testing.T) {
	codes := []uint8{1, 2, 15, 8, 7, 0}
	packed := make([]byte, 3)
	if err := PackE2M1(packed, codes); err != nil {
		t.Fatal(err)
	}
	if packed[0] != 0x21 || packed[1] != 0x8f || packed[2] != 0x07 {
		t.Errorf("packed % x", packed)
	}
	back := make([]uint8, 6)
	if err := UnpackE2M1(back, packed); err != nil {
		t.Fatal(err)
	}
	for i := range codes {
		if back[i] != codes[i] {
			t.Errorf("unpack %d: %d", i, back[i])
		}
	}
	if PackE2M1(make([]byte, 1), []uint8{1}) == nil || UnpackE2M1(make([]uint8, 3), packed) == nil {
		t.Error("length errors expected")
	}
}
