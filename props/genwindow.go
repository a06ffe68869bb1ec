package props

import (
	"math/rand/v2"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
)

// The window family's generator: T and W around a key count, GQA.
var _ = registerGen(&genFamily{
	draw: keyedDraw(drawWindow, nil),
	classes: func(c cases.Case, in *problem.Inputs, hit map[string]bool) {
		hit[ClassGQA] = in.Hkv < in.H
		hit[ClassWinBoundary] = c.Window > 0 && c.T > c.Window
	},
	rowKeys: func(c cases.Case) []int {
		ns := make([]int, c.T)
		for t := range ns {
			ns[t] = t + 1
			if c.Window > 0 {
				ns[t] = min(t+1, c.Window)
			}
		}
		return ns
	},
	candidates: func(c cases.Case, add func(func(*cases.Case)), smaller func(int) []int) {
		for _, v := range smaller(c.T) {
			add(func(d *cases.Case) { d.T = v })
		}
		w := c.Window
		if w == 0 {
			w = c.T + 1
		}
		for _, v := range smaller(w) {
			if v > 0 {
				add(func(d *cases.Case) { d.Window = v })
			}
		}
	},
	ownKV:      true,
	fullWindow: func(c cases.Case) int { return c.T }, // full causal is the widest window
}, problem.Window)

// drawWindow picks T and W so that some query sees n keys.
func drawWindow(r *rand.Rand, c *cases.Case, n int, lim limits) {
	n = max(n, 1)
	switch p := r.IntN(100); {
	case p < 35: // full causal: rows see 1..T keys
		c.T = n
	case p < 80: // a window of n, T around it
		c.Window = n
		c.T = max(1, n+r.IntN(12)-2)
	default: // a narrow window over a longer sequence
		c.Window = 1 + r.IntN(8)
		c.T = max(n, c.Window+1+r.IntN(10))
	}
	c.T = min(c.T, 4*lim.mediumN)
	if r.IntN(2) == 0 {
		divs := divisors(c.H)
		c.Hkv = divs[r.IntN(len(divs))]
	}
	if r.IntN(10) < 3 {
		c.Dv = 1 + r.IntN(lim.maxD)
	}
}
