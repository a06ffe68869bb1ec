package num

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// below and above are the float64 neighbours of x (one float64 ulp away).
func below(x float64) float64 { return math.Nextafter(x, math.Inf(-1)) }
func above(x float64) float64 { return math.Nextafter(x, math.Inf(1)) }

type round64Case struct {
	name      string
	f         Format
	x         float64
	rne, away float64
}

// round64Cases are hand-computed halfway cases. The "dr-trap" cases are the
// inputs where rounding float64 → float32 → target (double rounding) gives
// the wrong answer: a float64 just off a target midpoint that float32
// rounding moves exactly onto the midpoint, where the tie rule then picks
// the wrong side. The "floor-trap" cases are just below half the smallest
// subnormal, where floor(s+0.5) computes 1 because s+0.5 rounds up to 1.0
// in float64.
var round64Cases = []round64Case{
	// FP32 (p = 24): 1 and 1+2^-23 are neighbours, 1+2^-24 the midpoint.
	{"fp32/one", FP32, 1, 1, 1},
	{"fp32/tie-to-even-down", FP32, 1 + 0x1p-24, 1, 1 + 0x1p-23},
	{"fp32/tie-minus-ulp64", FP32, below(1 + 0x1p-24), 1, 1},
	{"fp32/tie-plus-ulp64", FP32, above(1 + 0x1p-24), 1 + 0x1p-23, 1 + 0x1p-23},
	{"fp32/tie-to-even-up", FP32, 1 + 3*0x1p-24, 1 + 0x1p-22, 1 + 0x1p-22},
	{"fp32/neg-tie", FP32, -(1 + 0x1p-24), -1, -(1 + 0x1p-23)},
	{"fp32/max", FP32, math.MaxFloat32, math.MaxFloat32, math.MaxFloat32},
	{"fp32/overflow-tie", FP32, 0x1.ffffffp127, math.Inf(1), math.Inf(1)},
	{"fp32/overflow-tie-minus-ulp64", FP32, below(0x1.ffffffp127), math.MaxFloat32, math.MaxFloat32},
	{"fp32/overflow-tie-plus-ulp64", FP32, above(0x1.ffffffp127), math.Inf(1), math.Inf(1)},
	{"fp32/neg-overflow-tie", FP32, -0x1.ffffffp127, math.Inf(-1), math.Inf(-1)},
	{"fp32/huge", FP32, 1e300, math.Inf(1), math.Inf(1)},
	{"fp32/neg-huge", FP32, -math.MaxFloat64, math.Inf(-1), math.Inf(-1)},
	{"fp32/min-subnormal", FP32, 0x1p-149, 0x1p-149, 0x1p-149},
	{"fp32/half-min-subnormal", FP32, 0x1p-150, 0, 0x1p-149},
	{"fp32/half-min-subnormal-floor-trap", FP32, below(0x1p-150), 0, 0},
	{"fp32/half-min-subnormal-plus-ulp64", FP32, above(0x1p-150), 0x1p-149, 0x1p-149},
	{"fp32/neg-half-min-subnormal", FP32, -0x1p-150, math.Copysign(0, -1), -0x1p-149},
	{"fp32/neg-half-min-subnormal-floor-trap", FP32, -below(0x1p-150), math.Copysign(0, -1), math.Copysign(0, -1)},
	{"fp32/subnormal-tie-3", FP32, 3 * 0x1p-150, 0x1p-148, 0x1p-148},
	{"fp32/subnormal-tie-5", FP32, 5 * 0x1p-150, 0x1p-148, 3 * 0x1p-149},
	{"fp32/subnormal-to-normal-tie", FP32, 0x1.fffffep-127 + 0x1p-150, 0x1p-126, 0x1p-126},
	{"fp32/float64-min-subnormal", FP32, 0x1p-1074, 0, 0},
	{"fp32/neg-float64-min-subnormal", FP32, -0x1p-1074, math.Copysign(0, -1), math.Copysign(0, -1)},

	// FP16 (p = 11, max 65504, min subnormal 2^-24).
	{"fp16/tie-to-even-down", FP16, 1 + 0x1p-11, 1, 1 + 0x1p-10},
	{"fp16/tie-minus-ulp64", FP16, below(1 + 0x1p-11), 1, 1},
	{"fp16/tie-plus-ulp64", FP16, above(1 + 0x1p-11), 1 + 0x1p-10, 1 + 0x1p-10},
	{"fp16/dr-trap-rne", FP16, 1 + 0x1p-11 + 0x1p-40, 1 + 0x1p-10, 1 + 0x1p-10},
	{"fp16/dr-trap-away", FP16, 1 + 0x1p-11 - 0x1p-40, 1, 1},
	{"fp16/2049", FP16, 2049, 2048, 2050},
	{"fp16/2049-minus-ulp64", FP16, below(2049), 2048, 2048},
	{"fp16/2049-plus-ulp64", FP16, above(2049), 2050, 2050},
	{"fp16/2051", FP16, 2051, 2052, 2052},
	{"fp16/neg-2049", FP16, -2049, -2048, -2050},
	{"fp16/max", FP16, 65504, 65504, 65504},
	{"fp16/65519.99", FP16, 65519.99, 65504, 65504},
	{"fp16/65520-minus-ulp64-dr-trap", FP16, below(65520), 65504, 65504},
	{"fp16/65520", FP16, 65520, math.Inf(1), math.Inf(1)},
	{"fp16/65520-plus-ulp64", FP16, above(65520), math.Inf(1), math.Inf(1)},
	{"fp16/65536", FP16, 65536, math.Inf(1), math.Inf(1)},
	{"fp16/neg-65520", FP16, -65520, math.Inf(-1), math.Inf(-1)},
	{"fp16/neg-65519.99", FP16, -65519.99, -65504, -65504},
	{"fp16/1e10", FP16, 1e10, math.Inf(1), math.Inf(1)},
	{"fp16/min-subnormal", FP16, 0x1p-24, 0x1p-24, 0x1p-24},
	{"fp16/half-min-subnormal", FP16, 0x1p-25, 0, 0x1p-24},
	{"fp16/half-min-subnormal-floor-trap", FP16, below(0x1p-25), 0, 0},
	{"fp16/half-min-subnormal-plus-ulp64", FP16, above(0x1p-25), 0x1p-24, 0x1p-24},
	{"fp16/neg-half-min-subnormal", FP16, -0x1p-25, math.Copysign(0, -1), -0x1p-24},
	{"fp16/subnormal-tie-3", FP16, 3 * 0x1p-25, 0x1p-23, 0x1p-23},
	{"fp16/subnormal-tie-5", FP16, 5 * 0x1p-25, 0x1p-23, 3 * 0x1p-24},
	{"fp16/subnormal-tie-5-minus-ulp64", FP16, below(5 * 0x1p-25), 0x1p-23, 0x1p-23},
	{"fp16/subnormal-to-normal-tie", FP16, 2047 * 0x1p-25, 0x1p-14, 0x1p-14},
	{"fp16/subnormal-to-normal-tie-minus-ulp64", FP16, below(2047 * 0x1p-25), 1023 * 0x1p-24, 1023 * 0x1p-24},
	{"fp16/tiny", FP16, 1e-30, 0, 0},
	{"fp16/neg-tiny", FP16, -1e-30, math.Copysign(0, -1), math.Copysign(0, -1)},

	// BF16 (p = 8, max 0x1.fep127, min subnormal 2^-133).
	{"bf16/tie-to-even-down", BF16, 1 + 0x1p-8, 1, 1 + 0x1p-7},
	{"bf16/tie-minus-ulp64", BF16, below(1 + 0x1p-8), 1, 1},
	{"bf16/tie-plus-ulp64", BF16, above(1 + 0x1p-8), 1 + 0x1p-7, 1 + 0x1p-7},
	{"bf16/tie-to-even-up", BF16, 1 + 3*0x1p-8, 1 + 0x1p-6, 1 + 0x1p-6},
	{"bf16/dr-trap-rne", BF16, 1 + 0x1p-8 + 0x1p-30, 1 + 0x1p-7, 1 + 0x1p-7},
	{"bf16/dr-trap-away", BF16, 1 + 0x1p-8 - 0x1p-30, 1, 1},
	{"bf16/neg-tie", BF16, -(1 + 0x1p-8), -1, -(1 + 0x1p-7)},
	{"bf16/neg-dr-trap-rne", BF16, -(1 + 0x1p-8 + 0x1p-30), -(1 + 0x1p-7), -(1 + 0x1p-7)},
	{"bf16/max", BF16, 0x1.fep127, 0x1.fep127, 0x1.fep127},
	{"bf16/overflow-tie", BF16, 0x1.ffp127, math.Inf(1), math.Inf(1)},
	{"bf16/overflow-tie-minus-ulp64", BF16, below(0x1.ffp127), 0x1.fep127, 0x1.fep127},
	{"bf16/overflow-tie-dr-trap", BF16, 0x1.ffp127 - 0x1p80, 0x1.fep127, 0x1.fep127},
	{"bf16/fp32-max", BF16, math.MaxFloat32, math.Inf(1), math.Inf(1)},
	{"bf16/neg-overflow-tie", BF16, -0x1.ffp127, math.Inf(-1), math.Inf(-1)},
	{"bf16/min-subnormal", BF16, 0x1p-133, 0x1p-133, 0x1p-133},
	{"bf16/half-min-subnormal", BF16, 0x1p-134, 0, 0x1p-133},
	{"bf16/half-min-subnormal-floor-trap", BF16, below(0x1p-134), 0, 0},
	{"bf16/half-min-subnormal-plus-ulp64", BF16, above(0x1p-134), 0x1p-133, 0x1p-133},
	{"bf16/subnormal-dr-trap-rne", BF16, 0x1p-134 + 0x1p-160, 0x1p-133, 0x1p-133},
	{"bf16/subnormal-tie-5", BF16, 5 * 0x1p-134, 0x1p-132, 3 * 0x1p-133},
	{"bf16/subnormal-to-normal-tie", BF16, 255 * 0x1p-134, 0x1p-126, 0x1p-126},
	{"bf16/neg-half-min-subnormal", BF16, -0x1p-134, math.Copysign(0, -1), -0x1p-133},
}

