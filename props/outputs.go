package props

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
)

// familyProperties are the metamorphic properties of the later families:
// the key multiset's order (key_order_F) and a −Inf sink equal to none
// (sink_neg_inf_F).
func familyProperties() []Property {
	var ps []Property
	for _, f := range []problem.Family{problem.Dense, problem.MLA, problem.CSA, problem.HCA} {
		ps = append(ps, Property{Name: "key_order_" + string(f), Family: f, Adapt: keyOrderAdapt, Check: checkKeyMultiset,
			Doc: fmt.Sprintf("%s: permuting the keys %s changes o only within the bounds", f, permuteDoc[f])})
	}
	for _, f := range []problem.Family{problem.Dense, problem.MLA, problem.CSA, problem.HCA, problem.SWA} {
		ps = append(ps, Property{Name: "sink_neg_inf_" + string(f), Family: f, Adapt: Valid, Check: checkSinkNegInf,
			Doc: fmt.Sprintf("%s: a sink of −Inf gives exactly the output of no sink", f)})
	}
	return ps
}

// permuteDoc says what permuteMultiset shuffles per family.
var permuteDoc = map[problem.Family]string{
	problem.Dense: "of each sequence (K and V rows together; no mask, window or ALiBi: positions do not matter)",
	problem.MLA:   "read in each scope of each token (the index entries before topk_length)",
	problem.CSA:   "of the compressed part (the idx_topk columns read; the window lanes are read in runs)",
	problem.HCA:   "of the compressed part (cmp_sparse_indices; the window lanes are read in runs)",
}

// keyOrderAdapt is Valid, and for dense takes away what makes a key's
// position matter (causal, windows, ALiBi) and the paged and seqused_k
// layouts.
func keyOrderAdapt(c cases.Case) cases.Case {
	c = Valid(c)
	if c.Family == problem.Dense {
		c.Causal, c.WindowLeft, c.WindowRight, c.Alibi = false, nil, nil, nil
		c.Page, c.BlockTable, c.SequsedK, c.Poison = 0, "", nil, false
	}
	return c
}

// permuteMultiset shuffles each query's keys as permuteDoc says; the
// multiset each query attends stays the same.
func permuteMultiset(in *problem.Inputs, seed uint64) *problem.Inputs {
	out := *in
	r := rand.New(rand.NewPCG(seed, 0x6d756c7469736574))
	shuffle := func(s []int32) { r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] }) }
	switch in.Family {
	case problem.MLA:
		out.Idx, out.ExtraIdx = slices.Clone(in.Idx), slices.Clone(in.ExtraIdx)
		for t := 0; t < in.T; t++ {
			for _, extra := range []bool{false, true} {
				idx, n, _ := out.MLAScope(t, extra)
				shuffle(idx[:n])
			}
		}
	case problem.CSA, problem.HCA:
		out.Idx = slices.Clone(in.Idx)
		nc := in.PyptoCmpCols()
		for t := 0; t < in.T; t++ {
			shuffle(out.Idx[t*in.TopK : t*in.TopK+nc])
		}
	case problem.Dense:
		out.K, out.V = slices.Clone(in.K), slices.Clone(in.V)
		kr, vr := in.Hkv*in.D, in.Hkv*in.Dv
		for b := 0; b+1 < len(in.CuK); b++ {
			lo, hi := int(in.CuK[b]), int(in.CuK[b+1])
			p := r.Perm(hi - lo)
			for j, src := range p {
				copy(out.K[(lo+j)*kr:(lo+j+1)*kr], in.K[(lo+src)*kr:(lo+src+1)*kr])
				copy(out.V[(lo+j)*vr:(lo+j+1)*vr], in.V[(lo+src)*vr:(lo+src+1)*vr])
			}
		}
	}
	return &out
}

// checkKeyMultiset: the reference is unchanged by the permutation (within
// its own slack) and every kernel's o on the permuted keys agrees with its
// o on the original within the two bounds.
func checkKeyMultiset(ch *Checker, c cases.Case) error {
	prop := "key_order_" + string(c.Family)
	return ch.eachFormat(c, ch.Pick(c), func(in *problem.Inputs, cfgs []impl.Config) error {
		pin := permuteMultiset(in, c.Seed)
		if vs := pin.Violations(); len(vs) > 0 {
			return fmt.Errorf("%s: the permuted inputs report %v", prop, vs[0])
		}
		return orderAgrees(prop, ch, in, pin, cfgs)
	})
}
