package mutscore

import (
	"math/rand/v2"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/props"
)

// Case sources.
const (
	SourceProps    = "props"    // props.CaseAt, the campaign generator
	SourceTargeted = "targeted" // a targeted template (see Targeted)
)

// CaseAt is case i of a scoring campaign with seed seed: when every > 0,
// indices i with i mod every = every−1 are targeted cases (Targeted);
// the others are props.CaseAt cases whose family cycles sparse, window,
// dense over them. It depends only on (seed, i, every).
func CaseAt(seed uint64, i, every int) (cases.Case, string) {
	if every > 0 && i%every == every-1 {
		return Targeted(seed, i/every), SourceTargeted
	}
	j := i
	if every > 0 {
		j = i - i/every // index among the props cases
	}
	fam := scoredFamilies[j%len(scoredFamilies)]
	return props.CaseAt(seed, i, fam), SourceProps
}

// scoredFamilies are the families the campaign cycles through: those with
// mutants of their own.
var scoredFamilies = []problem.Family{problem.Sparse, problem.Window, problem.Dense, problem.Combine, problem.MLA}

// Templates are the targeted case templates, in rotation order.
var Templates = []string{"sparse-short", "window-gqa", "sparse-long", "window-short", "dense-edges", "csa-edges", "hca-short", "swa-lens", "mla-fp8", "mla-scopes", "dense-quant"}

