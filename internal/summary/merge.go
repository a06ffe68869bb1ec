package summary

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/props"
)

// Merge prints report --merge's summary of m, merged from n results:
// the runs, shard notes and gaps, totals, edge-class coverage, findings
// and failures, and the verdict line. Everything it writes goes through
// printableLines: the labels, targets, classes and cases it echoes come
// from the merged files, which are input.
func Merge(w io.Writer, n int, m *campaign.Result, verbose bool) {
	w = printableLines{w}
	fmt.Fprintf(w, "attnvet report: merged %d campaign results: %s\n", n, strings.Join(describeRuns(m.Runs), "; "))
	for _, note := range shardNotes(m.Runs) {
		fmt.Fprintf(w, "  note        %s\n", note)
	}
	for _, g := range m.Gaps {
		what := "stopped early"
		if g.Absent {
			what = "is missing (no result of it merged)"
		}
		if g.AbsentShards > 0 {
			fmt.Fprintf(w, "  GAP         %s: %s absent shards from shard %s on (not listed one by one): %s\n", g.Campaign, Commas(g.AbsentShards), g.Shard, Missing(&g.Missing))
			continue
		}
		fmt.Fprintf(w, "  GAP         %s: shard %s %s: %s\n", g.Campaign, g.Shard, what, Missing(&g.Missing))
	}
	gen := m.Cases - m.CorpusCases
	fmt.Fprintf(w, "  cases       %s (%s corpus, %s generated)\n", Commas(m.Cases), Commas(m.CorpusCases), Commas(gen))
	printTotals(w, m)
	printContract(w, m, verbose)
	printInternal(w, m)
	printCoverage(w, m, verbose)
	printWorkerStats(w, m)
	printFindings(w, m, 20)
	printMergedFailures(w, m, 20)
	printWorkerFailures(w, m, 20, true)
	switch Verdict(m) {
	case "PASS":
		fmt.Fprintf(w, "PASS: no failure in %s cases\n", Commas(m.Cases))
	case "INCOMPLETE":
		fmt.Fprintf(w, "INCOMPLETE: no failure in the %s cases merged, but %d gaps (above): not a pass\n", Commas(m.Cases), len(m.Gaps))
	default:
		fmt.Fprintf(w, "FAIL: %s failing cases of %s (%s)\n", Commas(m.FailedCases), Commas(m.Cases), failureCounts(m))
	}
}

// Missing says which cases a run (or an absent shard) did not run.
func Missing(m *campaign.Missing) string {
	if m == nil {
		return "no case missing"
	}
	var parts []string
	switch {
	case m.Cases > 0 && m.From == m.To:
		parts = append(parts, fmt.Sprintf("index %d not run", m.From))
	case m.Cases > 0:
		parts = append(parts, fmt.Sprintf("indices %d..%d step %d (%s cases) not run", m.From, m.To, m.Step, Commas(m.Cases)))
	case m.Cases < 0:
		parts = append(parts, fmt.Sprintf("indices from %d step %d not run (no case budget: the rest of the time budget)", m.From, m.Step))
	}
	if m.Corpus > 0 {
		parts = append(parts, fmt.Sprintf("%s corpus cases not run", Commas(m.Corpus)))
	}
	if len(parts) == 0 {
		return "no case missing"
	}
	return strings.Join(parts, ", ")
}

// failureCounts says how the failed checks split into numerical
// mismatches (and in-process kernel errors) and worker failures.
func failureCounts(r *campaign.Result) string {
	s := fmt.Sprintf("%s failed checks", Commas(r.FailedChecks))
	if r.WorkerFailedChecks > 0 {
		s += fmt.Sprintf(", %s worker failures", Commas(r.WorkerFailedChecks))
	}
	return s
}

// classNames are the edge classes coverage counts against; a variable so
// that the golden tests do not change whenever a class is added.
var classNames = props.ClassNames

