package tolerance

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/testkit"
	"github.com/attnvet/attnvet/ref"
)

func quickCase(r *rand.Rand) cases.Case {
	c := cases.Case{Seed: r.Uint64(), H: 1 + r.IntN(5), D: 1 + r.IntN(40)}
	dists := []string{"normal", "uniform", "wide", "zeroq", "dominant"}
	c.Values = cases.Values{Dist: dists[r.IntN(len(dists))], Scale: []float64{1, 1, 3, 10, 0.01}[r.IntN(5)]}
	if r.IntN(2) == 0 {
		c.Family = "sparse"
		c.B, c.S = 1+r.IntN(2), 1+r.IntN(2)
		c.Win, c.IdxTopK, c.BlockSize = r.IntN(20), 1+r.IntN(40), 1+r.IntN(16)
		for range c.B {
			c.Seqused = append(c.Seqused, r.IntN(80))
		}
	} else {
		c.Family = "window"
		c.T = 1 + r.IntN(70)
		c.Window = r.IntN(40)
		c.Hkv = 1
	}
	switch r.IntN(5) {
	case 0:
		c.Sink = &cases.Sink{Kind: "random", Scale: 3}
	case 1:
		c.Sink = &cases.Sink{Kind: "const", Value: cases.F([]float64{math.Inf(1), math.Inf(-1), 50, -50}[r.IntN(4)])}
	}
	return c
}

// TestQuickBound: no correct configuration fails bound or prob on random
// sparse and window cases; 100 cases quick, 400 in .ci/run's long step.
func TestQuickBound(t *testing.T) {
	n := 100
	if testkit.Long() {
		n = 400
	}
	r := rand.New(rand.NewPCG(1, 2))
	worst := map[string][2]float64{}
	fails := 0
	for i := 0; i < n; i++ {
		c := quickCase(r)
		// The inputs and the reference depend on the input format only:
		// built once per format, not once per configuration (the emulations
		// do not write their inputs).
		type prepared struct {
			in *problem.Inputs
			rr *ref.Result
		}
		byFmt := map[num.Format]prepared{}
		for _, cfg := range impl.Configs() {
			pp, ok := byFmt[cfg.Profile.In]
			if !ok {
				in, err := cases.Generate(c, cfg.Profile.In)
				if err != nil {
					t.Fatal(err)
				}
				pp = prepared{in, ref.Compute(in, ref.Options{})}
				byFmt[cfg.Profile.In] = pp
			}
			in, rr := pp.in, pp.rr
			out, err := impl.New(cfg).Run(in)
			if err != nil {
				t.Fatal(err)
			}
			for _, mode := range []Mode{Rigorous, Probabilistic} {
				x := &Input{In: in, Ref: rr, Out: out.Pre, Profile: cfg.Profile, Shape: ShapeOf(cfg)}
				allowed, outT, skip := Bounds(x, mode)
				x.Out = out.O
				v := BoundCriterion{mode}.Judge(x)
				if !v.Pass {
					fails++
					if fails < 10 {
						e := v.WorstElem
						fmt.Printf("FAIL %s mode %d case %s elem %d out %v ref %v allowed %v\n", impl.ConfigName(cfg), mode, c, e, out.O[e], rr.O[e], allowed[e])
					}
				}
				name := impl.ConfigName(cfg)
				w := worst[name]
				for e := range rr.O {
					if skip[e] || math.IsInf(allowed[e], 0) {
						continue
					}
					den := allowed[e] - outT[e]
					if den > 0 {
						w[mode] = math.Max(w[mode], math.Abs(float64(out.Pre[e])-rr.O[e])/den)
					}
				}
				worst[name] = w
			}
		}
	}
	for _, cfg := range impl.Configs() {
		n := impl.ConfigName(cfg)
		fmt.Printf("%-28s bound %.3g prob %.3g\n", n, worst[n][0], worst[n][1])
	}
	if fails > 0 {
		t.Fatalf("%d failures", fails)
	}
}

// TestLSEVerdictJSON: an lse verdict whose worst is +Inf (a NaN lse)
// round-trips through JSON (encoding/json refuses a bare +Inf).
func TestLSEVerdictJSON(t *testing.T) {
	for _, w := range []float64{math.Inf(1), 0.25, math.NaN()} {
		v := Verdict{Criterion: "bound", LSE: &LSEVerdict{Worst: w, WorstRow: 3, Failed: 1, Checked: 4}}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("worst %v: %v", w, err)
		}
		var back Verdict
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if g := back.LSE; g == nil || g.WorstRow != 3 || g.Failed != 1 || g.Checked != 4 || !(g.Worst == w || w != w && g.Worst != g.Worst) {
			t.Errorf("worst %v: %s read back as %+v", w, b, g)
		}
	}
}
