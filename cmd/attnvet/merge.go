package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/attnvet/attnvet/internal/atomicfile"
	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/summary"
)

// mergedCampaignFile is what 'report --merge' writes into --out DIR when
// it merges campaign results.
const mergedCampaignFile = "campaign.json"

// mergeCampaigns merges campaign results (attnvet fuzz/gate --json, e.g.
// the shards of one campaign) with campaign.Merge, writes the merged
// document and prints a summary. Exit 1 when the merged result has
// failures (mismatches or worker failures), 3 when a part recorded an
// internal error, 2 when a case of a campaign is in no part (a gap: a
// shard missing or interrupted; each is listed), 0 otherwise.
func mergeCampaigns(e *env, files []string, data [][]byte, out string, outSet bool, jsonOut string, verbose bool) int {
	var rs []*campaign.Result
	for i, f := range files {
		var r *campaign.Result
		var err error
		if campaign.IsJournal(data[i]) {
			// A journal (of a killed campaign, say): its result so far,
			// incomplete unless its search ended.
			var j *campaign.Journal
			if j, err = campaign.LoadJournalFile(f); err == nil {
				r, err = campaign.Rebuild(j)
			}
			if err != nil {
				return e.exitFor("report", usagef("--merge: %v", err))
			}
		} else if r, err = campaign.ParseResult(data[i]); err != nil {
			return e.exitFor("report", usagef("--merge: %s: %v", f, err))
		}
		rs = append(rs, r)
	}
	m := campaign.Merge(rs...)
	var paths []string
	if jsonOut != "" {
		if err := outputFileFlag("json", jsonOut); err != nil {
			return e.exitFor("report", err)
		}
		paths = append(paths, jsonOut)
	}
	if jsonOut == "" || outSet {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return e.exitFor("report", usagef("--out: %v", err))
		}
		paths = append(paths, filepath.Join(out, mergedCampaignFile))
	}
	b := m.Marshal()
	for _, p := range paths {
		if err := atomicfile.Write(p, b); err != nil {
			return e.exitFor("report", usagef("writing the merged result: %v", err))
		}
	}
	summary.Merge(e.stdout, len(files), m, verbose)
	fmt.Fprintf(e.stdout, "wrote %s\n", strings.Join(paths, ", "))
	return campaignExit(e, "report", nil, m)
}
