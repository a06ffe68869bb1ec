package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/impl/mutant"
	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/report"
	"github.com/attnvet/attnvet/internal/safeio"
)

func init() {
	register(command{
		name:    "report",
		summary: "tolerance report: what the correct kernels' error looks like (report.md, report.html, report.json); --merge also merges fuzz/gate --json results",
		usage:   "[--cases N] [--seed S] [--kernels GLOB] [--family F] [--out DIR] [--shard i/n] [--json-only] | --merge [--out DIR] [--json FILE] [--json-only] [-v] FILE...",
		run:     runReport,
	})
}

const defaultReportDir = "attnvet-report"

func runReport(e *env, args []string) int {
	fs := newFlags("report")
	n := fs.Int("cases", report.DefaultCases, "cases per family: the generated cases 0..N-1 of the seed (split among shards)")
	seed := fs.Uint64("seed", 1, "seed of the cases")
	kernels := fs.String("kernels", "all", "correct kernels to measure: comma-separated globs over the names 'attnvet kernels' lists")
	fam := fs.String("family", "", "one family, or all (default: sparse and window)")
	out := fs.String("out", defaultReportDir, "directory to write report.json, report.md and report.html into")
	shardS := fs.String("shard", "0/1", "measure shard i of n: case indices ≡ i (mod n); merge the shards' report.json with --merge")
	jsonOnly := fs.Bool("json-only", false, "write report.json only (for shards to merge later)")
	merge := fs.Bool("merge", false, "merge FILEs instead of running cases: the report.json of the shards of one report, or the campaign results of 'attnvet fuzz/gate --json' (written to DIR/campaign.json); all FILEs of one kind")
	jsonOut := fs.String("json", "", "--merge of campaign results: write the merged result to `FILE` (then DIR/campaign.json only if --out is given too)")
	mutants := fs.Bool("mutants", true, "run the mutant catalog on the same cases, to name the bugs an allclose tolerance would miss")
	workers := fs.Int("workers", 0, workersUsage)
	verbose := fs.Bool("v", false, "--merge of campaign results: list every edge class and contract violation")
	if printFlags(e, fs, args) {
		return exitPass
	}
	files, err := parseReportArgs(fs, args)
	if err != nil {
		return e.exitFor("report", err)
	}
	if *out == "" {
		return e.exitFor("report", usagef("--out: want a directory"))
	}
	if *merge {
		for _, f := range []string{"cases", "seed", "kernels", "family", "shard", "mutants", "workers"} {
			if reportFlagSet(fs, f) {
				return e.exitFor("report", usagef("--%s does not apply to --merge (the shards' reports fix it)", f))
			}
		}
		if len(files) == 0 {
			return e.exitFor("report", usagef("--merge: name the report.json files or campaign results to merge"))
		}
		return mergeFiles(e, files, *out, reportFlagSet(fs, "out"), *jsonOut, *jsonOnly, *verbose)
	}
	if *jsonOut != "" {
		return e.exitFor("report", usagef("--json applies to --merge of campaign results (a report writes DIR/%s)", report.FileJSON))
	}
	if *verbose {
		return e.exitFor("report", usagef("-v applies to --merge of campaign results"))
	}
	if len(files) > 0 {
		return e.exitFor("report", usagef("unexpected argument %q (report takes files only with --merge)", files[0]))
	}

	opt := report.DefaultOptions()
	opt.Seed = *seed
	if *n < 0 || *n > 1<<20 {
		return e.exitFor("report", usagef("--cases %d: want 0..%d", *n, 1<<20))
	}
	if opt.Workers, err = workersFlag(*workers); err != nil {
		return e.exitFor("report", err)
	}
	opt.Cases = *n
	sh, err := campaign.ParseShard(*shardS)
	if err != nil {
		return e.exitFor("report", usagef("--shard: %v", err))
	}
	opt.Shard, opt.Shards = sh.Index, sh.Count
	switch *fam {
	case "":
	case "all":
		opt.Families = problem.Families()
	default:
		f, err := problem.ParseFamily(*fam)
		if err != nil {
			return e.exitFor("report", usagef("--family %q: want %s, or all (default: sparse and window)", *fam, problem.FamilyNames()))
		}
		opt.Families = []problem.Family{f}
	}
	if opt.Kernels, err = selectConfigs(*kernels); err != nil {
		return e.exitFor("report", usagef("--kernels: %v", err))
	}
	if *mutants {
		opt.Mutants = catalogMutants(opt.Kernels)
	}

	fmt.Fprintf(e.stdout, "attnvet report: %d kernels × %d families × %d cases (shard %s), %d mutants, seed %d\n",
		len(opt.Kernels), len(opt.Families), opt.Cases, sh, len(opt.Mutants), opt.Seed)
	start := time.Now()
	ctx, stop := signalContext() // Ctrl-C: finish the cases running, write what was measured
	defer stop()
	opt.Context = ctx
	pp := newCountProgress(e.stderr, reportProgressEvery, "report", "(case, family) pairs", 0)
	opt.Progress = pp.update
	rep, err := report.Run(opt)
	pp.finish()
	if err != nil {
		return e.exitFor("report", err)
	}
	elapsed := time.Since(start)
	paths, err := report.Write(*out, rep, *jsonOnly)
	if err != nil {
		return e.exitFor("report", usagef("--out: %v", err))
	}
	fmt.Fprintf(e.stdout, "measured in %s\n", elapsed.Round(time.Millisecond))
	code := reportDone(e, rep, paths)
	if rep.Partial {
		fmt.Fprintf(e.stderr, "attnvet report: interrupted after %d of %d (case, family) pairs: the report written is partial (marked so); not a complete run\n",
			rep.PartialJobs, pp.total.Load())
		if code == exitPass {
			code = exitInternal // as gate: an interrupted run is not a pass
		}
	}
	return code
}

