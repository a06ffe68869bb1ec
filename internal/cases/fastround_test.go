package cases

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/attnvet/attnvet/internal/num"
)

// TestRoundBF16MatchesNum: round gives num.Round64's bits for every format
// on random magnitudes across the whole float64 range, ties, the BF16
// limits and specials.
func TestRoundBF16MatchesNum(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 12))
	specials := []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(), 0x1.fep127, 0x1.ffp127, 0x1.fefffffffffffp127,
		-0x1.ffp127, 0x1p-126, 0x1.0000000000001p-126, 0x1.fffffffffffffp-127, 0x1p-133, 0x1p-134, 1 + 0x1p-8, 1 + 0x1p-8 + 0x1p-52, 1 + 3*0x1p-8}
	for i := range 2_000_000 {
		var x float64
		switch {
		case i < len(specials):
			x = specials[i]
		case i%3 == 0:
			x = math.Float64frombits(r.Uint64())
		default:
			x = (r.Float64()*2 - 1) * math.Ldexp(1, r.IntN(300)-150)
		}
		for _, f := range []num.Format{num.BF16, num.FP16, num.FP32, num.FP64} {
			got, want := round(f, x), num.Round64(f, x, num.RNE)
			if math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
				t.Fatalf("%s: round(%v) = %v, num.Round64 %v", f, x, got, want)
			}
		}
	}
}
