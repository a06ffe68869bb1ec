package num

// Exhaustive float32 → 16-bit conversion tests. Each float32 bit pattern is
// compared with an integer-arithmetic reference (ref_test.go) that shares no
// code with num.go. The work is split into chunks handed to
// runtime.GOMAXPROCS(0) goroutines.

import (
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/x448/float16"
)

// parallelChunks calls work(c) for c in [0, n) on GOMAXPROCS goroutines.
func parallelChunks(n int, work func(c int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				c := int(next.Add(1) - 1)
				if c >= n {
					return
				}
				work(c)
			}
		})
	}
	wg.Wait()
}

// failLog collects the first few failures from many goroutines.
type failLog struct {
	t     *testing.T
	count atomic.Int64
}

func (l *failLog) errorf(format string, args ...any) {
	if l.count.Add(1) <= 25 {
		l.t.Errorf(format, args...)
	}
}

func (l *failLog) done() {
	if n := l.count.Load(); n > 25 {
		l.t.Errorf("... %d failures in total", n)
	}
}

// encode16 returns the bit pattern (without sign) of n·2^q in the 16-bit
// format g, where (n, q) comes from refSplit+refRound, so q ≥ qmin = emin-p+1
// and n ≤ 2^p. With qmin the quantum of the subnormals and the first binade,
// the pattern is simply (q-qmin)·2^(p-1) + n: for subnormals q = qmin and
// the pattern is n; in binade e the quantum is q = e-p+1 and the biased
// exponent field is e+emax = q-qmin+1, and n = 2^(p-1) + mantissa; a carry
// n = 2^p rolls correctly into the next exponent. Patterns ≥ Inf overflow.
func (g grid) encode16(n uint64, q int) uint16 {
	v := uint32(q-g.qmin)<<uint(g.prec-1) + uint32(n)
	if v >= g.inf16 {
		v = g.inf16
	}
	return uint16(v)
}

// TestBF16FromF32Exhaustive checks BF16FromF32 for every float32 bit
// pattern, both roundings, against the integer reference.
//
// Catches: wrong tie rule (e.g. RNE implemented as ties-up, or Away as RNE),
// wrong carry into the exponent, overflow not producing ±Inf exactly at the
// IEEE threshold (0x1.ffp127 ties to Inf), Inf turned into NaN or vice
// versa, signalling NaN not quieted, NaN sign or payload lost, NaN rounded
// into Inf (the classic "add 0x7fff to 0x7f800001" bug), subnormals
// mishandled, -0 losing its sign. Also checks, for every x that is already a
// bf16 value, that BF16ToF32(BF16FromF32(x)) reproduces x bit for bit (catches
// a lossy or sign-dropping BF16ToF32), and for selected low halves (exact,
// just above/below/at the midpoint) that Round64(BF16, float64(x), r) agrees
// (catches the float64 path disagreeing with the float32 path).
//
// Runtime: about 27 CPU-seconds (≈15 s on 2 cores); skipped under -short.
func TestBF16FromF32Exhaustive(t *testing.T) {
	if testing.Short() {
		t.Skip("exhaustive 2^32 test skipped in -short mode")
	}
	log := &failLog{t: t}
	defer log.done()
	const chunkBits = 22
	g := tBF16.grid()
	// Quick: every 97th chunk of 2^22 patterns and the chunks of the
	// boundary binades (two chunks per binade, both signs).
	var chunks []uint32
	for c := uint32(0); c < 1<<(32-chunkBits); c++ {
		if longTests() || c%97 == 0 || boundaryExp32(c>>1&0xff, true) {
			chunks = append(chunks, c)
		}
	}
	parallelChunks(len(chunks), func(i int) {
		bf16Range(g, chunks[i]<<chunkBits, 1<<chunkBits, log)
	})
	if !longTests() {
		skipSampled(t, fmt.Sprintf("%d of %d chunks of 2^%d patterns", len(chunks), 1<<(32-chunkBits), chunkBits))
	}
}

