package impl

import (
	"math"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/internal/quant"
)

// FA3 is FlashAttention 3's FP8 forward (hopper/, SPEC-flashattention.md
// "Precision path", docs/kernels.md "FP8 dense") on a dense problem with
// FP8 inputs (problem.DenseFP8), per query row and tile of Bc keys:
//
//	ls  = FP32(FP32(FP32(scale)·q_descale)·k_descale)   the descales folded into the exponent scale
//	S_c = q·k_c over the e4m3 codes (products exact), each add kept to
//	      acc_bits significand bits (truncated; FP32 without acc_bits)
//	x_c = S_c·ls, m = the running max (the tile's max merged in), α = e^{m_old − m}
//	p_c = 2^8·e^{x_c − m} ∈ [0, 256]                  the max offset (an exact power of two)
//	l   = α·l + Σ p_c (FP32, the unrounded p)
//	P_c = e4m3_RN_satfinite(p_c) with p_dtype=e4m3     else p_c
//	O   = α·O, then O += P_c·v_c kept to acc_bits bits (the WGMMA accumulator)
//	o   = O·(FP32(1/l)·v_descale), 0 when l is 0 or NaN
//	lse = m + ln(l·2^−8)                               the offset leaves the lse only
//
// The exponential is e^x (our portable exp) where the device computes
// exp2 with log2 e folded into ls: the same p within the exp error the
// bound allows. A sink, which FA3 has no tensor for, adds 2^8·e^{σ−m} to
// the denominator. Score modifiers (softcap, ALiBi) take the generic
// scaled-score path with ls. Other problems (no FP8 inputs) compute as
// tiled/bc128 does. The evidence for the finalize step (inv_sum from the
// unscaled sum times v_descale, the 2^−8 on the lse's sum only) is an FA3
// fork's hopper softmax.h (gueraf/LiteAttention d45b255, Softmax::finalize).
const FA3 Kind = "fa3"

// FA3Profile is the FA3 FP8 emulation's declared profile: its operands are
// the e4m3 codes, exact in FP32; P and the GEMM accumulation are what the
// problem declares (p_dtype=e4m3, acc_bits); out is BF16 (RN).
var FA3Profile = profile.Profile{Name: "fp8bf16", In: num.FP32, Score: num.FP32, P: num.FP32, Acc: num.FP32, Out: num.BF16, OutRound: num.RNE}

// fa3Configs are the registry's FA3 FP8 emulations.
func fa3Configs() []Config { return []Config{{Kind: FA3, Bc: 128, Profile: FA3Profile}} }

// FA3Bugs are defects of an FA3 FP8 kernel (impl/mutant); the zero value
// is the correct kernel.
type FA3Bugs struct {
	QDescaleByQHead bool // q_descale read at [b, h] (the query head) instead of [b, kv head]
	NoOffset        bool // p = e^{x−m} cast to e4m3 without the 2^8 offset (small p underflow)
	NoLScale        bool // the lse from l without the 2^−8
	VDescale        int  // v_descale applied this many times (0 = once, the correct kernel; −1 = never; 2 = twice)
	// PFoldV folds v_descale into P before the e4m3 cast (P = e4m3(p·v_descale)),
	// with the declared overflow behaviour: Saturate clips at ±448,
	// NoSaturate makes an overflow NaN (OCP e4m3fn has no infinity).
	PFoldV   bool
	Overflow quant.Overflow
}

// NewFA3Mutant is the FA3 emulation of c with defects b.
func NewFA3Mutant(c Config, b FA3Bugs) *Emulation {
	c.Kind = FA3
	c.fa3 = &b
	return New(c)
}

// accRound keeps bits significand bits of x, truncating (the FP8 tensor
// cores' limited accumulator); bits 0 or ≥ 24 keeps FP32.
func accRound(x float32, bits int) float32 {
	if bits <= 0 || bits >= 24 || x != x {
		return x
	}
	b := math.Float32bits(x)
	if b&0x7f800000 == 0x7f800000 {
		return x // ±Inf
	}
	return math.Float32frombits(b &^ (1<<(24-bits) - 1))
}

