package cases

import (
	"math/rand/v2"
	"testing"
)

// TestPCGMatchesStdlib: pcg gives rand.PCG's outputs for the same seeds,
// one draw at a time and four at a time, interleaved, 10^5 draws per seed.
func TestPCGMatchesStdlib(t *testing.T) {
	for _, seed := range []uint64{0, 1, 42, 1<<63 + 12345, ^uint64(0)} {
		want := rand.NewPCG(seed, 0x6174746e76657421)
		got := &pcg{seed, 0x6174746e76657421}
		for i := 0; i < 100000; {
			if i%7 < 3 {
				if g, w := got.Uint64(), want.Uint64(); g != w {
					t.Fatalf("seed %d draw %d: %#x, want %#x", seed, i, g, w)
				}
				i++
				continue
			}
			a, b, c, d := got.uint64x4()
			for k, g := range []uint64{a, b, c, d} {
				if w := want.Uint64(); g != w {
					t.Fatalf("seed %d draw %d (of four): %#x, want %#x", seed, i+k, g, w)
				}
			}
			i += 4
		}
	}
}
