package main

import (
	"flag"

	"github.com/attnvet/attnvet/internal/campaign"
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
