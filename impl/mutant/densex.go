package mutant

import (
	"math"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/problem"
)

// densexSpecs are defects of the paged dense cache, GQA head mapping, lse
// placement, state merging (combine) and FlashMLA's two scopes, each after
// a real bug (docs/mutants.md cites them).
func densexSpecs() []spec {
	return []spec{
		{
			name: "paged-tail-page-read", class: classMath, family: problem.Dense, base: "tiled/bc16/bf16",
			doc:   "paged KV: a row that reaches the sequence's last key also reads the whole page after the last valid one (the table entry past the sequence's last page, stale or NaN) unmasked",
			hooks: &impl.Hooks{Keys: pagedTailRead},
		},
		{
			name: "gqa-head-mod", class: classMath, family: problem.Dense, base: "tiled/bc32/bf16",
			doc:   "GQA: query head h reads KV head h % Hkv instead of h / (H/Hkv) (interleaved instead of consecutive grouping), wrong whenever Hkv > 1 and H/Hkv > 1",
			hooks: &impl.Hooks{Head: gqaHeadMod},
		},
		{
			name: "lse-padded-row", class: classMath, family: problem.Dense, base: "stream/bf16",
			doc:   "varlen lse written at row b·max_seqlen_q + i (the padded [B, H, max_seqlen_q] slot) instead of cu_seqlens_q[b] + i: rows of unequal sequences get other rows' lse",
			hooks: &impl.Hooks{Out: lsePaddedRow},
		},
		{
			name: "combine-empty-nan", class: classMath, family: problem.Combine, base: "stream/fp32",
			doc:   "merge of states that are all empty: exp(s − s_max) with s = s_max = ±inf gives NaN in v_merged and s_merged instead of 0 and lse_empty (vllm #27491)",
			hooks: &impl.Hooks{Out: combineEmptyNaN},
		},
		{
			name: "combine-empty-state-weighted", class: classMath, family: problem.Combine, base: "stream/fp32",
			doc:   "lse_empty = +inf read as a real lse: the empty states win the max and the merge takes their v (equal weights) instead of ignoring them",
			hooks: &impl.Hooks{Keys: combineEmptyWeighted},
		},
		{
			name: "mla-extra-cut-by-topk-length", class: classMath, family: problem.MLA, base: "tiled/bc64/bf16",
			doc:   "FlashMLA MODEL1: the extra scope's entries cut at the main scope's topk_length instead of extra_topk_length (or all of it when extra_topk_length is absent)",
			hooks: &impl.Hooks{Keys: mlaExtraCut},
		},
		{
			name: "mla-v-last-columns", class: classMath, family: problem.MLA, base: "tiled/bc64/bf16",
			doc:   "FlashMLA's V taken as the last d_v columns of each K row (the RoPE end) instead of the first d_v: wrong whenever d_v < d_qk",
			hooks: &impl.Hooks{Keys: mlaVLastColumns},
		},
		{
			name: "mla-indices-as-mask", class: classMath, family: problem.MLA, base: "tiled/bc64/bf16",
			doc:   "the indices scattered into a key mask and attended densely (the mask-based torch reference pattern): a cache row a token lists twice counts once, where FlashMLA gathers every entry",
			hooks: &impl.Hooks{Keys: mlaIndicesAsMask},
		},
	}
}

func mlaVLastColumns(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
	if in.Family != problem.MLA || in.Dv >= in.D {
		return keys
	}
	out := make([]problem.Key, len(keys))
	for i, k := range keys {
		out[i] = k
		out[i].V = k.K[len(k.K)-in.Dv:]
	}
	return out
}

// mlaIndicesAsMask keeps each cache row once: a row is known by its
// first element's address (every entry of one row shares it).
func mlaIndicesAsMask(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
	if in.Family != problem.MLA {
		return keys
	}
	seen := make(map[*float32]bool, len(keys))
	var out []problem.Key
	for _, k := range keys {
		if len(k.K) == 0 || seen[&k.K[0]] {
			continue
		}
		seen[&k.K[0]] = true
		out = append(out, k)
	}
	if len(out) == len(keys) {
		return keys
	}
	return out
}

