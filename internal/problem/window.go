package problem

import "fmt"

// Window is causal sliding-window prefill attention (SPEC.md §2).
const Window Family = "window"

// The window family (SPEC.md §2): causal sliding-window prefill, k and v
// rows by position, GQA.
var _ = register(Window, &spec{
	rank:       1,
	refKeys:    (*Inputs).windowKeys,
	kernelKeys: (*Inputs).windowKeys,
	check: func(in *Inputs) error {
		if in.W < 0 {
			return fmt.Errorf("window %d is negative", in.W)
		}
		if err := wantLen("k", len(in.K), in.T*in.Hkv*in.D); err != nil {
			return err
		}
		return wantLen("v", len(in.V), in.T*in.Hkv*in.Dv)
	},
	violations:   func(*Inputs, func(string, int, string, ...any)) {},
	keySources:   kvSources,
	keysPerToken: positionalKeys,
	distinctKeys: true,
})

// kvSources are the key tensors k and v (window, dense).
func kvSources(in *Inputs) (ks, vs [][]float32) { return [][]float32{in.K}, [][]float32{in.V} }

// WindowRange is the key positions [lo, t] query t attends in the window family.
func (in *Inputs) WindowRange(t int) (lo, hi int) {
	lo = 0
	if in.W > 0 {
		lo = max(0, t-in.W+1)
	}
	return lo, t
}

func (in *Inputs) windowKeys(t, g int, dst []Key) []Key {
	lo, hi := in.WindowRange(t)
	for j := lo; j <= hi; j++ {
		kr := (j*in.Hkv + g)
		dst = append(dst, Key{K: in.K[kr*in.D : (kr+1)*in.D], V: in.V[kr*in.Dv : (kr+1)*in.Dv]})
	}
	return dst
}
