package problem

// KeySpan reports whether the keys token t sees are, under both the
// reference and the kernel semantics and through every KV head g, the run
// [lo, hi) of one list per KV head (SpanKeys(g)), in RefKeys' order; ok is
// false for the families where they are not. In the window family token t
// attends rows WindowRange(t) of K and V: gathering them per token costs
// O(n) per query row, taking the run of a list gathered once costs
// nothing (TestKeySpanMatchesGather).
func (in *Inputs) KeySpan(t int) (lo, hi int, ok bool) {
	if in.Family != Window {
		return 0, 0, false
	}
	lo, last := in.WindowRange(t)
	return lo, last + 1, true
}

// SpanKeys appends to dst[:0] the list KeySpan indexes for KV head g: the
// keys of rows 0..T−1 (window family), views into K and V as RefKeys
// gives them.
func (in *Inputs) SpanKeys(g int, dst []Key) []Key {
	dst = dst[:0]
	if in.Family != Window {
		return dst
	}
	if cap(dst) < in.T {
		dst = make([]Key, 0, in.T)
	}
	dst = dst[:in.T]
	for j := range dst {
		kr := j*in.Hkv + g
		k := &dst[j]
		k.K = in.K[kr*in.D : (kr+1)*in.D]
		k.V = in.V[kr*in.Dv : (kr+1)*in.Dv]
		k.Dist, k.Bias = 0, 0
	}
	return dst
}
