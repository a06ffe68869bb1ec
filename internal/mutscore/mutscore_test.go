package mutscore_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/mutscore"
	"github.com/attnvet/attnvet/internal/problem"
)

// TestSeedMutants: on a small budget, bound kills the seed mutants and
// fails no correct kernel.
func TestSeedMutants(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every correct kernel")
	}
	opt := mutscore.DefaultOptions()
	opt.Cases = 16
	opt.Criteria = []string{"bound"}
	opt.Mutants = []string{"pr301-n1-stale-state", "pr301-n1-poison", "n0-stale-scratch"}
	res, err := mutscore.Run(opt)
	if err != nil {
		t.Fatal(err)
	}
	s := res.Criteria["bound"]
	if s.Killed != 3 || s.Total != 3 {
		var buf bytes.Buffer
		res.WriteTable(&buf)
		t.Errorf("bound killed %d of %d seed mutants, want all\n%s", s.Killed, s.Total, buf.String())
	}
	if s.FalsePositives != 0 {
		t.Errorf("bound failed correct kernels %d times: %+v", s.FalsePositives, s.FalsePositiveExamples)
	}
	if len(res.CorrectKernels) != 78 || s.CorrectJudged == 0 { // 8 shapes × 8 profiles + pypto/bf16rne + fa3/bc128/fp8bf16 + exp2, lazy × 6
		t.Errorf("%d correct kernels, %d judgements", len(res.CorrectKernels), s.CorrectJudged)
	}
	for _, m := range res.Mutants {
		if n := m.KilledBy["bound"]; n == nil || *n > opt.Cases || *n < 1 {
			t.Errorf("%s: cases to first kill %v", m.Name, n)
		}
		if m.Triggered == 0 || m.Triggered > m.Judged {
			t.Errorf("%s: triggered %d of %d", m.Name, m.Triggered, m.Judged)
		}
	}
}

// TestWorkersIndependent: the result does not depend on the worker count.
func TestWorkersIndependent(t *testing.T) {
	opt := mutscore.DefaultOptions()
	opt.Cases, opt.Correct = 12, false
	opt.Mutants = []string{"s2-shared-length", "no-alpha-o", "denom-bf16", "sink-ignored"}
	var results []*mutscore.Result
	for _, w := range []int{1, 2, 5} {
		opt.Workers = w
		r, err := mutscore.Run(opt)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, r)
	}
	for i := 1; i < len(results); i++ {
		if !reflect.DeepEqual(results[0], results[i]) {
			a, _ := json.Marshal(results[0])
			b, _ := json.Marshal(results[i])
			t.Fatalf("results differ with the worker count:\n%s\n%s", a, b)
		}
	}
}

