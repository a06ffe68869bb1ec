package props

import (
	"fmt"
	"math/rand/v2"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
)

// genFamily is one family's generator knowledge: its draw, its edge
// classes and the keys its rows attend. Each family's own file registers
// it (registerGen), so Draw, ClassesOf and rowKeys hold no switch on the
// family; a family without one is an error.
type genFamily struct {
	// draw returns one valid case of fam within lim.
	draw func(r *rand.Rand, fam problem.Family, lim limits) cases.Case
	// classes marks the family's own edge classes of c (inputs in).
	classes func(c cases.Case, in *problem.Inputs, hit map[string]bool)
	// rowKeys is the number of keys each query row attends, per token,
	// from the case alone (what the draw sizes work by).
	rowKeys func(c cases.Case) []int
	// inputKeys, if set, is the exact count per token from the generated
	// inputs, for the key-count classes where the case alone over-counts
	// (mla: −1 entries and the extra scope's topk_length).
	inputKeys func(in *problem.Inputs) []int
	// candidates adds the family's own one-step simplifications (Shrink
	// tries them before the shared ones: heads, dims, plants, values).
	candidates func(c cases.Case, add func(func(*cases.Case)), smaller func(int) []int)
	// ownKV: the case has its own KV heads and d_v (Hkv, Dv; 0 is the
	// default, one per query head and d_v = D), shrunk and normalised by
	// the shared steps.
	ownKV bool
	// fullWindow, if set, is the window width a case without one means
	// (window: full causal), for Complexity.
	fullWindow func(c cases.Case) int
	// kvRows, if set, is the number of key rows the k and v specials
	// index (default: the tokens), for fixup.
	kvRows func(c cases.Case) int
	// keyOrderAdapt, if set, takes away after Valid what makes a key's
	// position matter (for key_order_<family>).
	keyOrderAdapt func(c *cases.Case)
	// permute, if set, shuffles each query's keys in out (a shallow copy
	// of in) for key_order_<family>; the multiset each query attends
	// stays the same.
	permute func(in, out *problem.Inputs, r *rand.Rand)
}

var genFamilies = map[problem.Family]*genFamily{}

// registerGen records the generator knowledge of fams.
func registerGen(g *genFamily, fams ...problem.Family) bool {
	for _, f := range fams {
		if genFamilies[f] != nil {
			panic(fmt.Sprintf("props: family %s registered twice", f))
		}
		genFamilies[f] = g
	}
	return true
}

// genOf is fam's generator knowledge; a miss is a programming error (the
// families are checked where they are named: ParseFamily, Case.Validate).
func genOf(fam problem.Family) *genFamily {
	g := genFamilies[fam]
	if g == nil {
		panic(fmt.Sprintf("props: family %q has no generator (want %s or empty)", fam, problem.FamilyNames()))
	}
	return g
}

// keyedDraw is the draw of the families whose rows attend keys of a drawn
// count n (sparse, window, dense): the family's body builds the geometry,
// the shared steps the values, sink, specials and dtype, then last (if
// any) the family's final edits.
func keyedDraw(body func(r *rand.Rand, c *cases.Case, n int, lim limits), last func(r *rand.Rand, c *cases.Case)) func(*rand.Rand, problem.Family, limits) cases.Case {
	return func(r *rand.Rand, fam problem.Family, lim limits) cases.Case {
		c := cases.Case{Family: fam, Seed: r.Uint64(), H: drawH(r, lim), D: drawD(r, lim)}
		n := drawN(r, lim)
		body(r, &c, n, lim)
		fitWork(&c, lim.work)
		drawValues(r, &c)
		drawSink(r, &c)
		if c.LSE != nil && c.Sink != nil && c.Sink.Kind != "none" {
			c.LSE.Sink = []string{"included", "excluded"}[r.IntN(2)]
		}
		drawSpecials(r, &c)
		drawDType(r, &c)
		if r.IntN(10) == 0 {
			c.Scale = []float64{1, 0.5, 2, 0.0625, 0.01}[r.IntN(5)]
		}
		if last != nil {
			last(r, &c)
		}
		if err := c.Validate(); err != nil {
			panic(fmt.Sprintf("props: generated an invalid case (%v): %s", err, c))
		}
		return c
	}
}
