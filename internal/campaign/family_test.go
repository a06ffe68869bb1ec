package campaign

import (
	"strings"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/targets"
	"github.com/attnvet/attnvet/internal/worker"
)

// declaringWorker stands in for an exec worker whose hello declares
// families: it skips the others the way worker.Run does.
type declaringWorker struct {
	impl.Kernel
	fams []problem.Family
}

func (d declaringWorker) Families() []problem.Family { return d.fams }

func (d declaringWorker) SkipReason(in *problem.Inputs) string {
	for _, f := range d.fams {
		if f == in.Family {
			return ""
		}
	}
	return "family " + string(in.Family) + " not declared"
}

func (d declaringWorker) Run(in *problem.Inputs) (*impl.Output, error) {
	if r := d.SkipReason(in); r != "" {
		return nil, &worker.SkipError{Worker: "fake", Reason: r}
	}
	return d.Kernel.Run(in)
}

func declaring(t *testing.T, fams ...problem.Family) targets.Target {
	base, err := impl.Lookup("stream/bf16")
	if err != nil {
		t.Fatal(err)
	}
	return targets.Target{Name: "exec:fake", Kind: targets.Exec, Kernel: declaringWorker{base, fams}}
}

// The reference is computed only for inputs some target will judge: a
// window-only worker's sparse cases are skipped without one, a plain
// kernel beside it still needs it, and the skipped cases stay counted.
func TestSkippedCasesNeedNoReference(t *testing.T) {
	w := declaring(t, problem.Window)
	sparse := cases.Case{Family: problem.Sparse, Seed: 5, H: 2, D: 4, B: 1, Win: 4, IdxTopK: 4, BlockSize: 2, Seqused: []int{6}}
	in, err := cases.Generate(sparse, num.BF16)
	if err != nil {
		t.Fatal(err)
	}
	ev := &evaluator{targets: []targets.Target{w}}
	if ev.needRef(sparse)(in, num.BF16) {
		t.Error("a sparse case only a window worker would be sent needs no reference")
	}
	in.Family = problem.Window
	if !ev.needRef(sparse)(in, num.BF16) {
		t.Error("inputs the worker takes need the reference")
	}
	in.Family = problem.Sparse
	ev.targets = append(ev.targets, mustTargets(t, "tiled/bc16/bf16")...)
	if !ev.needRef(sparse)(in, num.BF16) {
		t.Error("a plain kernel beside the worker needs the reference")
	}
	if ev.needRef(sparse)(in, num.FP16) {
		t.Error("no target reads fp16 inputs")
	}

	o := opts(t, 40)
	o.Targets = []targets.Target{w}
	r := run(t, o)
	if r.SkippedChecks == 0 || r.Checks == r.SkippedChecks || r.FailedChecks != 0 || !r.Passed {
		t.Errorf("%d checks, %d skipped, %d failed, passed %v: want the sparse half skipped and the window half passing", r.Checks, r.SkippedChecks, r.FailedChecks, r.Passed)
	}
}

func TestDefaultFamilyFromDeclarations(t *testing.T) {
	plain := mustTargets(t, "stream/bf16")
	for _, tc := range []struct {
		ts   []targets.Target
		want problem.Family
		err  string
	}{
		{plain, "", ""},
		{[]targets.Target{declaring(t)}, "", ""}, // declared nothing: every family
		{[]targets.Target{declaring(t, problem.Dense)}, problem.Dense, ""},
		{[]targets.Target{declaring(t, problem.Window, problem.Sparse)}, "", ""},
		{[]targets.Target{declaring(t, problem.Window)}, problem.Window, ""},
		{[]targets.Target{declaring(t, problem.Dense), plain[0]}, "", ""}, // the plain kernel takes the mix
		{[]targets.Target{declaring(t, problem.Dense), declaring(t, problem.Dense)}, problem.Dense, ""},
		{[]targets.Target{declaring(t, problem.Window, problem.Dense)}, "", "families=window,dense"},
		{[]targets.Target{declaring(t, problem.Dense), declaring(t, problem.MLA)}, "", "families=dense,mla"},
	} {
		got, err := DefaultFamily(tc.ts)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%v: got %q, %v; want %q, error %q", tc.ts, got, err, tc.want, tc.err)
		}
	}
}
