package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/attnvet/attnvet/internal/atomicfile"
	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/summary"
	"github.com/attnvet/attnvet/internal/targets"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/internal/worker"
)

func init() {
	register(command{
		name:    "fuzz",
		summary: "search for inputs that break a kernel or mutant; failures are shrunk and saved with a replay command",
		usage:   "[--time D | --cases N] [--workers K] [--shard i/n] [--seed S] [--target NAME] [--out DIR] [--json FILE] [--junit FILE] [--case-timeout D] [--worker-profile NAME] [--known FILE] [--save-findings] [--recheck N] | --resume DIR",
		run:     runFuzz,
	})
}

// defaultFuzzTarget is the device kernel B of today (SPEC.md §1).
const defaultFuzzTarget = "tiled/bc128/bf16"

func runFuzz(e *env, args []string) int {
	fs := newFlags("fuzz")
	dur := durationFlag(fs, "time", 0, "stop issuing new cases after `D` (e.g. 60s, 10m); default 60s unless --cases is given")
	n := fs.Int("cases", 0, "size of the case space: case indices 0..N-1 (split among shards)")
	workers := fs.Int("workers", 0, workersUsage)
	shardS := fs.String("shard", "0/1", "run shard i of n: case indices ≡ i (mod n); needs an explicit --seed")
	seed := fs.Uint64("seed", 0, "campaign seed (default: from the clock, printed)")
	target := fs.String("target", defaultFuzzTarget, "kernel under test: a registry kernel, mutant:NAME (or a bare mutant name), or exec:'CMD' (docs/worker.md); see 'attnvet kernels'")
	out := fs.String("out", defaultOutDir, "directory for failing cases (each saved when found, replaced when shrunk) and the results journal journal.jsonl")
	resume := fs.String("resume", "", "continue the killed or interrupted campaign whose journal is in `DIR` (its --out): the journaled cases are not run again; the campaign's settings come from the journal")
	jsonOut := fs.String("json", "", "write the result as JSON (docs/json.md) to `FILE`")
	junit := fs.String("junit", "", "write JUnit XML (one test case per case) to `FILE`")
	critName := fs.String("criterion", tolerance.NameBound, "pass/fail criterion: "+strings.Join(tolerance.Names(), ", "))
	fam := fs.String("family", "", "cases of one family: "+problem.FamilyNames()+" (default: sparse and window, or the one family an exec: target declares)")
	save := fs.Int("save", campaign.DefaultSave, "failures to shrink and save (the first in case order)")
	shrink := fs.Int("shrink-budget", campaign.DefaultShrinkBudget, "candidate evaluations per shrink (0: save unshrunk)")
	every := durationFlag(fs, "progress", 10*time.Second, "interval of progress lines when stderr is not a terminal (0: none)")
	wf := addWorkerFlags(fs)
	ff := addFindingFlags(fs)
	recheck := fs.Int("recheck", 0, "recheck every `N`th generated case the target passed: the same request twice must give the same bits (nondeterministic), the keys in another order within the contract must pass (order_dependent), and an exec worker's declared split counts must pass (split_dependent); docs/worker.md \"Rechecks\"")
	if printFlags(e, fs, args) {
		return exitPass
	}
	if err := parseFlags(fs, args); err != nil {
		return e.exitFor("fuzz", err)
	}
	if fs.NArg() > 0 {
		return e.exitFor("fuzz", usagef("unexpected argument %q (fuzz takes only flags)", fs.Arg(0)))
	}
	if *every < 0 {
		return e.exitFor("fuzz", usagef("--progress %v: want 0 or a positive duration", *every))
	}
	for _, f := range []struct{ flag, path string }{{"json", *jsonOut}, {"junit", *junit}} {
		if err := outputFileFlag(f.flag, f.path); err != nil {
			return e.exitFor("fuzz", err)
		}
	}
	if flagSet(fs, "resume") {
		return resumeFuzz(e, fs, ff, *resume, *workers, *every, *jsonOut, *junit)
	}
	opt := campaign.DefaultOptions()
	opt.Command, opt.OutDir, opt.Journal = "fuzz", *out, true
	if err := outDirFlag(*out); err != nil {
		return e.exitFor("fuzz", err)
	}
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
	if err := ff.apply(&opt); err != nil {
		return e.exitFor("fuzz", err)
	}
	if *recheck < 0 {
		return e.exitFor("fuzz", usagef("--recheck %d: want 0 (off) or N > 0 (every Nth case)", *recheck))
	}
	opt.Recheck = *recheck
	if j, err := campaign.LoadJournal(*out); err == nil && j.End == nil {
		return e.exitFor("fuzz", usagef("--out %s holds the journal of a campaign that was killed or is still running (seed %d, shard %s, %s cases journaled): continue it with 'attnvet fuzz --resume %s', or remove %s",
			*out, j.Header.Seed, j.Header.Shard, summary.Commas(j.Done), campaign.ShellQuote(*out), j.Path))
	}
	topt, err := wf.options(fs, targets.IsExec(*target))
	if err != nil {
		return e.exitFor("fuzz", err)
	}
	if opt.Time > 0 {
		topt.Deadline = time.Now().Add(opt.Time) // a silent worker's hello does not outlast --time
	}
	opt.ReplayFlags = wf.replayFlags(fs)
	opt.CaseTimeout, opt.WorkerProfile = topt.CaseTimeout, topt.Profile
	t, err := targets.Resolve(*target, topt)
	if err != nil {
		return e.exitFor("fuzz", usagef("--target: %v", err))
	}
	defer t.Close()
	opt.Targets = []targets.Target{t}
	if !flagSet(fs, "family") {
		if opt.Family, err = campaign.DefaultFamily(opt.Targets); err != nil {
			return e.exitFor("fuzz", usagef("%v", err))
		}
	}
	opt.Corpus = savedFailures(opt.OutDir, t.Name)
	opt.Record = *junit != ""
	fmt.Fprintf(e.stdout, "attnvet fuzz: target %s, seed %d, shard %s, criterion %s, %s\n",
		t.Name, opt.Seed, opt.Shard, opt.Criterion.Name(), budgetString(&opt))
	if !flagSet(fs, "family") && opt.Family != "" {
		fmt.Fprintf(e.stdout, "attnvet fuzz: family %s, the one family the target declares (--family overrides)\n", opt.Family)
	}
	return fuzzRun(e, opt, *every, *jsonOut, *junit)
}