// TestRound64Table checks Round64 on hand-computed halfway cases, and the
// table itself against both references. Catches: double rounding through
// float32 (dr-trap cases), floor(s+0.5) in the ties-away path (floor-trap
// cases), wrong tie rule, wrong overflow threshold, subnormal grid errors,
// lost sign of zero on negative underflow.
func TestRound64Table(t *testing.T) {
	for _, c := range round64Cases {
		tf := map[Format]tformat{FP32: tFP32, FP16: tFP16, BF16: tBF16}[c.f]
		for _, r := range roundings {
			want := c.rne
			if r == Away {
				want = c.away
			}
			t.Run(fmt.Sprintf("%s/%v", c.name, r), func(t *testing.T) {
				if b := bigRound(tf, c.x, r); !sameFloat(b, want) {
					t.Fatalf("table error: bigRound(%x) = %x, table says %x", c.x, b, want)
				}
				if i := tf.grid().refRound64(c.x, r); !sameFloat(i, want) {
					t.Fatalf("table error: refRound64(%x) = %x, table says %x", c.x, i, want)
				}
				if got := Round64(c.f, c.x, r); !sameFloat(got, want) {
					t.Errorf("Round64(%v, %x, %v) = %x, want %x", c.f, c.x, r, got, want)
				}
			})
		}
	}
}

