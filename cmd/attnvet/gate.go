package main

import (
	"context"
	"flag"
	"fmt"
	"io"
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
	"github.com/attnvet/attnvet/internal/targets"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/internal/worker"
)

func init() {
	register(command{
		name:    "gate",
		summary: "CI gate: the corpus and random cases against the chosen kernels; exit 0 all pass, 1 a mismatch",
		usage:   "[--corpus DIR|builtin|none] [--cases N] [--seed S] [--kernels GLOB] [--criterion NAME] [--junit FILE] [--json FILE] [--case-timeout D] [--worker-profile NAME] [--known FILE] [--save-findings]",
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
	junit := fs.String("junit", "", "write JUnit XML (one test case per kernel × case) to FILE")
	jsonOut := fs.String("json", "", "write the result as JSON (docs/json.md) to FILE")
	workers := fs.Int("workers", 0, "parallel workers (default: all cores)")
	out := fs.String("out", defaultOutDir, "directory for failing random cases, shrunk (written only on failure)")
	fam := fs.String("family", "", "the corpus cases and random cases of one family: "+problem.FamilyNames()+" (default: every corpus case, random sparse and window)")
	verbose := fs.Bool("v", false, "list every edge class and contract violation")
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

	tuneGC(e)
	ctx, stop := signalContext()
	defer stop()
	start := time.Now()
	res, err := campaign.Run(ctx, opt)
	if err != nil {
		return e.exitFor("gate", usagef("%v", err))
	}
	elapsed := time.Since(start)
	printGateSummary(e.stdout, &opt, res, elapsed, *verbose)
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
	case unknownFailures(res) > 0:
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

// verdictWord is the summary's verdict: PASS, FAIL, or INCOMPLETE (no
// failure in the cases run, but not every case ran).
func verdictWord(res *campaign.Result) string {
	switch {
	case unknownFailures(res) > 0 || len(res.InvalidExamples) > 0:
		return "FAIL"
	case !res.Complete:
		return "INCOMPLETE"
	case !res.Passed:
		return "FAIL"
	}
	return "PASS"
}

// signalContext is cancelled by the first SIGINT or SIGTERM: the campaign
// stops issuing cases and reports what it found. A second signal is not
// caught: it ends the process at once.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}

func printGateSummary(w io.Writer, opt *campaign.Options, res *campaign.Result, elapsed time.Duration, verbose bool) {
	gen := res.Cases - res.CorpusCases
	fmt.Fprintf(w, "attnvet gate: %d corpus + %d random cases (seed %d) × %d kernels, criterion %s\n",
		res.CorpusCases, gen, opt.Seed, len(opt.Targets), opt.Criterion.Name())
	printTotals(w, res)
	printContract(w, res, verbose)
	printInternal(w, res)
	printClasses(w, res, verbose)
	printWorkerStats(w, res)
	printFindings(w, res, 20)
	printFailures(w, res, 20)
	printWorkerFailures(w, res, 20, false)
	verdict := verdictWord(res)
	fmt.Fprintf(w, "%s: %s of %s checks passed (%d cases × %d kernels) in %.1fs", verdict,
		commas(res.Checks-res.FailedChecks), commas(res.Checks), res.Cases, len(opt.Targets), elapsed.Seconds())
	if res.WorkerFailedChecks > 0 {
		fmt.Fprintf(w, "; %s worker failures", commas(res.WorkerFailedChecks))
	}
	fmt.Fprintln(w)
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
			t.Name, commas64(s.Requests), restarts, s.Crashes, s.Timeouts, s.Malformed, s.Reported, s.Retried)
		if s.Skipped > 0 { // protocol 2 declarations (docs/worker.md)
			var rs []string
			for r, n := range s.SkipReasons {
				rs = append(rs, fmt.Sprintf("%s %s", r, commas64(n)))
			}
			sort.Strings(rs)
			fmt.Fprintf(w, "  skipped     %s cases the worker's hello excludes, not sent: %s\n", commas64(s.Skipped), strings.Join(rs, ", "))
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
		commas(res.WorkerFailedChecks), strings.Join(kinds, ", "))
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

func commas(n int) string { return commas64(int64(n)) }

func commas64(n int64) string {
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

// printTotals prints the checks, elements, worst ratio and skipped pairs of
// a campaign result (gate's summary and report --merge's).
func printTotals(w io.Writer, res *campaign.Result) {
	fmt.Fprintf(w, "  checks      %s kernel runs judged, %s passed, %s failed\n",
		commas(res.Checks), commas(res.Checks-res.FailedChecks), commas(res.FailedChecks))
	fmt.Fprintf(w, "  elements    %s judged", commas64(res.Elements))
	if res.SkippedElements > 0 {
		fmt.Fprintf(w, ", %s skipped (outside a profile's range: not judged)", commas64(res.SkippedElements))
	}
	fmt.Fprintln(w)
	if res.Worst != nil {
		fmt.Fprintf(w, "  worst       err/allowed %s: %s on %s\n", res.Worst.Ratio, res.Worst.Target, res.Worst.Case)
	}
	if res.IncompatibleChecks > 0 {
		fmt.Fprintf(w, "  skipped     %s kernel × case pairs whose case pins an input dtype the kernel does not take\n", commas(res.IncompatibleChecks))
	}
}
