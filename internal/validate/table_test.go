package validate

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/attnvet/attnvet/internal/testkit"
)

// TestWriteTable pins validate's table: a clean run, and one with an o
// and an lse bound failure (counted together, first failure named).
func TestWriteTable(t *testing.T) {
	pass := Stat{Kernel: "stream/bf16", Family: "dense", Cases: 30, Elements: 123456, Skipped: 7,
		TightBound: 0.9871, TightProb: 0.51, WorstBound: 0.4999, LSERows: 640, LSEWorst: 0.885}
	fail := Stat{Kernel: "tiled/bc64/fp16", Family: "mla", Cases: 29, Elements: 9000,
		BoundFail: 2, TightBound: 1.25, TightProb: 0.7, WorstBound: 1.5, LSERows: 58, LSEBoundFail: 1, LSEWorst: 3,
		FirstFail: `{"family":"mla"}`}
	for _, tc := range []struct {
		name string
		res  Result
		want int
	}{
		{"table_pass", Result{Seed: 1, Cases: 30, Stats: []Stat{pass}}, 0},
		{"table_fail", Result{Seed: 9, Cases: 30, Inputs: "kv_layout", Violations: 3, Stats: []Stat{pass, fail}}, 3},
	} {
		var b bytes.Buffer
		if got := tc.res.WriteTable(&b); got != tc.want {
			t.Errorf("%s: WriteTable = %d bound failures, want %d", tc.name, got, tc.want)
		}
		testkit.Golden(t, filepath.Join("testdata", tc.name+".golden"), b.Bytes())
	}
}
