package tolerance_test

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/targets"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/props"
	"github.com/attnvet/attnvet/ref"
)

// sameVerdict compares two verdicts field by field, floats by their bits.
func sameVerdict(a, b tolerance.Verdict) error {
	if math.Float64bits(a.Worst) != math.Float64bits(b.Worst) && !(math.IsNaN(a.Worst) && math.IsNaN(b.Worst)) {
		return fmt.Errorf("worst %v, want %v", a.Worst, b.Worst)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		return fmt.Errorf("verdict %s, want %s", ja, jb)
	}
	return nil
}

// TestJudgeMatchesBounds: bound's and prob's Judge (judge, row by row)
// gives exactly the verdict of Bounds + JudgeWith (the element arrays),
// and allowed gives Terms' Total bit for bit, on generated cases of every
// family, every registry kernel (every built-in profile and loop shape)
// and every mutant, correct and failing outputs alike.
func TestJudgeMatchesBounds(t *testing.T) {
	ts := append(targets.RegistryTargets(), targets.Mutants()...)
	perFamily := 24
	if testing.Short() {
		perFamily = 8
	}
	next, judged, failing, lazyRows, cheapRows := 0, 0, 0, 0, 0
	for _, fam := range problem.Families() {
		for i := range perFamily {
			c := props.CaseAt(7, i, fam)
			for range 5 {
				tg := ts[next%len(ts)]
				next += 7 // coprime with the target count's small factors: every target in turn
				p := tg.Kernel.Profile()
				f := c.Format(p.In)
				if !impl.Compatible(f, p) {
					continue
				}
				in, err := cases.Generate(c, f)
				if err != nil || len(in.Violations()) > 0 {
					continue
				}
				r := ref.Compute(in, ref.Options{Workers: 1})
				out, err := tg.Kernel.Run(in)
				if err != nil || len(out.O) != in.OutLen() {
					continue
				}
				x := &tolerance.Input{In: in, Ref: r, Out: out.O, OutLSE: out.LSE, Profile: p, Shape: tg.Shape}
				for _, mode := range []tolerance.Mode{tolerance.Rigorous, tolerance.Probabilistic} {
					b := tolerance.BoundCriterion{Mode: mode}
					name := fmt.Sprintf("%s case %d, %s, %s", fam, i, tg.Name, b.Name())
					want := b.JudgeViaBounds(x)
					if err := sameVerdict(b.Judge(x), want); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					// The cheap bound first: a lazy reference, its sums
					// computed only for the rows judge needs.
					xl := *x
					xl.Ref = ref.Compute(in, ref.Options{Workers: 1, LazyDev: true})
					if err := sameVerdict(b.Judge(&xl), want); err != nil {
						t.Fatalf("%s, lazy reference: %v", name, err)
					}
					lazyRows += len(r.Rows)
					for ri := range r.Rows {
						if xl.Ref.Lazy() && !xl.Ref.HasDev(ri) {
							cheapRows++
						}
					}
					fast, total := tolerance.AllowedAndTotal(x, mode)
					for e := range fast {
						if math.Float64bits(fast[e]) != math.Float64bits(total[e]) && !(math.IsNaN(fast[e]) && math.IsNaN(total[e])) {
							t.Fatalf("%s: element %d allowed %v, Terms total %v", name, e, fast[e], total[e])
						}
					}
					judged++
					if !b.Judge(x).Pass {
						failing++
					}
				}
			}
		}
	}
	t.Logf("%d judgements compared, %d failing; lazy references: %d of %d rows judged without their deviation sums", judged, failing, cheapRows, lazyRows)
	if judged < 100 || failing == 0 {
		t.Fatalf("%d judgements (%d failing): the comparison covers too little", judged, failing)
	}
}