// TestRound64Special checks ±0, ±Inf, NaN for every format, and that FP64
// is the identity. Catches a special value rounded as a number (e.g. Inf
// overflowing Frexp, -0 becoming +0).
func TestRound64Special(t *testing.T) {
	specials := []struct {
		name string
		x    float64
	}{
		{"+0", 0}, {"-0", math.Copysign(0, -1)},
		{"+Inf", math.Inf(1)}, {"-Inf", math.Inf(-1)},
		{"NaN", math.NaN()}, {"-NaN", math.Copysign(math.NaN(), -1)},
	}
	for _, f := range []Format{FP32, FP16, BF16, FP64} {
		for _, s := range specials {
			for _, r := range roundings {
				t.Run(fmt.Sprintf("%v/%s/%v", f, s.name, r), func(t *testing.T) {
					got := Round64(f, s.x, r)
					if !sameFloat(got, s.x) {
						t.Fatalf("Round64(%v, %v, %v) = %v", f, s.x, r, got)
					}
					if math.IsNaN(s.x) && math.Signbit(got) != math.Signbit(s.x) {
						t.Fatalf("Round64(%v, %v, %v) changed the NaN sign", f, s.x, r)
					}
				})
			}
		}
	}
	for _, x := range []float64{1, -1, math.Pi, 1 + 0x1p-52, math.MaxFloat64, 0x1p-1074, -0x1p-1074, 0x1p-1022} {
		for _, r := range roundings {
			if got := Round64(FP64, x, r); math.Float64bits(got) != math.Float64bits(x) {
				t.Errorf("Round64(fp64, %x, %v) = %x, want unchanged", x, r, got)
			}
		}
	}
}

