package campaign

import (
	"reflect"
	"testing"

	"github.com/attnvet/attnvet/internal/pipeline"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/targets"
	"github.com/attnvet/attnvet/internal/testkit"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/props"
)

// The campaign judges on references without their deviation sums
// (pipeline.Case.LazyDev): every verdict, failing ones included, must be
// the one the full reference gives, worst ratio and element bit for bit.
func TestLazyReferenceSameVerdicts(t *testing.T) {
	ts, err := targets.Select("tiled/bc128/bf16,tiled/bc64/fp16,mutant:sink-bf16,mutant:gqa-head-mod,mutant:no-alpha-l", targets.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// 20 cases per family (40 in the long step): a candidate rule loosened
	// to 2x the best, or a cheap bound trusted up to 2, fails by case 4.
	n := 20
	if testkit.Long() {
		n = 40
	}
	if testing.Short() {
		n = 10
	}
	lazyRows, failing := 0, 0
	for _, name := range []string{"bound", "prob"} {
		crit, err := tolerance.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, fam := range []problem.Family{problem.Sparse, problem.Window, problem.Dense, problem.MLA} {
			for i := range n {
				c := props.CaseAt(11, i, fam)
				full, lazy := pipeline.NewCase(c), pipeline.NewCase(c)
				lazy.LazyDev = true
				for _, tg := range ts {
					pf, ok, err := full.For(tg.Kernel.Profile())
					pl, _, errl := lazy.For(tg.Kernel.Profile())
					if !ok || err != nil || errl != nil || pf.Ref == nil {
						continue
					}
					_, vf, ef := runAndJudge(tg, crit, pf, true)
					_, vl, el := runAndJudge(tg, crit, pl, true)
					if (ef == nil) != (el == nil) || !reflect.DeepEqual(vf, vl) {
						t.Fatalf("%s %s case %d, %s: lazy verdict %+v (%v), full %+v (%v)", name, fam, i, tg.Name, vl, el, vf, ef)
					}
					if !vf.Pass {
						failing++
					}
					for ri := range pl.Ref.Rows {
						if !pl.Ref.HasDev(ri) {
							lazyRows++
						}
					}
				}
			}
		}
	}
	if lazyRows == 0 || failing == 0 {
		t.Errorf("%d rows judged without their sums, %d failing verdicts: the test compares nothing", lazyRows, failing)
	}
	t.Logf("%d rows judged without their deviation sums, %d failing verdicts", lazyRows, failing)
}
