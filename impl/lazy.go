package impl

import (
	"math"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
)

// Lazy is the exp2 loop with lazy rescaling (SPEC-flashmla.md, precision
// path step 7: FlashMLA's SM100 head64 decode kernel; FA4's conditional
// rescale is the same idea): a tile raises the running max only when its
// max exceeds it by more than LazyThreshold in log2 units,
// (m_t − m)·ls > τ; otherwise the tile's p = exp2(S·ls − m·ls) are taken
// against the stale max and may reach 2^τ before the P cast, and l and o
// are not rescaled. The first tile always sets the max. The row's true
// max is tracked beside it for max_logit; the sink, the division and the
// lse (m·scale + ln l) use the stale max, as the kernel does.
//
// The device shares each rescale decision across the 32 rows (heads) of a
// warp; the emulation decides per row. Either way every row's p stays
// below 2^τ, which is all the bound uses (docs/tolerance.md, "Lazy
// rescaling").
const Lazy Kind = "lazy"

// LazyThreshold is τ, FlashMLA SM100's rescale threshold in log2 units.
const LazyThreshold = 6

// lazyConfigs are the registry's lazy-rescaling kernels (as exp2Configs).
func lazyConfigs() []Config {
	var cs []Config
	for _, n := range profile.Names() {
		p := profile.MustLookup(n)
		if p.Acc == num.FP32 && p.Score == num.FP32 {
			cs = append(cs, Config{Kind: Lazy, Bc: 64, Profile: p})
		}
	}
	return cs
}

// lazyRow is the Lazy kind's row: it returns the natural stale max and l,
// o accumulated in place, and sets s.rowMax to the true max.
func (s *state) lazyRow(keys []problem.Key, o []float32) (m, l float32) {
	mods, ls := s.exp2Setup()
	bc := s.e.Config.Bc
	m = float32(math.Inf(-1))
	top := m // the true max
	clear(o)
	for t0 := 0; t0 < len(keys); t0 += bc {
		tk := keys[t0:min(t0+bc, len(keys))]
		sc, mt := s.exp2Scores(tk, mods)
		top = max(top, mt)
		alpha := float32(1)
		switch {
		case math.IsInf(float64(m), -1):
			alpha, m = 0, mt
		case float32(float32(mt-m)*ls) > LazyThreshold:
			alpha = exp2f(float32(float32(m-mt) * ls))
			m = mt
		}
		if alpha != 1 {
			l = float32(alpha * l)
			for j := range o {
				o[j] = float32(alpha * o[j])
			}
		}
		l = float32(l + s.exp2Tile(tk, sc, ls, float32(m*ls), o))
	}
	if !mods {
		m, top = float32(m*s.scale), float32(top*s.scale)
	}
	s.lazyTop = top
	return m, l
}
