package impl

import (
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
)

// Pypto is the loop structure of pypto-lib's DeepSeek-V4 decode kernels
// (SPEC-pypto-today.md, "Precision path" 1-7): the padded list of WIN
// window columns then the compressed columns, in SPARSE_BLOCKS blocks of
// 128 columns, each lane biased 0 (valid) or −1e20; per block and head
// S = q·Kᵀ in FP32, s = S·scale + bias, m = rowmax, p = exp(s − m), l the
// sum of the unrounded p, P = BF16_RNE(p), o_t = P·K in FP32; block 0
// always computed (all lanes invalid: m = −1e20, l = 128, o = 0), csa
// skipping a compressed block without a valid lane (the neutral
// (−3e38, 0, 0), whose merge changes nothing); the blocks merged in order
// sb = 1..SB−1; the sink as σ' = (m − m) + σ, o / (l + e^{σ'−m}).
//
// Invalid lanes gather a zero row (the golden's choice, and HCA's and
// SWA's gather): CSA's device reads ori_kv row 0 there, which only
// matters when that unreferenced row is not finite, a defect kept as the
// mutant csa-row0-nan-leak. An empty key set gives o = 0 (the device gives
// the mean of the gathered rows when σ = −∞, zero for zero rows).
//
// The registry holds it with the device's profile (bf16rne). Other
// families have no column layout: the kind computes tiled/bc128 there.
const Pypto Kind = "pypto"

// pyptoConfigs are the registry's device emulations.
func pyptoConfigs() []Config {
	return []Config{{Kind: Pypto, Bc: 128, Profile: profile.MustLookup("bf16rne")}}
}

// pypto computes one head of token t over the device's blocks.
func (s *state) pypto(t int, keys []problem.Key, o []float32) (m, l float32) {
	in := s.in
	if !problem.IsPypto(in.Family) {
		return s.tiled(keys, o)
	}
	var bk []problem.Key
	first := true
	for sb := range in.PyptoBlocks() {
		bk = bk[:0]
		for col := sb * 128; col < (sb+1)*128; col++ {
			if row, ok := in.PyptoLane(t, col); ok {
				bk = append(bk, problem.Key{K: row, V: row})
			}
		}
		if sb > 0 && len(bk) == 0 && in.Family == problem.CSA {
			continue // a skipped compressed block: the neutral state merges exactly
		}
		m, l = s.tileInto(bk, o, m, l, &first)
	}
	return m, l
}