// randomGridPair returns n·2^q and (n+1)·2^q, a random point of the grid of
// t and its successor: biased exponent field in [0, 2·emax] (0: subnormal),
// random mantissa. The successor of the largest finite value is 2^(emax+1).
func randomGridPair(rng *rand.Rand, t tformat) (v, w float64) {
	be := rng.IntN(2*t.emax + 1)
	m := rng.Uint64N(1 << (t.prec - 1))
	n := m
	if be > 0 {
		n += 1 << (t.prec - 1)
	}
	q := max(be, 1) - t.emax - (t.prec - 1)
	return math.Ldexp(float64(n), q), math.Ldexp(float64(n+1), q)
}

// nudge moves x by j float64 ulps (j may be negative).
func nudge(x float64, j int) float64 {
	for ; j > 0; j-- {
		x = above(x)
	}
	for ; j < 0; j++ {
		x = below(x)
	}
	return x
}

// genNear returns a float64 drawn mostly near midpoints of t.
func genNear(rng *rand.Rand, t tformat) float64 {
	v, w := randomGridPair(rng, t)
	mid := (v + w) / 2 // exact: both have ≤ 25 significant bits
	var x float64
	switch rng.IntN(10) {
	case 0, 1: // exact midpoint
		x = mid
	case 2, 3: // midpoint ± 1..4 float64 ulps (the double-rounding traps)
		j := 1 + rng.IntN(4)
		if rng.IntN(2) == 0 {
			j = -j
		}
		x = nudge(mid, j)
	case 4: // midpoint perturbed by a tiny relative amount 2^-(25..60)
		x = mid * (1 + math.Ldexp(rng.Float64()-0.5, -24-rng.IntN(36)))
	case 5: // near a representable value
		x = nudge(v, rng.IntN(9)-4)
	case 6: // anywhere between v and w
		x = v + (w-v)*rng.Float64()
	case 7: // near zero: around k/2 minimal subnormals, or a float64 subnormal
		ms := t.minSub()
		switch rng.IntN(3) {
		case 0:
			x = nudge(float64(rng.IntN(8))*ms/2, rng.IntN(9)-4)
		case 1:
			x = ms * 4 * rng.Float64()
		default:
			x = math.Float64frombits(rng.Uint64N(1 << 52))
		}
	case 8: // around the overflow threshold and beyond
		top := t.maxFinite()
		thr := (top + t.overflow()) / 2
		switch rng.IntN(3) {
		case 0:
			x = nudge(thr, rng.IntN(9)-4)
		case 1:
			x = top + (t.overflow()-top)*rng.Float64()
		default:
			x = math.Ldexp(1+rng.Float64(), t.emax+rng.IntN(1023-t.emax+1))
		}
	default: // a random float64 of any magnitude (may be NaN/Inf)
		x = math.Float64frombits(rng.Uint64())
	}
	if rng.IntN(2) == 0 {
		x = -x
	}
	return x
}

