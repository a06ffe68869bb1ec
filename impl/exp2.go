package impl

import (
	"fmt"
	"math"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
)

// Exp2 is the loop of FlashAttention's and FlashMLA's forward kernels
// (SPEC-flashattention.md "Precision path", SPEC-flashmla.md steps 1-5):
// tiles of Bc keys in order; per tile the raw scores S = q·k (FP32
// accumulation, no scale), the running max m on the raw S, and
//
//	ls = fl(fl(scale)·fl(log2 e))                the folded constant
//	p  = exp2(fl(fl(S·ls) − fl(m·ls)))           FMA-free (UNFUSE_FMA's __fmul_rn)
//	α  = exp2(fl(fl(m_prev − m)·ls))             the online rescale
//	l  = fl(fl(α·l) + Σ p)                       Σ p over the unrounded p (per tile, in order)
//	o  = fl(α·o), then o = fl(o + fl(P·v)) key by key   the P·V GEMM accumulating into acc_o
//
// then m·scale (= fl(m·fl(scale)), natural units) is the row's max for the
// sink, the lse (m·scale + ln l) and max_logit. With a score modifier
// (softcap, ALiBi, a key bias) the modified natural score x (as the other
// kinds compute it) takes S's place and ls = fl(log2 e).
//
// exp2 is float32(e^{y·ln 2}) in float64 (num.Exp): within half an ulp
// and a float64 rounding, portable. docs/tolerance.md ("The exp2 path")
// derives the bound's terms.
const Exp2 Kind = "exp2"

// exp2Configs are the registry's exp2 kernels: Bc = 64 (FlashMLA's key
// block), the profiles with FP32 scores and accumulators.
func exp2Configs() []Config {
	var cs []Config
	for _, n := range profile.Names() {
		p := profile.MustLookup(n)
		if p.Acc == num.FP32 && p.Score == num.FP32 {
			cs = append(cs, Config{Kind: Exp2, Bc: 64, Profile: p})
		}
	}
	return cs
}

// exp2f is 2^y rounded to FP32.
func exp2f(y float32) float32 {
	if math.IsInf(float64(y), -1) {
		return 0
	}
	return float32(num.Exp(float64(float64(y) * math.Ln2))) // the conversion keeps the product unfused
}

// exp2Raw is a key's score in the exp2 kind's units: the raw dot q·k, or
// with a modifier the modified natural score.
func (s *state) exp2Raw(k problem.Key, mods bool) float32 {
	if mods {
		return s.keyScore(k)
	}
	ar := &s.ar
	q := s.q
	kk := k.K[:len(q)]
	var acc float32
	for d, qd := range q {
		acc = ar.ra(acc + ar.ra(float32(qd*kk[d])))
	}
	return acc
}

// exp2Setup is the exp2 kinds' row set-up: whether the row has score
// modifiers, and the folded constant ls (fl(scale)·fl(log2 e), or fl(log2
// e) when the modified natural score takes the raw dot's place).
func (s *state) exp2Setup() (mods bool, ls float32) {
	if !s.ar.accRaw || !s.ar.scoreRaw {
		panic(fmt.Sprintf("impl: the exp2 kinds take FP32 scores and accumulators (profile %s)", s.e.Config.Profile.Name))
	}
	mods = s.in.HasMods()
	log2e := float32(math.Log2E)
	ls = float32(s.scale * log2e)
	if mods {
		ls = log2e
	}
	if bc := s.e.Config.Bc; cap(s.s) < bc {
		s.s, s.p = make([]float32, bc), make([]float32, bc)
	}
	return mods, ls
}

// exp2Scores computes a tile's scores into s.s and returns them with the
// tile's max (max is exact, so max(m, this) is the running max).
func (s *state) exp2Scores(tk []problem.Key, mods bool) (sc []float32, mt float32) {
	sc = s.s[:len(tk)]
	mt = float32(math.Inf(-1))
	for c, k := range tk {
		sc[c] = s.exp2Raw(k, mods)
		mt = max(mt, sc[c])
	}
	return sc, mt
}

// exp2Tile takes a tile's scores against the max m (mls = fl(m·ls)): P
// (rounded as the profile says) into s.p, o += P·V key by key, and it
// returns the tile's Σ p (of the unrounded p, unless the profile sums the
// rounded ones). The caller rescales l and o first.
func (s *state) exp2Tile(tk []problem.Key, sc []float32, ls, mls float32, o []float32) (lt float32) {
	ar := &s.ar
	p := s.p[:len(sc)]
	for c, x := range sc {
		pc := exp2f(float32(float32(x*ls) - mls))
		p[c] = ar.rp(pc)
		if ar.lRounded {
			pc = p[c]
		}
		lt += pc
	}
	for c, k := range tk {
		pc := p[c]
		for j, v := range k.V {
			o[j] = float32(o[j] + float32(pc*v))
		}
	}
	return lt
}

// exp2Row is the Exp2 kind's row: it returns the natural running max and
// l, with o accumulated in place.
func (s *state) exp2Row(keys []problem.Key, o []float32) (m, l float32) {
	mods, ls := s.exp2Setup()
	bc := s.e.Config.Bc
	m = float32(math.Inf(-1))
	clear(o)
	for t0 := 0; t0 < len(keys); t0 += bc {
		tk := keys[t0:min(t0+bc, len(keys))]
		sc, mt := s.exp2Scores(tk, mods)
		mt = max(m, mt)
		alpha := float32(0)
		if !math.IsInf(float64(m), -1) {
			alpha = exp2f(float32(float32(m-mt) * ls))
		}
		for j := range o {
			o[j] = float32(alpha * o[j])
		}
		l = float32(float32(alpha*l) + s.exp2Tile(tk, sc, ls, float32(mt*ls), o))
		m = mt
	}
	if !mods {
		m = float32(m * s.scale)
	}
	return m, l
}