func pagedTailRead(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
	if in.Family != problem.Dense || !in.Paged() {
		return keys
	}
	s := in.DenseSeq(t)
	if _, hi := in.DenseRange(s); s.Sk == 0 || hi != s.Sk-1 {
		return keys
	}
	out := append([]problem.Key(nil), keys...)
	first := (s.Sk + in.Page - 1) / in.Page * in.Page
	for j := first; j < first+in.Page; j++ {
		k, _ := in.DenseKey(s, j, g, true) // unreachable: the NaN row
		out = append(out, k)
	}
	return out
}

func gqaHeadMod(in *problem.Inputs, t, h int, keys []problem.Key) []problem.Key {
	g := h % in.Hkv
	if in.Family != problem.Dense || g == in.Group(h) {
		return keys
	}
	return in.KernelKeys(t, g, nil)
}

func lsePaddedRow(in *problem.Inputs, out *impl.Output) {
	if out.LSE == nil || in.Family != problem.Dense || in.T == 0 {
		return
	}
	maxSq := 0
	for b := 0; b+1 < len(in.CuQ); b++ {
		maxSq = max(maxSq, int(in.CuQ[b+1]-in.CuQ[b]))
	}
	v := append([]float32(nil), out.LSE...)
	for i := range out.LSE {
		out.LSE[i] = float32(math.NaN()) // slots nothing writes: never initialised
	}
	for t := 0; t < in.T; t++ {
		s := in.DenseSeq(t)
		r := (s.B*maxSq + s.I) % in.T
		for h := 0; h < in.H; h++ {
			out.LSE[r*in.H+h] = v[t*in.H+h]
		}
	}
}

func combineEmptyNaN(in *problem.Inputs, out *impl.Output) {
	if in.Family != problem.Combine || in.States == 0 {
		return
	}
	for t := 0; t < in.T; t++ {
		for h := 0; h < in.H; h++ {
			if len(in.RefKeys(t, h, nil)) > 0 {
				continue
			}
			for j := (t*in.H + h) * in.Dv; j < (t*in.H+h+1)*in.Dv; j++ {
				out.O[j], out.Pre[j] = nan32, nan32
			}
			if out.LSE != nil {
				out.LSE[t*in.H+h] = nan32
			}
		}
	}
}

func combineEmptyWeighted(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
	if in.Family != problem.Combine || in.LSE == nil || !in.LSE.EmptyPosInf {
		return keys
	}
	var out []problem.Key
	for k := 0; k < in.States; k++ {
		i := (t*in.States+k)*in.H + g
		if math.IsInf(float64(in.CombS[i]), 1) {
			out = append(out, problem.Key{V: in.CombV[i*in.Dv : (i+1)*in.Dv]})
		}
	}
	if out == nil {
		return keys
	}
	return out
}

func mlaExtraCut(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
	if in.Family != problem.MLA || in.ExtraTopK == 0 || in.TopkLen == nil {
		return keys
	}
	var out []problem.Key
	b := t / in.S
	for _, extra := range []bool{false, true} {
		idx, n, cache := in.MLAScope(t, extra)
		if extra {
			n = min(len(idx), max(int(in.TopkLen[b]), 0))
		}
		rows := len(cache) / in.D
		for _, r := range idx[:n] {
			switch {
			case r == -1:
			case r < 0 || int(r) >= rows:
				p := in.Poison()
				out = append(out, problem.Key{K: p[:in.D], V: p[:in.Dv]})
			default:
				row := cache[int(r)*in.D : (int(r)+1)*in.D]
				out = append(out, problem.Key{K: row, V: row[:in.Dv]})
			}
		}
	}
	return out
}
