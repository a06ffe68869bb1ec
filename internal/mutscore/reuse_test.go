package mutscore

import (
	"reflect"
	"testing"
)

// TestReuseBaseVerdictsChangesNothing: taking the base's verdicts for an
// untriggered mutant gives the same Result as judging it.
func TestReuseBaseVerdictsChangesNothing(t *testing.T) {
	opt := DefaultOptions()
	opt.Cases = 12
	opt.Correct = false
	opt.Mutants = []string{"pr301-n1-poison", "n0-stale-scratch", "s2-shared-length", "sink-ignored", "denom-bf16", "lone-key-tile-skipped"}
	got, err := Run(opt)
	if err != nil {
		t.Fatal(err)
	}
	reuseBaseVerdicts = false
	defer func() { reuseBaseVerdicts = true }()
	want, err := Run(opt)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("results differ with the shortcut:\n got %+v\nwant %+v", got.Criteria, want.Criteria)
	}
	untriggered := 0
	for _, m := range got.Mutants {
		untriggered += m.Judged - m.Triggered
	}
	if untriggered == 0 {
		t.Error("no untriggered mutant judgement: the test does not exercise the shortcut")
	}
}
