package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/attnvet/attnvet/internal/atomicfile"
	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/targets"
	"github.com/attnvet/attnvet/internal/tolerance"
)

func init() {
	register(command{
		name:    "fuzz",
		summary: "search for inputs that break a kernel or mutant; failures are shrunk and saved with a replay command",
		usage:   "[--time D | --cases N] [--workers K] [--shard i/n] [--seed S] [--target NAME] [--out DIR] [--json FILE] [--case-timeout D] [--worker-profile NAME]",
		run:     runFuzz,
	})
}

// defaultFuzzTarget is the device kernel B of today (SPEC.md §1).
const defaultFuzzTarget = "tiled/bc128/bf16"

func runFuzz(e *env, args []string) int {
	fs := newFlags("fuzz")
	dur := fs.Duration("time", 0, "stop issuing new cases after D (e.g. 60s, 10m); default 60s unless --cases is given")
	n := fs.Int("cases", 0, "size of the case space: case indices 0..N-1 (split among shards)")
	workers := fs.Int("workers", 0, "parallel workers (default: all cores); results do not depend on it")
	shardS := fs.String("shard", "0/1", "run shard i of n: case indices ≡ i (mod n); needs an explicit --seed")
	seed := fs.Uint64("seed", 0, "campaign seed (default: from the clock, printed)")
	target := fs.String("target", defaultFuzzTarget, "kernel under test: a registry kernel, mutant:NAME (or a bare mutant name), or exec:'CMD' (docs/worker.md); see 'attnvet kernels'")
	out := fs.String("out", defaultOutDir, "directory for shrunk failing cases")
	jsonOut := fs.String("json", "", "write the result as JSON (docs/json.md) to FILE")
	critName := fs.String("criterion", tolerance.NameBound, "pass/fail criterion: "+strings.Join(tolerance.Names(), ", "))
	fam := fs.String("family", "", "cases of family sparse or window (default both)")
	save := fs.Int("save", campaign.DefaultSave, "failures to shrink and save (the first in case order)")
	shrink := fs.Int("shrink-budget", campaign.DefaultShrinkBudget, "candidate evaluations per shrink (0: save unshrunk)")
	every := fs.Duration("progress", 10*time.Second, "interval of progress lines when stderr is not a terminal (0: none)")
	wf := addWorkerFlags(fs)
	if printFlags(e, fs, args) {
		return exitPass
	}
	if err := parseFlags(fs, args); err != nil {
		return e.exitFor("fuzz", err)
	}
	if fs.NArg() > 0 {
		return e.exitFor("fuzz", usagef("unexpected argument %q (fuzz takes only flags)", fs.Arg(0)))
	}
	opt := campaign.DefaultOptions()
	opt.Command, opt.OutDir = "fuzz", *out
	var err error
	if opt.Cases, err = countFlag("cases", *n); err != nil {
		return e.exitFor("fuzz", err)
	}
	if *dur < 0 {
		return e.exitFor("fuzz", usagef("--time %v: want a positive duration", *dur))
	}
	opt.Time = *dur
	if opt.Time == 0 && opt.Cases == 0 {
		if flagSet(fs, "time") || flagSet(fs, "cases") {
			return e.exitFor("fuzz", usagef("--time 0 and --cases 0: give a budget"))
		}
		opt.Time = 60 * time.Second
	}
	if opt.Workers, err = workersFlag(*workers); err != nil {
		return e.exitFor("fuzz", err)
	}
	if opt.Shard, err = campaign.ParseShard(*shardS); err != nil {
		return e.exitFor("fuzz", usagef("--shard: %v", err))
	}
	if opt.Shard.Count > 1 && !flagSet(fs, "seed") {
		return e.exitFor("fuzz", usagef("--shard %s needs an explicit --seed, so that the shards split one case space", opt.Shard))
	}
	opt.Seed = *seed
	if !flagSet(fs, "seed") {
		opt.Seed = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x66757a7a)).Uint64() >> 44 // short enough to type
	}
	if opt.Family, err = familyFlag(*fam); err != nil {
		return e.exitFor("fuzz", err)
	}
	if opt.Criterion, err = criterionFlag(*critName); err != nil {
		return e.exitFor("fuzz", err)
	}
	if *save < 0 || *shrink < 0 {
		return e.exitFor("fuzz", usagef("--save and --shrink-budget want 0 or more"))
	}
	opt.Save, opt.ShrinkBudget = *save, *shrink
	if *every < 0 {
		return e.exitFor("fuzz", usagef("--progress %v: want 0 or a positive duration", *every))
	}
	if err := outputFileFlag("json", *jsonOut); err != nil {
		return e.exitFor("fuzz", err)
	}
	topt, err := wf.options(fs, targets.IsExec(*target))
	if err != nil {
		return e.exitFor("fuzz", err)
	}
	if opt.Time > 0 {
		topt.Deadline = time.Now().Add(opt.Time) // a silent worker's hello does not outlast --time
	}
	opt.ReplayFlags = wf.replayFlags(fs)
	t, err := targets.Resolve(*target, topt)
	if err != nil {
		return e.exitFor("fuzz", usagef("--target: %v", err))
	}
	defer t.Close()
	opt.Targets = []targets.Target{t}
	opt.Corpus = savedFailures(opt.OutDir, t.Name)

	tuneGC(e)
	pr := newProgressPrinter(e.stderr, *every, t.Name)
	opt.Progress, opt.ProgressEvery = pr.update, pr.interval
	fmt.Fprintf(e.stdout, "attnvet fuzz: target %s, seed %d, shard %s, criterion %s, %s\n",
		t.Name, opt.Seed, opt.Shard, opt.Criterion.Name(), budgetString(&opt))
	ctx, stop := signalContext()
	defer stop()
	res, err := campaign.Run(ctx, opt)
	pr.finish()
	if err != nil {
		return e.exitFor("fuzz", usagef("%v", err))
	}
	printFuzzSummary(e.stdout, &opt, res)
	if *jsonOut != "" {
		if err := atomicfile.Write(*jsonOut, res.Marshal()); err != nil {
			return e.exitFor("fuzz", usagef("--json: %v", err))
		}
	}
	return campaignExit(e, "fuzz", ctx, res)
}

