package validate

import (
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/ref"
)

// TestMaxLogitFound replays the max_logit validation's findings, each of
// which failed a correct kernel before its fix (docs/tolerance.md step 9):
// scores past the −1e20 mask bias (the tiled kernels' masked lanes won the
// max: now outside the domain), and an FP16 softcap whose s/c underflows
// (the product by c scales that error: step 7's absolute term).
func TestMaxLogitFound(t *testing.T) {
	for _, js := range []string{
		`{"version":1,"family":"window","seed":3522682967068469035,"h":11,"d":4,"dv":38,"t":1,"window":1,"max_logit":{"base":"e"},"values":{"dist":"wide","wide_exp":8},"sink":{"kind":"const","value":"-inf"},"specials":[{"tensor":"k","head":9,"dim":3,"value":"max"},{"tensor":"k","value":"minsub"}]}`,
		`{"version":1,"family":"dense","seed":14076525615144910955,"h":9,"hkv":1,"d":13,"dv":56,"sq":[1,7,4],"sk":[7,7,4],"softcap":50,"lse":{"base":"e","empty":"+inf"},"max_logit":{"base":"e"},"values":{"scale":0.001}}`,
		`{"version":1,"family":"dense","seed":4802502879735136828,"h":16,"d":1,"block_table":"permuted","sq":[1,2],"sk":[4,2],"max_logit":{"base":"e"},"page":1,"values":{"v_scale":10000},"sink":{"kind":"const","value":-1e+30},"specials":[{"tensor":"v","head":5,"key":3,"value":"-minsub"},{"tensor":"q","token":1,"head":2,"value":"max"}]}`,
	} {
		c, err := cases.Parse([]byte(js))
		if err != nil {
			t.Fatal(err)
		}
		for _, cfg := range impl.Configs() {
			k := impl.New(cfg)
			f := c.Format(k.Profile().In)
			if !impl.Compatible(f, k.Profile()) {
				continue
			}
			in, err := cases.Generate(c, f)
			if err != nil {
				t.Fatal(err)
			}
			if len(in.Violations()) > 0 {
				continue
			}
			out, err := k.Run(in)
			if err != nil {
				t.Fatal(err)
			}
			r := ref.Compute(in, ref.Options{Workers: 1})
			x := &tolerance.Input{In: in, Ref: r, Out: out.O, OutMaxLogit: out.MaxLogit, Profile: k.Profile(), Shape: tolerance.ShapeOf(cfg)}
			if v := tolerance.JudgeMaxLogit(x, tolerance.Rigorous); v.Failed > 0 {
				t.Errorf("%s: max_logit %d of %d rows fail (worst %.3g, row %d)\ncase: %s", k.Name(), v.Failed, v.Checked, v.Worst, v.WorstRow, c)
			}
		}
	}
}

// TestLazyFound replays the lazy kernel's validation finding: a sink of 200
// over scores near −50 whose exp(σ − m̂) overflows FP32 only against the
// lazy kernel's stale max (o came out 0); the sink-overflow allowance now
// counts the lazy gap (docs/tolerance.md step 11).
func TestLazyFound(t *testing.T) {
	c, err := cases.Parse([]byte(`{"version":1,"family":"dense","dtype":"fp16","seed":4740625992288814258,"h":16,"hkv":1,"d":1,"poison":true,"sq":[93],"sk":[100],"window_left":99,"lse":{"base":"2","empty":"-inf","sink":"excluded"},"page":2,"values":{"scale":16},"sink":{"kind":"const","value":200}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"lazy/bc64/fp32", "lazy/bc64/fp16", "exp2/bc64/fp32"} {
		k, _ := impl.Lookup(name)
		in, err := cases.Generate(c, c.Format(k.Profile().In))
		if err != nil {
			t.Fatal(err)
		}
		out, err := k.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		r := ref.Compute(in, ref.Options{Workers: 1})
		for _, crit := range []tolerance.BoundCriterion{{Mode: tolerance.Rigorous}, {Mode: tolerance.Probabilistic}} {
			x := &tolerance.Input{In: in, Ref: r, Out: out.O, OutLSE: out.LSE, Profile: k.Profile(), Shape: tolerance.ShapeOf(k.Config)}
			if v := crit.Judge(x); !v.Pass {
				t.Errorf("%s %s: %s (worst %.3g at %d)", name, crit.Name(), v.Detail, v.Worst, v.WorstElem)
			}
		}
	}
}
