package quant

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// longTests reports whether the all-2^32 tests run: ATTNVET_LONG=1 (the
// project convention; CI sets it in a separate step).
func longTests(t *testing.T) {
	t.Helper()
	if os.Getenv("ATTNVET_LONG") != "1" {
		t.Skip("set ATTNVET_LONG=1 for the exhaustive all-float32 tests (TestRoundSampled is the fast version)")
	}
}

// partRange returns the chunks [first, last) of n to check:
// ATTNVET_LONG_PART=i/k selects the i-th of k equal parts (1-based), so a
// loaded machine can run the exhaustive test in pieces; unset = all.
func partRange(t *testing.T, n int64) (first, last int64) {
	p := os.Getenv("ATTNVET_LONG_PART")
	if p == "" {
		return 0, n
	}
	var i, k int64
	if _, err := fmt.Sscanf(p, "%d/%d", &i, &k); err != nil || k < 1 || i < 1 || i > k || n%k != 0 {
		t.Fatalf("ATTNVET_LONG_PART=%q: want i/k with 1 ≤ i ≤ k and k dividing %d", p, n)
	}
	return (i - 1) * n / k, i * n / k
}

// sweeper walks increasing nonnegative float64 values and returns the
// reference magnitude code of each in O(1) amortised: it keeps lo with
// vals[lo] ≤ v < vals[lo+1].
type sweeper struct {
	t  *refTable
	lo int
}

func (s *sweeper) start(v float64) {
	s.lo = max(sort.SearchFloat64s(s.t.vals, v)-1, 0)
}

func (s *sweeper) code(v float64) uint32 {
	last := len(s.t.vals) - 1
	for s.lo < last && s.t.vals[s.lo+1] <= v {
		s.lo++
	}
	switch {
	case s.lo == last:
		return uint32(last)
	case s.t.vals[s.lo] == v:
		return uint32(s.lo)
	}
	return s.t.pick(s.lo, cmpF(v, s.t.mids[s.lo]))
}

// expect8 turns a reference magnitude code into the expected byte.
func expect8(f refFormat, c uint32, neg bool, ov Overflow) uint8 {
	sign := uint8(0)
	if neg {
		sign = 0x80
	}
	if c > f.maxCode {
		switch {
		case ov == Saturate:
			c = f.maxCode
		case f.infCode >= 0:
			c = uint32(f.infCode)
		default:
			c = 0x7f
		}
	}
	return sign | uint8(c)
}

// TestRoundExhaustive checks every float32 bit pattern's rounding to
// e4m3fn, e5m2, e2m1 and INT8, both signs and both overflow modes, against
// the sorted-values reference, and the float64 encoders on the same values.
// Catches everything TestRoundSampled does, on every input: ties rounding
// up or away, a wrong tie at the overflow edge (464, 61440, 7), carries
// into the exponent, subnormal boundaries, float32 subnormal inputs, NaN
// payloads becoming numbers, −0 losing its sign.
func TestRoundExhaustive(t *testing.T) {
	longTests(t)
	start := time.Now()
	const chunks = 256
	const per = 1 << 31 / chunks // magnitudes 0 … 2^31−1: finite, Inf and NaN
	first, last := partRange(t, chunks)
	var fails atomic.Int64
	report := func(format string, args ...any) {
		if fails.Add(1) <= 20 {
			t.Errorf(format, args...)
		}
	}
	var next, done atomic.Int64
	next.Store(first)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				ch := next.Add(1) - 1
				if ch >= last {
					return
				}
				checkMagnitudes(uint32(ch*per), uint32((ch+1)*per), report)
				if done := done.Add(1); done%32 == 0 {
					t.Logf("%d/%d chunks of [%d, %d) after %v", done, last-first, first, last, time.Since(start).Round(time.Second))
				}
			}
		})
	}
	wg.Wait()
	if n := fails.Load(); n > 0 {
		t.Errorf("%d failures in total", n)
	}
	t.Logf("chunks [%d, %d) of %d (2^32 float32 inputs in all) × (e4m3fn, e5m2, e2m1) × 2 overflow modes + int8 in %v on %d goroutines",
		first, last, chunks, time.Since(start).Round(time.Second), runtime.GOMAXPROCS(0))
}

