package cases

import (
	"fmt"
	"math"
	"strings"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

// maxSeqs bounds a dense case's sequence count.
const maxSeqs = 1 << 10

// The dense family's cases (FlashAttention's conventions): sequences of
// sq queries and sk keys, batch, varlen or paged, with the modifiers.
var _ = registerFamily(&family{
	validate: Case.validateDense,
	elements: func(c Case) int {
		if c.Page > 0 {
			return sum(c.Sq)*c.H*c.D + c.pagedPages()*c.Page*c.hkv()*(c.D+c.dv())
		}
		return sum(c.Sq)*c.H*c.D + sum(c.Sk)*c.hkv()*(c.D+c.dv())
	},
	tokens: func(c Case) int { return sum(c.Sq) },
	hkv:    hkvOrH,
	dv:     dvOrD,
	generate: func(c Case, in *problem.Inputs, r *rng, vg *valueGen) error {
		c.dense(in, r, vg)
		return nil
	},
	specialKeys: func(c Case) int { return sum(c.Sk) },
	shape:       denseShape,
	rowNote: func(in *problem.Inputs, t int) string {
		sq := in.DenseSeq(t)
		lo, hi := in.DenseRange(sq)
		return fmt.Sprintf(" (sequence %d, query %d of %d, keys %d..%d of %d)", sq.B, sq.I, sq.Sq, lo, hi, sq.Sk)
	},
	keySources: func(in *problem.Inputs, t, n int) []string {
		lo, _ := in.DenseRange(in.DenseSeq(t))
		return positionKeys(lo, n)
	},
}, problem.Dense)

func (c Case) validateDense() error {
	hkv := c.hkv()
	if hkv < 1 || hkv > c.H || c.H%hkv != 0 {
		return fmt.Errorf("hkv=%d: want a divisor of h=%d", hkv, c.H)
	}
	if dv := c.dv(); dv < 1 || dv > maxDim {
		return fmt.Errorf("dv=%d: want 1..%d", dv, maxDim)
	}
	if len(c.Sq) < 1 || len(c.Sq) > maxSeqs || len(c.Sk) != len(c.Sq) {
		return fmt.Errorf("dense family: sq and sk give each sequence's query and key counts (1..%d sequences, same length; got %d and %d)", maxSeqs, len(c.Sq), len(c.Sk))
	}
	for b := range c.Sq {
		if c.Sq[b] < 0 || c.Sq[b] > maxTokens || c.Sk[b] < 0 || c.Sk[b] > maxTokens {
			return fmt.Errorf("sq[%d]=%d sk[%d]=%d: want 0..%d", b, c.Sq[b], b, c.Sk[b], maxTokens)
		}
	}
	tq, tk := sum(c.Sq), sum(c.Sk)
	if tq < 1 || tq > maxTokens || tk > maxTokens {
		return fmt.Errorf("dense family: %d queries and %d keys in all (queries 1..%d, keys ≤ %d)", tq, tk, maxTokens, maxTokens)
	}
	for _, w := range []*int{c.WindowLeft, c.WindowRight} {
		if w != nil && (*w < -1 || *w > maxTokens) {
			return fmt.Errorf("window_left/window_right %d: want -1 (unbounded) or 0..%d", *w, maxTokens)
		}
	}
	if c.Softcap < 0 || math.IsNaN(c.Softcap) || math.IsInf(c.Softcap, 0) || (c.Softcap > 0 && c.Softcap < 1e-6) {
		return fmt.Errorf("softcap %v: want 0 (off) or a finite value ≥ 1e-6", c.Softcap)
	}
	if a := c.Alibi; a != nil {
		switch a.Kind {
		case "geometric", "const":
		default:
			return fmt.Errorf("alibi.kind %q: want geometric or const", a.Kind)
		}
		if a.Values != nil && len(a.Values) != c.H {
			return fmt.Errorf("alibi.values has %d entries, want h=%d", len(a.Values), c.H)
		}
		if math.IsNaN(a.Scale) || math.IsInf(a.Scale, 0) || math.IsNaN(a.Value) || math.IsInf(a.Value, 0) || math.Abs(a.Value*orOne(a.Scale)) > 1e6 {
			return fmt.Errorf("alibi scale and value must be finite (|slope| ≤ 1e6)")
		}
		if _, err := problem.ParseAlibiForm(a.Form); err != nil {
			return err
		}
	}
	if c.LSE != nil {
		if _, err := c.LSE.Conv(c.Sink != nil && c.Sink.Kind != "none"); err != nil {
			return err
		}
	}
	if c.B != 0 || c.Seqused != nil || c.Win != 0 || c.IdxTopK != 0 || c.T != 0 || c.Window != 0 {
		return fmt.Errorf("dense family takes sq, sk, causal, window_left, window_right, h, hkv, d, dv (not t, window, b, seqused, win, idx_topk)")
	}
	if err := c.validatePaged(); err != nil {
		return err
	}
	if elems := c.elements(); elems > maxElems {
		return fmt.Errorf("case too large: %d tensor elements (limit %d)", elems, maxElems)
	}
	return nil
}

func orMinus1(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

// dense builds the sequences, k, v and the modifiers.
func (c Case) dense(in *problem.Inputs, r *rng, vg *valueGen) {
	in.CuQ = make([]int32, len(c.Sq)+1)
	in.CuK = make([]int32, len(c.Sk)+1)
	for b := range c.Sq {
		in.CuQ[b+1] = in.CuQ[b] + int32(c.Sq[b])
		in.CuK[b+1] = in.CuK[b] + int32(c.Sk[b])
	}
	in.WinLeft, in.WinRight = orMinus1(c.WindowLeft), orMinus1(c.WindowRight)
	if c.Causal {
		in.WinRight = 0
	}
	if c.Page > 0 || c.SequsedK != nil {
		c.densePaged(in, r, vg)
	} else {
		tk := int(in.CuK[len(c.Sk)])
		in.K = vg.fill(tk*in.Hkv*in.D, vg.scale(), false)
		in.V = vg.fill(tk*in.Hkv*in.Dv, vg.vScale(), false)
	}
	in.Softcap = c.Softcap
	if a := c.Alibi; a != nil {
		in.AlibiForm, _ = problem.ParseAlibiForm(a.Form)
		in.Alibi = make([]float32, c.H)
		for h := range in.Alibi {
			var v float64
			switch {
			case a.Values != nil:
				v = a.Values[h].Resolve(num.FP32)
			case a.Kind == "const":
				v = a.Value * orOne(a.Scale)
			default:
				e := -8 * float64(h+1) / float64(c.H)
				v = float64(num.Exp(float64(e*math.Ln2)) * orOne(a.Scale)) // portable: no math.Exp2
			}
			in.Alibi[h] = float32(num.Round64(num.FP32, v, num.RNE))
		}
	}
}

// denseShape is the dense part of a case's one-line shape.
func denseShape(c Case) string {
	var b strings.Builder
	fmt.Fprintf(&b, " sq=%v sk=%v", c.Sq, c.Sk)
	if c.Causal {
		b.WriteString(" causal")
	}
	if c.WindowLeft != nil || c.WindowRight != nil {
		fmt.Fprintf(&b, " window=(%d, %d)", orMinus1(c.WindowLeft), orMinus1(c.WindowRight))
	}
	if c.Softcap > 0 {
		fmt.Fprintf(&b, " softcap=%g", c.Softcap)
	}
	if c.Alibi != nil {
		b.WriteString(" alibi")
	}
	if c.LSE != nil {
		b.WriteString(" lse")
	}
	return b.String()
}