// savedFailures are the cases an earlier campaign saved in dir for target:
// a campaign replays them first, so a fixed bug shows as fixed and an
// unfixed one is not forgotten. Unreadable files are skipped.
func savedFailures(dir, target string) []campaign.NamedCase {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	sort.Strings(paths)
	var out []campaign.NamedCase
	for _, p := range paths {
		c, err := cases.Load(p)
		if err != nil {
			continue
		}
		if tn, _ := campaign.FromDescription(c.Description); tn == target {
			out = append(out, campaign.NamedCase{Name: p, Path: p, Case: c})
		}
	}
	return out
}

// tuneGC trades memory for speed in the campaign commands: their heap is
// small (tens of MB) and short-lived, and collecting less often saves about
// 8% of the CPU (docs/benchmarks-fuzz.md). GOGC in the environment wins.
func tuneGC(e *env) {
	if e.getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

func budgetString(opt *campaign.Options) string {
	var parts []string
	if opt.Cases > 0 {
		parts = append(parts, fmt.Sprintf("cases 0..%d", opt.Cases-1))
	}
	if opt.Time > 0 {
		parts = append(parts, fmt.Sprintf("time %v", opt.Time))
	}
	return "budget " + strings.Join(parts, " or ")
}

func printFuzzSummary(w io.Writer, opt *campaign.Options, res *campaign.Result) {
	run := res.Runs[0]
	rate := 0.0
	if run.Elapsed > 0 {
		rate = float64(res.Cases) / run.Elapsed
	}
	fmt.Fprintf(w, "  cases       %s in %.1fs (%.0f/s on %d workers), stopped: %s\n",
		commas(res.Cases), run.Elapsed, rate, run.Workers, stopWhy(run.Stopped))
	if run.Generated > 0 {
		last := opt.Shard.Index + (run.Generated-1)*opt.Shard.Count
		fmt.Fprintf(w, "  indices     %d..%d step %d (seed %d)\n", opt.Shard.Index, last, opt.Shard.Count, opt.Seed)
	}
	fmt.Fprintf(w, "  judged      %s cases, %s elements", commas(res.Checks), commas64(res.Elements))
	if res.SkippedElements > 0 {
		fmt.Fprintf(w, " (%s outside the profile's range, not judged)", commas64(res.SkippedElements))
	}
	fmt.Fprintln(w)
	if res.Worst != nil {
		fmt.Fprintf(w, "  worst       err/allowed %s on %s\n", res.Worst.Ratio, res.Worst.Case)
	}
	if res.IncompatibleChecks > 0 {
		fmt.Fprintf(w, "  skipped     %s cases that pin an input dtype the kernel does not take\n", commas(res.IncompatibleChecks))
	}
	printContract(w, res, false)
	printInternal(w, res)
	printClasses(w, res, false)
	printWorkerStats(w, res)
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
			fmt.Fprintf(w, "     shrunk: %s\n", caseShape(f.Shrunk))
		}
		fmt.Fprintf(w, "     replay: %s\n", f.Replay)
	}
	if shown == 0 {
		printFailures(w, res, 5)
	}
	printWorkerFailures(w, res, 5, true)
	if res.Passed {
		fmt.Fprintf(w, "PASS: no failure in %s cases\n", commas(res.Cases))
	} else {
		fmt.Fprintf(w, "FAIL: %s failing cases of %s", commas(res.FailedCases), commas(res.Cases))
		if res.WorkerFailedChecks > 0 {
			fmt.Fprintf(w, " (%s numerical, %s worker failures)", commas(res.FailedChecks), commas(res.WorkerFailedChecks))
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

// progressPrinter shows a campaign's progress: one redrawn line on a
// terminal, plain periodic lines otherwise.
type progressPrinter struct {
	w        io.Writer
	tty      bool
	interval time.Duration
	name     string
	drawn    bool
}

func newProgressPrinter(w io.Writer, every time.Duration, name string) *progressPrinter {
	p := &progressPrinter{w: w, tty: isTerminal(w), interval: every, name: name}
	if p.tty {
		p.interval = 250 * time.Millisecond
	}
	return p
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *progressPrinter) update(pr campaign.Progress) {
	if p.interval <= 0 {
		return
	}
	line := fmt.Sprintf("%s %5.0fs  %s cases  %.0f/s  failing %d  contract %d  edge classes %d",
		p.name, pr.Elapsed.Seconds(), commas(pr.Cases), pr.Rate(), pr.FailedCases, pr.Contract, pr.Classes)
	if eta, ok := pr.ETA(); ok && pr.Phase == "search" {
		line += fmt.Sprintf("  ETA %s", eta.Round(time.Second))
	}
	switch pr.Phase {
	case "shrink":
		line += fmt.Sprintf("  shrinking %d failures", pr.Shrinking)
	case "done":
		if !p.tty {
			return // the summary follows
		}
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.drawn = true
		return
	}
	fmt.Fprintf(p.w, "attnvet fuzz: %s\n", line)
}

func (p *progressPrinter) finish() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}
