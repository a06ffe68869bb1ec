package cases

import (
	"fmt"
	"math"

	"github.com/attnvet/attnvet/internal/problem"
)

// The mla family's cases (FlashMLA sparse decode): b batches of s tokens,
// topk indices into paged caches, an optional extra scope, quantized
// caches (quant.go).
var _ = registerFamily(&family{
	validate: Case.validateMLA,
	elements: func(c Case) int {
		return c.Tokens()*(c.H*c.D+c.TopK+c.ExtraTopK) + (mlaRows(c.TopK, c.blockSize())+mlaRows(c.ExtraTopK, c.blockSize()))*c.D
	},
	tokens: batchTokens,
	hkv:    oneKV,
	dv:     dvOrD,
	generate: func(c Case, in *problem.Inputs, r *rng, vg *valueGen) error {
		c.mla(in, r, vg)
		if c.KVLayout != "" {
			return c.mlaQuantize(in, r)
		}
		return nil
	},
	specialKeys: Case.Tokens,
	shape:       tWindowShape,
	rowNote:     noRowNote,
	keySources:  rankedKeys,
}, problem.MLA)

func (c Case) validateMLA() error {
	s := c.tokensPerBatch()
	if c.B < 1 || s < 1 || c.B*s > maxTokens {
		return fmt.Errorf("bad mla shape: b=%d s=%d (b·s in 1..%d)", c.B, s, maxTokens)
	}
	if c.TopK < 0 || c.ExtraTopK < 0 || c.TopK+c.ExtraTopK > maxDim {
		return fmt.Errorf("topk=%d extra_topk=%d: want ≥ 0, together ≤ %d", c.TopK, c.ExtraTopK, maxDim)
	}
	if dv := c.dv(); dv < 1 || dv > c.D {
		return fmt.Errorf("dv=%d: want 1..d (V is the first dv columns of K)", dv)
	}
	if bs := c.blockSize(); bs < 1 || bs > maxDim {
		return fmt.Errorf("block_size %d: want 1..%d", bs, maxDim)
	}
	for name, l := range map[string][]int{"topk_length": c.TopkLength, "extra_topk_length": c.ExtraTopkLength} {
		if l != nil && len(l) != c.B {
			return fmt.Errorf("%s has %d entries, want b=%d", name, len(l), c.B)
		}
		for _, v := range l {
			if v < 0 || v > maxDim {
				return fmt.Errorf("%s entry %d: want 0..%d", name, v, maxDim)
			}
		}
	}
	if math.IsNaN(c.Invalid) || c.Invalid < 0 || c.Invalid > 1 {
		return fmt.Errorf("invalid=%v: want a fraction in [0, 1]", c.Invalid)
	}
	if c.Hkv > 1 || c.Softcap != 0 || c.Alibi != nil || c.Sq != nil || c.T != 0 || c.Win != 0 || c.IdxTopK != 0 || c.Seqused != nil || len(c.Plant) > 0 {
		return fmt.Errorf("mla family takes b, s, h, d, dv, topk, topk_length, extra_topk, extra_topk_length, invalid, block_size, poison")
	}
	for _, sp := range c.Specials {
		if sp.Tensor != "q" {
			return fmt.Errorf("mla family: specials go in q only")
		}
	}
	if c.LSE != nil {
		if _, err := c.LSE.Conv(c.Sink != nil && c.Sink.Kind != "none"); err != nil {
			return err
		}
	}
	rows := mlaRows(c.TopK, c.blockSize()) + mlaRows(c.ExtraTopK, c.blockSize())
	if elems := c.B*s*(c.H*c.D+c.TopK+c.ExtraTopK) + rows*c.D; elems > maxElems {
		return fmt.Errorf("case too large: %d tensor elements (limit %d)", elems, maxElems)
	}
	return nil
}

// mlaRows is a scope's cache size: room for topk distinct rows and some
// never referenced, in whole pages.
func mlaRows(topk, bs int) int {
	if topk == 0 {
		return 0
	}
	n := topk + topk/2 + 2
	return (n + bs - 1) / bs * bs
}

// mla builds the caches and index rows: each entry a random row (repeats
// allowed), −1 with probability Invalid; poisoned rows are those no read
// entry refers to.
func (c Case) mla(in *problem.Inputs, r *rng, vg *valueGen) {
	in.B, in.S, in.TopK, in.ExtraTopK = c.B, c.tokensPerBatch(), c.TopK, c.ExtraTopK
	bs := c.blockSize()
	in.Cache = vg.fill(mlaRows(c.TopK, bs)*c.D, vg.scale(), false)
	in.ExtraCache = vg.fill(mlaRows(c.ExtraTopK, bs)*c.D, vg.scale(), false)
	draw := func(n, rows int) []int32 {
		idx := make([]int32, in.T*n)
		for i := range idx {
			idx[i] = int32(r.intn(rows))
			if c.Invalid > 0 && r.uniform() < c.Invalid {
				idx[i] = -1
			}
		}
		return idx
	}
	in.Idx = draw(c.TopK, max(mlaRows(c.TopK, bs), 1))
	in.ExtraIdx = draw(c.ExtraTopK, max(mlaRows(c.ExtraTopK, bs), 1))
	toI32 := func(l []int) []int32 {
		if l == nil {
			return nil
		}
		out := make([]int32, len(l))
		for i, v := range l {
			out[i] = int32(v)
		}
		return out
	}
	in.TopkLen, in.ExtraTopkLen = toI32(c.TopkLength), toI32(c.ExtraTopkLength)
	if c.Poison {
		for _, extra := range []bool{false, true} {
			cache := in.Cache
			if extra {
				cache = in.ExtraCache
			}
			used := make([]bool, len(cache)/c.D)
			for t := 0; t < in.T; t++ {
				idx, n, _ := in.MLAScope(t, extra)
				for _, x := range idx[:n] {
					if x >= 0 && int(x) < len(used) {
						used[x] = true
					}
				}
			}
			for row, u := range used {
				if !u {
					for d := range c.D {
						cache[row*c.D+d] = float32(math.NaN())
					}
				}
			}
		}
	}
}
