package cases

import (
	"fmt"

	"github.com/attnvet/attnvet/internal/problem"
)

// The window family's cases: t tokens of one sequence, window W, GQA.
var _ = registerFamily(&family{
	validate: Case.validateWindow,
	elements: func(c Case) int { return c.T * (c.H*c.D + c.hkv()*(c.D+c.dv())) },
	tokens:   caseT,
	hkv:      hkvOrH,
	dv:       dvOrD,
	generate: func(c Case, in *problem.Inputs, r *rng, vg *valueGen) error {
		in.W = c.Window
		in.K = vg.fill(in.T*in.Hkv*in.D, vg.scale(), false)
		in.V = vg.fill(in.T*in.Hkv*in.Dv, vg.vScale(), false)
		return nil
	},
	specialKeys: Case.Tokens,
	shape:       tWindowShape,
	rowNote: func(in *problem.Inputs, t int) string {
		lo, hi := in.WindowRange(t)
		return fmt.Sprintf(" (key positions %d..%d)", lo, hi)
	},
	keySources: func(in *problem.Inputs, t, n int) []string {
		lo, _ := in.WindowRange(t)
		return positionKeys(lo, n)
	},
}, problem.Window)

func (c Case) validateWindow() error {
	hkv := c.hkv()
	if hkv < 1 || hkv > c.H || c.H%hkv != 0 {
		return fmt.Errorf("hkv=%d: want a divisor of h=%d", hkv, c.H)
	}
	if c.T < 1 || c.T > maxTokens {
		return fmt.Errorf("t=%d: want 1..%d", c.T, maxTokens)
	}
	if dv := c.dv(); dv < 1 || dv > maxDim {
		return fmt.Errorf("dv=%d: want 1..%d", dv, maxDim)
	}
	if c.Window < 0 {
		return fmt.Errorf("window %d is negative", c.Window)
	}
	if c.B != 0 || c.Seqused != nil || c.Win != 0 || c.IdxTopK != 0 {
		return fmt.Errorf("window family takes t, window, h, hkv, d, dv (not b, seqused, win, idx_topk)")
	}
	if elems := c.elements(); elems > maxElems {
		return fmt.Errorf("case too large: %d tensor elements (limit %d)", elems, maxElems)
	}
	return nil
}