// fa3Head computes one FP8 query row into dst and returns its lse.
func (s *state) fa3Head(t, h int, keys []problem.Key, dst []float32) float32 {
	in := s.in
	f := in.FP8
	bugs := s.e.fa3
	if bugs == nil {
		bugs = &FA3Bugs{}
	}
	g := in.Group(h)
	qd, kd, vd := in.Descales(t, g)
	if bugs.QDescaleByQHead {
		qd = float32(math.NaN()) // [b, h] beyond the [B, Hkv] tensor: garbage
		if i := in.DenseSeq(t).B*in.Hkv + h; i < len(f.QDescale) {
			qd = f.QDescale[i]
		} else if f.QDescale == nil {
			qd = 1
		}
	}
	ls := float32(float32(float32(in.Scale)*qd) * kd)
	bits := f.AccBits
	off := float32(1 << problem.FP8MaxOffset)
	if bugs.NoOffset {
		off = 1
	}
	mods := in.HasMods()
	saved := s.scale
	s.scale = ls
	defer func() { s.scale = saved }()
	o := s.o
	clear(o)
	bc := s.e.Config.Bc
	if cap(s.s) < bc {
		s.s, s.p = make([]float32, bc), make([]float32, bc)
	}
	m, l := float32(math.Inf(-1)), float32(0)
	for t0 := 0; t0 < len(keys); t0 += bc {
		tk := keys[t0:min(t0+bc, len(keys))]
		sc, p := s.s[:len(tk)], s.p[:len(tk)]
		mt := m
		for c, k := range tk {
			if mods {
				sc[c] = s.keyScore(k)
			} else {
				var acc float32
				for d, qv := range s.q {
					acc = accRound(acc+float32(qv*k.K[d]), bits)
				}
				sc[c] = float32(acc * ls)
			}
			mt = max(mt, sc[c])
		}
		alpha := float32(1)
		if !math.IsInf(float64(m), -1) {
			alpha = num.Exp32(float32(m - mt))
		}
		l = float32(alpha * l)
		for j := range o {
			o[j] = float32(alpha * o[j])
		}
		m = mt
		mm := m
		if math.IsInf(float64(mm), -1) {
			mm = 0 // Check_inf: a max of −∞ is replaced by 0
		}
		for c := range tk {
			pc := float32(off * num.Exp32(float32(sc[c]-mm)))
			l += pc
			switch {
			case bugs.PFoldV:
				pc = quant.E4M3ToF32(quant.E4M3FromF32(float32(pc*vd), bugs.Overflow))
			case f.PE4M3:
				pc = quant.E4M3ToF32(quant.E4M3FromF32(pc, quant.Saturate))
			}
			p[c] = pc
		}
		for c, k := range tk {
			pc := p[c]
			for j, v := range k.V[:len(o)] {
				o[j] = accRound(o[j]+float32(pc*v), bits)
			}
		}
	}
	lk := l // the keys alone (the lse without the sink)
	if sg := in.SinkOf(h); !math.IsInf(float64(sg), -1) {
		l += float32(off * num.Exp32(float32(sg-m)))
	}
	var inv float32
	if l != 0 && l == l {
		inv = 1 / l
	}
	sc := inv
	times := 1
	switch {
	case bugs.PFoldV, bugs.VDescale < 0:
		times = 0
	case bugs.VDescale > 0:
		times = bugs.VDescale
	}
	for range times {
		sc = float32(sc * vd)
	}
	for j, v := range o {
		dst[j] = float32(v * sc)
	}
	s.rowMax = m // max_logit: the final running max of the scaled scores (natural units)
	if in.LSE == nil {
		return 0
	}
	ll := lk
	if in.LSE.SinkIncluded {
		ll = l
	}
	if ll == 0 || ll != ll {
		return float32(in.LSE.Empty())
	}
	if !bugs.NoLScale {
		ll = float32(l / off)
	}
	return s.lseBase(m + num.Log32(ll))
}

// fp8Out multiplies a generic kernel's FP8 row by its v descale (FP32):
// the attention of v̂ = v·v_descale, the scale applied after the division.
func (s *state) fp8Out(t, g int, pre []float32) {
	_, _, vd := s.in.Descales(t, g)
	if vd == 1 {
		return
	}
	for j, v := range pre {
		pre[j] = float32(v * vd)
	}
}
