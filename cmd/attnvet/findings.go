package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/safeio"
)

// findingFlags are fuzz's and gate's --known and --save-findings.
type findingFlags struct {
	known *string
	save  *bool
}

func addFindingFlags(fs *flag.FlagSet) findingFlags {
	return findingFlags{
		known: fs.String("known", "", "signatures to report as known and not fail on: a `FILE` with one signature per line (# comments) or JSON (an array of signatures, or a campaign result whose findings are taken); docs/json.md \"Findings\""),
		save:  fs.Bool("save-findings", false, "also shrink and save the first failure of each finding (signature), beyond --save per target"),
	}
}

// apply sets opt's Known and SaveFindings.
func (ff findingFlags) apply(opt *campaign.Options) error {
	opt.SaveFindings = *ff.save
	if *ff.known == "" {
		return nil
	}
	k, err := campaign.LoadKnown(*ff.known)
	if err != nil {
		return usagef("--known: %v", err)
	}
	opt.Known = k
	return nil
}

// unknownFailures are the failed and worker-failed checks whose signature
// is not known.
func unknownFailures(res *campaign.Result) int {
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
