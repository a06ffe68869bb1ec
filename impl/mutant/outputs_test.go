package mutant_test

import (
	"slices"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/impl/mutant"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/ref"
)

// maxLogitCases declare a max_logit output: mla in both bases (rows with
// no key among them), dense with softcap and ALiBi, sparse.
func maxLogitCases() []cases.Case {
	sink := &cases.Sink{Kind: "random", Scale: 2, Offset: 1}
	return []cases.Case{
		{Family: problem.MLA, Seed: 12, H: 3, D: 8, B: 1, S: 2, TopK: 12, BlockSize: 4, Invalid: 0.2,
			MaxLogit: &cases.MaxLogitSpec{Base: "e"}, LSE: &cases.LSESpec{Base: "e", Empty: "+inf"}},
		{Family: problem.MLA, Seed: 13, H: 4, D: 16, B: 2, TopK: 40, ExtraTopK: 16, BlockSize: 3, Invalid: 0.5, Sink: sink,
			MaxLogit: &cases.MaxLogitSpec{Base: "2"}, Values: cases.Values{Scale: 3}},
		{Family: problem.Dense, Seed: 14, H: 4, Hkv: 2, D: 8, Sq: []int{3, 6}, Sk: []int{9, 5}, Causal: true,
			Softcap: 2, Alibi: &cases.Alibi{Kind: "geometric", Scale: 4}, MaxLogit: &cases.MaxLogitSpec{Base: "e"}},
		{Family: problem.Sparse, Seed: 15, H: 3, D: 8, B: 3, S: 2, Win: 4, IdxTopK: 6, BlockSize: 2,
			Seqused: []int{1, 2, 5}, Sink: sink, MaxLogit: &cases.MaxLogitSpec{Base: "e"}},
	}
}

// judgeBound judges k's output on c under bound, max_logit included.
func judgeBound(t *testing.T, k impl.Kernel, shape tolerance.Shape, c cases.Case) tolerance.Verdict {
	t.Helper()
	in, err := cases.Generate(c, k.Profile().In)
	if err != nil {
		t.Fatal(err)
	}
	out, err := k.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	r := ref.Compute(in, ref.Options{Workers: 1})
	return tolerance.BoundCriterion{Mode: tolerance.Rigorous}.Judge(&tolerance.Input{In: in, Ref: r, Out: out.O,
		OutLSE: out.LSE, OutMaxLogit: out.MaxLogit, Profile: k.Profile(), Shape: shape})
}

// TestOutputsMutantsKilled: bound fails each mutant of outputs.go on some
// case, naming the output it got wrong, and passes its base there.
func TestOutputsMutantsKilled(t *testing.T) {
	for _, tc := range []struct{ name, output string }{
		{"max-logit-before-scale", "max_logit"},
		{"max-logit-base2-declared-natural", "max_logit"},
		{"splitkv-last-split-off-by-one", "o"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := mutant.Lookup(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			base, _ := impl.Lookup(m.Base)
			killed := false
			for _, c := range append(maxLogitCases(), triggerCases()[1]) {
				if v := judgeBound(t, base, m.Shape, c); !v.Pass {
					t.Fatalf("base %s fails: %s\ncase: %s", m.Base, v.Detail, c)
				}
				if v := judgeBound(t, m.Kernel, m.Shape, c); !v.Pass && slices.Contains(v.FailedOutputs, tc.output) {
					killed = true
				}
			}
			if !killed {
				t.Errorf("bound never fails %s on %s", tc.name, tc.output)
			}
		})
	}
}

// TestMaxLogitCorrectKernels: every correct emulation's max_logit passes,
// and a max_logit output that is missing fails every judged row.
func TestMaxLogitCorrectKernels(t *testing.T) {
	for _, c := range maxLogitCases() {
		for _, cfg := range impl.Configs() {
			k := impl.New(cfg)
			in, err := cases.Generate(c, c.Format(k.Profile().In))
			if err != nil {
				t.Fatal(err)
			}
			if !impl.Compatible(in.Format, k.Profile()) {
				continue
			}
			out, err := k.Run(in)
			if err != nil {
				t.Fatal(err)
			}
			r := ref.Compute(in, ref.Options{Workers: 1})
			x := &tolerance.Input{In: in, Ref: r, Out: out.O, OutLSE: out.LSE, OutMaxLogit: out.MaxLogit, Profile: k.Profile(),
				Shape: tolerance.Shape{Kind: string(cfg.Kind), Bc: cfg.Bc, Parts: cfg.Parts}}
			v := tolerance.JudgeMaxLogit(x, tolerance.Rigorous)
			if v.Failed > 0 || v.Checked == 0 {
				t.Errorf("%s: max_logit %d of %d rows fail (worst %.3g)\ncase: %s", k.Name(), v.Failed, v.Checked, v.Worst, c)
			}
			x.OutMaxLogit = []float32{}
			if v := tolerance.JudgeMaxLogit(x, tolerance.Rigorous); v.Failed != v.Checked {
				t.Errorf("%s: a missing max_logit fails %d of %d rows", k.Name(), v.Failed, v.Checked)
			}
			if v := (tolerance.BoundCriterion{}).Judge(x); v.Pass || v.MaxLogit == nil {
				t.Errorf("%s: a missing max_logit passes bound (%+v)", k.Name(), v.MaxLogit)
			}
			x.OutMaxLogit = nil // the caller does not pass it: not judged
			if v := (tolerance.BoundCriterion{}).Judge(x); v.MaxLogit != nil {
				t.Errorf("%s: max_logit judged without the kernel's", k.Name())
			}
		}
	}
}
