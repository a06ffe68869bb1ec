package targets_test

import (
	"context"
	"testing"

	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/targets"
)

// Quantized dense inputs through a worker process that dequantizes them
// itself (examples/numpy_dense_worker.py, numpy: an implementation
// independent of attnvet's): declaring quantized=fp8,int8_kv,nvfp4_kv,int4_kv it
// is judged on every case and passes; without the declaration the
// quantized cases are skipped with one reason per kind, adding up; each
// wrong dequantization (INT8 scales, NVFP4 block or global scales, FP8
// v_descale ignored, INT4's +8 bias kept) fails.
func TestQuantizedThroughAWorker(t *testing.T) {
	t.Parallel() // waits on its Python processes
	py := python(t)
	run := func(args string, cases int) *campaign.Result {
		t.Helper()
		tg, err := targets.Resolve("exec:"+py+" ../../examples/numpy_dense_worker.py "+args, targets.Options{Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		defer tg.Close()
		opt := campaign.DefaultOptions()
		opt.Seed, opt.Cases, opt.Family, opt.Targets, opt.Workers, opt.Save = 1, cases, problem.Dense, []targets.Target{tg}, 2, 0
		r, err := campaign.Run(context.Background(), opt)
		if err != nil {
			t.Fatal(err)
		}
		if r.WorkerFailedChecks != 0 {
			t.Fatalf("%q: worker failures %v", args, r.WorkerFailures)
		}
		return r
	}
	none := run("--no-quantized", 150)
	reasons := []string{"fp8 inputs: no quantized= declaration", "int8_kv inputs: no quantized= declaration", "nvfp4_kv inputs: no quantized= declaration", "int4_kv inputs: no quantized= declaration"}
	n := 0
	for _, r := range reasons {
		if none.SkipReasons[r] == 0 {
			t.Errorf("no skip %q: %v", r, none.SkipReasons)
		}
		n += none.SkipReasons[r]
	}
	if n != none.SkippedChecks || len(none.SkipReasons) != len(reasons) || !none.Passed {
		t.Errorf("without the declaration: %d skipped, reasons %v, passed %v", none.SkippedChecks, none.SkipReasons, none.Passed)
	}
	ok := run("", 150)
	t.Logf("declared: %d checks, %d skipped, %d failed; undeclared: %d checks, %d skipped %v", ok.Checks, ok.SkippedChecks, ok.FailedChecks, none.Checks, none.SkippedChecks, none.SkipReasons)
	if !ok.Passed || ok.FailedChecks != 0 || ok.SkippedChecks != 0 || ok.Checks != none.Checks+none.SkippedChecks {
		t.Errorf("declared: passed %v, %d failed, %d skipped, %d checks (want %d + %d)", ok.Passed, ok.FailedChecks, ok.SkippedChecks, ok.Checks, none.Checks, none.SkippedChecks)
	}
	// The first 60 cases hold enough of each kind for every wrong
	// dequantization to fail (the figures are logged).
	for _, bad := range []string{"int8-scale", "block-scale", "global", "v-descale", "int4-bias"} {
		r := run("--bad "+bad, 60)
		t.Logf("--bad %s: %d of %d checks failed", bad, r.FailedChecks, r.Checks)
		if r.Passed || r.FailedChecks == 0 {
			t.Errorf("--bad %s: passed %v, %d failed", bad, r.Passed, r.FailedChecks)
		}
	}
}
