package props

import (
	"math/rand/v2"
	"slices"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
)

// The dense family's generator: FlashAttention-style sequences, then the
// FP8, INT8 and NVFP4 forms last (the other dense cases are unchanged).
var _ = registerGen(&genFamily{
	draw: keyedDraw(drawDense, drawDenseFP8),
	classes: func(c cases.Case, in *problem.Inputs, hit map[string]bool) {
		hit[ClassGQA] = in.Hkv < in.H
		denseClasses(c, in, hit)
	},
	rowKeys: func(c cases.Case) []int {
		in := denseOnly(c)
		ns := make([]int, in.T)
		for t := range ns {
			lo, hi := in.DenseRange(in.DenseSeq(t))
			ns[t] = max(0, hi-lo+1)
		}
		return ns
	},
	candidates: denseCandidates,
	ownKV:      true,
	kvRows:     func(c cases.Case) int { return sumInts(c.Sk) },
	// No mask, window or ALiBi (positions would matter), no paged or
	// seqused_k layout.
	keyOrderAdapt: func(c *cases.Case) {
		c.Causal, c.WindowLeft, c.WindowRight, c.Alibi = false, nil, nil, nil
		c.Page, c.BlockTable, c.SequsedK, c.Poison = 0, "", nil, false
	},
	// The keys of each sequence, K and V rows together.
	permute: func(in, out *problem.Inputs, r *rand.Rand) {
		out.K, out.V = slices.Clone(in.K), slices.Clone(in.V)
		kr, vr := in.Hkv*in.D, in.Hkv*in.Dv
		for b := 0; b+1 < len(in.CuK); b++ {
			lo, hi := int(in.CuK[b]), int(in.CuK[b+1])
			p := r.Perm(hi - lo)
			for j, src := range p {
				copy(out.K[(lo+j)*kr:(lo+j+1)*kr], in.K[(lo+src)*kr:(lo+src+1)*kr])
				copy(out.V[(lo+j)*vr:(lo+j+1)*vr], in.V[(lo+src)*vr:(lo+src+1)*vr])
			}
		}
	},
}, problem.Dense)

// drawDense builds FlashAttention-style sequences so that some query sees
// about n keys, biased toward the dense edge classes: sq > sk with causal
// (rows with no key), window edges on both sides, zero-length sequences,
// softcap saturation, large ALiBi slopes, GQA, every lse convention.
func drawDense(r *rand.Rand, c *cases.Case, n int, lim limits) {
	nb := []int{1, 1, 1, 2, 2, 3}[r.IntN(6)]
	c.Sq, c.Sk = make([]int, nb), make([]int, nb)
	target := r.IntN(nb)
	for b := range c.Sq {
		sk := n
		if b != target {
			sk = r.IntN(min(n, 64) + 3)
		}
		var sq int
		switch p := r.IntN(100); {
		case p < 30: // decode
			sq = 1
		case p < 55: // self-attention
			sq = sk
		case p < 70: // more queries than keys: causal rows with no key
			sq = sk + 1 + r.IntN(6)
		default:
			sq = 1 + r.IntN(max(sk, 1)+4)
		}
		c.Sq[b], c.Sk[b] = min(sq, 4*lim.mediumN, max(1, lim.work/(4*max(sk, 1)))), sk
	}
	if r.IntN(10) == 0 { // a zero-length sequence
		b := r.IntN(nb)
		if r.IntN(2) == 0 && nb > 1 {
			c.Sq[b] = 0
		} else {
			c.Sk[b] = 0
		}
	}
	if sumInts(c.Sq) == 0 {
		c.Sq[target] = 1
	}
	c.Causal = r.IntN(2) == 0
	if r.IntN(3) == 0 { // a window of W keys including the current one: left = W−1
		w := max(0, n-1+r.IntN(3)-1)
		if r.IntN(3) == 0 {
			w = r.IntN(8)
		}
		c.WindowLeft = &w
	}
	if r.IntN(5) == 0 {
		w := r.IntN(4)
		c.WindowRight = &w
	}
	if r.IntN(100) < 18 {
		c.Softcap = []float64{0.5, 1, 5, 30, 50}[r.IntN(5)]
	}
	if r.IntN(100) < 18 {
		a := &cases.Alibi{Kind: "geometric"}
		switch p := r.IntN(10); {
		case p < 2:
			a.Scale = 16 // large slopes
		case p < 3:
			a.Kind, a.Value = "const", []float64{0.5, -0.25, 4}[r.IntN(3)]
		}
		a.Form = []string{"", "", "abs", "fa2_causal", "flashinfer"}[r.IntN(5)]
		c.Alibi = a
	}
	if r.IntN(100) < 70 {
		c.LSE = &cases.LSESpec{Base: []string{"e", "2"}[r.IntN(2)], Empty: []string{"+inf", "-inf"}[r.IntN(2)]}
	}
	if r.IntN(2) == 0 {
		divs := divisors(c.H)
		c.Hkv = divs[r.IntN(len(divs))]
	}
	if r.IntN(10) < 3 {
		c.Dv = 1 + r.IntN(lim.maxD)
	}
	drawDensePaged(r, c)
}

