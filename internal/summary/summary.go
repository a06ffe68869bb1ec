// Package summary prints the human-readable summaries of the campaign
// commands: gate's, fuzz's and report --merge's (Gate, Fuzz, Merge),
// from their results. Golden files pin the output (go test
// ./internal/summary -update rewrites them after a deliberate change).
package summary

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/safeio"
	"github.com/attnvet/attnvet/internal/worker"
)

// Verdict is the summary's verdict: PASS, FAIL, or INCOMPLETE (no
// failure in the cases run, but not every case ran).
func Verdict(res *campaign.Result) string {
	switch {
	case UnknownFailures(res) > 0 || len(res.InvalidExamples) > 0:
		return "FAIL"
	case !res.Complete:
		return "INCOMPLETE"
	case !res.Passed:
		return "FAIL"
	}
	return "PASS"
}

// printTotals prints the checks, elements, worst ratio and skipped pairs of
// a campaign result (gate's summary and report --merge's).
func printTotals(w io.Writer, res *campaign.Result) {
	fmt.Fprintf(w, "  checks      %s kernel runs judged, %s passed, %s failed\n",
		Commas(res.Checks), Commas(res.Checks-res.FailedChecks), Commas(res.FailedChecks))
	fmt.Fprintf(w, "  elements    %s judged", Commas64(res.Elements))
	if res.SkippedElements > 0 {
		fmt.Fprintf(w, ", %s skipped (outside a profile's range: not judged)", Commas64(res.SkippedElements))
	}
	fmt.Fprintln(w)
	if res.Worst != nil {
		fmt.Fprintf(w, "  worst       err/allowed %s: %s on %s\n", res.Worst.Ratio, res.Worst.Target, res.Worst.Case)
	}
	if res.IncompatibleChecks > 0 {
		fmt.Fprintf(w, "  skipped     %s kernel × case pairs whose case pins an input dtype the kernel does not take\n", Commas(res.IncompatibleChecks))
	}
}

