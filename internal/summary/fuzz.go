package summary

import (
	"fmt"
	"io"

	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/show"
)

// Fuzz prints fuzz's summary of res (one run, opt.Targets[0]): the cases
// and indices, totals, findings, the saved failures with their replay
// commands, and the verdict line.
func Fuzz(w io.Writer, opt *campaign.Options, res *campaign.Result) {
	run := res.Runs[0]
	rate := 0.0
	if run.Elapsed > 0 {
		rate = float64(res.Cases) / run.Elapsed
	}
	fmt.Fprintf(w, "  cases       %s in %.1fs (%.0f/s on %d workers), stopped: %s\n",
		Commas(res.Cases), run.Elapsed, rate, run.Workers, stopWhy(run.Stopped))
	if run.Generated > 0 {
		last := opt.Shard.Index + (run.Generated-1)*opt.Shard.Count
		fmt.Fprintf(w, "  indices     %d..%d step %d (seed %d)\n", opt.Shard.Index, last, opt.Shard.Count, opt.Seed)
	}
	if run.Resumed > 0 {
		fmt.Fprintf(w, "  resumed     %s cases from the journal, %s run now\n", Commas(run.Resumed), Commas(res.Cases-run.Resumed))
	}
	if run.Missing != nil {
		fmt.Fprintf(w, "  missing     %s\n", Missing(run.Missing))
	}
	fmt.Fprintf(w, "  judged      %s cases, %s elements", Commas(res.Checks), Commas64(res.Elements))
	if res.SkippedElements > 0 {
		fmt.Fprintf(w, " (%s outside the profile's range, not judged)", Commas64(res.SkippedElements))
	}
	fmt.Fprintln(w)
	if res.Worst != nil {
		fmt.Fprintf(w, "  worst       err/allowed %s on %s\n", res.Worst.Ratio, res.Worst.Case)
	}
	if res.IncompatibleChecks > 0 {
		fmt.Fprintf(w, "  skipped     %s cases that pin an input dtype the kernel does not take\n", Commas(res.IncompatibleChecks))
	}
	printContract(w, res, false)
	printInternal(w, res)
	printClasses(w, res, false)
	printWorkerStats(w, res)
	printFindings(w, res, 20)
	fmt.Fprintf(w, "  failures    %d failing cases", res.FailedChecks)
	if res.FailedChecks > 0 {
		saved := 0
		for _, f := range res.Failures {
			if f.File != "" {
				saved++
			}
		}
		fmt.Fprintf(w, ", %d shrunk and saved to %s", saved, opt.OutDir)
	}
	fmt.Fprintln(w)
	shown := 0
	for _, f := range res.Failures {
		if f.Replay == "" {
			continue // not saved (beyond --save): counted above, in --json
		}
		shown++
		fmt.Fprintf(w, "FAIL %s: %s\n", f.Case, failureWhat(&f))
		if f.Shrunk != nil {
			fmt.Fprintf(w, "     shrunk: %s\n", show.CaseShape(f.Shrunk))
		}
		fmt.Fprintf(w, "     replay: %s\n", f.Replay)
	}
	if shown == 0 {
		printFailures(w, res, 5)
	}
	printWorkerFailures(w, res, 5, true)
	switch Verdict(res) {
	case "PASS":
		if res.KnownChecks > 0 {
			fmt.Fprintf(w, "PASS: no failure in %s cases beyond %s known ones (--known)\n", Commas(res.Cases), Commas(res.KnownChecks))
		} else {
			fmt.Fprintf(w, "PASS: no failure in %s cases\n", Commas(res.Cases))
		}
	case "INCOMPLETE":
		fmt.Fprintf(w, "INCOMPLETE: no failure in the %s cases run, but the campaign was interrupted (%s): not a pass\n", Commas(res.Cases), Missing(run.Missing))
	default:
		fmt.Fprintf(w, "FAIL: %s failing cases of %s", Commas(res.FailedCases), Commas(res.Cases))
		if res.WorkerFailedChecks > 0 {
			fmt.Fprintf(w, " (%s numerical, %s worker failures)", Commas(res.FailedChecks), Commas(res.WorkerFailedChecks))
		}
		fmt.Fprintln(w)
	}
}

func stopWhy(s string) string {
	switch s {
	case "time":
		return "time budget"
	case "cases":
		return "case budget"
	case "signal":
		return "interrupted"
	}
	return s
}
