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
	}
}
