package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

type rowKey struct {
	K, V []float32
	pad  float64
}

// TestAxpyRows32MatchesGo: AxpyRows32 and the key-after-key float32 loop
// give the same bits, on 0-140 keys, every length mod 32, special values.
func TestAxpyRows32MatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 11))
	for trial := range 3000 {
		n := r.IntN(70)
		if trial%10 == 0 {
			n = 32 * r.IntN(9)
		}
		nk := r.IntN(141)
		sp := specialShares[trial%len(specialShares)]
		keys := make([]rowKey, nk)
		p := draw32(r, nk, sp)
		for c := range keys {
			keys[c].V = draw32(r, n+r.IntN(3), sp)
		}
		o := draw32(r, n, sp)
		want := append([]float32(nil), o...)
		for c := range keys {
			for j := range want {
				want[j] = want[j] + float32(p[c]*keys[c].V[j])
			}
		}
		got := append([]float32(nil), o...)
		done := 0
		if nk > 0 {
			done = AxpyRows32(p, unsafe.Pointer(&keys[0].V), unsafe.Sizeof(keys[0]), got)
		}
		if useAsm && nk > 0 && done != n&^7 {
			t.Fatalf("trial %d: did %d of %d", trial, done, n)
		}
		for j := done; j < n; j++ {
			for c := range keys {
				got[j] = got[j] + float32(p[c]*keys[c].V[j])
			}
		}
		for j := range want {
			g, w := got[j], want[j]
			if math.Float32bits(g) != math.Float32bits(w) && !(g != g && w != w) {
				t.Fatalf("%s: o[%d] = %v, want %v", fmt.Sprintf("trial %d n %d keys %d", trial, n, nk), j, g, w)
			}
		}
	}
}
