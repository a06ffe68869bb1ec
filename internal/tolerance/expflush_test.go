package tolerance

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/attnvet/attnvet/corpus"
	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/ref"
)

// flushingExp is an FP32 kernel of ONNX Runtime's shape (the row max
// takes in the sink; p = exp(x − m); o = Σ p·v / (Σ p + exp(σ − m))) whose
// exps return 0 below lim: lim = 2^−126 is a flush-to-zero exp (CUDA's
// ex2.approx.ftz, ORT's MLAS exp on AVX2); a larger lim drops weights a
// correct exp keeps. It replaces the row an emulation computed (Row hook).
func flushingExp(lim float32) *impl.Emulation {
	exp := func(x float32) float32 {
		if e := num.Exp32(x); e >= lim {
			return e
		}
		return 0
	}
	row := func(in *problem.Inputs, t, h int, keys []problem.Key, pre []float32) {
		sigma := in.SinkOf(h)
		if len(keys) == 0 || math.IsInf(float64(sigma), 1) {
			return
		}
		q, scale := in.QRow(t, h), float32(in.Scale)
		xs := make([]float32, len(keys))
		m := sigma
		for i, k := range keys {
			var d float32
			for j := range q {
				d += float32(q[j] * k.K[j])
			}
			xs[i] = float32(d*scale) + float32(k.Bias)
			m = max(m, xs[i])
		}
		l := exp(sigma - m)
		o := make([]float32, len(pre))
		for i, k := range keys {
			p := exp(xs[i] - m)
			l += p
			for j := range o {
				o[j] += float32(p * k.V[j])
			}
		}
		for j := range pre {
			pre[j] = o[j] / l
		}
	}
	return impl.New(impl.Config{Kind: impl.Stream, Profile: profile.MustLookup("fp32"), Hooks: &impl.Hooks{Row: row}})
}

// TestExpFlushToZeroAllowed: a kernel whose exp flushes results below
// FP32's smallest normal meets bound (the fact the Underflow term states),
// on the corpus case made for it, on the ONNX Runtime case that found it,
// and on 400 cases with large scores; the flush changes the output there
// against the same kernel with a gradual exp (so the check is not vacuous);
// the flush fails where a gradual exp is declared, and an exp that drops
// weights below 2^−100 is still caught.
func TestExpFlushToZeroAllowed(t *testing.T) {
	p := profile.MustLookup("fp32")
	flush := flushingExp(math.Float32frombits(0x00800000))
	// judgeAs judges kernel k on case c declared as profile dp, shape sh,
	// and reports whether its output differs from the gradual exp's.
	judgeAs := func(c cases.Case, k *impl.Emulation, dp profile.Profile, sh Shape) (Verdict, bool) {
		t.Helper()
		in, err := cases.Generate(c, p.In)
		if err != nil {
			t.Fatal(err)
		}
		r := ref.Compute(in, ref.Options{})
		out, err := k.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		gradual, err := flushingExp(0).Run(in)
		if err != nil {
			t.Fatal(err)
		}
		differs := false
		for i := range out.O {
			differs = differs || out.O[i] != gradual.O[i]
		}
		return BoundCriterion{Mode: Rigorous}.Judge(&Input{In: in, Ref: r, Out: out.O, Profile: dp, Shape: sh}), differs
	}
	judge := func(c cases.Case, k *impl.Emulation) (Verdict, bool) {
		return judgeAs(c, k, p, Shape{}) // an unknown kernel's shape, as exec targets are judged
	}
	named, err := corpus.Load("window_exp_flush_subnormal_weight.json")
	if err != nil {
		t.Fatal(err)
	}
	ort := cases.Case{Family: "window", Seed: 14370141012076691143, H: 29, D: 10, Dv: 14, T: 12, Window: 1,
		Values: cases.Values{Dist: "dominant", Scale: 10}, Sink: &cases.Sink{Kind: "const", Value: cases.F(0x1p-149)}}
	for _, c := range []cases.Case{named, ort} {
		v, differs := judge(c, flush)
		if !v.Pass || !differs {
			t.Errorf("seed %d: flushing exp pass %v (want true), output differs from the gradual exp's %v (want true): %s", c.Seed, v.Pass, differs, v.Detail)
		}
	}
	// Declared gradual (exp_subnormals=gradual), or judged as an
	// emulation, the flush is a failure.
	for _, x := range []struct {
		p  profile.Profile
		sh Shape
	}{{func() profile.Profile { q := p; q.ExpGradual = true; return q }(), Shape{}}, {p, ShapeOf(flush.Config)}} {
		if v, _ := judgeAs(named, flush, x.p, x.sh); v.Pass {
			t.Errorf("profile %s, shape %+v: a flushing exp met bound with a gradual exp declared", x.p.Describe(), x.sh)
		}
	}
	// The same row with the key at e^−70 = 4·10^−31: a normal weight that
	// an exp cut at 2^−100 drops.
	normal := named
	normal.Specials = slices.Clone(named.Specials)
	normal.Specials[1].Value = cases.F(-7)
	if v, _ := judge(normal, flushingExp(0x1p-100)); v.Pass {
		t.Errorf("an exp dropping weights below 2^-100 met bound on a weight of e^-70")
	}
	r := rand.New(rand.NewPCG(5, 6))
	changed := 0
	for i := 0; i < 400; i++ {
		c := quickCase(r)
		c.Values.Scale = []float64{10, 12, 14}[i%3]
		v, differs := judge(c, flush)
		if !v.Pass {
			t.Errorf("case %d (seed %d): flushing exp fails bound: %s", i, c.Seed, v.Detail)
		}
		if differs {
			changed++
		}
	}
	t.Logf("flushing exp: %d of 400 large-score cases changed by the flush, all within bound", changed)
	if changed == 0 {
		t.Errorf("no large-score case reached the flush: the generator no longer makes subnormal weights")
	}
}