// bf16Range checks n consecutive float32 patterns starting at lo. The hot
// path is kept small; anything unusual goes to out-of-line functions.
func bf16Range(g grid, lo uint32, n int, log *failLog) {
	b := lo
	for range n {
		x := math.Float32frombits(b)
		gotE := BF16FromF32(x, RNE)
		gotA := BF16FromF32(x, Away)
		if mag := b & 0x7fffffff; mag-1 < 0x7f800000-1 { // finite, nonzero
			wantE, wantA, exact, _ := g.ref16From32(b)
			if gotE != wantE || gotA != wantA {
				log.errorf("BF16FromF32(%#08x = %g): RNE %#04x want %#04x, Away %#04x want %#04x", b, x, gotE, wantE, gotA, wantA)
			}
			if exact {
				if rt := math.Float32bits(BF16ToF32(gotE)); rt != b {
					log.errorf("BF16ToF32(BF16FromF32(%#08x)) = %#08x, want round trip", b, rt)
				}
			}
		} else {
			checkBF16Special(b, gotE, gotA, log)
		}
		switch b & 0xffff {
		case 0x0000, 0x0001, 0x7fff, 0x8000, 0x8001, 0xffff:
			crossCheckRound64(tBF16, b, log)
		}
		b++
	}
}

// ref16From32 returns the correctly rounded RNE and Away bit patterns of the
// finite nonzero float32 with bits b in the 16-bit format g, and whether b
// is exactly representable (rem == 0) or a tie (rem == half).
//
// It is refSplit + refRound + encode16 specialised to float32 inputs and
// written without data-dependent branches (those mispredict on random
// remainders and made the exhaustive loop 3× slower);
// TestRef16From32MatchesRefSplit checks it against the general version.
func (g grid) ref16From32(b uint32) (wantE, wantA uint16, exact, tie bool) {
	sign := uint16(b>>16) & 0x8000
	M, k := decompose32(b)
	lead := max(bits.Len64(M)-1+k, g.emin) // exponent of |x|'s binade, clamped
	q := lead - g.prec + 1                 // exponent of the quantum there
	// q-k ≥ 1 because the target has fewer bits than float32; above 40 the
	// whole of M < 2^24 is below half a quantum, the same as for 40.
	sh := uint(min(q-k, 40))
	n := M >> sh
	rem := M & (1<<sh - 1)
	half := uint64(1) << (sh - 1)
	var gt, eq uint64
	if rem > half {
		gt = 1
	}
	if rem == half {
		eq = 1
	}
	nE := n + (gt | eq&n&1)
	nA := n + (gt | eq)
	base := uint32(q-g.qmin) << uint(g.prec-1)
	wantE = sign | uint16(min(base+uint32(nE), g.inf16))
	wantA = sign | uint16(min(base+uint32(nA), g.inf16))
	return wantE, wantA, rem == 0, eq == 1
}

// checkBF16Special checks ±0, ±Inf and NaN patterns.
//
//go:noinline
func checkBF16Special(b uint32, gotE, gotA uint16, log *failLog) {
	sign := uint16(b>>16) & 0x8000
	for _, got := range [2]uint16{gotE, gotA} {
		if b&0x7fffffff > 0x7f800000 { // NaN
			if got&0x7f80 != 0x7f80 || got&0x007f == 0 || got&0x0040 == 0 ||
				got&0x8000 != sign || got&0x3f != uint16(b>>16)&0x3f {
				log.errorf("BF16FromF32(NaN %#08x) = %#04x, want quiet NaN with same sign and top payload", b, got)
			}
			continue
		}
		if got != uint16(b>>16) { // ±0, ±Inf: the top half is already the answer
			log.errorf("BF16FromF32(%#08x) = %#04x, want %#04x", b, got, uint16(b>>16))
		}
		if rt := math.Float32bits(BF16ToF32(got)); rt != b {
			log.errorf("BF16ToF32(BF16FromF32(%#08x)) = %#08x, want round trip", b, rt)
		}
	}
}

