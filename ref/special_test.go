package ref_test

import (
	"math"
	"testing"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/ref"
)

func mustGen(t testing.TB, c cases.Case, f num.Format) *problem.Inputs {
	t.Helper()
	in, err := cases.Generate(c, f)
	if err != nil {
		t.Fatalf("%v\ncase: %s", err, c)
	}
	return in
}

// sparseLens is a sparse case whose three batch entries give tokens with
// n = 0, 1, 2 keys (S = 1) or, with S = 2, n = 0, 0 | 0, 1 | 1, 2.
func sparseLens(s int, sink *cases.Sink) cases.Case {
	return cases.Case{Family: problem.Sparse, Seed: 11, H: 3, D: 8, B: 3, S: s,
		Win: 4, IdxTopK: 4, BlockSize: 2, Seqused: []int{0, 1, 2}, Sink: sink}
}

func fields(r *ref.Result) map[string][]float64 {
	return map[string][]float64{"O": r.O, "AbsV": r.AbsV, "Dev1": r.Dev1, "DevA": r.DevA, "DevX": r.DevX, "DevM": r.DevM}
}

func TestRefEmptyKeySet(t *testing.T) {
	for _, s := range []int{1, 2} {
		for _, sink := range []*cases.Sink{nil, {Kind: "random", Scale: 2}, {Kind: "const", Value: cases.F(math.Inf(1))}} {
			in := mustGen(t, sparseLens(s, sink), num.BF16)
			res := ref.Compute(in, ref.Options{})
			for tok := 0; tok < in.T; tok++ {
				l := in.TokenLens(tok)
				for h := 0; h < in.H; h++ {
					row := res.Rows[tok*in.H+h]
					if row.N != l.SparseK {
						t.Fatalf("S=%d token %d: N = %d, sparse_k = %d", s, tok, row.N, l.SparseK)
					}
					if row.N != 0 {
						continue
					}
					if !math.IsInf(row.M, -1) || row.PSink != 0 || row.MaxA != 0 || row.MaxAbsV != 0 {
						t.Errorf("S=%d token %d head %d: empty row statistics %+v", s, tok, h, row)
					}
					e0 := (tok*in.H + h) * in.Dv
					for name, f := range fields(res) {
						for j, v := range f[e0 : e0+in.Dv] {
							if math.Float64bits(v) != 0 {
								t.Errorf("S=%d token %d head %d: %s[%d] = %v, want +0", s, tok, h, name, j, v)
							}
						}
					}
				}
			}
		}
	}
}

func TestRefSinkPlusInf(t *testing.T) {
	for _, c := range []cases.Case{
		sparseLens(2, &cases.Sink{Kind: "const", Value: cases.F(math.Inf(1))}),
		{Family: problem.Window, T: 5, H: 4, Hkv: 2, D: 4, Dv: 3, Window: 3, Seed: 2,
			Sink: &cases.Sink{Kind: "const", Value: cases.F(math.Inf(1))}},
	} {
		in := mustGen(t, c, num.FP32)
		res := ref.Compute(in, ref.Options{})
		for name, f := range fields(res) {
			for e, v := range f {
				if math.Float64bits(v) != 0 {
					t.Fatalf("%s: %s[%d] = %v, want +0", c.Family, name, e, v)
				}
			}
		}
		for i, row := range res.Rows {
			want := 0.0
			if row.N > 0 {
				want = 1
			}
			if row.PSink != want {
				t.Errorf("%s row %d (n=%d): PSink = %v, want %v", c.Family, i, row.N, row.PSink, want)
			}
		}
	}
}