func printContract(w io.Writer, res *campaign.Result, verbose bool) {
	if res.ContractCases == 0 {
		return
	}
	var names []string
	for k, v := range res.Violations {
		names = append(names, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(names)
	fmt.Fprintf(w, "  contract    %d cases break the kernel's input contract: reported, not judged (%s)\n",
		res.ContractCases, strings.Join(names, ", "))
	show := 5
	if verbose {
		show = len(res.ContractExamples)
	}
	for i, ex := range res.ContractExamples {
		if i == show {
			fmt.Fprintf(w, "                ... (-v lists them all)\n")
			break
		}
		v := ex.Violations[0]
		if len(ex.Violations) > 1 {
			v += fmt.Sprintf(" (+%d more)", len(ex.Violations)-1)
		}
		fmt.Fprintf(w, "                %s: %s\n", ex.Case, v)
	}
}

// printInternal reports cases attnvet itself could not handle (a bug of
// ours: the generator, the reference or the edge classes panicked).
func printInternal(w io.Writer, res *campaign.Result) {
	if len(res.InvalidExamples) == 0 {
		return
	}
	fmt.Fprintf(w, "  INTERNAL    %d cases could not be built, and these errors are attnvet's (please report them):\n", res.InvalidCases)
	for i, ex := range res.InvalidExamples {
		if i == 3 {
			fmt.Fprintf(w, "                ... %d more in --json\n", len(res.InvalidExamples)-3)
			break
		}
		fmt.Fprintf(w, "                %s: %s\n", ex.Case, safeio.OneLine(strings.Join(ex.Violations, "; ")))
	}
}

func printClasses(w io.Writer, res *campaign.Result, verbose bool) {
	ks := res.SortedClasses()
	if len(ks) == 0 {
		fmt.Fprintf(w, "  edge classes none recorded\n")
		return
	}
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s %d", k, res.EdgeClasses[k]))
	}
	line := strings.Join(parts, ", ")
	if !verbose && len(line) > 400 {
		line = line[:400] + "… (-v lists them all)"
	}
	fmt.Fprintf(w, "  edge classes %d covered: %s\n", len(ks), line)
}

// printWorkerStats shows, for each exec target, how its worker processes
// fared: starts beyond one per run are restarts after a crash, timeout or
// malformed reply.
func printWorkerStats(w io.Writer, res *campaign.Result) {
	for _, t := range res.Targets {
		s := t.Worker
		if s == nil {
			continue
		}
		runs := 0
		for _, r := range res.Runs {
			for _, n := range r.Targets {
				if n == t.Name {
					runs++
				}
			}
		}
		restarts := max(s.Starts-max(s.Procs, int64(max(runs, 1))), 0) // Procs: the processes started at once (--procs)
		fmt.Fprintf(w, "  worker      %s: %s requests, %d restarts (%d crashes, %d timeouts, %d malformed replies), %d reported errors, %d requests retried after a crash\n",
			t.Name, Commas64(s.Requests), restarts, s.Crashes, s.Timeouts, s.Malformed, s.Reported, s.Retried)
		if s.Skipped > 0 { // protocol 2 declarations (docs/worker.md)
			var rs []string
			for r, n := range s.SkipReasons {
				rs = append(rs, fmt.Sprintf("%s %s", r, Commas64(n)))
			}
			sort.Strings(rs)
			fmt.Fprintf(w, "  skipped     %s cases the worker's hello excludes, not sent: %s\n", Commas64(s.Skipped), strings.Join(rs, ", "))
		}
	}
}

// printWorkerFailures lists the cases an external worker failed on
// (crash, timeout, malformed reply, reported error) with their replay
// commands: defects of the kernel, reported apart from numerical
// mismatches. With savedOnly, only the saved ones are listed when there
// are any (fuzz: the rest are in --json).
func printWorkerFailures(w io.Writer, res *campaign.Result, limit int, savedOnly bool) {
	if res.WorkerFailedChecks == 0 {
		return
	}
	var kinds []string
	for _, k := range []string{worker.Crash, worker.CrashRetried, worker.Timeout, worker.Malformed, worker.Reported} {
		if n := res.WorkerFailureKinds[k]; n > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
	}
	fmt.Fprintf(w, "  worker failures %s (%s): the worker did not answer these cases properly; not numerical mismatches, still failures\n",
		Commas(res.WorkerFailedChecks), strings.Join(kinds, ", "))
	list := res.WorkerFailures
	if savedOnly {
		var saved []campaign.WorkerFailure
		for _, f := range list {
			if f.Replay != "" {
				saved = append(saved, f)
			}
		}
		if len(saved) > 0 {
			list = saved
		}
	}
	for i, f := range list {
		if i == limit {
			break
		}
		fmt.Fprintf(w, "WORKER %s: %s on %s: %s\n", strings.ToUpper(f.Kind), f.Target, f.Case, clipLine(f.Error, 300))
		if f.Replay != "" {
			fmt.Fprintf(w, "     replay: %s\n", f.Replay)
		} else {
			fmt.Fprintf(w, "     case: %s\n", f.Input.String())
		}
	}
	if n := res.WorkerFailedChecks - min(len(list), limit); n > 0 {
		fmt.Fprintf(w, "  ... %d more worker failures (see --json)\n", n)
	}
}

func clipLine(s string, n int) string {
	s = safeio.OneLine(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func printFailures(w io.Writer, res *campaign.Result, limit int) {
	for i, f := range res.Failures {
		if i == limit {
			fmt.Fprintf(w, "  ... %d more failures (see --json or --junit)\n", len(res.Failures)-limit+res.FailuresOmitted)
			return
		}
		fmt.Fprintf(w, "FAIL %s on %s: %s\n", f.Target, f.Case, failureWhat(&f))
		if f.Replay != "" {
			fmt.Fprintf(w, "     replay: %s\n", f.Replay)
		} else {
			fmt.Fprintf(w, "     case: %s\n", f.Input.String())
		}
	}
	if res.FailuresOmitted > 0 && len(res.Failures) <= limit {
		fmt.Fprintf(w, "  ... %d more failures not listed\n", res.FailuresOmitted)
	}
}

func failureWhat(f *campaign.Failure) string {
	if f.Error != "" {
		return f.Error
	}
	return fmt.Sprintf("%d of %d elements beyond the %s allowance (worst err/allowed %s)",
		f.FailedElements, f.Elements, f.Criterion, f.Worst)
}

// Commas is n with thousands separators (17,984).
func Commas(n int) string { return Commas64(int64(n)) }

// Commas64 is Commas for an int64.
func Commas64(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// UnknownFailures are the failed and worker-failed checks whose signature
// is not known.
func UnknownFailures(res *campaign.Result) int {
	return res.FailedChecks + res.WorkerFailedChecks + res.RecheckFailedChecks - res.KnownChecks
}

// printFindings lists one line per finding with its count and example.
func printFindings(w io.Writer, res *campaign.Result, limit int) {
	if res.RecheckedCases > 0 || res.RecheckFailedChecks > 0 {
		fmt.Fprintf(w, "  rechecks    %d cases rechecked (--recheck), %d recheck failures %v\n", res.RecheckedCases, res.RecheckFailedChecks, res.RecheckFailureKinds)
		for i, f := range res.RecheckFailures {
			if i == 3 {
				fmt.Fprintf(w, "                ... (--json lists them)\n")
				break
			}
			fmt.Fprintf(w, "                %s: %s %s\n", safeio.OneLine(f.Case), f.Recheck, safeio.OneLine(f.Detail))
		}
	}
	if len(res.Findings) == 0 {
		return
	}
	fmt.Fprintf(w, "  findings    %d signatures (%d failed checks, %d of them known)\n", len(res.Findings), res.FailedChecks+res.WorkerFailedChecks+res.RecheckFailedChecks, res.KnownChecks)
	for i, f := range res.Findings {
		if i == limit {
			fmt.Fprintf(w, "  ... %d more findings (see --json)\n", len(res.Findings)-limit)
			return
		}
		tag := "NEW  "
		if f.Known {
			tag = "KNOWN"
		}
		fmt.Fprintf(w, "  %s %6d × %s  [%s]\n", tag, f.Count, safeio.OneLine(f.Signature), safeio.OneLine(f.Target))
		switch {
		case f.Example != nil && f.Example.Replay != "":
			fmt.Fprintf(w, "        example %s: replay: %s\n", safeio.OneLine(f.Example.Case), f.Example.Replay)
		case f.Example != nil:
			fmt.Fprintf(w, "        example %s\n", safeio.OneLine(f.Example.Case))
		case f.WorkerExample != nil:
			fmt.Fprintf(w, "        example %s\n", safeio.OneLine(f.WorkerExample.Case))
		}
	}
}