// Targeted is the k-th targeted case of seed seed. The templates rotate
// and each draws small shapes that reach triggers a uniform generator
// rarely hits:
//
//   - sparse-short: S = 1 or 2, B = 2..3, tiny windows and index rows,
//     seqused at S−1, S, WIN−1..WIN+1 and the full row, so tokens with
//     n = 0, 1, 2 and S = 2 length edges abound; unused pool rows poisoned
//     with NaN, and for S = 1 half the time batch entry 0 empty (pool row
//     0 unwritten); a random sink (3 in 4).
//   - window-gqa: grouped-query heads (Hkv = 2..3, H/Hkv = 2..4), T = 8..67,
//     a sliding window (3 in 4) or full causal, a random sink (2 in 3).
//   - sparse-long: up to 20 heads (head tiles beyond 16), key sets up to
//     ~150 (several tiles of 16, 32, 64), score scale 1 or 2, a sink half
//     the time.
//   - window-short: T = 2..9 with W = 0..3 (rows with n = 1 in a row), a
//     random or constant sink.
//   - mla-fp8: an mla problem on a FlashMLA FP8 cache (quant.go).
//   - dense-edges: 2..3 sequences with sq ≠ sk (one often without keys),
//     causal or a left/right window, softcap with ALiBi (2 in 3) under GQA,
//     an lse in a random convention, a sink (2 in 3).
//   - csa-edges, hca-short, swa-lens: the pypto families (pyptoTemplate).
//   - mla-scopes: FlashMLA decode with both scopes, topk_length cutting
//     the main scope (and extra_topk_length the extra one half the time),
//     −1 entries, odd page sizes, NaN in unreferenced rows; half of them
//     declare a max_logit output (FlashMLA prefill's max_logits).
//   - dense-quant: a small dense case with quantized inputs (FA3 FP8 with
//     its edge classes, or INT8 KV), the generator's own draw (quant.go).
func Targeted(seed uint64, k int) cases.Case {
	r := rand.New(rand.NewPCG(seed^0x7461726765746564, uint64(k)))
	c := cases.Case{Seed: r.Uint64()}
	sink := func(p float64, scale float64) {
		if r.Float64() < p {
			c.Sink = &cases.Sink{Kind: "random", Scale: scale, Offset: float64(r.IntN(3))}
		}
	}
	switch name := Templates[k%len(Templates)]; name {
	case "csa-edges", "hca-short", "swa-lens":
		c = pyptoTemplate(r, name, c.Seed)
	case "sparse-short":
		c.Family = problem.Sparse
		c.B, c.S = 2+r.IntN(2), 1+r.IntN(2)
		c.H, c.D = 1+r.IntN(8), 1+r.IntN(32)
		c.Win, c.IdxTopK, c.BlockSize = 1+r.IntN(6), r.IntN(8), 1+r.IntN(4)
		picks := []int{c.S - 1, c.S, c.S + 1, c.Win - 1, c.Win, c.Win + 1, c.Win + c.IdxTopK, c.Win + c.IdxTopK + c.S}
		for range c.B {
			c.Seqused = append(c.Seqused, max(picks[r.IntN(len(picks))], c.S-1))
		}
		c.Poison = true
		shuffle(r, &c)
		if c.S == 1 && r.IntN(2) == 0 {
			// Batch entry 0 empty: pool row 0 unwritten (poisoned).
			c.Seqused[0], c.BlockTable = 0, ""
		}
		sink(0.75, 2)
	case "window-gqa":
		c.Family = problem.Window
		c.T = 8 + r.IntN(60)
		c.Hkv = 2 + r.IntN(2)
		c.H = c.Hkv * (2 + r.IntN(3))
		c.D, c.Dv = 1+r.IntN(32), 1+r.IntN(32)
		if r.IntN(4) != 0 {
			c.Window = 1 + r.IntN(c.T)
		}
		c.Values.Scale = float64(1 + r.IntN(2))
		sink(2.0/3, 2)
	case "sparse-long":
		c.Family = problem.Sparse
		c.B, c.S = 1+r.IntN(2), 1+r.IntN(2)
		c.H, c.D = 1+r.IntN(20), 1+r.IntN(24)
		c.Win, c.IdxTopK, c.BlockSize = 8+r.IntN(40), r.IntN(100), 4+r.IntN(13)
		for range c.B {
			c.Seqused = append(c.Seqused, max(r.IntN(c.Win+c.IdxTopK+20), c.S-1))
		}
		shuffle(r, &c)
		c.Values.Scale = float64(1 + r.IntN(2))
		sink(0.5, 2)
	case "dense-edges":
		c.Family = problem.Dense
		nb := 2 + r.IntN(2)
		for b := range nb {
			sk := r.IntN(40)
			if b == 0 && r.IntN(3) == 0 {
				sk = 0 // a sequence without keys
			}
			c.Sk = append(c.Sk, sk)
			c.Sq = append(c.Sq, 1+r.IntN(max(sk, 1)+6))
		}
		c.Hkv = 1 + r.IntN(3)
		c.H, c.D, c.Dv = c.Hkv*(1+r.IntN(3)), 1+r.IntN(16), 1+r.IntN(16)
		switch r.IntN(3) {
		case 0:
			c.Causal = true
		case 1:
			w := r.IntN(6)
			c.WindowLeft = &w
		default:
			w := r.IntN(3)
			c.WindowRight = &w
		}
		if r.IntN(3) != 0 {
			c.Softcap = []float64{1, 2, 5}[r.IntN(3)]
			c.Alibi = &cases.Alibi{Kind: "geometric", Scale: float64(1 + r.IntN(4))}
		}
		c.Values.Scale = float64(1 + r.IntN(2))
		sink(0.67, 2)
		c.LSE = &cases.LSESpec{Base: []string{"e", "2"}[r.IntN(2)], Empty: []string{"+inf", "-inf"}[r.IntN(2)]}
		if c.Sink != nil {
			c.LSE.Sink = []string{"included", "excluded"}[r.IntN(2)]
		}
	case "mla-fp8":
		c = mlaFP8(r, c)
	case "dense-quant":
		c = denseQuant(r)
	case "mla-scopes":
		c.Family = problem.MLA
		c.B, c.S = 2, 1+r.IntN(2)
		c.H, c.D = 1+r.IntN(8), 2+r.IntN(31)
		c.TopK, c.ExtraTopK = 4+r.IntN(40), 4+r.IntN(40)
		for range c.B {
			c.TopkLength = append(c.TopkLength, r.IntN(c.TopK+1))
		}
		if r.IntN(2) == 0 {
			for range c.B {
				c.ExtraTopkLength = append(c.ExtraTopkLength, r.IntN(c.ExtraTopK+1))
			}
		}
		c.Invalid = []float64{0, 0.1, 0.3}[r.IntN(3)]
		c.BlockSize = []int{1, 3, 16}[r.IntN(3)]
		c.Poison = true
		sink(0.5, 2)
		c.LSE = &cases.LSESpec{Base: "e", Empty: "+inf"}
		if c.Sink != nil {
			c.LSE.Sink = "excluded"
		}
		// FlashMLA's prefill also returns max_logits: half the cases declare
		// it (by a seed bit, so the draws above are what they were).
		if c.Seed&1 == 0 {
			c.MaxLogit = &cases.MaxLogitSpec{Base: []string{"e", "2"}[c.Seed>>1&1]}
		}
	default: // window-short
		c.Family = problem.Window
		c.T, c.Window = 2+r.IntN(8), r.IntN(4)
		c.H, c.D, c.Dv = 1+r.IntN(4), 1+r.IntN(16), 1+r.IntN(16)
		if c.H%2 == 0 && r.IntN(2) == 0 {
			c.Hkv = c.H / 2
		}
		if r.IntN(3) == 0 {
			c.Sink = &cases.Sink{Kind: "const", Value: cases.F(float64(r.IntN(5)) - 2)}
		} else {
			sink(1, 2)
		}
	}
	return c
}

func shuffle(r *rand.Rand, c *cases.Case) {
	if r.IntN(2) == 0 {
		c.Indices = "shuffled"
	}
	if r.IntN(2) == 0 {
		c.BlockTable = "permuted"
	}
}