// TestRound64VsBig compares Round64 with math/big (and the integer
// reference) on 100k inputs per format and rounding (600k in all), drawn
// from a locally seeded PCG and concentrated near midpoints, subnormal
// boundaries and the overflow threshold. Also checks that the result is a
// fixed point (representable). Catches any double rounding, tie rule,
// subnormal, overflow or sign error in the float64 path, including the
// floor(s+0.5) bug for inputs just below half the smallest subnormal.
func TestRound64VsBig(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	for i, tf := range roundFormats {
		for _, r := range roundings {
			t.Run(fmt.Sprintf("%s/%v", tf.name, r), func(t *testing.T) {
				t.Parallel()
				rng := rand.New(rand.NewPCG(0x5eed_0001+uint64(i), uint64(r)))
				g := tf.grid()
				fails := 0
				for range n {
					x := genNear(rng, tf)
					got := Round64(tf.f, x, r)
					want := bigRound(tf, x, r)
					if ref := g.refRound64(x, r); !sameFloat(ref, want) {
						t.Fatalf("references disagree at %x: big %x, integer %x", x, want, ref)
					}
					if !sameFloat(got, want) {
						t.Errorf("Round64(%s, %x, %v) = %x, want %x", tf.name, x, r, got, want)
						fails++
					} else if again := Round64(tf.f, got, r); !sameFloat(again, got) {
						t.Errorf("Round64(%s, Round64(%x) = %x) = %x, not a fixed point", tf.name, x, got, again)
						fails++
					}
					if fails > 20 {
						t.Fatal("too many failures")
					}
				}
			})
		}
	}
}

// TestRound32 checks Round32 against Round64 (which is exact for float32
// inputs) for every format, special values included, on a dense sample of
// float32 patterns. Catches Round32 disagreeing with the bit conversions or
// with Round64, and FP32/FP64 not being the identity.
func TestRound32(t *testing.T) {
	check := func(b uint32) {
		x := math.Float32frombits(b)
		for _, r := range roundings {
			for _, tf := range []tformat{tFP16, tBF16} {
				got := Round32(tf.f, x, r)
				want := tf.grid().refRound64(float64(x), r)
				if !sameFloat(float64(got), want) {
					t.Fatalf("Round32(%s, %#08x = %g, %v) = %g, want %g", tf.name, b, x, r, got, want)
				}
			}
			for _, f := range []Format{FP32, FP64} {
				if got := Round32(f, x, r); math.Float32bits(got) != b {
					t.Fatalf("Round32(%v, %#08x, %v) = %#08x, want unchanged", f, b, r, math.Float32bits(got))
				}
			}
		}
	}
	for _, b := range []uint32{
		0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001,
		1, 0x80000001, 0x007fffff, 0x00800000, 0x7f7fffff, 0xff7fffff,
		0x3f808000, 0x3f818000, 0x3f807fff, 0x3f808001, 0x477ff000, 0x477fefff, 0x33000000, 0x33000001,
	} {
		check(b)
	}
	step := uint32(7919)
	if testing.Short() {
		step = 65521
	}
	for b := uint64(0); b < 1<<32; b += uint64(step) {
		check(uint32(b))
	}
}