func checkSpecial(x float32, report func(string, ...any)) {
	neg := math.Signbit(float64(x))
	var sign uint8
	if neg {
		sign = 0x80
	}
	if math.IsNaN(float64(x)) {
		for _, ov := range [2]Overflow{Saturate, NoSaturate} {
			if got := E4M3FromF32(x, ov); got != sign|0x7f {
				report("e4m3 NaN %#08x: got %#02x", math.Float32bits(x), got)
			}
			if got := E5M2FromF32(x, ov); got != sign|0x7f {
				report("e5m2 NaN %#08x: got %#02x", math.Float32bits(x), got)
			}
			if _, ok := E2M1FromF32(x, ov); ok {
				report("e2m1 NaN %#08x: ok", math.Float32bits(x))
			}
		}
		if Int8FromF32(x) != 0 {
			report("int8 NaN %#08x", math.Float32bits(x))
		}
		return
	}
	if E4M3FromF32(x, Saturate) != sign|0x7e || E4M3FromF32(x, NoSaturate) != sign|0x7f ||
		E5M2FromF32(x, Saturate) != sign|0x7b || E5M2FromF32(x, NoSaturate) != sign|0x7c {
		report("Inf %v wrong", x)
	}
}

// checkMagnitudes checks the float32 magnitudes [lo, hi) and their
// negations.
func checkMagnitudes(lo, hi uint32, report func(string, ...any)) {
	s4, s5, s2 := &sweeper{t: tabE4M3}, &sweeper{t: tabE5M2}, &sweeper{t: tabE2M1}
	first := math.Float32frombits(lo)
	if lo < 0x7f800000 {
		s4.start(float64(first))
		s5.start(float64(first))
		s2.start(float64(first))
	}
	for a := lo; a < hi; a++ {
		x := math.Float32frombits(a)
		nx := -x
		if a >= 0x7f800000 { // Inf, NaN
			checkSpecial(x, report)
			checkSpecial(nx, report)
			continue
		}
		v := float64(x)
		c4, c5, c2 := s4.code(v), s5.code(v), s2.code(v)
		for _, ov := range [2]Overflow{Saturate, NoSaturate} {
			if got, want := E4M3FromF32(x, ov), expect8(refE4M3, c4, false, ov); got != want {
				report("e4m3 %#08x %v: got %#02x want %#02x", a, ov, got, want)
			}
			if got, want := E4M3FromF32(nx, ov), expect8(refE4M3, c4, true, ov); got != want {
				report("e4m3 -%#08x %v: got %#02x want %#02x", a, ov, got, want)
			}
			if got, want := E5M2FromF32(x, ov), expect8(refE5M2, c5, false, ov); got != want {
				report("e5m2 %#08x %v: got %#02x want %#02x", a, ov, got, want)
			}
			if got, want := E5M2FromF32(nx, ov), expect8(refE5M2, c5, true, ov); got != want {
				report("e5m2 -%#08x %v: got %#02x want %#02x", a, ov, got, want)
			}
			want2, wok := uint8(c2), true
			if c2 > 7 {
				want2, wok = 7, ov == Saturate
			}
			if got, ok := E2M1FromF32(x, ov); got != want2 || ok != wok {
				report("e2m1 %#08x %v: got %d,%v want %d,%v", a, ov, got, ok, want2, wok)
			}
			if got, ok := E2M1FromF32(nx, ov); got != want2|8 || ok != wok {
				report("e2m1 -%#08x %v: got %d,%v want %d,%v", a, ov, got, ok, want2|8, wok)
			}
		}
		if E4M3FromF64(v, NoSaturate) != expect8(refE4M3, c4, false, NoSaturate) ||
			E5M2FromF64(-v, NoSaturate) != expect8(refE5M2, c5, true, NoSaturate) {
			report("float64 encoder disagrees at %#08x", a)
		}
		if got, want := Int8FromF32(x), refInt8(v); got != want {
			report("int8 %#08x: got %d want %d", a, got, want)
		}
		if got, want := Int8FromF32(nx), refInt8(-v); got != want {
			report("int8 -%#08x: got %d want %d", a, got, want)
		}
	}
}

// TestRoundExhaustiveSlice runs the exhaustive checker on 2^20 magnitudes
// around 1.0 and the e4m3/e5m2 subnormal edges in the fast suite, so the
// checker itself is exercised on every run.
func TestRoundExhaustiveSlice(t *testing.T) {
	start := time.Now()
	var fails atomic.Int64
	report := func(format string, args ...any) {
		if fails.Add(1) <= 20 {
			t.Errorf(format, args...)
		}
	}
	n := 0
	for _, v := range []float32{1, 0x1p-9, 0x1p-16, 448, 57344, 6} {
		b := math.Float32bits(v)
		checkMagnitudes(b-1<<17, b+1<<17, report)
		n += 1 << 18
	}
	checkMagnitudes(0x7f800000-1<<10, 0x7f800000+1<<10, report) // max float32, Inf, NaNs
	n += 1 << 11
	el := time.Since(start)
	t.Logf("%d magnitudes in %v (%.1f ns each, both signs)", n, el, float64(el.Nanoseconds())/float64(n))
}