// crossCheckRound64 checks Round64(t, float64(x), r) against the 16-bit
// reference for the float32 with bits b (t is tBF16 or tFP16).
//
//go:noinline
func crossCheckRound64(t tformat, b uint32, log *failLog) {
	x := math.Float32frombits(b)
	for _, r := range roundings {
		want := t.grid().refRound64(float64(x), r)
		if got := Round64(t.f, float64(x), r); !sameFloat(got, want) {
			log.errorf("Round64(%s, %#08x = %g, %v) = %g, want %g", t.name, b, x, r, got, want)
		}
	}
}

// TestFP16FromF32Exhaustive checks FP16FromF32 (both roundings) against the
// integer reference for every float32 whose exponent can give a result
// other than ±0 or ±Inf (|x| in [2^-26, 2^17), 2·43·2^23 patterns), plus all
// Inf/NaN patterns, and a strided sample (every 61st pattern) of the rest.
// Away results must also agree with x448/float16 (RNE) whenever the input
// is not a tie, and Round32(FP16, x, r) must equal the widened result
// (checked on every 8th pattern, it is the slow path).
//
// Runtime: about 25 CPU-seconds (≈15 s on 2 cores); skipped under -short.
//
// Catches: FP16FromF32 Away returning the rounded *value* converted to an
// integer instead of its bit pattern; wrong tie rule in either mode; wrong
// overflow threshold (65520 → Inf, 65519.996 → 65504); subnormal rounding
// errors (2^-25 is a tie: RNE → 0, Away → 2^-24); sign loss on -0 or on
// negative underflow; NaN not quiet or sign dropped.
func TestFP16FromF32Exhaustive(t *testing.T) {
	if testing.Short() {
		t.Skip("exhaustive float32 → fp16 test skipped in -short mode")
	}
	log := &failLog{t: t}
	defer log.done()
	var checked atomic.Int64
	g := tFP16.grid()
	// chunk c: sign = c>>8, biased float32 exponent = c&0xff.
	parallelChunks(512, func(c int) {
		e := c & 0xff
		step := uint32(61)
		if (e >= 101 && e <= 143) || e == 0xff {
			step = 1
			if !longTests() {
				// quick: every 13th pattern in the boundary binades
				// (odd, so all residues of the low bits), every 61st
				// elsewhere
				step = 61
				if boundaryExp32(uint32(e), false) {
					step = 13
				}
			}
		} else if !longTests() {
			step = 1031
		}
		base := uint32(c) << 23
		var cnt int64
		for i := uint32(0); i < 1<<23; i += step {
			checkFP16Bits(g, base|i, i%8 == 0, log)
			cnt++
		}
		// The ends of every binade are always included.
		for _, i := range [...]uint32{1, 1<<22 - 1, 1 << 22, 1<<22 + 1, 1<<23 - 1} {
			checkFP16Bits(g, base|i, true, log)
			cnt++
		}
		checked.Add(cnt)
	})
	t.Logf("checked %d float32 patterns", checked.Load())
	if !longTests() {
		skipSampled(t, fmt.Sprintf("%d patterns", checked.Load()))
	}
}