// TestRefSinkMinusInf: a sink of −Inf is no sink, bit for bit.
func TestRefSinkMinusInf(t *testing.T) {
	for _, base := range []cases.Case{
		sparseLens(2, nil),
		{Family: problem.Sparse, Seed: 5, H: 4, D: 16, B: 2, S: 2, Win: 8, IdxTopK: 8, BlockSize: 4,
			Seqused: []int{13, 30}, Indices: "shuffled", BlockTable: "permuted"},
		{Family: problem.Window, T: 9, H: 4, Hkv: 2, D: 8, Dv: 5, Window: 4, Seed: 9},
		{Family: problem.Window, T: 6, H: 2, D: 3, Seed: 1, Values: cases.Values{Dist: "wide"}},
	} {
		with := base
		with.Sink = &cases.Sink{Kind: "const", Value: cases.F(math.Inf(-1))}
		for _, f := range []num.Format{num.BF16, num.FP16, num.FP32} {
			a := ref.Compute(mustGen(t, base, f), ref.Options{})
			b := ref.Compute(mustGen(t, with, f), ref.Options{})
			fa, fb := fields(a), fields(b)
			for name := range fa {
				for e := range fa[name] {
					if math.Float64bits(fa[name][e]) != math.Float64bits(fb[name][e]) {
						t.Fatalf("%s %s: %s[%d] = %v without sink, %v with sink −Inf", base.Family, f, name, e, fa[name][e], fb[name][e])
					}
				}
			}
			for i := range a.Rows {
				if a.Rows[i] != b.Rows[i] {
					t.Fatalf("%s %s: row %d: %+v without sink, %+v with −Inf", base.Family, f, i, a.Rows[i], b.Rows[i])
				}
			}
		}
	}
}

// TestRefOneKey: o = v·sigmoid(x − σ) for a single key.
func TestRefOneKey(t *testing.T) {
	c := cases.Case{Family: problem.Window, T: 1, H: 2, D: 4, Dv: 3, Seed: 4,
		Sink: &cases.Sink{Kind: "const", Values: []cases.Float{cases.F(0.75), cases.F(-2)}}}
	in := mustGen(t, c, num.FP32)
	res := ref.Compute(in, ref.Options{})
	for h := 0; h < in.H; h++ {
		q, k := in.QRow(0, h), in.K[in.Group(h)*in.D:]
		x := 0.0
		for d := range q {
			x += float64(q[d]) * float64(k[d])
		}
		x *= in.Scale
		sig := 1 / (1 + math.Exp(float64(in.Sink[h])-x))
		for j := 0; j < in.Dv; j++ {
			v := float64(in.V[in.Group(h)*in.Dv+j])
			got := res.O[h*in.Dv+j]
			if math.Abs(got-v*sig) > 4e-16*math.Abs(v) {
				t.Errorf("head %d dim %d: o = %v, v·sigmoid(x−σ) = %v", h, j, got, v*sig)
			}
			if res.Dev1[h*in.Dv+j] != 0 && math.Abs(res.Dev1[h*in.Dv+j]-math.Abs(v-got)*sig) > 1e-15*math.Abs(v) {
				t.Errorf("head %d dim %d: Dev1 = %v, want p·|v − o| = %v", h, j, res.Dev1[h*in.Dv+j], math.Abs(v-got)*sig)
			}
		}
	}
}

// TestRefWorkersAgree: the parallel path gives the same bits as the serial one.
func TestRefWorkersAgree(t *testing.T) {
	c := cases.Case{Family: problem.Sparse, Seed: 8, H: 16, D: 64, B: 8, S: 2, Win: 32, IdxTopK: 96,
		BlockSize: 16, Seqused: []int{0, 1, 31, 32, 33, 200, 129, 400}, Indices: "shuffled",
		Sink: &cases.Sink{Kind: "random", Scale: 2}}
	in := mustGen(t, c, num.BF16)
	a := ref.Compute(in, ref.Options{Workers: 1})
	b := ref.Compute(in, ref.Options{Workers: 4})
	fa, fb := fields(a), fields(b)
	for name := range fa {
		for e := range fa[name] {
			if math.Float64bits(fa[name][e]) != math.Float64bits(fb[name][e]) {
				t.Fatalf("%s[%d]: %v serial, %v parallel", name, e, fa[name][e], fb[name][e])
			}
		}
	}
}
