package num

import (
	"math"
	"runtime"
	"sync"
	"testing"

	"github.com/x448/float16"
)

// TestRoundFP16FastExhaustive checks the bit-manipulation FP16 rounding of
// Round32 against x448/float16 for every float32 (NaNs: both NaN).
func TestRoundFP16FastExhaustive(t *testing.T) {
	if testing.Short() {
		t.Skip("exhaustive: 2^32 inputs")
	}
	w := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := 0
	for k := 0; k < w; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			local := 0
			for i := uint64(k); i < 1<<32; i += uint64(w) {
				// Quick: every 13th pattern (per goroutine) in the
				// boundary binades, every 613th elsewhere.
				if !longTests() {
					if boundaryExp32(uint32(i>>23)&0xff, false) {
						i += 12 * uint64(w)
					} else {
						i += 612 * uint64(w)
					}
					if i >= 1<<32 {
						break
					}
				}
				x := math.Float32frombits(uint32(i))
				got := roundFP16RNE(x)
				want := float16.Fromfloat32(x).Float32()
				if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
					if local < 5 {
						mu.Lock()
						t.Errorf("roundFP16RNE(%#08x = %g) = %g, x448 gives %g", uint32(i), x, got, want)
						mu.Unlock()
					}
					local++
				}
			}
			mu.Lock()
			bad += local
			mu.Unlock()
		}(k)
	}
	wg.Wait()
	if bad > 0 {
		t.Fatalf("%d mismatches", bad)
	}
	if !longTests() {
		skipSampled(t, "every 5th pattern in the boundary binades, every 613th elsewhere")
	}
}