func checkFP16Bits(g grid, b uint32, withRound32 bool, log *failLog) {
	x := math.Float32frombits(b)
	gotE := FP16FromF32(x, RNE)
	gotA := FP16FromF32(x, Away)
	sign := uint16(b>>16) & 0x8000
	mag := b & 0x7fffffff
	var wantE, wantA uint16
	tie := false
	switch {
	case mag > 0x7f800000:
		for _, g := range [2]uint16{gotE, gotA} {
			if g&0x7c00 != 0x7c00 || g&0x03ff == 0 || g&0x0200 == 0 || g&0x8000 != sign {
				log.errorf("FP16FromF32(NaN %#08x) = %#04x, want quiet NaN with same sign", b, g)
			}
		}
		if withRound32 {
			for _, r := range roundings {
				if y := Round32(FP16, x, r); y == y {
					log.errorf("Round32(fp16, NaN %#08x, %v) = %g, want NaN", b, r, y)
				}
			}
		}
		return
	case mag == 0x7f800000:
		wantE, wantA = sign|0x7c00, sign|0x7c00
	case mag == 0:
		wantE, wantA = sign, sign
	default:
		M, k := decompose32(b)
		n, q, c := g.refSplit(M, k)
		wantE = sign | g.encode16(refRound(n, c, RNE), q)
		wantA = sign | g.encode16(refRound(n, c, Away), q)
		tie = c == clsTie
	}
	if gotE != wantE || gotA != wantA {
		log.errorf("FP16FromF32(%#08x = %g): RNE %#04x want %#04x, Away %#04x want %#04x", b, x, gotE, wantE, gotA, wantA)
		return
	}
	if !tie {
		if h := uint16(float16.Fromfloat32(x)); gotA != h {
			log.errorf("FP16FromF32(%#08x = %g, away) = %#04x, x448 (not a tie) = %#04x", b, x, gotA, h)
		}
	}
	if withRound32 {
		for _, r := range roundings {
			want := wantE
			if r == Away {
				want = wantA
			}
			if got, w := float64(Round32(FP16, x, r)), decodeFP16(want); !sameFloat(got, w) {
				log.errorf("Round32(fp16, %#08x = %g, %v) = %g, want %g", b, x, r, got, w)
			}
		}
	}
	switch b & 0x1fff {
	case 0x0000, 0x0001, 0x0fff, 0x1000, 0x1001, 0x1fff:
		for _, r := range roundings {
			want := wantE
			if r == Away {
				want = wantA
			}
			if got, w := Round64(FP16, float64(x), r), decodeFP16(want); !sameFloat(got, w) {
				log.errorf("Round64(fp16, %#08x = %g, %v) = %g, want %g", b, x, r, got, w)
			}
		}
	}
}

// TestBF16AllPatterns checks every bf16 bit pattern: BF16ToF32 decodes it
// as the IEEE field layout says, and BF16FromF32 maps the widened value back
// to the same pattern (NaNs to a quiet NaN with the same sign). Catches a
// BF16ToF32 that shifts wrongly or drops the sign, and a BF16FromF32 that
// perturbs values that need no rounding.
func TestBF16AllPatterns(t *testing.T) {
	for h := range 1 << 16 {
		h := uint16(h)
		w := BF16ToF32(h)
		if want := decodeBF16(h); !sameFloat(float64(w), want) {
			t.Fatalf("BF16ToF32(%#04x) = %g, want %g", h, w, want)
		}
		for _, r := range roundings {
			got := BF16FromF32(w, r)
			want := h
			if h&0x7fff > 0x7f80 {
				want = h | 0x40
			}
			if got != want {
				t.Fatalf("BF16FromF32(BF16ToF32(%#04x), %v) = %#04x, want %#04x", h, r, got, want)
			}
		}
	}
}

// TestFP16AllPatterns is the binary16 analogue of TestBF16AllPatterns for
// FP16ToF32/FP16FromF32 (both roundings) and Round32. Catches FP16FromF32
// Away returning anything but the identical bit pattern for an fp16 value
// (the "uint16(value)" bug fails at 1.0 → 0x0001 instead of 0x3c00).
func TestFP16AllPatterns(t *testing.T) {
	for h := range 1 << 16 {
		h := uint16(h)
		w := FP16ToF32(h)
		if want := decodeFP16(h); !sameFloat(float64(w), want) {
			t.Fatalf("FP16ToF32(%#04x) = %g, want %g", h, w, want)
		}
		isNaN := h&0x7fff > 0x7c00
		for _, r := range roundings {
			got := FP16FromF32(w, r)
			if isNaN {
				if got&0x7c00 != 0x7c00 || got&0x200 == 0 || got&0x8000 != h&0x8000 {
					t.Fatalf("FP16FromF32(NaN %#04x, %v) = %#04x, want quiet NaN, same sign", h, r, got)
				}
				continue
			}
			if got != h {
				t.Fatalf("FP16FromF32(FP16ToF32(%#04x) = %g, %v) = %#04x, want %#04x", h, w, r, got, h)
			}
			if y := Round32(FP16, w, r); math.Float32bits(y) != math.Float32bits(w) {
				t.Fatalf("Round32(fp16, %g, %v) = %g, want unchanged", w, r, y)
			}
		}
	}
}
