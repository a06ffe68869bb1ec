package props

import (
	"fmt"
	"math/rand/v2"

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

// keyOrderAdapt is Valid, then the family's own keyOrderAdapt (dense
// takes away what makes a key's position matter and the paged layouts).
func keyOrderAdapt(c cases.Case) cases.Case {
	c = Valid(c)
	if f := genOf(c.Family).keyOrderAdapt; f != nil {
		f(&c)
	}
	return c
}

// shuffleKeys shuffles a token's index entries.
func shuffleKeys(r *rand.Rand, s []int32) {
	r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
}

// permuteMultiset shuffles each query's keys as permuteDoc says, by the
// family's own permute; the multiset each query attends stays the same.
func permuteMultiset(in *problem.Inputs, seed uint64) *problem.Inputs {
	out := *in
	r := rand.New(rand.NewPCG(seed, 0x6d756c7469736574))
	if f := genOf(in.Family).permute; f != nil {
		f(in, &out, r)
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