// denseOnly is a problem.Inputs with just the fields DenseSeq and
// DenseRange read.
func denseOnly(c cases.Case) *problem.Inputs {
	in := &problem.Inputs{CuQ: make([]int32, len(c.Sq)+1), CuK: make([]int32, len(c.Sk)+1), WinLeft: -1, WinRight: -1}
	for b := range c.Sq {
		in.CuQ[b+1] = in.CuQ[b] + int32(c.Sq[b])
		in.CuK[b+1] = in.CuK[b] + int32(c.Sk[b])
	}
	in.T = int(in.CuQ[len(c.Sq)])
	if c.WindowLeft != nil {
		in.WinLeft = *c.WindowLeft
	}
	if c.WindowRight != nil {
		in.WinRight = *c.WindowRight
	}
	if c.Causal {
		in.WinRight = 0
	}
	return in
}

func sumInts(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// drawDenseFP8 turns one dense case in four into an FA3 FP8 case
// (cases/fp8dense.go): e4m3 codes with [B, Hkv] descales, P to e4m3 (7 in
// 8; else FP32 P), acc_bits 14 (1 in 2), 12 (1 in 4) or FP32, and an edge
// class in half of them. FA3 has no sink and the codes no specials. It
// draws after every other field, so the other cases are unchanged.
func drawDenseFP8(r *rand.Rand, c *cases.Case) {
	if r.IntN(4) != 0 {
		drawInt8KV(r, c)
		return
	}
	c.FP8, c.DType, c.Specials = "e4m3", "fp32", nil
	if c.Sink != nil {
		c.Sink = nil
		if c.LSE != nil {
			c.LSE.Sink = ""
		}
	}
	if r.IntN(8) == 0 {
		c.FP8P = "fp32"
	}
	c.AccBits = []int{14, 14, 12, 0}[r.IntN(4)]
	if r.IntN(2) == 0 {
		c.FP8Edge = []string{cases.FP8EdgeP256, cases.FP8EdgeSpread, cases.FP8EdgeOverflow, cases.FP8EdgeBigV, cases.FP8EdgeTail}[r.IntN(5)]
	}
}

// drawInt8KV turns one of the other dense cases in three into an INT8-KV
// case (cases/int8kv.go, ONNX Runtime's convention): per-channel scales 3
// in 4, else per tensor; without poison and specials (the cache holds
// codes). It draws last.
func drawInt8KV(r *rand.Rand, c *cases.Case) {
	if r.IntN(3) != 0 {
		drawNVFP4KV(r, c)
		return
	}
	c.Int8KV, c.Poison, c.Specials = "per_channel", false, nil
	if r.IntN(4) == 0 {
		c.Int8KV = "per_tensor"
	}
}

// drawNVFP4KV turns one of the remaining dense cases in three with D and Dv
// ≥ 16 into an NVFP4-KV case (cases/nvfp4kv.go, flashinfer's convention):
// D and Dv rounded down to multiples of 16 (one e4m3 scale per 16 values),
// an edge class in half of them, without poison and specials. It draws
// last, after the INT8 draw declined, so every other case is unchanged.
func drawNVFP4KV(r *rand.Rand, c *cases.Case) {
	if r.IntN(3) != 0 || c.D < 16 || (c.Dv != 0 && c.Dv < 16) {
		drawInt4KV(r, c)
		return
	}
	c.NVFP4KV, c.Poison, c.Specials = true, false, nil
	c.D -= c.D % 16
	if c.Dv != 0 {
		c.Dv -= c.Dv % 16
		if c.Dv == c.D {
			c.Dv = 0
		}
	}
	if r.IntN(2) == 0 {
		c.NVFP4Edge = []string{cases.NVFP4EdgeZero, cases.NVFP4EdgeMax, cases.NVFP4EdgeScale}[r.IntN(3)]
	}
}

// drawInt4KV turns one of the remaining dense cases in four with D and Dv
// ≥ 2 into an INT4-KV case (cases/int4kv.go, ONNX Runtime's
// kv_cache_bit_width 4): per-channel scales 3 in 4, else per tensor; D and
// Dv rounded down to even (two codes a byte), without poison and specials.
// It draws last, after the NVFP4 draw declined, so every case that was not
// INT4 before is generated bit-identically.
func drawInt4KV(r *rand.Rand, c *cases.Case) {
	if r.IntN(4) != 0 || c.D < 2 || (c.Dv != 0 && c.Dv < 2) {
		return
	}
	c.Int4KV, c.Poison, c.Specials = "per_channel", false, nil
	if r.IntN(4) == 0 {
		c.Int4KV = "per_tensor"
	}
	c.D -= c.D % 2
	if c.Dv != 0 {
		c.Dv -= c.Dv % 2
		if c.Dv == c.D {
			c.Dv = 0
		}
	}
}

// denseCandidates are the dense family's simplifications: fewer sequences,
// shorter ones, no modifier, no window, no lse.
func denseCandidates(c cases.Case, add func(func(d *cases.Case)), smaller func(int) []int) {
	if len(c.Sq) > 1 {
		for b := range c.Sq { // keep one sequence, then drop one
			add(func(d *cases.Case) { d.Sq, d.Sk = []int{c.Sq[b]}, []int{c.Sk[b]}; d.Specials = nil })
		}
		for b := range c.Sq {
			add(func(d *cases.Case) {
				d.Sq, d.Sk = slices.Delete(d.Sq, b, b+1), slices.Delete(d.Sk, b, b+1)
				d.Specials = nil
			})
		}
	}
	for b := range c.Sq {
		for _, v := range smaller(c.Sq[b]) {
			add(func(d *cases.Case) { d.Sq[b] = v })
		}
		for _, v := range smaller(c.Sk[b]) {
			add(func(d *cases.Case) { d.Sk[b] = v })
		}
	}
	add(func(d *cases.Case) { d.Softcap = 0 })
	add(func(d *cases.Case) { d.Alibi = nil })
	add(func(d *cases.Case) { d.LSE = nil })
	add(func(d *cases.Case) { d.Causal = false })
	add(func(d *cases.Case) { d.WindowLeft = nil })
	add(func(d *cases.Case) { d.WindowRight = nil })
	for _, p := range []**int{&c.WindowLeft, &c.WindowRight} {
		if *p != nil && **p > 0 {
			left := p == &c.WindowLeft
			for _, v := range smaller(**p) {
				add(func(d *cases.Case) {
					if left {
						d.WindowLeft = &v
					} else {
						d.WindowRight = &v
					}
				})
			}
		}
	}
}