// resumeFuzz continues the campaign journaled in dir (fuzz --resume DIR):
// the campaign's settings come from the journal, so only the flags that
// do not change its result may be given.
func resumeFuzz(e *env, fs *flag.FlagSet, ff findingFlags, dir string, workers int, every time.Duration, jsonOut, junit string) int {
	var fixed []string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "resume", "workers", "progress", "json", "junit", "known", "save-findings":
		default:
			fixed = append(fixed, "--"+f.Name)
		}
	})
	if len(fixed) > 0 {
		return e.exitFor("fuzz", usagef("--resume takes the campaign's settings from its journal: %s cannot change them (allowed: --workers, --progress, --json, --junit, --known, --save-findings)", strings.Join(fixed, ", ")))
	}
	j, err := campaign.LoadJournal(dir)
	if errors.Is(err, campaign.ErrNoJournal) {
		return e.exitFor("fuzz", usagef("--resume %s: no campaign journal there (fuzz writes %s into its --out directory)", dir, campaign.JournalFile))
	}
	if err != nil {
		return e.exitFor("fuzz", usagef("--resume: %v", err))
	}
	h := &j.Header
	if h.Command != "fuzz" || len(h.Targets) != 1 {
		return e.exitFor("fuzz", usagef("--resume: %s is not a fuzz campaign's journal", j.Path))
	}
	base := campaign.DefaultOptions()
	if base.Workers, err = workersFlag(workers); err != nil {
		return e.exitFor("fuzz", err)
	}
	base.Record = junit != ""
	if err := ff.apply(&base); err != nil {
		return e.exitFor("fuzz", err)
	}
	opt, err := j.Options(base)
	if err != nil {
		return e.exitFor("fuzz", usagef("--resume: %v", err))
	}
	topt := targets.Options{CaseTimeout: opt.CaseTimeout, Profile: opt.WorkerProfile}
	if topt.CaseTimeout <= 0 {
		topt.CaseTimeout = worker.DefaultCaseTimeout
	}
	t, err := targets.Resolve(h.Targets[0], topt)
	if err != nil {
		return e.exitFor("fuzz", usagef("--resume: target %s: %v", h.Targets[0], err))
	}
	defer t.Close()
	opt.Targets = []targets.Target{t}
	state := "killed"
	switch {
	case j.Finished():
		state = "finished its search"
	case j.End != nil:
		state = "interrupted"
	}
	fmt.Fprintf(e.stdout, "attnvet fuzz: resuming %s: target %s, seed %d, shard %s, criterion %s, %s; %s cases journaled (%s)\n",
		j.Path, t.Name, opt.Seed, opt.Shard, opt.Criterion.Name(), budgetString(&opt), summary.Commas(j.Done), state)
	return fuzzRun(e, opt, every, jsonOut, junit)
}

