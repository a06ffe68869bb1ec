package vec

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"
)

// TestRowsKernelsMatchGo: DotRows and AxpyRows give the bits of dot2Go and
// of axpy2Go key after key, for 0-41 keys (every remainder mod 4) and
// lengths 1-80 (every remainder mod 4 and mod 8, with and without a lane
// loop), on inputs with and without NaN, ±Inf,
// ±0 and subnormals; and they decline what they cannot do.
func TestRowsKernelsMatchGo(t *testing.T) {
	if !useAsm {
		if DotRows(make([]float64, 4), nil, 0, nil, nil) || AxpyRows(nil, nil, 0, make([]float64, 4), make([]float64, 4)) {
			t.Fatal("the pure-Go build claims the assembly kernels")
		}
		t.Skip("no assembly kernels on this CPU/architecture")
	}
	r := rand.New(rand.NewPCG(15, 5))
	for trial := range 3000 {
		d := 1 + r.IntN(80)
		nk := r.IntN(42)
		sp := specialShares[trial%len(specialShares)]
		name := fmt.Sprintf("trial %d d %d keys %d special %.2f", trial, d, nk, sp)
		q := draw64(r, d, sp)
		keys := make([]rowKey, nk)
		for i := range keys {
			keys[i].K = draw32(r, d+r.IntN(3), sp) // rows may be longer
			keys[i].V = draw32(r, d+r.IntN(3), sp)
		}
		var kp, vp unsafe.Pointer
		if nk > 0 {
			kp, vp = unsafe.Pointer(&keys[0].K), unsafe.Pointer(&keys[0].V)
		}
		dot, abs := make([]float64, nk), make([]float64, nk)
		if !DotRows(q, kp, unsafe.Sizeof(rowKey{}), dot, abs) {
			t.Fatalf("%s: DotRows declined", name)
		}
		for i := range keys {
			wd, wa := dot2Go(q, keys[i].K)
			same(t, fmt.Sprintf("%s key %d", name, i), []float64{dot[i], abs[i]}, []float64{wd, wa})
		}
		p := draw64(r, nk, sp)
		o, absV := draw64(r, d, sp), draw64(r, d, sp)
		wo, wabs := slices.Clone(o), slices.Clone(absV)
		if !AxpyRows(p, vp, unsafe.Sizeof(rowKey{}), o, absV) {
			t.Fatalf("%s: AxpyRows declined", name)
		}
		for i := range keys {
			axpy2Go(p[i], keys[i].V, wo, wabs)
		}
		same(t, name+" o", o, wo)
		same(t, name+" absV", absV, wabs)
	}
	if DotRows(nil, nil, 0, nil, nil) || AxpyRows(nil, nil, 0, nil, nil) {
		t.Fatal("an empty row was taken")
	}
}
