package worker

import (
	"math"
	"testing"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/props"
	"github.com/attnvet/attnvet/ref"
)

// The torch worker's dense family: every case it takes (no paged KV, no
// ALiBi) passes bound, and a case that declares an lse convention gets
// its lse back, judged in that convention; a wrong lse fails.
func TestTorchDenseLSE(t *testing.T) {
	t.Parallel() // waits on its worker process
	w := torchWorker(t)
	judged, withLSE, failed := 0, 0, 0
	for i := 0; i < 400 && withLSE < 25; i++ {
		c := props.CaseAt(20261202, i, problem.Dense)
		if c.FP8 != "" || c.Int8KV != "" || c.NVFP4KV || c.Int4KV != "" {
			continue // quantized inputs: the torch worker takes BF16 tensors
		}
		c.DType = ""
		in, err := cases.Generate(c, num.BF16)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if len(in.Violations()) > 0 || in.Paged() || in.Alibi != nil || in.T*in.H > 4000 {
			continue
		}
		out, err := w.Run(in)
		if err != nil {
			t.Fatalf("case %d (%s): %v", i, c, err)
		}
		r := ref.Compute(in, ref.Options{})
		x := &tolerance.Input{In: in, Ref: r, Out: out.O, OutLSE: out.LSE, Profile: w.Profile()}
		v := tolerance.BoundCriterion{Mode: tolerance.Rigorous}.Judge(x)
		judged++
		if in.LSE != nil {
			if v.LSE == nil || len(out.LSE) != in.T*in.H {
				t.Fatalf("case %d declares lse %+v: the reply has %d lse values (verdict %+v)", i, *in.LSE, len(out.LSE), v.LSE)
			}
			withLSE++
			if v.LSE.Checked > 0 && withLSE <= 5 && anyFinite(out.LSE) { // +1 leaves ±inf (a +inf sink included) as it is
				// A wrong lse (every row + 1) must fail, o unchanged.
				bad := append([]float32(nil), out.LSE...)
				for k := range bad {
					bad[k] += 1
				}
				x.OutLSE = bad
				if vb := (tolerance.BoundCriterion{Mode: tolerance.Rigorous}).Judge(x); vb.Pass || vb.LSE.Failed == 0 {
					t.Errorf("case %d: lse + 1 passes", i)
				}
			}
		}
		if !v.Pass {
			failed++
			if failed <= 3 {
				t.Errorf("case %d (%s) fails bound: o %d of %d, lse %+v", i, c, v.Failed, v.Checked, v.LSE)
			}
		}
	}
	t.Logf("%d dense cases judged, %d with an lse, %d failed", judged, withLSE, failed)
	if withLSE < 10 || judged < 20 {
		t.Errorf("only %d cases judged, %d with lse", judged, withLSE)
	}
}

func anyFinite(xs []float32) bool {
	for _, x := range xs {
		if !math.IsInf(float64(x), 0) && !math.IsNaN(float64(x)) {
			return true
		}
	}
	return false
}
