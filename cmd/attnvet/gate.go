package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/attnvet/attnvet/corpus"
	"github.com/attnvet/attnvet/internal/atomicfile"
	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/internal/safeio"
	"github.com/attnvet/attnvet/internal/summary"
	"github.com/attnvet/attnvet/internal/targets"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/internal/worker"
)

func init() {
	register(command{
		name:    "gate",
		summary: "CI gate: the corpus and random cases against the chosen kernels; exit 0 all pass, 1 a mismatch",
		usage:   "[--corpus DIR|builtin|none] [--cases N] [--seed S] [--kernels GLOB] [--criterion NAME] [--junit FILE] [--json FILE] [--progress D] [--case-timeout D] [--worker-profile NAME] [--known FILE] [--save-findings]",
		run:     runGate,
	})
}

const (
	builtinCorpus = "builtin"
	defaultOutDir = "attnvet-failures"
)

func runGate(e *env, args []string) int {
	fs := newFlags("gate")
	corpusDir := fs.String("corpus", builtinCorpus, "corpus to run first: a directory of case files (*.json), 'builtin' (the corpus built into attnvet) or 'none'")
	n := fs.Int("cases", 200, "random cases after the corpus (0: the corpus only)")
	seed := fs.Uint64("seed", 1, "seed of the random cases")
	kernels := fs.String("kernels", "all", "kernels to gate: comma-separated globs over the names 'attnvet kernels' lists, or mutant:NAME")
	critName := fs.String("criterion", tolerance.NameBound, "pass/fail criterion: "+strings.Join(tolerance.Names(), ", "))
	junit := fs.String("junit", "", "write JUnit XML (one test case per kernel × case) to `FILE`")
	jsonOut := fs.String("json", "", "write the result as JSON (docs/json.md) to `FILE`")
	workers := fs.Int("workers", 0, workersUsage)
	out := fs.String("out", defaultOutDir, "directory for failing random cases, shrunk (written only on failure)")
	fam := fs.String("family", "", "the corpus cases and random cases of one family: "+problem.FamilyNames()+" (default: every corpus case, random sparse and window)")
	verbose := fs.Bool("v", false, "list every edge class and contract violation")
	every := durationFlag(fs, "progress", 10*time.Second, "interval of progress lines when stderr is not a terminal (0: none)")
	wf := addWorkerFlags(fs)
	ff := addFindingFlags(fs)
	if printFlags(e, fs, args) {
		return exitPass
	}
	if err := parseFlags(fs, args); err != nil {
		return e.exitFor("gate", err)
	}
	if fs.NArg() > 0 {
		return e.exitFor("gate", usagef("unexpected argument %q (gate takes only flags)", fs.Arg(0)))
	}
	opt := campaign.DefaultOptions()
	opt.Command, opt.Seed, opt.Record, opt.OutDir = "gate", *seed, true, *out
	var err error
	if opt.Cases, err = countFlag("cases", *n); err != nil {
		return e.exitFor("gate", err)
	}
	if opt.Workers, err = workersFlag(*workers); err != nil {
		return e.exitFor("gate", err)
	}
	if opt.Family, err = familyFlag(*fam); err != nil {
		return e.exitFor("gate", err)
	}
	if opt.Criterion, err = criterionFlag(*critName); err != nil {
		return e.exitFor("gate", err)
	}
	topt, err := wf.options(fs, anyExec(*kernels))
	if err != nil {
		return e.exitFor("gate", err)
	}
	opt.ReplayFlags = wf.replayFlags(fs)
	if err := ff.apply(&opt); err != nil {
		return e.exitFor("gate", err)
	}
	if opt.Targets, err = targets.Select(*kernels, topt); err != nil {
		return e.exitFor("gate", usagef("--kernels: %v", err))
	}
	defer targets.CloseAll(opt.Targets)
	for _, f := range []struct{ flag, path string }{{"junit", *junit}, {"json", *jsonOut}} {
		if err := outputFileFlag(f.flag, f.path); err != nil {
			return e.exitFor("gate", err)
		}
	}
	opt.Corpus, err = loadCorpus(*corpusDir)
	if err != nil {
		return e.exitFor("gate", err)
	}
	if opt.Family != "" { // --family restricts the corpus too
		var kept []campaign.NamedCase
		for _, c := range opt.Corpus {
			if c.Case.Family == opt.Family {
				kept = append(kept, c)
			}
		}
		opt.Corpus = kept
	}
	if len(opt.Corpus) == 0 && opt.Cases == 0 {
		return e.exitFor("gate", usagef("nothing to run: --corpus %s and --cases 0", *corpusDir))
	}

	if *every < 0 {
		return e.exitFor("gate", usagef("--progress %v: want 0 or a positive duration", *every))
	}
	what := opt.Targets[0].Name
	if len(opt.Targets) > 1 {
		what = fmt.Sprintf("%d kernels", len(opt.Targets))
	}
	pr := newProgressPrinter(e.stderr, *every, "gate", what)
	opt.Progress, opt.ProgressEvery = pr.update, pr.interval

	defer tuneRuntime(e, opt.Workers)()
	ctx, stop := signalContext()
	defer stop()
	start := time.Now()
	res, err := campaign.Run(ctx, opt)
	pr.finish()
	if err != nil {
		return e.exitFor("gate", usagef("%v", err))
	}
	elapsed := time.Since(start)
	summary.Gate(e.stdout, &opt, res, elapsed, *verbose)
	if *jsonOut != "" {
		if err := atomicfile.Write(*jsonOut, res.Marshal()); err != nil {
			return e.exitFor("gate", usagef("--json: %v", err))
		}
	}
	if *junit != "" {
		if err := atomicfile.Write(*junit, campaign.JUnit(res, "attnvet gate", elapsed)); err != nil {
			return e.exitFor("gate", usagef("--junit: %v", err))
		}
	}
	return campaignExit(e, "gate", ctx, res)
}

