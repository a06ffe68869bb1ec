package summary

import (
	"fmt"
	"io"
	"time"

	"github.com/attnvet/attnvet/internal/campaign"
)

// Gate prints gate's summary of res: the totals, contract and internal
// errors, edge classes, workers, findings and failures (the first 20),
// and the verdict line with the checks and the elapsed time.
func Gate(w io.Writer, opt *campaign.Options, res *campaign.Result, elapsed time.Duration, verbose bool) {
	gen := res.Cases - res.CorpusCases
	fmt.Fprintf(w, "attnvet gate: %d corpus + %d random cases (seed %d) × %d kernels, criterion %s\n",
		res.CorpusCases, gen, opt.Seed, len(opt.Targets), opt.Criterion.Name())
	printTotals(w, res)
	printContract(w, res, verbose)
	printInternal(w, res)
	printClasses(w, res, verbose)
	printWorkerStats(w, res)
	printFindings(w, res, 20)
	printFailures(w, res, 20)
	printWorkerFailures(w, res, 20, false)
	verdict := Verdict(res)
	fmt.Fprintf(w, "%s: %s of %s checks passed (%d cases × %d kernels) in %.1fs", verdict,
		Commas(res.Checks-res.FailedChecks), Commas(res.Checks), res.Cases, len(opt.Targets), elapsed.Seconds())
	if res.WorkerFailedChecks > 0 {
		fmt.Fprintf(w, "; %s worker failures", Commas(res.WorkerFailedChecks))
	}
	fmt.Fprintln(w)
}
