package mutant

import (
	"math"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/problem"
)

// outputsSpecs are the defects of the split-KV partitioning and of the
// max_logit output (docs/mutants.md cites the real bugs they model).
func outputsSpecs() []spec {
	return []spec{
		{
			name: "splitkv-last-split-off-by-one", class: classMath, base: "splitkv/p4/bc16/bf16",
			doc:   "split-KV with 4 splits of ⌈n/4⌉ keys: the last split's end is written inclusive (n − 1) when n is not a multiple of the split size, so the row's last key is dropped; right for other n and other split counts",
			hooks: &impl.Hooks{Keys: lastSplitOffByOne(4)},
		},
		{
			name: "max-logit-before-scale", class: classMath, base: "tiled/bc64/bf16",
			doc:   "max_logit is the row max of the raw scores q·k, taken before softmax_scale (the max kept in the kernel's unscaled units and written out as is)",
			hooks: &impl.Hooks{Out: maxLogitUnscaled},
		},
		{
			name: "max-logit-base2-declared-natural", class: classMath, base: "stream/bf16",
			doc:   "max_logit written in log2 units (the exp2 kernels' running max m·scale·log2 e) where natural units are declared (FlashMLA's README reference uses base 2, its kernel natural)",
			hooks: &impl.Hooks{Out: maxLogitBase2},
		},
	}
}

// maxLogitUnscaled divides every finite max_logit by the scale.
func maxLogitUnscaled(in *problem.Inputs, out *impl.Output) {
	if out.MaxLogit == nil {
		return
	}
	for i, v := range out.MaxLogit {
		m := v
		if in.MaxLogit.Base2 {
			m = float32(v / float32(math.Log2E))
		}
		m = float32(m / float32(in.Scale))
		if in.MaxLogit.Base2 {
			m = float32(m * float32(math.Log2E))
		}
		out.MaxLogit[i] = m
	}
}

// maxLogitBase2 multiplies a natural max_logit by log2 e.
func maxLogitBase2(in *problem.Inputs, out *impl.Output) {
	if out.MaxLogit == nil || in.MaxLogit.Base2 {
		return
	}
	for i, v := range out.MaxLogit {
		out.MaxLogit[i] = float32(v * float32(math.Log2E))
	}
}

// lastSplitOffByOne drops the last key when parts splits of ⌈n/parts⌉ keys
// leave the last split short (n mod ⌈n/parts⌉ ≠ 0).
func lastSplitOffByOne(parts int) func(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
	return func(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
		n := len(keys)
		if n <= parts {
			return keys
		}
		if per := (n + parts - 1) / parts; n%per != 0 {
			return keys[:n-1]
		}
		return keys
	}
}
