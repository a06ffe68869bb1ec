package campaign

import (
	"encoding/xml"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/targets"
	"github.com/attnvet/attnvet/internal/worker"
)

// dyingWorker stands in for an exec worker: it fails every sparse case
// with a *worker.Error (wrapped, as a caller might) and computes window
// cases correctly. It counts its calls.
type dyingWorker struct {
	impl.Kernel
	kind  string
	calls *atomic.Int64
}

func (d dyingWorker) Run(in *problem.Inputs) (*impl.Output, error) {
	d.calls.Add(1)
	if in.Family == problem.Sparse {
		return nil, &worker.Error{Kind: d.kind, Worker: "fake", Request: 1, Case: "sparse", Msg: "the worker closed its stdout: signal: segmentation fault"}
	}
	return d.Kernel.Run(in)
}

func (d dyingWorker) Stats() worker.Stats {
	return worker.Stats{Requests: d.calls.Load(), Starts: 3, Crashes: 2}
}

// A *worker.Error is a worker failure: counted and listed apart from the
// numerical mismatches, saved as it ran (never shrunk: the kernel runs
// once per case), failing the run, merged and rendered in JUnit.
func TestWorkerErrorsAreWorkerFailures(t *testing.T) {
	base, err := impl.Lookup("stream/bf16")
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	dir := t.TempDir()
	o := opts(t, 24)
	o.Targets = []targets.Target{{Name: "exec:fake", Kind: targets.Exec, Kernel: dyingWorker{base, worker.Crash, &calls}}}
	o.OutDir, o.Save, o.ShrinkBudget = dir, 2, 500
	o.ReplayFlags = []string{"--worker-profile", "bf16"}
	r := run(t, o)

	if r.WorkerFailedChecks == 0 || r.Checks == 0 {
		t.Fatalf("want both worker failures and judged window cases: %d worker failures, %d checks", r.WorkerFailedChecks, r.Checks)
	}
	if r.Passed || r.FailedChecks != 0 || len(r.Failures) != 0 {
		t.Errorf("passed %v, %d failed checks, %d failures: a worker failure is not a mismatch, and it fails the run", r.Passed, r.FailedChecks, len(r.Failures))
	}
	if r.WorkerFailureKinds[worker.Crash] != r.WorkerFailedChecks || r.Targets[0].WorkerFailedChecks != r.WorkerFailedChecks {
		t.Errorf("kinds %v, target count %d, want all %d crashes", r.WorkerFailureKinds, r.Targets[0].WorkerFailedChecks, r.WorkerFailedChecks)
	}
	if r.FailedCases != r.WorkerFailedChecks || len(r.WorkerFailures) != r.WorkerFailedChecks {
		t.Errorf("failed cases %d, listed %d, want %d", r.FailedCases, len(r.WorkerFailures), r.WorkerFailedChecks)
	}
	if n := calls.Load(); n != int64(r.Checks+r.WorkerFailedChecks) {
		t.Errorf("the kernel ran %d times for %d cases: a worker failure must not be shrunk", n, r.Checks+r.WorkerFailedChecks)
	}
	if r.Worst != nil && r.Worst.Ratio > 1 {
		t.Errorf("a worker failure counted in the worst ratio: %+v", r.Worst)
	}
	if s := r.Targets[0].Worker; s == nil || s.Starts != 3 || s.Crashes != 2 {
		t.Errorf("worker stats %+v", s)
	}
	saved := 0
	for _, f := range r.WorkerFailures {
		if f.Kind != worker.Crash || f.Target != "exec:fake" || !strings.Contains(f.Error, "segmentation fault") || f.Input.Family != problem.Sparse || f.Seed != 11 || f.Index < 0 {
			t.Errorf("worker failure %+v", f)
		}
		if f.File == "" {
			if f.Replay != "" {
				t.Errorf("unsaved failure with a replay command: %+v", f)
			}
			continue
		}
		saved++
		want := "attnvet replay " + f.File + " --kernel exec:fake --worker-profile bf16"
		if f.Replay != want {
			t.Errorf("replay %q, want %q", f.Replay, want)
		}
		c, err := cases.Load(f.File)
		if err != nil {
			t.Fatal(err)
		}
		if tn, crit := FromDescription(c.Description); tn != "exec:fake" || crit != "bound" || !strings.Contains(c.Description, "worker crash") {
			t.Errorf("saved description %q", c.Description)
		}
		if c.Target != "exec:fake" || c.Criterion != "bound" {
			t.Errorf("saved provenance %q %q", c.Target, c.Criterion)
		}
		in := f.Input
		in.Description, in.Target, in.Criterion = c.Description, c.Target, c.Criterion
		if string(in.Marshal()) != string(c.Marshal()) {
			t.Errorf("saved case differs from the case as run (a worker failure is saved unshrunk)")
		}
	}
	if saved != 2 {
		t.Errorf("%d worker failures saved, want --save 2", saved)
	}

	// JSON: round trip, and merged shards add up.
	back, err := ParseResult(r.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	m := Merge(back, r)
	if m.Passed || m.WorkerFailedChecks != 2*r.WorkerFailedChecks || m.WorkerFailureKinds[worker.Crash] != 2*r.WorkerFailedChecks ||
		len(m.WorkerFailures) != 2*len(r.WorkerFailures) || m.Targets[0].Worker.Starts != 6 || m.Targets[0].WorkerFailedChecks != 2*r.WorkerFailedChecks {
		t.Errorf("merge: %d worker failures (%v), %d listed, stats %+v", m.WorkerFailedChecks, m.WorkerFailureKinds, len(m.WorkerFailures), m.Targets[0].Worker)
	}
	if r.Targets[0].Worker.Starts != 3 {
		t.Errorf("Merge modified its argument's worker stats")
	}

	// JUnit: a failure of type worker_crash with the replay command.
	var doc JUnitSuites
	if err := xml.Unmarshal(JUnit(r, "t", 0), &doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range doc.Suites[0].Cases {
		if c.Failure != nil {
			n++
			if c.Failure.Type != "worker_crash" {
				t.Errorf("JUnit failure type %q", c.Failure.Type)
			}
		}
	}
	if n != r.WorkerFailedChecks || doc.Failures != n {
		t.Errorf("JUnit: %d failures, want %d", n, r.WorkerFailedChecks)
	}
}

// A plain kernel error (not a *worker.Error) stays a failed check.
func TestPlainKernelErrorStaysAFailedCheck(t *testing.T) {
	base, _ := impl.Lookup("stream/bf16")
	o := opts(t, 6)
	o.Targets = []targets.Target{{Name: "x", Kind: targets.Registry, Kernel: erring{base}}}
	r := run(t, o)
	if r.FailedChecks == 0 || r.WorkerFailedChecks != 0 {
		t.Errorf("%d failed checks, %d worker failures", r.FailedChecks, r.WorkerFailedChecks)
	}
}
