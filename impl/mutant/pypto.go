package mutant

import (
	"math"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/problem"
)

// pyptoSpecs are the defects of pypto-lib's DeepSeek-V4 decode kernels
// (SPEC-pypto-today.md; docs/mutants.md cites them).
func pyptoSpecs() []spec {
	return []spec{
		{
			name: "csa-cmp-bound-p-over-4", class: classMath, family: problem.CSA, base: "tiled/bc32/bf16",
			doc:  "CSA keeps compressed slot r iff r < ⌊p/4⌋ instead of ⌊(p+1)/4⌋ (the slot the current token completes is dropped): wrong whenever p+1 is a multiple of the ratio and idx_topk holds that slot",
			prep: cmpBoundFromP,
		},
		{
			name: "csa-row0-nan-leak", class: classMath, family: problem.CSA, base: "tiled/bc64/bf16",
			doc:   "CSA's invalid lanes gather ori_kv row 0 and multiply it by p = 0 (the device's gather): a NaN or ±Inf in the unreferenced row 0 turns the token's output into NaN (bug class 16, still live in CSA)",
			hooks: &impl.Hooks{Keys: row0Leak},
		},
		{
			name: "hca-merge-all-false-blocks", class: classMath, family: problem.HCA, base: "tiled/bc16/bf16",
			doc:   "csa, hca, seq ≤ 128 (every valid lane in block 0): the merge folds the all-false blocks' l = 128 (p = 1 on every −1e20 lane) in without their β = 0, outputs 15-20× too small (pypto-lib #448)",
			hooks: &impl.Hooks{State: mergeAllFalse},
		},
		{
			name: "csa-empty-row0-mean", class: classMath, family: problem.CSA, base: "tiled/bc32/bf16",
			doc:   "CSA, an empty key set and σ = −∞ (or no sink): l + e^{σ+1e20} is finite, so o is the mean of the gathered rows, all ori_kv row 0, instead of 0 (SPEC-pypto-today.md, \"Edge cases\")",
			hooks: &impl.Hooks{Head: emptyRow0Mean},
		},
		{
			name: "swa-len-mask-ignored", class: classMath, family: problem.SWA, base: "stream/bf16p32",
			doc:   "SWA ignores swa_lens: every one of the WIN columns is a key, a −1 column a zero row (k = 0 adds e^{−m} to l) and a listed row past the length a stale key",
			hooks: &impl.Hooks{Keys: swaAllColumns},
		},
	}
}

// cmpBoundFromP computes the bound from p instead of p+1: a copy whose
// positions are one smaller (the window is physical, so nothing else moves).
func cmpBoundFromP(in *problem.Inputs) *problem.Inputs {
	if in.Family != problem.CSA {
		return in
	}
	c := *in
	c.Pos = make([]int32, len(in.Pos))
	for t, p := range in.Pos {
		c.Pos[t] = p - 1
	}
	return &c
}

// row0Leak appends a NaN key (what 0·NaN or 0·Inf gives) to a CSA token
// with an invalid lane in a computed block (block 0 always; a compressed
// block when it holds a valid lane) while ori_kv row 0 is not finite.
func row0Leak(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
	if in.Family != problem.CSA || !row0NonFinite(in) {
		return keys
	}
	nc := in.PyptoCmpCols()
	for sb := 0; sb < in.PyptoBlocks(); sb++ {
		valid := in.PyptoBlockValid(t, sb)
		lanes := min((sb+1)*128, in.Win+nc) - sb*128
		if lanes > valid && (sb == 0 || valid > 0) {
			return append(keys, nanKey(in))
		}
	}
	return keys
}

func row0NonFinite(in *problem.Inputs) bool {
	row := in.OriRow(0)
	for _, x := range row {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return true
		}
	}
	return false
}

// mergeAllFalse adds 128 to l per all-false block after block 0 when
// every valid lane of the token sits in block 0.
func mergeAllFalse(in *problem.Inputs, t, h int, keys []problem.Key, m, l *float32, o []float32) {
	if in.Family != problem.HCA && in.Family != problem.CSA {
		return
	}
	blocks := in.PyptoBlocks()
	for sb := 1; sb < blocks; sb++ {
		if in.PyptoBlockValid(t, sb) > 0 {
			return
		}
	}
	*l += float32(128 * (blocks - 1))
}

// swaAllColumns adds the columns at and past swa_lens[t]: the row listed,
// or a zero row for a negative entry.
func swaAllColumns(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
	if in.Family != problem.SWA {
		return keys
	}
	win := in.WinIdx[t*in.Win : (t+1)*in.Win]
	for _, r := range win[in.PyptoWinCols(t):] {
		row := in.OriRow(int(r))
		if row == nil {
			row = make([]float32, in.D)
		}
		keys = append(keys, problem.Key{K: row, V: row})
	}
	return keys
}

// emptyRow0Mean gives a CSA row with no key and no finite sink ori_kv row 0
// as its only key (the mean of 128·SB copies of it, o = row 0).
func emptyRow0Mean(in *problem.Inputs, t, h int, keys []problem.Key) []problem.Key {
	if in.Family != problem.CSA || len(keys) > 0 || !math.IsInf(float64(in.SinkOf(h)), -1) {
		return keys
	}
	row := in.OriRow(0)
	if row == nil {
		return keys
	}
	return []problem.Key{{K: row, V: row}}
}
