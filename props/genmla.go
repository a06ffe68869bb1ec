package props

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
)

// The mla family's generator: FlashMLA sparse decode.
var _ = registerGen(&genFamily{
	draw: func(r *rand.Rand, _ problem.Family, lim limits) cases.Case { return drawMLA(r, lim) },
	classes: func(c cases.Case, in *problem.Inputs, hit map[string]bool) {
		hit[ClassLSE] = in.LSE != nil
		hit[ClassPoison] = c.Poison
		hit[ClassExtraScope] = c.ExtraTopK > 0
		hit[ClassTopkLength] = c.TopkLength != nil || c.ExtraTopkLength != nil
		for t := 0; t < in.T; t++ {
			idx, n, _ := in.MLAScope(t, false)
			all := n > 0
			for _, x := range idx[:n] {
				all = all && x == -1
			}
			hit[ClassAllInvalid] = hit[ClassAllInvalid] || all
		}
	},
	// The index slots in scope: −1 entries and the extra scope's
	// topk_length are counted (an upper bound, for sizing work).
	rowKeys: func(c cases.Case) []int {
		ns := make([]int, c.Tokens())
		for t := range ns {
			ns[t] = c.TopK + c.ExtraTopK
			b := t / max(c.S, 1)
			if c.TopkLength != nil {
				ns[t] = min(c.TopK, c.TopkLength[b]) + c.ExtraTopK
			}
		}
		return ns
	},
	inputKeys: func(in *problem.Inputs) []int {
		ns := make([]int, in.T)
		for t := range ns {
			for _, extra := range []bool{false, true} {
				idx, n, _ := in.MLAScope(t, extra)
				for _, x := range idx[:n] {
					if x != -1 {
						ns[t]++
					}
				}
			}
		}
		return ns
	},
	candidates: func(c cases.Case, add func(func(*cases.Case)), smaller func(int) []int) {
		if c.B > 1 {
			add(func(d *cases.Case) {
				d.B = 1
				d.TopkLength, d.ExtraTopkLength = first(d.TopkLength), first(d.ExtraTopkLength)
			})
		}
		if c.S == 2 {
			add(func(d *cases.Case) { d.S = 0 })
		}
		for _, v := range smaller(c.TopK) {
			add(func(d *cases.Case) { d.TopK = v })
		}
		for _, v := range smaller(c.ExtraTopK) {
			add(func(d *cases.Case) { d.ExtraTopK = v })
		}
		add(func(d *cases.Case) { d.TopkLength = nil })
		add(func(d *cases.Case) { d.ExtraTopkLength = nil })
		add(func(d *cases.Case) { d.Invalid = 0 })
		add(func(d *cases.Case) { d.LSE = nil })
	},
	// The index entries read in each scope of each token.
	permute: func(in, out *problem.Inputs, r *rand.Rand) {
		out.Idx, out.ExtraIdx = slices.Clone(in.Idx), slices.Clone(in.ExtraIdx)
		for t := 0; t < in.T; t++ {
			for _, extra := range []bool{false, true} {
				idx, n, _ := out.MLAScope(t, extra)
				shuffleKeys(r, idx[:n])
			}
		}
	},
}, problem.MLA)

// drawMLA draws FlashMLA sparse decode cases: topk around the tile edges,
// −1 entries (rows of all −1 included), topk_length cutting valid
// entries, an extra scope, odd page sizes, NaN in unreferenced rows, ±∞
// sinks, V a prefix of K.
func drawMLA(r *rand.Rand, lim limits) cases.Case {
	c := cases.Case{Family: problem.MLA, Seed: r.Uint64(), H: drawH(r, lim), D: drawD(r, lim)}
	c.B = []int{1, 1, 2, 3}[r.IntN(4)]
	if r.IntN(3) == 0 {
		c.S = 2
	}
	c.TopK = drawN(r, lim)
	if r.IntN(3) == 0 {
		c.ExtraTopK = []int{1, 2, 16, 64}[r.IntN(4)]
	}
	if c.TopK+c.ExtraTopK == 0 {
		c.TopK = 1
	}
	c.Invalid = []float64{0, 0, 0.1, 0.5, 1}[r.IntN(5)]
	if r.IntN(3) == 0 {
		c.TopkLength = make([]int, c.B)
		for b := range c.TopkLength {
			c.TopkLength[b] = r.IntN(c.TopK + 2)
		}
	}
	if c.ExtraTopK > 0 && r.IntN(3) == 0 {
		c.ExtraTopkLength = make([]int, c.B)
		for b := range c.ExtraTopkLength {
			c.ExtraTopkLength[b] = r.IntN(c.ExtraTopK + 2)
		}
	}
	c.BlockSize = []int{1, 2, 53, 61, 64, 16}[r.IntN(6)]
	c.Poison = r.IntN(2) == 0
	if r.IntN(3) != 0 && c.D > 1 {
		c.Dv = 1 + r.IntN(c.D)
	}
	drawValues(r, &c)
	if c.Values.Dist == "dominant" { // dominant keys align the first key of a token: no such notion here
		c.Values.Dist = ""
	}
	drawSink(r, &c)
	if r.IntN(100) < 70 {
		c.LSE = &cases.LSESpec{Base: []string{"e", "2"}[r.IntN(2)], Empty: []string{"+inf", "-inf"}[r.IntN(2)]}
		if c.Sink != nil && c.Sink.Kind != "none" {
			c.LSE.Sink = []string{"included", "excluded"}[r.IntN(2)]
		}
	}
	for Work(c) > lim.work && (c.H > 1 || c.D > 1) {
		c.H, c.D = max(1, c.H/2), max(1, c.D/2)
		if c.Dv > c.D {
			c.Dv = c.D
		}
		if c.Sink != nil && c.Sink.Values != nil {
			c.Sink.Values = c.Sink.Values[:c.H]
		}
	}
	if c.Dv == c.D {
		c.Dv = 0
	}
	drawDType(r, &c)
	drawFP8(r, &c, lim)
	if err := c.Validate(); err != nil {
		panic(fmt.Sprintf("props: generated an invalid case (%v): %s", err, c))
	}
	return c
}

// first keeps a per-batch list's first entry (nil stays nil).
func first(l []int) []int {
	if l == nil {
		return nil
	}
	return l[:1]
}
