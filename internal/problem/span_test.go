package problem

import (
	"math/rand/v2"
	"testing"
)

// sameKeys compares two key lists view by view (the same tensor element,
// the same length) and field by field.
func sameKeys(a, b []Key) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if len(x.K) != len(y.K) || len(x.V) != len(y.V) || x.Dist != y.Dist || x.Bias != y.Bias {
			return false
		}
		if len(x.K) > 0 && &x.K[0] != &y.K[0] || len(x.V) > 0 && &x.V[0] != &y.V[0] {
			return false
		}
	}
	return true
}

// TestKeySpanMatchesGather: on window problems of every shape (windows
// shorter than, equal to and longer than T, full causal, GQA), the run
// KeySpan gives of SpanKeys(g) is RefKeys(t, g) and KernelKeys(t, g) view
// for view; families without spans say so.
func TestKeySpanMatchesGather(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 9))
	for trial := range 300 {
		hkv := 1 + r.IntN(3)
		in := &Inputs{Family: Window, T: r.IntN(40), H: hkv * (1 + r.IntN(3)), Hkv: hkv, D: 1 + r.IntN(5), Dv: 1 + r.IntN(5), W: r.IntN(45)}
		in.K = make([]float32, in.T*in.Hkv*in.D)
		in.V = make([]float32, in.T*in.Hkv*in.Dv)
		var span []Key
		for g := range in.Hkv {
			span = in.SpanKeys(g, span)
			for tok := range in.T {
				lo, hi, ok := in.KeySpan(tok)
				if !ok {
					t.Fatalf("trial %d: window family without a span", trial)
				}
				if !sameKeys(span[lo:hi], in.RefKeys(tok, g, nil)) || !sameKeys(span[lo:hi], in.KernelKeys(tok, g, nil)) {
					t.Fatalf("trial %d (T=%d W=%d Hkv=%d): token %d head %d: span [%d, %d) is not the gathered list", trial, in.T, in.W, in.Hkv, tok, g, lo, hi)
				}
			}
		}
	}
	for _, f := range Families() {
		if _, _, ok := (&Inputs{Family: f, T: 1}).KeySpan(0); ok != (f == Window) {
			t.Errorf("family %s: KeySpan ok = %v", f, ok)
		}
	}
}
