package validate

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/props"
	"github.com/attnvet/attnvet/ref"
)

// maxLogitCases is the campaign size of TestMaxLogitValidation: 8 cases
// per family by default, ATTNVET_MAXLOGIT_CASES to change it (read once).
var maxLogitCases = sync.OnceValue(func() int {
	if n, err := strconv.Atoi(os.Getenv("ATTNVET_MAXLOGIT_CASES")); err == nil && n > 0 {
		return n
	}
	return 8
})

// TestMaxLogitValidation judges the max_logit of every correct emulation
// on campaign cases of every family with scores (props.CaseAt, seed 1),
// each declaring max_logit in base e or 2 (alternating): zero failures.
// docs/tolerance.md quotes a run with ATTNVET_MAXLOGIT_CASES=10000.
func TestMaxLogitValidation(t *testing.T) {
	n := maxLogitCases()
	kernels := impl.Configs()
	for _, fam := range problem.Families() {
		if fam == problem.Combine {
			continue
		}
		rows, fails, skipped, judged := 0, 0, 0, 0
		worst := 0.0
		for i := 0; i < n; i++ {
			c := props.CaseAt(1, i, fam)
			c.MaxLogit = &cases.MaxLogitSpec{Base: []string{"e", "2"}[i%2]}
			byFormat := map[num.Format]*problem.Inputs{}
			refs := map[num.Format]*ref.Result{}
			for _, cfg := range kernels {
				k := impl.New(cfg)
				f := c.Format(k.Profile().In)
				in, ok := byFormat[f]
				if !ok {
					var err error
					if in, err = cases.Generate(c, f); err != nil {
						t.Fatalf("%v: %s", err, c)
					}
					byFormat[f] = in
					if len(in.Violations()) == 0 {
						refs[f] = ref.Compute(in, ref.Options{Workers: 1})
					}
				}
				r := refs[f]
				if r == nil || !impl.Compatible(f, k.Profile()) {
					continue
				}
				out, err := k.Run(in)
				if err != nil {
					t.Fatal(err)
				}
				x := &tolerance.Input{In: in, Ref: r, Out: out.O, OutMaxLogit: out.MaxLogit, Profile: k.Profile(), Shape: tolerance.ShapeOf(cfg)}
				v := tolerance.JudgeMaxLogit(x, tolerance.Rigorous)
				judged++
				rows += v.Checked
				skipped += v.Skipped
				if v.Failed > 0 {
					fails++
					t.Errorf("%s: max_logit %d of %d rows fail (worst %.3g)\ncase: %s", k.Name(), v.Failed, v.Checked, v.Worst, c)
				}
				if !math.IsInf(v.Worst, 0) {
					worst = math.Max(worst, v.Worst)
				}
			}
		}
		t.Log(fmt.Sprintf("%-6s %d cases, %d kernel runs, %d max_logit rows judged (%d skipped), %d failing runs, worst err/allowed %.3g",
			fam, n, judged, rows, skipped, fails, worst))
	}
}
