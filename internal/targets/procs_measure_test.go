package targets_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/targets"
)

// TestMeasureProcs measures cases/s through an exec worker with 1 and 2
// processes. It runs only when ATTNVET_MEASURE_PROCS names the worker
// script (e.g. ../../examples/torch_worker.py); ATTNVET_MEASURE_FAMILY and
// ATTNVET_MEASURE_TIME (default 20s) shape the run.
func TestMeasureProcs(t *testing.T) {
	script := os.Getenv("ATTNVET_MEASURE_PROCS")
	if script == "" {
		t.Skip("set ATTNVET_MEASURE_PROCS to a worker script to measure")
	}
	d, err := time.ParseDuration(os.Getenv("ATTNVET_MEASURE_TIME"))
	if err != nil {
		d = 20 * time.Second
	}
	py := python(t)
	for _, procs := range []int{1, 2} {
		tg, err := targets.Resolve("exec:"+py+" "+script, targets.Options{Procs: procs, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		opt := campaign.DefaultOptions()
		opt.Seed, opt.Time, opt.Targets = 1, d, []targets.Target{tg}
		opt.Family = problem.Family(os.Getenv("ATTNVET_MEASURE_FAMILY"))
		start := time.Now()
		res, err := campaign.Run(context.Background(), opt)
		el := time.Since(start)
		tg.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s --procs %d: %d cases in %.1fs = %.1f cases/s (%d checks, %d failed, %d worker failures, %d skipped)",
			strings.TrimPrefix(script, "../../"), procs, res.Cases, el.Seconds(), float64(res.Cases)/el.Seconds(), res.Checks, res.FailedChecks, res.WorkerFailedChecks, res.SkippedChecks)
	}
}