// reportProgressEvery is report's progress interval off a terminal.
const reportProgressEvery = 5 * time.Second

// reportDone prints what was written and the findings that set the exit
// code: 1 when a correct kernel exceeded the rigorous bound.
func reportDone(e *env, rep *report.Report, paths []string) int {
	fmt.Fprintf(e.stdout, "wrote %s\n", strings.Join(paths, ", "))
	if !rep.Complete() {
		fmt.Fprintf(e.stdout, "shards %v of %d: merge every shard's report.json with 'attnvet report --merge' for the whole run\n", rep.ShardIDs, rep.Shards)
	}
	code := exitPass
	for _, en := range rep.Entries {
		if len(en.Fails) > 0 {
			fmt.Fprintf(e.stdout, "FAIL %s on %s exceeded the rigorous bound in %d cases (first: case %d)\n", en.Kernel, en.Family, len(en.Fails), en.Fails[0])
			code = exitMismatch
		}
	}
	return code
}

// Kinds of file --merge takes.
const (
	kindReport   = "report.json (attnvet report)"
	kindCampaign = "campaign result (attnvet fuzz/gate --json)"
)

// mergeKind tells a campaign result from a report.json by its top-level
// keys (docs/json.md; internal/report).
func mergeKind(path string, b []byte) (string, error) {
	if campaign.IsJournal(b) { // a fuzz campaign's journal.jsonl: merged as its result so far
		return kindCampaign, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return "", fmt.Errorf("%s: not a JSON object: %v", path, err)
	}
	has := func(k string) bool { _, ok := top[k]; return ok }
	switch {
	case has("runs") || has("failed_checks"):
		return kindCampaign, nil
	case has("entries") || has("shard_ids"):
		return kindReport, nil
	}
	return "", fmt.Errorf("%s: neither a campaign result (attnvet fuzz/gate --json, docs/json.md) nor a report.json (attnvet report)", path)
}

// mergeFiles merges report.json files or campaign results, whichever
// the files are; mixing the two kinds is an error.
func mergeFiles(e *env, files []string, out string, outSet bool, jsonOut string, jsonOnly, verbose bool) int {
	data := make([][]byte, len(files))
	kind := ""
	for i, f := range files {
		b, err := safeio.ReadJSON(f, safeio.DefaultLimit)
		if err != nil {
			return e.exitFor("report", usagef("--merge: %v", err))
		}
		k, err := mergeKind(f, b)
		if err != nil {
			return e.exitFor("report", usagef("--merge: %v", err))
		}
		if i > 0 && k != kind {
			return e.exitFor("report", usagef("--merge: %s is a %s but %s is a %s: merge one kind at a time", f, k, files[0], kind))
		}
		data[i], kind = b, k
	}
	if kind == kindCampaign {
		return mergeCampaigns(e, files, data, out, outSet, jsonOut, verbose)
	}
	if jsonOut != "" {
		return e.exitFor("report", usagef("--json applies to campaign results; merged reports are written to --out DIR"))
	}
	return mergeReports(e, files, data, out, jsonOnly)
}

func mergeReports(e *env, files []string, data [][]byte, out string, jsonOnly bool) int {
	var rs []*report.Report
	for i, f := range files {
		r, err := report.Parse(data[i])
		if err != nil {
			return e.exitFor("report", usagef("%s: %v", f, err))
		}
		if r.Partial {
			return e.exitFor("report", usagef("%s: a partial report (interrupted after %d (case, family) pairs): rerun that shard to merge it", f, r.PartialJobs))
		}
		rs = append(rs, r)
	}
	rep, err := report.Merge(rs...)
	if err != nil {
		return e.exitFor("report", usagef("--merge: %v", err))
	}
	paths, err := report.Write(out, rep, jsonOnly)
	if err != nil {
		return e.exitFor("report", usagef("--out: %v", err))
	}
	fmt.Fprintf(e.stdout, "attnvet report: merged %d reports (shards %v of %d)\n", len(rs), rep.ShardIDs, rep.Shards)
	return reportDone(e, rep, paths)
}

// parseReportArgs parses flags and collects the positional arguments,
// which may come before, between or after the flags
// (--merge a.json b.json --out dir).
func parseReportArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var files []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return files, nil
		}
		if rest[0] == "--" {
			return append(files, rest[1:]...), nil
		}
		files = append(files, rest[0])
		args = rest[1:]
	}
}

// reportFlagSet reports whether flag name was given on the command line.
func reportFlagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// selectConfigs is the correct emulations matching any of the
// comma-separated globs, in registry order.
func selectConfigs(globs string) ([]impl.Config, error) {
	want := map[string]bool{}
	for _, g := range strings.Split(globs, ",") {
		es, err := impl.Match(strings.TrimSpace(g))
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			want[e.Name()] = true
		}
	}
	var cs []impl.Config
	for _, c := range impl.Configs() {
		if want[impl.ConfigName(c)] {
			cs = append(cs, c)
		}
	}
	return cs, nil
}

// catalogMutants is the hook that feeds the mutant catalog (impl/mutant)
// to the report: the mutants that vary one of the measured kernels.
func catalogMutants(kernels []impl.Config) []report.Mutant {
	measured := map[string]bool{}
	for _, c := range kernels {
		measured[impl.ConfigName(c)] = true
	}
	var ms []report.Mutant
	for _, m := range mutant.All() {
		if !measured[m.Base] {
			continue
		}
		ms = append(ms, report.Mutant{Name: m.Name, BugClass: m.BugClass, Base: m.Base, Kernel: m.Kernel, Shape: m.Shape})
	}
	return ms
}