// campaignExit turns a result into the exit code: 1 on a failure (a
// mismatch, a kernel error or a worker failure: verified, even when the
// run is incomplete), 3 when cases could not be built (an internal
// error), 2 when the result is incomplete (a run stopped by a signal, a
// shard missing from a merge: no verdict on the cases not run, so not a
// pass, and not a mismatch either; docs/json.md), 0 otherwise. ctx is
// the campaign's (nil: none ran here, as in a merge).
func campaignExit(e *env, cmd string, ctx context.Context, res *campaign.Result) int {
	if ctx == nil {
		ctx = context.Background()
	}
	incomplete := !res.Complete // a signal after the last case (while shrinking) leaves it complete
	if incomplete {
		fmt.Fprintf(e.stderr, "attnvet %s: %s\n", cmd, incompleteWhy(cmd, res))
	}
	switch {
	case summary.UnknownFailures(res) > 0:
		return exitMismatch
	case len(res.InvalidExamples) > 0:
		fmt.Fprintf(e.stderr, "attnvet %s: %s: %s (please report it)\n", cmd,
			res.InvalidExamples[0].Case, safeio.OneLine(strings.Join(res.InvalidExamples[0].Violations, "; ")))
		return exitInternal
	case incomplete:
		return exitUsage
	case !res.Passed:
		return exitMismatch
	}
	return exitPass
}

// incompleteWhy is the one line an incomplete result exits 2 with.
func incompleteWhy(cmd string, res *campaign.Result) string {
	if cmd == "report" {
		return fmt.Sprintf("the merged results miss cases of their campaigns (%d gaps, listed above and in \"gaps\"): not a pass", len(res.Gaps))
	}
	s := "interrupted before every case ran: not a pass (the results above cover the cases run)"
	if cmd == "fuzz" && len(res.Runs) > 0 {
		s += "; continue it with 'attnvet fuzz --resume DIR' (DIR: its --out)"
	}
	return s
}

// testSignalReady, if set, is called once signalContext's handler is in
// place; set only by TestAttnvetProcess, so the signal tests need not
// guess when to send SIGTERM.
var testSignalReady func()

// signalContext is cancelled by the first SIGINT or SIGTERM: the campaign
// stops issuing cases and reports what it found. A second signal is not
// caught: it ends the process at once.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if testSignalReady != nil {
		testSignalReady()
	}
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}

// workerFlags configure exec: targets (docs/worker.md).
type workerFlags struct {
	timeout *time.Duration
	profile *string
	procs   *int
}

func addWorkerFlags(fs *flag.FlagSet) workerFlags {
	return workerFlags{
		timeout: durationFlag(fs, "case-timeout", worker.DefaultCaseTimeout, "exec: targets: a worker that does not answer one case within D is killed and restarted, and the case is a timeout failure"),
		profile: fs.String("worker-profile", "", "exec: targets: judge the worker under this built-in precision profile instead of the one its hello declares (default: as declared; none declared is bf16): "+strings.Join(profile.Names(), ", ")),
		procs:   fs.Int("procs", 1, "exec: targets: worker processes serving cases in parallel (docs/worker.md)"),
	}
}

