//go:build unix

package targets_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/targets"
)

// measureEnv is read once (never inside a loop: go test logs every getenv).
var measureEnv = sync.OnceValue(func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"ATTNVET_MEASURE_PROCS", "ATTNVET_MEASURE_CMD", "ATTNVET_MEASURE_FAMILY",
		"ATTNVET_MEASURE_TIME", "ATTNVET_MEASURE_CASES", "ATTNVET_MEASURE_WORKERS", "ATTNVET_MEASURE_NPROCS"} {
		m[k] = os.Getenv(k)
	}
	return m
})

// TestMeasureProcs measures cases/s through an exec worker with 1 and 2
// processes, and the CPU time attnvet and the worker processes spent.
// It runs only when ATTNVET_MEASURE_PROCS names a Python worker script
// (e.g. ../../examples/torch_worker.py) or ATTNVET_MEASURE_CMD a whole
// worker command line (e.g. 'node ../../examples/ort/worker.js --op gqa
// --dtype fp32'). ATTNVET_MEASURE_FAMILY, ATTNVET_MEASURE_CASES (default:
// a time budget), ATTNVET_MEASURE_TIME (default 20s),
// ATTNVET_MEASURE_WORKERS (campaign goroutines, default the campaign's)
// and ATTNVET_MEASURE_NPROCS (default "1,2") shape the run.
func TestMeasureProcs(t *testing.T) {
	env := measureEnv()
	cmd := env["ATTNVET_MEASURE_CMD"]
	if script := env["ATTNVET_MEASURE_PROCS"]; script != "" {
		cmd = python(t) + " " + script
	}
	if cmd == "" {
		t.Skip("set ATTNVET_MEASURE_PROCS to a Python worker script or ATTNVET_MEASURE_CMD to a worker command to measure")
	}
	d, err := time.ParseDuration(env["ATTNVET_MEASURE_TIME"])
	if err != nil {
		d = 20 * time.Second
	}
	n, _ := strconv.Atoi(env["ATTNVET_MEASURE_CASES"])
	workers, _ := strconv.Atoi(env["ATTNVET_MEASURE_WORKERS"])
	nprocs := env["ATTNVET_MEASURE_NPROCS"]
	if nprocs == "" {
		nprocs = "1,2"
	}
	for _, ps := range strings.Split(nprocs, ",") {
		procs, err := strconv.Atoi(ps)
		if err != nil {
			t.Fatal(err)
		}
		self0, child0 := rusage(syscall.RUSAGE_SELF), rusage(syscall.RUSAGE_CHILDREN)
		tg, err := targets.Resolve("exec:"+cmd, targets.Options{Procs: procs, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		opt := campaign.DefaultOptions()
		opt.Seed, opt.Targets, opt.Workers = 1, []targets.Target{tg}, workers
		if n > 0 {
			opt.Cases = n
		} else {
			opt.Time = d
		}
		opt.Family = problem.Family(env["ATTNVET_MEASURE_FAMILY"])
		start := time.Now()
		res, err := campaign.Run(context.Background(), opt)
		el := time.Since(start)
		tg.Close() // waits for the processes: their CPU time is in RUSAGE_CHILDREN
		if err != nil {
			t.Fatal(err)
		}
		self, child := rusage(syscall.RUSAGE_SELF)-self0, rusage(syscall.RUSAGE_CHILDREN)-child0
		t.Logf("--procs %d, %d campaign goroutines: %d cases in %.1fs = %.1f cases/s; CPU attnvet %.2fs (%.2f ms/case), workers %.2fs (%.2f ms/case); %d checks, %d failed, %d worker failures, %d skipped",
			procs, res.Runs[0].Workers, res.Cases, el.Seconds(), float64(res.Cases)/el.Seconds(), self, 1e3*self/float64(res.Cases), child, 1e3*child/float64(res.Cases),
			res.Checks, res.FailedChecks, res.WorkerFailedChecks, res.SkippedChecks)
	}
}

// rusage is the user+system CPU seconds of who.
func rusage(who int) float64 {
	var r syscall.Rusage
	if err := syscall.Getrusage(who, &r); err != nil {
		return 0
	}
	return float64(r.Utime.Nano()+r.Stime.Nano()) / 1e9
}
