package targets_test

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/targets"
)

func python(t *testing.T) string {
	t.Helper()
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	if err := exec.Command(py, "-c", "import numpy").Run(); err != nil {
		t.Skip("no numpy")
	}
	return py
}

// A campaign through a protocol 2 worker (F16 sink, window family, head
// dims ≤ 64) over both families: what the hello excludes is skipped and
// counted with its reasons, never sent and never a failure; what is sent
// passes. With two processes the same cases give the same counts.
func TestCampaignProtocol2Skips(t *testing.T) {
	t.Parallel() // waits on its Python processes
	py := python(t)
	var first *campaign.Result
	for _, procs := range []int{1, 2} {
		tg, err := targets.Resolve("exec:"+py+" testdata/numpy_v2_worker.py", targets.Options{Procs: procs, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		opt := campaign.DefaultOptions()
		opt.Seed, opt.Cases, opt.Targets, opt.Workers = 5, 120, []targets.Target{tg}, 2
		res, err := campaign.Run(context.Background(), opt)
		tg.Close()
		if err != nil {
			t.Fatal(err)
		}
		st := res.Targets[0].Worker
		t.Logf("procs %d: %d cases, %d checks, %d skipped %v, %d worker failures, worker %+v", procs, res.Cases, res.Checks, res.SkippedChecks, res.SkipReasons, res.WorkerFailedChecks, *st)
		if !res.Passed || res.FailedChecks != 0 || res.WorkerFailedChecks != 0 || res.Checks == 0 {
			t.Fatalf("procs %d: passed %v, %d failed, %d worker failures (%+v)", procs, res.Passed, res.FailedChecks, res.WorkerFailedChecks, res.WorkerFailures)
		}
		for _, r := range []string{"family sparse not in families=window", "attn_sink not representable in F16"} {
			if res.SkipReasons[r] == 0 {
				t.Errorf("procs %d: no skip for %q: %v", procs, r, res.SkipReasons)
			}
		}
		n := 0
		for _, v := range res.SkipReasons {
			n += v
		}
		if n != res.SkippedChecks || res.Targets[0].SkippedChecks != n || int(st.Skipped) != n || st.Starts != int64(procs) {
			t.Errorf("procs %d: skip counts disagree: %d %d %d %+v", procs, n, res.SkippedChecks, res.Targets[0].SkippedChecks, st)
		}
		if res.Checks+res.SkippedChecks+res.ContractCases+res.InvalidCases != res.Cases {
			t.Errorf("procs %d: %d checks + %d skipped + %d contract + %d invalid != %d cases", procs, res.Checks, res.SkippedChecks, res.ContractCases, res.InvalidCases, res.Cases)
		}
		if first == nil {
			first = res
		} else if res.Checks != first.Checks || res.SkippedChecks != first.SkippedChecks {
			t.Errorf("procs 2: %d checks, %d skipped; procs 1: %d, %d", res.Checks, res.SkippedChecks, first.Checks, first.SkippedChecks)
		}
		// A merged pair adds up.
		if m := campaign.Merge(res, res); m.SkippedChecks != 2*res.SkippedChecks || m.Targets[0].Worker.Skipped != 2*st.Skipped {
			t.Errorf("merge: %d skipped", m.SkippedChecks)
		}
	}
}
