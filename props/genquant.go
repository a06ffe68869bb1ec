package props

import (
	"math/rand/v2"

	"github.com/attnvet/attnvet/internal/cases"
)

// drawFP8 turns one campaign-size mla case in four into a FlashMLA FP8
// cache case (cases/quant.go): V32 (d 576) or MODEL1 (d 512), d_v 512, BF16,
// the edge tiles (2 in 3), V32 with non-power-of-two FP32 scales (1 in 3);
// heads and keys are cut to keep the work near the other cases'. It draws
// after every other field, so the other cases are unchanged.
func drawFP8(r *rand.Rand, c *cases.Case, lim limits) {
	if lim.work < 1<<21 || r.IntN(4) != 0 {
		return
	}
	c.KVLayout, c.D, c.Dv, c.DType = "fp8_v32", 576, 512, "bf16"
	if r.IntN(2) == 0 {
		c.KVLayout, c.D = "fp8_model1", 512
	} else if r.IntN(3) == 0 {
		c.FP8Scales, c.Dequant = "fp32", "bf16"
	}
	c.FP8Edges = r.IntN(3) != 0
	c.H = min(c.H, 4)
	if c.Sink != nil && c.Sink.Values != nil {
		c.Sink.Values = c.Sink.Values[:c.H]
	}
	c.TopK, c.ExtraTopK = min(c.TopK, 300), min(c.ExtraTopK, 64)
	if c.TopK+c.ExtraTopK == 0 {
		c.TopK = 1
	}
	for Work(*c) > lim.work && (c.H > 1 || c.TopK > 1) {
		if c.H > 1 {
			c.H = max(1, c.H/2)
		} else {
			c.TopK = max(1, c.TopK/2)
		}
	}
	if c.Sink != nil && c.Sink.Values != nil {
		c.Sink.Values = c.Sink.Values[:c.H]
	}
	for i := range c.TopkLength {
		c.TopkLength[i] = min(c.TopkLength[i], c.TopK+1)
	}
	for i := range c.ExtraTopkLength {
		c.ExtraTopkLength[i] = min(c.ExtraTopkLength[i], c.ExtraTopK+1)
	}
	c.Specials = nil
}
