package mutscore

import (
	"math/rand/v2"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/props"
)

// mlaFP8 is the mla-fp8 template: FlashMLA's sparse decode on an FP8 KV
// cache, V32 or MODEL1 (MODEL1 with an extra scope half the time), 1..4
// heads, b = 1..2, up to 130 keys (several 64-key blocks, a fraction −1:
// mixed valid and invalid lanes in one block), unreferenced rows poisoned
// with NaN bytes, the per-tile edge classes (3 in 4), V32 with
// non-power-of-two FP32 scales half the time (PR #184's trigger), an lse
// half the time and a sink (1 in 2).
func mlaFP8(r *rand.Rand, c cases.Case) cases.Case {
	c.Family, c.DType = problem.MLA, "bf16"
	c.KVLayout, c.D = "fp8_v32", 576
	if r.IntN(2) == 0 {
		c.KVLayout, c.D = "fp8_model1", 512
		if r.IntN(2) == 0 {
			c.ExtraTopK = 1 + r.IntN(64)
		}
	} else if r.IntN(2) == 0 {
		c.FP8Scales, c.Dequant = "fp32", "bf16"
	}
	c.Dv = 512
	c.H, c.B = 1+r.IntN(4), 1+r.IntN(2)
	c.TopK = 1 + r.IntN(130)
	c.Invalid = []float64{0, 0.1, 0.3}[r.IntN(3)]
	c.BlockSize = []int{2, 16, 53, 64}[r.IntN(4)]
	c.Poison = true
	c.FP8Edges = r.IntN(4) != 0
	if r.IntN(2) == 0 {
		c.LSE = &cases.LSESpec{Base: []string{"e", "2"}[r.IntN(2)], Empty: "+inf"}
	}
	if r.IntN(2) == 0 {
		c.Sink = &cases.Sink{Kind: "random", Scale: 2, Offset: float64(r.IntN(3))}
		if c.LSE != nil {
			c.LSE.Sink = "excluded"
		}
	}
	return c
}

// denseQuant is the first quantized case (FP8, INT8 KV or NVFP4 KV) among small dense draws of the campaign generator; a plain dense
// case if 64 draws find none.
func denseQuant(r *rand.Rand) cases.Case {
	g := props.Gen{Family: problem.Dense, Size: props.Small}
	c := g.Draw(r)
	for range 63 {
		if c.FP8 != "" || c.Int8KV != "" || c.NVFP4KV || c.Int4KV != "" {
			break
		}
		c = g.Draw(r)
	}
	return c
}
