package problem

import (
	"fmt"
	"math"
)

// Combine is a split-KV state merge judged on its own (docs/kernels.md §6).
const Combine Family = "combine"

// The combine family: a split-KV state merge, no query (Check is its own).
var _ = register(Combine, &spec{
	rank:         3,
	refKeys:      (*Inputs).combineKeys,
	kernelKeys:   (*Inputs).combineKeys,
	checkAll:     (*Inputs).checkCombine,
	keysPerToken: func(in *Inputs) int { return in.States },
	distinctKeys: true,
	violations: func(in *Inputs, add func(string, int, string, ...any)) {
		empty := in.LSE.Empty()
		for i, s := range in.CombS {
			if x := float64(s); math.IsNaN(x) || (math.IsInf(x, 1) && x != empty) {
				add(VNonFinite, i/(in.States*in.H), "s[%d] = %v: a partial state's lse must be finite, −inf or lse_empty", i, s)
				break
			}
		}
	},
})

// combineKeys are the non-empty partial states of row t, head h (= g):
// each a key with no query part, value v_k and score bias s_k (natural
// units). A state whose s equals the declared lse_empty is empty: weight 0,
// its v ignored, whatever it holds (CONTRACTS.md). A state of s = −∞ has
// weight 0 too, and is skipped the same way.
func (in *Inputs) combineKeys(t, g int, dst []Key) []Key {
	empty := in.LSE.Empty()
	for k := 0; k < in.States; k++ {
		i := (t*in.States+k)*in.H + g
		s := float64(in.CombS[i])
		if s == empty || math.IsInf(s, -1) {
			continue
		}
		if in.LSE.Base2 {
			s *= math.Ln2
		}
		v := in.CombV[i*in.Dv : (i+1)*in.Dv]
		dst = append(dst, Key{V: v, Bias: s})
	}
	return dst
}

// Biased reports whether keys carry a score bias (combine).
func (in *Inputs) Biased() bool { return in.Family == Combine }

func (in *Inputs) checkCombine() error {
	if in.T < 0 || in.H < 1 || in.Dv < 1 || in.States < 0 || in.D != 0 || in.Hkv != in.H {
		return fmt.Errorf("bad combine shape: n=%d H=%d D=%d states=%d (D of the query must be 0, Hkv = H)", in.T, in.H, in.Dv, in.States)
	}
	if in.LSE == nil {
		return fmt.Errorf("combine: lse_base and lse_empty are required (the partial states' lse convention)")
	}
	if in.Sink != nil || in.Softcap != 0 || in.Alibi != nil {
		return fmt.Errorf("combine takes no sink, softcap or ALiBi")
	}
	n := in.T * in.States * in.H
	if err := wantLen("s", len(in.CombS), n); err != nil {
		return err
	}
	return wantLen("v", len(in.CombV), n*in.Dv)
}
