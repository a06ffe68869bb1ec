package problem

import "fmt"

// MLA is FlashMLA's sparse decode: indices into a paged cache of one KV
// head, V the first d_v columns of K (docs/kernels.md §7).
const MLA Family = "mla"

var _ = register(MLA, &spec{
	rank: 4,
	refKeys: func(in *Inputs, t, _ int, dst []Key) []Key {
		return in.mlaKeys(t, dst, false)
	},
	kernelKeys: func(in *Inputs, t, _ int, dst []Key) []Key {
		return in.mlaKeys(t, dst, true)
	},
	check:      (*Inputs).checkMLA,
	violations: (*Inputs).mlaViolations,
	keySources: func(in *Inputs) (ks, vs [][]float32) {
		p := [][]float32{in.Cache, in.ExtraCache}
		return p, p
	},
	sharedKV:     true,
	keysPerToken: func(in *Inputs) int { return in.TopK + in.ExtraTopK },
})

// VIndexRange: an mla index other than −1 outside the cache (FlashMLA's
// decode reads it as an address: unsigned division).
const VIndexRange = "index_out_of_range"

// MLAScope is one scope's view of token t: its index row, the number of
// leading entries read, and its cache.
func (in *Inputs) MLAScope(t int, extra bool) (idx []int32, n int, cache []float32) {
	b := t / in.S
	if extra {
		if in.ExtraTopK == 0 {
			return nil, 0, nil
		}
		idx, n, cache = in.ExtraIdx[t*in.ExtraTopK:(t+1)*in.ExtraTopK], in.ExtraTopK, in.ExtraCache
		if in.ExtraTopkLen != nil {
			n = min(n, max(int(in.ExtraTopkLen[b]), 0))
		}
		return idx, n, cache
	}
	idx, n, cache = in.Idx[t*in.TopK:(t+1)*in.TopK], in.TopK, in.Cache
	if in.TopkLen != nil {
		n = min(n, max(int(in.TopkLen[b]), 0))
	}
	return idx, n, cache
}

// mlaKeys gathers token t's keys: the entries c < topk (and < topk_length)
// of both scopes whose index is not −1, as a multiset; V is the first Dv
// columns of each row. An index outside its cache is skipped by the
// reference and read as a NaN row by the kernel (positional).
func (in *Inputs) mlaKeys(t int, dst []Key, kernel bool) []Key {
	for _, extra := range []bool{false, true} {
		idx, n, cache := in.MLAScope(t, extra)
		rows := len(cache) / in.D
		for _, r := range idx[:n] {
			if r == -1 {
				continue
			}
			if r < 0 || int(r) >= rows {
				if kernel {
					p := in.Poison()
					dst = append(dst, Key{K: p[:in.D], V: p[:in.Dv]})
				}
				continue
			}
			row := cache[int(r)*in.D : (int(r)+1)*in.D]
			dst = append(dst, Key{K: row, V: row[:in.Dv]})
		}
	}
	return dst
}

func (in *Inputs) checkMLA() error {
	if in.Hkv != 1 || in.Dv > in.D {
		return fmt.Errorf("mla family: one KV head with d_v ≤ d_qk (got Hkv=%d, d_v=%d, d_qk=%d)", in.Hkv, in.Dv, in.D)
	}
	if in.B < 1 || in.S < 1 || in.T != in.B*in.S {
		return fmt.Errorf("T=%d is not b·s_q with b=%d, s_q=%d", in.T, in.B, in.S)
	}
	if in.TopK < 0 || in.ExtraTopK < 0 {
		return fmt.Errorf("topk %d / extra topk %d: want ≥ 0", in.TopK, in.ExtraTopK)
	}
	if len(in.Cache)%in.D != 0 || len(in.ExtraCache)%in.D != 0 {
		return fmt.Errorf("tensor k_cache: %d values is not a whole number of rows of width %d", len(in.Cache), in.D)
	}
	if err := wantLen("indices", len(in.Idx), in.T*in.TopK); err != nil {
		return err
	}
	if err := wantLen("extra_indices", len(in.ExtraIdx), in.T*in.ExtraTopK); err != nil {
		return err
	}
	for name, l := range map[string][]int32{"topk_length": in.TopkLen, "extra_topk_length": in.ExtraTopkLen} {
		if l != nil {
			if err := wantLen(name, len(l), in.B); err != nil {
				return err
			}
		}
	}
	return nil
}

// mlaViolations reports indices the device would read out of bounds.
func (in *Inputs) mlaViolations(add func(string, int, string, ...any)) {
	for t := 0; t < in.T; t++ {
		for _, extra := range []bool{false, true} {
			idx, n, cache := in.MLAScope(t, extra)
			rows := len(cache) / in.D
			for c, r := range idx[:n] {
				if r != -1 && (r < 0 || int(r) >= rows) {
					name := "indices"
					if extra {
						name = "extra_indices"
					}
					add(VIndexRange, t, "%s[%d] = %d: only −1 is invalid, and the cache has %d rows", name, c, r, rows)
					break
				}
			}
		}
	}
}