// TestJSONShape: the JSON has the documented keys, with null for never.
func TestJSONShape(t *testing.T) {
	opt := mutscore.DefaultOptions()
	opt.Cases, opt.Correct = 2, false
	opt.Mutants = []string{"cold-tail-pool-row0", "guarded-tile-updates-l"}
	opt.Criteria = []string{"bound", "allclose"}
	r, err := mutscore.Run(opt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Criteria map[string]struct {
			Killed, Total, FalsePositives *int
		} `json:"criteria"`
		Mutants []struct {
			Name     string          `json:"name"`
			BugClass string          `json:"bug_class"`
			KilledBy map[string]*int `json:"killed_by"`
		} `json:"mutants"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Criteria) != 2 || len(doc.Mutants) != 2 {
		t.Fatalf("JSON: %s", b)
	}
	for name, c := range doc.Criteria {
		if c.Killed == nil || c.Total == nil || *c.Total != 2 {
			t.Errorf("criterion %s: %s", name, b)
		}
	}
	for _, m := range doc.Mutants {
		if m.BugClass == "" || len(m.KilledBy) != 2 {
			t.Errorf("mutant %s: %s", m.Name, b)
		}
	}
	if !strings.Contains(string(b), `"false_positives":0`) {
		t.Errorf("no false_positives field: %s", b)
	}
}

func TestOptionsChecked(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*mutscore.Options)
	}{
		{"no cases", func(o *mutscore.Options) { o.Cases = 0 }},
		{"negative workers", func(o *mutscore.Options) { o.Workers = -1 }},
		{"negative targeted", func(o *mutscore.Options) { o.TargetedEvery = -2 }},
		{"unknown criterion", func(o *mutscore.Options) { o.Criteria = []string{"nope"} }},
		{"unknown mutant", func(o *mutscore.Options) { o.Mutants = []string{"nope"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := mutscore.DefaultOptions()
			tc.edit(&o)
			if _, err := mutscore.Run(o); err == nil {
				t.Error("no error")
			}
		})
	}
}

// TestCaseAt: deterministic, targeted every k-th case, props families
// alternating, every targeted case valid.
func TestCaseAt(t *testing.T) {
	fams := map[problem.Family]int{}
	for i := 0; i < 200; i++ {
		c, src := mutscore.CaseAt(7, i, 4)
		c2, _ := mutscore.CaseAt(7, i, 4)
		if c.String() != c2.String() {
			t.Fatalf("case %d not deterministic", i)
		}
		if want := i%4 == 3; (src == mutscore.SourceTargeted) != want {
			t.Fatalf("case %d: source %s", i, src)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("case %d (%s): %v\n%s", i, src, err, c)
		}
		if src == mutscore.SourceProps {
			fams[c.Family]++
		}
	}
	for _, f := range []problem.Family{problem.Sparse, problem.Window, problem.Dense, problem.Combine, problem.MLA} {
		if fams[f] != 30 {
			t.Errorf("props families %v, want 30 each", fams)
		}
	}
	if _, src := mutscore.CaseAt(7, 3, 0); src != mutscore.SourceProps {
		t.Errorf("every = 0 drew a targeted case")
	}
}

// TestTargetedContract: targeted cases follow the kernel contract (they
// would be wasted otherwise) and reach their triggers.
func TestTargetedContract(t *testing.T) {
	var n0, n1, s2, gqa, sink, dense int
	var bound, row0, hcaBlock0, swaShort, csaEmpty int
	for k := 0; k < 40*len(mutscore.Templates); k++ { // 40 of each template
		c := mutscore.Targeted(3, k)
		in, err := cases.Generate(c, 0)
		if err != nil {
			t.Fatalf("targeted %d: %v\n%s", k, err, c)
		}
		if vs := in.Violations(); len(vs) > 0 {
			t.Fatalf("targeted %d violates the contract: %v\n%s", k, vs[0], c)
		}
		if in.Sink != nil {
			sink++
		}
		if in.Family == problem.Dense {
			dense++
		}
		for tk := 0; tk < in.T && problem.IsPypto(in.Family); tk++ {
			switch in.Family {
			case problem.CSA:
				if b := in.CmpBound(tk); b > 0 && int(in.Pos[tk]+1)%in.Ratio == 0 && slices.Contains(in.Idx[tk*in.TopK:tk*in.TopK+in.IdxTopK], int32(b-1)) {
					bound++
				}
				if tk == 0 && slices.Contains(c.Plant, cases.PlantRow0NonFinite) {
					row0++
				}
				if len(in.RefKeys(tk, 0, nil)) == 0 && in.Sink == nil {
					csaEmpty++
				}
			case problem.HCA:
				if in.PyptoBlockValid(tk, 1) == 0 {
					hcaBlock0++
				}
			case problem.SWA:
				if int(in.SwaLens[tk]) < in.Win {
					swaShort++
				}
			}
		}
		if in.Family != problem.Sparse {
			if in.Hkv > 1 && in.Hkv < in.H {
				gqa++
			}
			continue
		}
		if in.S == 2 {
			s2++
		}
		for tk := 0; tk < in.T; tk++ {
			switch in.TokenLens(tk).SparseK {
			case 0:
				n0++
			case 1:
				n1++
			}
		}
	}
	if n0 == 0 || n1 == 0 || s2 < 20 || gqa < 20 || sink < 100 || dense < 30 {
		t.Errorf("targeted cases reach n=0 %d, n=1 %d tokens, S=2 %d, GQA %d, sink %d, dense %d cases", n0, n1, s2, gqa, sink, dense)
	}
	if bound < 20 || row0 < 10 || hcaBlock0 < 20 || swaShort < 20 || csaEmpty < 5 {
		t.Errorf("targeted pypto cases reach the csa bound edge %d, row 0 non-finite %d, hca block-0-only %d, swa short windows %d, csa empty sets without a sink %d tokens",
			bound, row0, hcaBlock0, swaShort, csaEmpty)
	}
}

func TestWriteTable(t *testing.T) {
	n := 3
	med := 3.0
	r := &mutscore.Result{
		Seed: 1, Cases: mutscore.Stats{Total: 4, Props: 3, Targeted: 1, Sparse: 2, Window: 2},
		CriteriaOrder: []string{"bound", "allclose"},
		Criteria: map[string]mutscore.CriterionScore{
			"bound":    {Killed: 2, Total: 2, Failed: 2, MedianCasesToKill: &med},
			"allclose": {Killed: 1, Total: 2, Failed: 2, FalsePositives: 5, CorrectJudged: 10},
		},
		Mutants: []mutscore.MutantScore{
			{Name: "loud", BugClass: "math", KilledBy: map[string]*int{"bound": &n, "allclose": &n}},
			{Name: "quiet", BugClass: "precision", KilledBy: map[string]*int{"bound": &n, "allclose": nil}},
		},
	}
	var buf bytes.Buffer
	if err := r.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"bound      2/2", "allclose   1/2", "5/10", "allclose misses 1: quiet", "quiet   precision  3      -"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestDenseQuantTemplate: the dense-quant template draws quantized cases
// (FP8 and INT8 KV both), so the FA3 and INT8 mutants meet their triggers.
func TestDenseQuantTemplate(t *testing.T) {
	k0 := slices.Index(mutscore.Templates, "dense-quant")
	fp8, int8 := 0, 0
	for i := range 40 {
		c := mutscore.Targeted(7, k0+i*len(mutscore.Templates))
		if err := c.Validate(); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if c.FP8 != "" {
			fp8++
		}
		if c.Int8KV != "" {
			int8++
		}
	}
	if fp8 < 10 || int8 < 5 {
		t.Errorf("of 40 dense-quant cases %d FP8 and %d INT8 KV", fp8, int8)
	}
}
