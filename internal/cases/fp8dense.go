package cases

import (
	"fmt"
	"math"

	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/quant"
)

// Dense FP8 cases (CONTRACTS.md "Quantized inputs", FlashAttention 3):
// the dense inputs drawn in FP32 are quantized per KV head the way FP8
// users of FA3 do (descale = amax/448 over the head, codes =
// e4m3_RN_satfinite(x/descale), so every head holds codes at ±448), and
// each sequence's descales are that base times a drawn factor (a power of
// two times 0.75..1.25: not powers of two), which only changes which
// dequantized problem the codes stand for. Edge classes (fp8_edge):
//
//	p256      q descales 2^−20 smaller: every score ≈ 0, every P near 256 after the offset
//	spread    q descales that spread the scores (σ ≈ 8/√(2 ln n)): most P in e4m3's
//	          subnormal range without the offset
//	overflow  q descales 2^59 larger, k descales such that the FP32 exponent scale is
//	          2^118: S·ls overflows FP32 for |S| > 2^10 (those rows are outside the domain)
//	bigv      v descales 2^6..2^12 larger (a v descale folded into P overflows e4m3)
//	tail      one key per sequence (key 0: k codes ±448 along the query, v codes 0)
//	          scores 8 above the others, whose v codes are all ≥ 0, and every query of
//	          a (sequence, KV head) is the same row: the bulk of the keys weighs about
//	          e^−8 ≈ 2^−11.5 each, below half of e4m3's smallest subnormal (2^−10)
//	          without the +8 offset, a normal 2^−3.5 with it; o is the bulk's alone
const (
	FP8EdgeP256     = "p256"
	FP8EdgeSpread   = "spread"
	FP8EdgeOverflow = "overflow"
	FP8EdgeBigV     = "bigv"
	FP8EdgeTail     = "tail"
)

func (c Case) validateFP8Dense() error {
	if c.FP8 == "" {
		if c.FP8P != "" || c.AccBits != 0 || c.FP8Edge != "" {
			return fmt.Errorf("fp8_p, acc_bits and fp8_edge need fp8")
		}
		return nil
	}
	if c.FP8 != "e4m3" {
		return fmt.Errorf("fp8 %q: want e4m3", c.FP8)
	}
	if c.Family != problem.Dense {
		return fmt.Errorf("fp8 is a dense field")
	}
	if c.DType != "fp32" {
		return fmt.Errorf("fp8: dtype must be fp32 (the kernels take the e4m3 codes as FP32 values)")
	}
	if len(c.Specials) > 0 {
		return fmt.Errorf("fp8: specials are not supported (values are e4m3 codes)")
	}
	switch c.FP8P {
	case "", "e4m3", "fp32":
	default:
		return fmt.Errorf("fp8_p %q: want e4m3 or fp32", c.FP8P)
	}
	if c.AccBits != 0 && (c.AccBits < 2 || c.AccBits > 24) {
		return fmt.Errorf("acc_bits %d: want 2..24 (0: FP32)", c.AccBits)
	}
	switch c.FP8Edge {
	case "", FP8EdgeP256, FP8EdgeSpread, FP8EdgeOverflow, FP8EdgeBigV, FP8EdgeTail:
	default:
		return fmt.Errorf("fp8_edge %q: want p256, spread, overflow, bigv or tail", c.FP8Edge)
	}
	return nil
}

