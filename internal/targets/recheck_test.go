package targets_test

import (
	"context"
	"testing"

	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/targets"
)

// fuzz --recheck through a real worker process (testdata/numpy_v2_worker.py,
// splits=1,2,4 in its hello): deterministic, it passes every recheck;
// noisy on a repeated request it is nondeterministic; wrong with split=2
// it is split_dependent.
func TestRecheckThroughAWorker(t *testing.T) {
	t.Parallel() // waits on its Python processes
	py := python(t)
	for _, c := range []struct {
		args, kind string
	}{{"", ""}, {"--noisy", campaign.Nondeterministic}, {"--bad-split 2", campaign.SplitDependent}} {
		tg, err := targets.Resolve("exec:"+py+" testdata/numpy_v2_worker.py --splits "+c.args, targets.Options{Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		opt := campaign.DefaultOptions()
		opt.Seed, opt.Cases, opt.Family, opt.Recheck, opt.Targets = 5, 24, problem.Window, 3, []targets.Target{tg}
		r, err := campaign.Run(context.Background(), opt)
		tg.Close()
		if err != nil {
			t.Fatal(err)
		}
		if r.RecheckedCases == 0 || r.Checks == 0 || r.FailedChecks != 0 || r.WorkerFailedChecks != 0 {
			t.Fatalf("%q: %d rechecked, %d checks, %d failed, %d worker failures %v", c.args, r.RecheckedCases, r.Checks, r.FailedChecks, r.WorkerFailedChecks, r.WorkerFailures)
		}
		if c.kind == "" {
			if r.RecheckFailedChecks != 0 || !r.Passed {
				t.Errorf("deterministic worker: %d recheck failures %v", r.RecheckFailedChecks, r.RecheckFailures)
			}
			continue
		}
		if r.Passed || r.RecheckFailureKinds[c.kind] == 0 || r.RecheckFailureKinds[c.kind] != r.RecheckFailedChecks {
			t.Errorf("%q: passed %v, recheck failures %v, want %s", c.args, r.Passed, r.RecheckFailureKinds, c.kind)
		}
	}
}
