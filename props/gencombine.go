package props

import (
	"fmt"
	"math/rand/v2"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
)

// The combine family's generator: partial states, some empty.
var _ = registerGen(&genFamily{
	draw: func(r *rand.Rand, _ problem.Family, lim limits) cases.Case { return drawCombine(r, lim) },
	classes: func(c cases.Case, in *problem.Inputs, hit map[string]bool) {
		hit[ClassLSE] = true
		hit[ClassEmptyStates] = c.Empty > 0 && c.States > 0
	},
	rowKeys: func(c cases.Case) []int {
		ns := make([]int, c.T)
		for t := range ns {
			ns[t] = c.States
		}
		return ns
	},
	candidates: func(c cases.Case, add func(func(*cases.Case)), smaller func(int) []int) {
		for _, v := range smaller(c.T) {
			add(func(d *cases.Case) { d.T = v })
		}
		for _, v := range smaller(c.States) {
			add(func(d *cases.Case) { d.States = v })
		}
		add(func(d *cases.Case) { d.Empty = 0 })
	},
}, problem.Combine)

// drawCombine draws a state merge: 0..16 partial states (rarely up to
// 100), some empty, lse spreads from tiny to beyond exp's range, every lse
// convention.
func drawCombine(r *rand.Rand, lim limits) cases.Case {
	c := cases.Case{Family: problem.Combine, Seed: r.Uint64(), T: 1 + r.IntN(8), H: drawH(r, lim), D: drawD(r, lim)}
	switch p := r.IntN(100); {
	case p < 10:
		c.States = 0
	case p < 30:
		c.States = 1
	case p < 45:
		c.States = 2
	case p < 95:
		c.States = 3 + r.IntN(14)
	default:
		c.States = 17 + r.IntN(84)
	}
	c.Empty = []float64{0, 0, 0.2, 0.5, 0.9, 1}[r.IntN(6)]
	c.Values.Scale = []float64{1, 1, 0.01, 10, 100, 1e4}[r.IntN(6)]
	if r.IntN(10) == 0 {
		c.Values.VScale = []float64{1e-3, 100, 1e4, 0x1p-20}[r.IntN(4)]
	}
	if r.IntN(5) == 0 {
		c.Values.Dist = "wide"
		c.Values.WideExp = []int{0, 2, 8}[r.IntN(3)]
	}
	c.LSE = &cases.LSESpec{Base: []string{"e", "2"}[r.IntN(2)], Empty: []string{"+inf", "-inf"}[r.IntN(2)]}
	drawDType(r, &c)
	for c.T*c.States*c.H*(c.D+1) > lim.work {
		c.H = max(1, c.H/2)
		c.D = max(1, c.D/2)
		if c.H == 1 && c.D == 1 {
			break
		}
	}
	if err := c.Validate(); err != nil {
		panic(fmt.Sprintf("props: generated an invalid case (%v): %s", err, c))
	}
	return c
}
