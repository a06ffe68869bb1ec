package tolerance

import (
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/ref"
)

// TestRepeatedKeysProb is the csa case of the 10^4-case validation run
// (seed 20261202, case 4640) where prob failed a correct kernel: p ≤ 3 and
// ratio 3 keep only compressed slot 0, listed in all 200 idx_topk columns,
// so a row sums 200 equal terms. Under the independent-error model prob
// fails it; with repeated-key rows judged rigorously it passes, and bound
// passes either way.
func TestRepeatedKeysProb(t *testing.T) {
	c, err := cases.Parse([]byte(`{"version":1,"family":"csa","dtype":"bf16","seed":7562905623385970517,"h":1,"d":32,"b":3,"s":2,
		"win":8,"idx_topk":200,"block_size":32,"block_table":"permuted","poison":true,"positions":[1,2,2,3,1,2],"idx_width":208,
		"compress_ratio":3,"cmp_block_size":1,"values":{"dist":"wide","wide_exp":4}}`))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := impl.Lookup("tiled/bc128/fp32")
	in, err := cases.Generate(c, k.Profile().In)
	if err != nil {
		t.Fatal(err)
	}
	// The generator drew indices with replacement then; it now draws a
	// top-k of distinct slots, so list slot 0 in every read column again.
	for tk := 0; tk < in.T; tk++ {
		for col := range in.IdxTopK {
			in.Idx[tk*in.TopK+col] = 0
		}
	}
	out, err := k.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	x := &Input{In: in, Ref: ref.Compute(in, ref.Options{}), Out: out.O, Profile: k.Profile(), Shape: ShapeOf(k.Config)}
	if repeatedRows(in) == nil {
		t.Fatal("no row repeats a key")
	}
	for _, mode := range []Mode{Rigorous, Probabilistic} {
		if v := (BoundCriterion{mode}).Judge(x); !v.Pass {
			t.Errorf("%s fails a correct kernel: %+v", BoundCriterion{mode}.Name(), v)
		}
	}
	// Without the rule, the independent-error model fails the case.
	m := NewModel(x.Profile, x.Shape, in, Probabilistic)
	m.rep = nil
	fails := 0
	for ri := range x.Ref.Rows {
		rb := m.Row(&x.Ref.Rows[ri])
		for e := ri * x.Ref.Dv; e < (ri+1)*x.Ref.Dv; e++ {
			if a, _ := rb.Elem(x.Ref, e); !rb.Domain && !rb.Unbounded && absDiff(out.O[e], x.Ref.O[e]) > a {
				fails++
			}
		}
	}
	if fails == 0 {
		t.Error("the plain probabilistic model passes the case: the regression no longer exercises the rule")
	}
}

func absDiff(a float32, b float64) float64 {
	d := float64(a) - b
	if d < 0 {
		return -d
	}
	return d
}