// printCoverage is the edge-class coverage: how many of the classes
// (props.ClassNames) some case hit, their counts, and the ones none hit.
func printCoverage(w io.Writer, r *campaign.Result, verbose bool) {
	names := classNames()
	known := map[string]bool{}
	var missing []string
	for _, c := range names {
		known[c] = true
		if r.EdgeClasses[c] == 0 {
			missing = append(missing, c)
		}
	}
	var parts []string
	for _, k := range r.SortedClasses() {
		parts = append(parts, fmt.Sprintf("%s %d", k, r.EdgeClasses[k]))
	}
	line := strings.Join(parts, ", ")
	if !verbose && len(line) > 400 {
		line = clipAtComma(line, 400) + ", … (-v lists them all)"
	}
	fmt.Fprintf(w, "  edge classes %d of %d covered: %s\n", len(names)-len(missing), len(names), line)
	if len(missing) > 0 {
		fmt.Fprintf(w, "  not covered %s\n", strings.Join(missing, ", "))
	}
}

// printMergedFailures lists the failed checks, the saved ones (with a
// replay command) first.
func printMergedFailures(w io.Writer, r *campaign.Result, limit int) {
	list := make([]campaign.Failure, 0, len(r.Failures))
	for _, f := range r.Failures {
		if f.Replay != "" {
			list = append(list, f)
		}
	}
	for _, f := range r.Failures {
		if f.Replay == "" {
			list = append(list, f)
		}
	}
	for i, f := range list {
		if i == limit {
			break
		}
		fmt.Fprintf(w, "FAIL %s on %s: %s\n", f.Target, f.Case, failureWhat(&f))
		if f.Replay != "" {
			fmt.Fprintf(w, "     replay: %s\n", f.Replay)
		} else {
			fmt.Fprintf(w, "     case: %s\n", f.Input.String())
		}
	}
	if n := r.FailedChecks - min(len(list), limit); n > 0 {
		fmt.Fprintf(w, "  ... %s more failed checks (the first of each run are in the merged JSON)\n", Commas(n))
	}
}

func groupRuns(runs []campaign.RunInfo) []*runGroup {
	var gs []*runGroup
	byKey := map[string]*runGroup{}
	for _, r := range runs {
		i, n := -1, 0
		if a, b, ok := strings.Cut(r.Shard, "/"); ok {
			i, _ = strconv.Atoi(a)
			n, _ = strconv.Atoi(b)
		}
		key := fmt.Sprintf("%s|%d|%s|%s|%s|%d", r.Command, r.Seed, r.Family, r.Criterion, strings.Join(r.Targets, ","), n)
		g := byKey[key]
		if g == nil {
			label := fmt.Sprintf("%s seed %d", r.Command, r.Seed)
			if r.Family != "" {
				label += " family " + r.Family
			}
			g = &runGroup{key: key, label: label, count: n, shards: map[int]int{}}
			byKey[key] = g
			gs = append(gs, g)
		}
		g.shards[i]++
	}
	return gs
}

func describeRuns(runs []campaign.RunInfo) []string {
	var out []string
	for _, g := range groupRuns(runs) {
		var ids []int
		for i := range g.shards {
			ids = append(ids, i)
		}
		sort.Ints(ids)
		var s []string
		for _, i := range ids {
			s = append(s, strconv.Itoa(i))
		}
		out = append(out, fmt.Sprintf("%s, shards %s of %d", g.label, strings.Join(s, ","), g.count))
	}
	if len(out) == 0 {
		out = []string{"no runs recorded"}
	}
	return out
}

// shardNotes warns about shards of one campaign merged more than once
// (counted twice); missing ones are gaps (campaign.Gaps).
func shardNotes(runs []campaign.RunInfo) []string {
	var notes []string
	for _, g := range groupRuns(runs) {
		var ids []int
		for i, k := range g.shards {
			if k > 1 {
				ids = append(ids, i)
			}
		}
		sort.Ints(ids)
		for _, i := range ids {
			notes = append(notes, fmt.Sprintf("%s: shard %d/%d is merged %d times: its cases count %d times", g.label, i, g.count, g.shards[i], g.shards[i]))
		}
	}
	return notes
}

// runGroup is the runs that split one case space: same command, seed,
// family, criterion, targets and shard count.
type runGroup struct {
	key    string
	label  string
	count  int
	shards map[int]int // shard index → runs
}