// options checks the flags; exec says whether any target is an exec:
// one (--worker-profile changes the verdict, so it must not be ignored).
func (w workerFlags) options(fs *flag.FlagSet, exec bool) (targets.Options, error) {
	o := targets.Options{CaseTimeout: *w.timeout, Profile: *w.profile, Procs: *w.procs}
	if o.CaseTimeout <= 0 {
		return o, usagef("--case-timeout %v: want a positive duration", o.CaseTimeout)
	}
	if o.Procs < 1 || o.Procs > targets.MaxProcs {
		return o, usagef("--procs %d: want 1 to %d worker processes", o.Procs, targets.MaxProcs)
	}
	if o.Profile != "" {
		if _, err := profile.Lookup(o.Profile); err != nil {
			return o, usagef("--worker-profile: %v", err)
		}
		if !exec {
			return o, usagef("--worker-profile applies to exec: targets only (built-in kernels and mutants have their own profile)")
		}
	}
	return o, nil
}

// replayFlags are the worker flags given explicitly, for the replay
// commands of exec targets' failures.
func (w workerFlags) replayFlags(fs *flag.FlagSet) []string {
	var out []string
	if *w.profile != "" {
		out = append(out, "--worker-profile", *w.profile)
	}
	if flagSet(fs, "case-timeout") {
		out = append(out, "--case-timeout", w.timeout.String())
	}
	return out
}

// anyExec reports whether a --kernels list names an exec: target.
func anyExec(spec string) bool {
	for _, it := range strings.Split(spec, ",") {
		if targets.IsExec(it) {
			return true
		}
	}
	return false
}

// loadCorpus reads the corpus: the built-in one (package corpus), none, or
// every *.json case in a directory, sorted by name.
func loadCorpus(dir string) ([]campaign.NamedCase, error) {
	switch dir {
	case "none", "":
		return nil, nil
	case builtinCorpus:
		all, err := corpus.All()
		if err != nil {
			return nil, fmt.Errorf("built-in corpus: %v", err) // a build defect: exit 3
		}
		var out []campaign.NamedCase
		for _, nc := range all {
			out = append(out, campaign.NamedCase{Name: "corpus/" + nc.Name, Case: nc.Case})
		}
		return out, nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, usagef("--corpus: %v", err)
	}
	if !st.IsDir() {
		return nil, usagef("--corpus %s: not a directory", dir)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, usagef("--corpus: %v", err)
	}
	sort.Strings(paths)
	var out []campaign.NamedCase
	for _, p := range paths {
		c, err := cases.Load(p)
		if err != nil {
			return nil, usagef("corpus: %v", err)
		}
		out = append(out, campaign.NamedCase{Name: p, Path: p, Case: c})
	}
	if len(out) == 0 {
		return nil, usagef("--corpus %s: no *.json case files", dir)
	}
	return out, nil
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

func countFlag(name string, n int) (int, error) {
	if n < 0 {
		return 0, usagef("--%s %d: want 0 or more", name, n)
	}
	return n, nil
}

// workersUsage is the --workers help of the campaign commands (gate, fuzz,
// report), which share workersFlag's range.
const workersUsage = "parallel workers (default: all cores); fewer workers than cores use that many cores; results do not depend on it"

func workersFlag(n int) (int, error) {
	if n < 0 || n > 4096 {
		return 0, usagef("--workers %d: want 0 (all cores) to 4096", n)
	}
	return n, nil
}

func familyFlag(s string) (problem.Family, error) {
	switch s {
	case "", "both", "all":
		return "", nil
	}
	f, err := problem.ParseFamily(s)
	if err != nil {
		return "", usagef("--family %q: want %s (default: sparse and window)", s, problem.FamilyNames())
	}
	return f, nil
}

func criterionFlag(s string) (tolerance.Criterion, error) {
	c, err := tolerance.Lookup(s)
	if err != nil {
		return nil, usagef("--criterion: %v", err)
	}
	return c, nil
}

// outputFileFlag checks up front that FILE can be written (its directory
// exists), so a long run does not fail at its end.
func outputFileFlag(flag, path string) error {
	if path == "" {
		return nil
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return usagef("--%s %s: is a directory", flag, path)
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return usagef("--%s %s: directory %s does not exist", flag, path, dir)
	}
	if !st.IsDir() {
		return usagef("--%s %s: %s is not a directory", flag, path, dir)
	}
	return nil
}