// testFlushEvery is campaign.Options.FlushEvery for the tests that kill
// a fuzz process (0: the campaign's default); set only by TestAttnvetProcess.
var testFlushEvery time.Duration

// fuzzRun runs a fuzz campaign and reports it.
func fuzzRun(e *env, opt campaign.Options, every time.Duration, jsonOut, junit string) int {
	defer tuneRuntime(e, opt.Workers)()
	pr := newProgressPrinter(e.stderr, every, "fuzz", opt.Targets[0].Name)
	opt.Progress, opt.ProgressEvery = pr.update, pr.interval
	opt.FlushEvery = testFlushEvery
	ctx, stop := signalContext()
	defer stop()
	start := time.Now()
	res, err := campaign.Run(ctx, opt)
	pr.finish()
	if err != nil {
		return e.exitFor("fuzz", usagef("%v", err))
	}
	summary.Fuzz(e.stdout, &opt, res)
	if jsonOut != "" {
		if err := atomicfile.Write(jsonOut, res.Marshal()); err != nil {
			return e.exitFor("fuzz", usagef("--json: %v", err))
		}
	}
	if junit != "" {
		if err := atomicfile.Write(junit, campaign.JUnit(res, "attnvet fuzz", time.Since(start))); err != nil {
			return e.exitFor("fuzz", usagef("--junit: %v", err))
		}
	}
	return campaignExit(e, "fuzz", ctx, res)
}

// outDirFlag refuses an --out that exists and is not a directory up
// front, before a campaign that could not save what it finds.
func outDirFlag(dir string) error {
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		return usagef("--out %s: not a directory (fuzz saves failing cases and its journal there)", dir)
	}
	return nil
}

// durationValue is a flag.Duration whose error says what a duration
// looks like: "10" is the usual mistake (a unit is needed).
type durationValue time.Duration

func durationFlag(fs *flag.FlagSet, name string, def time.Duration, usage string) *time.Duration {
	p := new(time.Duration)
	*p = def
	fs.Var((*durationValue)(p), name, usage)
	return p
}

func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			return fmt.Errorf("a duration needs a unit, e.g. %ss or %sm", s, s)
		}
		return fmt.Errorf("want a duration with a unit, e.g. 10s, 5m or 1h30m")
	}
	*d = durationValue(v)
	return nil
}

func (d *durationValue) String() string { return (*time.Duration)(d).String() }

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
		if tn, _ := campaign.Provenance(c); tn == target {
			out = append(out, campaign.NamedCase{Name: p, Path: p, Case: c})
		}
	}
	return out
}

// tuneRuntime sets the campaign commands' runtime: GOGC 400 (their heap is
// small, tens of MB, and short-lived; collecting less often saves about 8%
// of the CPU), and at most `workers` cores when fewer than all are asked
// for (the collector's idle workers otherwise spin on the free cores during
// every cycle: 9% more CPU time for --workers 1 on two cores). GOGC and
// GOMAXPROCS in the environment win (docs/benchmarks-fuzz.md). It returns
// the function that restores the previous settings.
func tuneRuntime(e *env, workers int) (restore func()) {
	gc := -1
	if e.getenv("GOGC") == "" {
		gc = debug.SetGCPercent(400)
	}
	procs := runtime.GOMAXPROCS(0)
	if workers > 0 && workers < procs && e.getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(workers)
	}
	return func() {
		if gc >= 0 {
			debug.SetGCPercent(gc)
		}
		runtime.GOMAXPROCS(procs)
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

// progressPrinter shows a campaign's progress: one redrawn line on a
// terminal, plain periodic lines otherwise.
type progressPrinter struct {
	w        io.Writer
	tty      bool
	interval time.Duration
	cmd      string // the command, prefixed to plain lines
	name     string // what is fuzzed or gated
	drawn    bool
}

func newProgressPrinter(w io.Writer, every time.Duration, cmd, name string) *progressPrinter {
	p := &progressPrinter{w: w, tty: isTerminal(w), interval: every, cmd: cmd, name: name}
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
		p.name, pr.Elapsed.Seconds(), summary.Commas(pr.Cases), pr.Rate(), pr.FailedCases, pr.Contract, pr.Classes)
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
	fmt.Fprintf(p.w, "attnvet %s: %s\n", p.cmd, line)
}

func (p *progressPrinter) finish() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}
