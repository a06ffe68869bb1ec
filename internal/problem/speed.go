package problem

import "math"

// KeySources lists the tensors that the K views (ks) and the V views (vs)
// of RefKeys and KernelKeys point into, poison rows aside, for the
// families where that is a fixed set of tensors; ok is false for the
// others. Fast paths use it to decide for all keys at once what would
// otherwise take a gather per query row: if every source tensor is finite,
// no attended key holds NaN or ±Inf (TestKeySourcesCoverKeys checks the
// lists against the gathers on every family).
func (in *Inputs) KeySources() (ks, vs [][]float32, ok bool) {
	if src := in.spec().keySources; src != nil {
		ks, vs = src(in)
		return ks, vs, true
	}
	return nil, nil, false
}

// AllFinite reports whether no element of xs is NaN or ±Inf.
func AllFinite(xs []float32) bool {
	const expMask = 0x7f800000 // non-finite iff the exponent bits are all ones
	for _, x := range xs {
		if math.Float32bits(x)&expMask == expMask {
			return false
		}
	}
	return true
}

// keysFinite reports whether every key and value any query attends is
// known to be finite without gathering them: the family's key tensors are
// fixed (KeySources) and hold no NaN or ±Inf.
func (in *Inputs) keysFinite() bool {
	ks, vs, ok := in.KeySources()
	if !ok {
		return false
	}
	for _, t := range ks {
		if !AllFinite(t) {
			return false
		}
	}
	if in.spec().sharedKV {
		return true // vs are ks
	}
	for _, t := range vs {
		if !AllFinite(t) {
			return false
		}
	}
	return true
}
