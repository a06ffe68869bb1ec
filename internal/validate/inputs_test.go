package validate

import (
	"context"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/props"
)

// TestInputsSelectsTheKind: Options.Inputs validates exactly the first n
// cases of the family's stream whose inputs are of that kind, and refuses
// a kind the family does not draw.
func TestInputsSelectsTheKind(t *testing.T) {
	for _, kind := range []string{"nvfp4_kv", "int8_kv", "fp8", "plain"} {
		idx, err := indicesOf(context.Background(), 7, problem.Dense, kind, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(idx) != 5 {
			t.Fatalf("%s: %d indices", kind, len(idx))
		}
		for i, j := 0, 0; i <= idx[len(idx)-1]; i++ {
			is := InputKind(props.CaseAt(7, i, problem.Dense)) == kind
			if is != (i == idx[j]) {
				t.Fatalf("%s: case %d is of the kind: %v, listed: %v (%v)", kind, i, is, i == idx[j], idx)
			}
			if is {
				j++
			}
		}
	}
	if _, err := indicesOf(context.Background(), 7, problem.Window, "nvfp4_kv", 2); err == nil || !strings.Contains(err.Error(), "window family drew 0") {
		t.Errorf("window nvfp4_kv: %v", err)
	}
	// 3 cases drawn; a case whose dtype the kernel does not take is not judged.
	res, err := Run(context.Background(), Options{Seed: 7, Cases: 3, Families: []problem.Family{problem.Dense}, Kernels: "tiled/bc32/bf16", Inputs: "nvfp4_kv"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stats) != 1 || res.Stats[0].Cases < 1 || res.Stats[0].Cases > 3 || res.Stats[0].BoundFail != 0 || res.Inputs != "nvfp4_kv" {
		t.Errorf("run: %+v", res)
	}
}
