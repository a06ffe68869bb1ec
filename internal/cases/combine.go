package cases

import (
	"fmt"
	"math"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

const maxStates = 1 << 10

// The combine family's cases: t rows of h heads merging states partial
// states; no query.
var _ = registerFamily(&family{
	validate: Case.validateCombine,
	elements: func(c Case) int { return c.T * c.States * c.H * (c.D + 1) },
	tokens:   caseT,
	hkv:      func(c Case) int { return c.H },
	dv:       dvOrD,
	noQ:      true,
	generate: func(c Case, in *problem.Inputs, r *rng, vg *valueGen) error {
		c.combine(in, r, vg)
		return nil
	},
	specialKeys: Case.Tokens,
	shape:       tWindowShape,
	rowNote:     noRowNote,
	keySources:  rankedKeys,
}, problem.Combine)

func (c Case) validateCombine() error {
	if c.T < 1 || c.T > maxTokens {
		return fmt.Errorf("t=%d (rows): want 1..%d", c.T, maxTokens)
	}
	if c.States < 0 || c.States > maxStates {
		return fmt.Errorf("states=%d: want 0..%d", c.States, maxStates)
	}
	if math.IsNaN(c.Empty) || c.Empty < 0 || c.Empty > 1 {
		return fmt.Errorf("empty=%v: want a fraction in [0, 1]", c.Empty)
	}
	if c.LSE == nil {
		return fmt.Errorf("combine family needs lse (base and empty: the partial states' convention)")
	}
	if _, err := c.LSE.Conv(false); err != nil {
		return err
	}
	if c.Sink != nil && c.Sink.Kind != "none" || c.Softcap != 0 || c.Alibi != nil || len(c.Specials) > 0 {
		return fmt.Errorf("combine family takes no sink, softcap, alibi or specials")
	}
	if c.B != 0 || c.Seqused != nil || c.Win != 0 || c.IdxTopK != 0 || c.Window != 0 || c.Sq != nil || c.Hkv != 0 || c.Dv != 0 {
		return fmt.Errorf("combine family takes t, h, d, states, empty, lse (not b, seqused, win, idx_topk, window, sq, sk, hkv, dv)")
	}
	if elems := c.T * c.States * c.H * (c.D + 1); elems > maxElems {
		return fmt.Errorf("case too large: %d tensor elements (limit %d)", elems, maxElems)
	}
	return nil
}

// combine builds the partial states: values as the case's values, lse
// s ~ normal·scale (natural units, converted to the declared base), a
// fraction Empty of them set to lse_empty.
func (c Case) combine(in *problem.Inputs, r *rng, vg *valueGen) {
	in.D, in.Dv, in.Hkv, in.States, in.Scale = 0, c.D, c.H, c.States, 1 // no query: the scale plays no part
	in.Q = nil
	conv, _ := c.LSE.Conv(false) // checked by Validate
	in.LSE = &conv
	n := c.T * c.States * c.H
	in.CombV = vg.fill(n*c.D, vg.vScale(), false)
	in.CombS = make([]float32, n)
	spread := orOne(c.Values.Scale)
	for i := range in.CombS {
		s := float64(r.normal() * spread)
		if conv.Base2 {
			s = float64(s * math.Log2E)
		}
		in.CombS[i] = float32(num.Round64(num.FP32, s, num.RNE))
		if c.Empty > 0 && r.uniform() < c.Empty {
			in.CombS[i] = float32(conv.Empty())
		}
	}
}
