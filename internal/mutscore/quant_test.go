package mutscore_test

import (
	"bytes"
	"testing"

	"github.com/attnvet/attnvet/internal/mutscore"
)

// TestFP8MutantsKilled: bound kills every FP8-cache mutant within the
// campaign's first 144 cases (six mla-fp8 targeted cases) and fails none of
// their bases.
func TestFP8MutantsKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("a 144-case campaign")
	}
	opt := mutscore.DefaultOptions()
	opt.Cases, opt.Correct, opt.Criteria = 144, false, []string{"bound"}
	opt.Mutants = []string{"fp8-scale-ue8m0-rz", "fp8-scale-wrong-block", "fp8-scale-wrong-token", "fp8-scale-twice",
		"fp8-scale-missing", "fp8-448-as-nan", "fp8-fn-as-fnuz", "fp8-rope-as-fp8", "fp8-model1-per-token"}
	res, err := mutscore.Run(opt)
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Criteria["bound"]; s.Killed != len(opt.Mutants) || s.FalsePositives != 0 {
		var buf bytes.Buffer
		res.WriteTable(&buf)
		t.Errorf("bound killed %d of %d FP8 mutants, %d false positives\n%s", s.Killed, len(opt.Mutants), s.FalsePositives, buf.String())
	}
}
