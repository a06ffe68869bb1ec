package mutant

import (
	"math"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

// denseSpecs are the defects of the dense family's conventions, each after a
// real bug of FlashAttention, flashinfer, vLLM or transformers
// (docs/mutants.md cites them).
func denseSpecs() []spec {
	return []spec{
		{
			name: "causal-top-left", class: classMath, family: problem.Dense, base: "tiled/bc32/bf16",
			doc:   "causal mask aligned top-left (query i sees keys j ≤ i) instead of bottom-right (j ≤ i + sk − sq), FlashAttention < 2.1's convention: wrong whenever sq ≠ sk",
			hooks: &impl.Hooks{Keys: denseKeysWith(func(in *problem.Inputs, s problem.Seq) (int, int) { return in.DenseRangeAt(s, 0) })},
		},
		{
			name: "window-left-off-by-one", class: classMath, family: problem.Dense, base: "tiled/bc16/bf16",
			doc:   "window_left W read as W+1 keys back (window_size=(W, W) for a W-token window, transformers #39408): one extra old key",
			hooks: &impl.Hooks{Keys: denseKeysWith(shiftRange(-1, 0))},
		},
		{
			name: "window-right-off-by-one", class: classMath, family: problem.Dense, base: "stream/bf16",
			doc:   "window_right R reads R+1 keys ahead (causal counted from the next key): the first future key leaks in",
			hooks: &impl.Hooks{Keys: denseKeysWith(shiftRange(0, 1))},
		},
		{
			name: "window-left-compiled-out", class: classMath, family: problem.Dense, base: "tiled/bc64/bf16",
			doc:  "window_left given only at run time, so the per-element mask is compiled out and every older key is attended (sglang #31501 with flashinfer)",
			prep: func(in *problem.Inputs) *problem.Inputs { c := *in; c.WinLeft = -1; return &c },
		},
		{
			name: "softcap-before-scale", class: classMath, family: problem.Dense, base: "tiled/bc32/bf16",
			doc:  "softcap applied to the unscaled q·k and the scale after it: scale·c·tanh(q·k/c) instead of c·tanh(scale·q·k/c)",
			prep: func(in *problem.Inputs) *problem.Inputs { c := *in; c.Softcap *= in.Scale; return &c },
		},
		{
			name: "softcap-after-bias", class: classMath, family: problem.Dense, base: "stream/bf16p32",
			doc:   "softcap applied after the ALiBi bias, c·tanh((s + b)/c), instead of before it (FlashAttention caps the scaled score, then adds ALiBi)",
			hooks: &impl.Hooks{Score: softcapAfterBias},
		},
		{
			name: "alibi-sign-flipped", class: classMath, family: problem.Dense, base: "tiled/bc32/bf16",
			doc: "ALiBi bias added with the wrong sign: distant keys rewarded instead of penalised",
			prep: func(in *problem.Inputs) *problem.Inputs {
				return mapSlopes(in, func(h int) float32 { return -in.Alibi[h] })
			},
		},
		{
			name: "alibi-slope-kv-head", class: classMath, family: problem.Dense, base: "tiled/bc16/bf16",
			doc: "ALiBi slope indexed by the KV head (h / (H/Hkv)) instead of the query head, under GQA",
			prep: func(in *problem.Inputs) *problem.Inputs {
				return mapSlopes(in, func(h int) float32 { return in.Alibi[in.Group(h)] })
			},
		},
		{
			name: "lse-base2-declared-natural", class: classMath, family: problem.Dense, base: "tiled/bc32/bf16",
			doc:   "lse written in base 2 (flashinfer's lse₂) where the convention declares the natural log, or natural where base 2 is declared",
			hooks: &impl.Hooks{Out: lseOtherBase},
		},
		{
			name: "lse-sink-included", class: classMath, family: problem.Dense, base: "stream/bf16",
			doc:  "the sink's e^σ inside the lse where the convention excludes it (FlashMLA's convention read as FA4's), or left out where it is included",
			prep: func(in *problem.Inputs) *problem.Inputs { return flipLSESink(in) },
		},
		{
			name: "lse-wrong-layout", class: classMath, family: problem.Dense, base: "splitkv/p2/bc32/bf16",
			doc:   "lse stored [H, T] where [T, H] is read (the LSE layout of vllm-project/flash-attention #87): rows get other rows' lse",
			hooks: &impl.Hooks{Out: lseTransposed},
		},
		{
			name: "lse-empty-nan", class: classMath, family: problem.Dense, base: "tiled/bc32/bf16",
			doc:   "a row with no key gets lse NaN ((−∞) − (−∞) in the finalisation, vllm #27491) instead of the declared empty value",
			hooks: &impl.Hooks{Out: lseEmptyNaN},
		},
		{
			name: "varlen-empty-seq-reads-next", class: classMath, family: problem.Dense, base: "tiled/bc16/bf16",
			doc:   "a zero-length key sequence (sk = 0) reads the next sequence's keys instead of none (the zero-length varlen edge, FlashAttention #1537)",
			hooks: &impl.Hooks{Keys: emptySeqReadsNext},
		},
	}
}

// denseKeysWith is a Keys hook gathering dense keys over the range rng
// gives instead of the correct one.
func denseKeysWith(rng func(in *problem.Inputs, s problem.Seq) (lo, hi int)) func(*problem.Inputs, int, int, []problem.Key) []problem.Key {
	return func(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
		if in.Family != problem.Dense {
			return keys
		}
		s := in.DenseSeq(t)
		lo, hi := rng(in, s)
		return gatherDense(in, s, g, max(lo, 0), min(hi, s.Sk-1))
	}
}

// gatherDense gathers keys lo..hi of sequence s through KV head g.
func gatherDense(in *problem.Inputs, s problem.Seq, g, lo, hi int) []problem.Key {
	var out []problem.Key
	for j := lo; j <= hi; j++ {
		if k, ok := in.DenseKey(s, j, g, true); ok {
			out = append(out, k)
		}
	}
	return out
}

// shiftRange widens the bounded sides of the correct range by dl (left)
// and dr (right).
func shiftRange(dl, dr int) func(*problem.Inputs, problem.Seq) (int, int) {
	return func(in *problem.Inputs, s problem.Seq) (int, int) {
		lo, hi := in.DenseRange(s)
		if in.WinLeft >= 0 {
			lo += dl
		}
		if in.WinRight >= 0 {
			hi += dr
		}
		return lo, hi
	}
}

func softcapAfterBias(x, c, slope float32, k problem.Key) float32 {
	x += float32(slope * k.Dist)
	if c > 0 {
		x = float32(c * num.Tanh32(x/c))
	}
	return x
}

func mapSlopes(in *problem.Inputs, f func(h int) float32) *problem.Inputs {
	if in.Alibi == nil {
		return in
	}
	c := *in
	c.Alibi = make([]float32, len(in.Alibi))
	for h := range c.Alibi {
		c.Alibi[h] = f(h)
	}
	return &c
}

func lseOtherBase(in *problem.Inputs, out *impl.Output) {
	if in.LSE == nil {
		return
	}
	f := float32(math.Log2E)
	if in.LSE.Base2 {
		f = float32(math.Ln2)
	}
	for i, v := range out.LSE {
		out.LSE[i] = float32(v * f)
	}
}

func flipLSESink(in *problem.Inputs) *problem.Inputs {
	if in.LSE == nil || in.Sink == nil {
		return in
	}
	c := *in
	conv := *in.LSE
	conv.SinkIncluded = !conv.SinkIncluded
	c.LSE = &conv
	return &c
}

func lseTransposed(in *problem.Inputs, out *impl.Output) {
	if out.LSE == nil {
		return
	}
	v := append([]float32(nil), out.LSE...)
	for t := 0; t < in.T; t++ {
		for h := 0; h < in.H; h++ {
			out.LSE[t*in.H+h] = v[(h*in.T+t)%len(v)]
		}
	}
}

func lseEmptyNaN(in *problem.Inputs, out *impl.Output) {
	if out.LSE == nil {
		return
	}
	for t := 0; t < in.T; t++ {
		for h := 0; h < in.H; h++ {
			if len(in.RefKeys(t, in.Group(h), nil)) == 0 {
				out.LSE[t*in.H+h] = float32(math.NaN())
			}
		}
	}
}

func emptySeqReadsNext(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
	if in.Family != problem.Dense {
		return keys
	}
	s := in.DenseSeq(t)
	if s.Sk != 0 || s.K0 >= int(in.CuK[len(in.CuK)-1]) {
		return keys
	}
	next := s
	for b := s.B + 1; b+1 < len(in.CuK); b++ { // the next sequence with keys
		if n := int(in.CuK[b+1] - in.CuK[b]); n > 0 {
			next.B, next.Sk, next.K0 = b, n, int(in.CuK[b])
			break
		}
	}
	if next.Sk == 0 {
		return keys
	}
	lo, hi := in.DenseRange(next)
	return gatherDense(in, next, g, max(lo, 0), min(hi, next.Sk-1))
}
