package mutant_test

import (
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
)

// quantTriggerCases are FP8-cache mla cases: V32 with non-power-of-two FP32
// scales and with the edge tiles, MODEL1 with an extra scope.
func quantTriggerCases() []cases.Case {
	return []cases.Case{
		{Family: problem.MLA, DType: "bf16", Seed: 21, H: 2, D: 576, Dv: 512, B: 2, TopK: 70, Invalid: 0.2, BlockSize: 53,
			Poison: true, KVLayout: "fp8_v32", FP8Scales: "fp32", Dequant: "bf16"},
		{Family: problem.MLA, DType: "bf16", Seed: 22, H: 2, D: 576, Dv: 512, B: 1, TopK: 80, Invalid: 0.1, BlockSize: 16,
			Poison: true, KVLayout: "fp8_v32", FP8Edges: true, LSE: &cases.LSESpec{Base: "e", Empty: "+inf"}},
		{Family: problem.MLA, DType: "bf16", Seed: 23, H: 3, D: 512, Dv: 512, B: 2, TopK: 65, ExtraTopK: 9, Invalid: 0.3, BlockSize: 64,
			Poison: true, KVLayout: "fp8_model1", FP8Edges: true},
		// Dense FP8 (FA3): GQA over two sequences with large v descales
		// (P·v_descale overflows e4m3) and an lse; scores spread into
		// e4m3's subnormal P; acc_bits 12.
		{Family: problem.Dense, DType: "fp32", Seed: 24, H: 4, Hkv: 2, D: 16, Sq: []int{3, 2}, Sk: []int{40, 70},
			FP8: "e4m3", AccBits: 14, FP8Edge: cases.FP8EdgeBigV, LSE: &cases.LSESpec{Base: "e", Empty: "-inf"}},
		{Family: problem.Dense, DType: "fp32", Seed: 25, H: 2, D: 32, Sq: []int{2}, Sk: []int{300},
			FP8: "e4m3", AccBits: 12, FP8Edge: cases.FP8EdgeSpread},
		// INT8 KV (ONNX Runtime's GQA): per-channel scales over two KV heads.
		{Family: problem.Dense, Seed: 27, H: 4, Hkv: 2, D: 8, Sq: []int{2, 1}, Sk: []int{12, 30}, Int8KV: "per_channel"},
		// NVFP4 KV (flashinfer's convention): two 16-value blocks a K head.
		{Family: problem.Dense, Seed: 28, H: 4, Hkv: 2, D: 32, Dv: 16, Sq: []int{2, 1}, Sk: []int{12, 30}, NVFP4KV: true},
		// INT4 KV (ONNX Runtime's kv_cache_bit_width 4): per-channel scales
		// over two KV heads, Dv ≠ D.
		{Family: problem.Dense, Seed: 29, H: 4, Hkv: 2, D: 8, Dv: 6, Sq: []int{2, 1}, Sk: []int{12, 30}, Int4KV: "per_channel"},
	}
}
