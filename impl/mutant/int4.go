package mutant

import (
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

// int4Base is the correct emulation the INT4-KV mutants vary: ONNX
// Runtime's GQA dequantizes the INT4 cache into the attention dtype and
// runs a BF16 flash kernel on it, as for INT8.
const int4Base = "tiled/bc128/bf16rne"

// int4Specs are defects of dequantizing ONNX Runtime's INT4 KV cache
// (problem.DenseInt4KV; docs/mutants.md): the same bytes dequantized
// otherwise. Without INT4 K/V they compute what their base computes.
func int4Specs() []spec {
	return []spec{
		{
			name: "int4-nibble-swap", class: classPrecision, family: problem.Dense, base: int4Base,
			doc:  "the two INT4 codes of a byte read high nibble first (ORT packs the even element low): elements 2i and 2i+1 of every pair trade places",
			prep: int4Prep(int4Read{swap: true}),
		},
		{
			name: "int4-bias-not-removed", class: classPrecision, family: problem.Dense, base: int4Base,
			doc:  "the nibble read as an unsigned code 0..15, ORT's +8 bias not subtracted: every cache value shifted by +8·scale",
			prep: int4Prep(int4Read{unbiased: true}),
		},
		{
			name: "int4-int8-scale", class: classMath, family: problem.Dense, base: int4Base,
			doc:  "the step computed for INT8 (amax/127) on INT4 codes (amax/7): every cache value shrunk by 7/127",
			prep: int4Prep(int4Read{int8Step: true}),
		},
		{
			name: "int4-channel-scale-no-head", class: classMath, family: problem.Dense, base: int4Base,
			doc:  "PER_CHANNEL scales read at [column] instead of [kv_head·D + column]: every KV head dequantized with head 0's channel scales",
			prep: int4Prep(int4Read{noHead: true}),
		},
	}
}

// int4Read is how a defective dequantizer reads ORT's INT4 cache.
type int4Read struct {
	swap     bool // high nibble first
	unbiased bool // nibble 0..15 taken as the code
	int8Step bool // scale·7/127: INT8's amax/127 where INT4's amax/7 belongs
	noHead   bool // per-channel scale at [column]
}

// int4Prep rewrites an INT4-KV problem's K and V as a kernel reading the
// cache as r says dequantizes them: T(FP32(code·scale)).
func int4Prep(r int4Read) func(in *problem.Inputs) *problem.Inputs {
	return func(in *problem.Inputs) *problem.Inputs {
		q := in.Int4KV
		if q == nil {
			return in
		}
		deq := func(packed []uint8, s []float32, w int) []float32 {
			out := make([]float32, 2*len(packed))
			for e := range out {
				b := packed[e/2]
				if (e%2 == 1) != r.swap {
					b >>= 4
				}
				code := float32(int(b&0xf) - problem.Int4Bias)
				if r.unbiased {
					code = float32(b & 0xf)
				}
				sc := problem.Int8Scale(s, e, in.Hkv, w)
				if r.noHead && len(s) > 1 {
					sc = s[e%w]
				}
				if r.int8Step {
					sc = float32(float64(sc) * 7 / 127)
				}
				out[e] = num.Round32(in.Format, code*sc, num.RNE)
			}
			return out
		}
		c := *in
		c.K, c.V = deq(q.KCodes, q.KScale, in.D), deq(q.VCodes, q.VScale, in.Dv)
		return &c
	}
}