// denseFP8 quantizes the FP32 dense inputs into e4m3 codes and descales.
func (c Case) denseFP8(in *problem.Inputs, r *rng) {
	nb := len(in.CuQ) - 1
	per := in.H / in.Hkv
	qBase := quantizeHeads(in.Q, in.H, in.D, func(h int) int { return h / per }, in.Hkv)
	kBase := quantizeHeads(in.K, in.Hkv, in.D, func(g int) int { return g }, in.Hkv)
	vBase := quantizeHeads(in.V, in.Hkv, in.Dv, func(g int) int { return g }, in.Hkv)
	var tailS0 []float64
	if c.FP8Edge == FP8EdgeTail {
		tailS0 = fp8Tail(in)
	}
	f := &problem.DenseFP8{PE4M3: c.FP8P != "fp32", AccBits: c.AccBits,
		QDescale: make([]float32, nb*in.Hkv), KDescale: make([]float32, nb*in.Hkv), VDescale: make([]float32, nb*in.Hkv)}
	factor := func() float64 { return math.Ldexp(0.75+0.5*r.uniform(), r.intn(5)-2) }
	// spread: the exponent scale that gives dequantized scores a standard
	// deviation of about 8/√(2 ln n) (n the longest sequence's keys), so
	// the row max stands about 8 above the bulk: most weights near e^−8,
	// in e4m3's subnormal range without the +8 offset.
	var spread float64
	if c.FP8Edge == FP8EdgeSpread {
		n := 3
		for b := range nb {
			n = max(n, int(in.CuK[b+1]-in.CuK[b]))
		}
		sd := rms(in.Q) * rms(in.K) * math.Sqrt(float64(in.D))
		if sd > 0 {
			spread = 8 / math.Sqrt(2*math.Log(float64(n))) / sd
		}
	}
	for b := range nb {
		for g := range in.Hkv {
			i := b*in.Hkv + g
			q, k, v := qBase[g]*factor(), kBase[g]*factor(), vBase[g]*factor()
			switch c.FP8Edge {
			case FP8EdgeP256:
				q = math.Ldexp(q, -20)
			case FP8EdgeSpread:
				if spread > 0 {
					q = spread / (in.Scale * k)
				}
			case FP8EdgeOverflow:
				q = math.Ldexp(q, 59)
				k = 0x1p118 / (in.Scale * float64(float32(q)))
			case FP8EdgeTail:
				if s0 := tailS0[i]; s0 > 0 {
					q = 8 / (s0 * in.Scale * float64(float32(k)))
				}
			case FP8EdgeBigV:
				v = math.Ldexp(v, 6+r.intn(7))
			}
			clamp := func(x float64) float32 { return float32(math.Min(math.Max(x, 0x1p-100), 0x1p100)) }
			f.QDescale[i], f.KDescale[i], f.VDescale[i] = clamp(q), clamp(k), clamp(v)
		}
	}
	in.FP8 = f
}

// quantizeHeads rewrites x ([rows][heads][w]) as e4m3 codes per group
// (group(head) of ng): descale = amax/448 over the group (1 for an all-zero
// group), codes = e4m3_RN_satfinite(x/descale). It returns the descales.
func quantizeHeads(x []float32, heads, w int, group func(int) int, ng int) []float64 {
	amax := make([]float64, ng)
	for i, v := range x {
		g := group(i / w % heads)
		amax[g] = math.Max(amax[g], math.Abs(float64(v)))
	}
	ds := make([]float64, ng)
	for g, a := range amax {
		ds[g] = 1
		if a > 0 {
			ds[g] = float64(float32(a / 448))
		}
	}
	for i, v := range x {
		d := ds[group(i/w%heads)]
		x[i] = quant.E4M3ToF32(quant.E4M3FromF64(float64(v)/d, quant.Saturate))
	}
	return ds
}

func rms(x []float32) float64 {
	if len(x) == 0 {
		return 0
	}
	s := 0.0
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(x)))
}

// fp8Tail makes every query of a (sequence b, KV head g) the codes of its
// first one, key 0 of the sequence the codes 448·sign(q) (its score
// S0 = 448·Σ|q| stands far above the others') with value 0, and the other
// values ≥ 0 (o is the tail's weight, coherently). It returns S0 per
// b·Hkv + g
// (0 where the sequence has no query or key 0 is unreachable).
func fp8Tail(in *problem.Inputs) []float64 {
	nb := len(in.CuQ) - 1
	per := in.H / in.Hkv
	s0 := make([]float64, nb*in.Hkv)
	for b := range nb {
		t0, t1 := int(in.CuQ[b]), int(in.CuQ[b+1])
		if t0 == t1 || in.CuK[b+1] == in.CuK[b] {
			continue
		}
		s := in.DenseSeq(t0)
		r := in.DenseRow(s, 0)
		for g := range in.Hkv {
			q0 := append([]float32(nil), in.QRow(t0, g*per)...)
			for t := t0; t < t1; t++ {
				for h := g * per; h < (g+1)*per; h++ {
					copy(in.QRow(t, h), q0)
				}
			}
			if r < 0 {
				continue
			}
			k := in.K[(r*in.Hkv+g)*in.D : (r*in.Hkv+g+1)*in.D]
			sum := 0.0
			for d, v := range q0 {
				switch {
				case v > 0:
					k[d] = 448
				case v < 0:
					k[d] = -448
				default:
					k[d] = 0
				}
				sum += math.Abs(float64(v)) * 448
			}
			s0[b*in.Hkv+g] = sum
			for j := range int(in.CuK[b+1] - in.CuK[b]) {
				rj := in.DenseRow(s, j)
				if rj < 0 {
					continue
				}
				v := in.V[(rj*in.Hkv+g)*in.Dv : (rj*in.Hkv+g+1)*in.Dv]
				for d := range v {
					if v[d] = float32(math.Abs(float64(v[d]))); j == 0 {
						v[d] = 0
					}
				}
			}
		}
	}
	return s0
}
