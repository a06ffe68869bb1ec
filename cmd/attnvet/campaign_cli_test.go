package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attnvet/attnvet/corpus"
	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/summary"
	"github.com/attnvet/attnvet/internal/testkit"
)

// cli runs attnvet in-process.
func cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// A small kernel set keeps these tests fast; the default gate (all
// kernels, 200 cases) is the acceptance run, timed in the final report.
const testKernels = "stream/bf16,tiled/bc32/bf16,splitkv/p2/bc32/fp16,tiled/bc16/fp32"

func TestGatePasses(t *testing.T) {
	dir := t.TempDir()
	junit, js := filepath.Join(dir, "gate.xml"), filepath.Join(dir, "gate.json")
	code, out, errs := cli(t, "gate", "--corpus", "none", "--cases", "40", "--kernels", testKernels, "--junit", junit, "--json", js, "--out", dir)
	if code != exitPass {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, want := range []string{"attnvet gate: 0 corpus + 40 random cases (seed 1) × 4 kernels, criterion bound",
		"checks", "elements", "edge classes", "PASS: "} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	r, err := campaign.LoadResult(js)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Passed || r.Cases != 40 || len(r.Failures) != 0 {
		t.Errorf("JSON: passed %v, %d cases, %d failures", r.Passed, r.Cases, len(r.Failures))
	}
	var raw map[string]json.RawMessage
	b, _ := os.ReadFile(js)
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"passed", "cases", "failures"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	var doc campaign.JUnitSuites
	xb, _ := os.ReadFile(junit)
	if err := xml.Unmarshal(xb, &doc); err != nil {
		t.Fatalf("JUnit: %v", err)
	}
	if doc.Tests != 40*4 || len(doc.Suites) != 4 || doc.Failures != 0 {
		t.Errorf("JUnit: %d tests in %d suites, %d failures", doc.Tests, len(doc.Suites), doc.Failures)
	}
}

func TestGateBuiltinCorpus(t *testing.T) {
	code, out, errs := cli(t, "gate", "--cases", "0", "--kernels", "tiled/bc32/bf16")
	if code != exitPass {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if !regexp.MustCompile(`attnvet gate: [1-9][0-9]* corpus \+ 0 random cases`).MatchString(out) ||
		!strings.Contains(out, "pad_in_prefix 2") ||
		!regexp.MustCompile(`corpus/[a-z0-9_]+_violation\.json: [a-z_]+`).MatchString(out) {
		t.Errorf("the built-in corpus did not run, or its contract violations are not listed:\n%s", out)
	}
}

func TestGateWithCorpusAndFailure(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join(dir, "corpus")
	os.Mkdir(corpus, 0o755)
	one := cases.Case{Family: "sparse", Seed: 3, H: 2, D: 8, B: 1, Win: 4, IdxTopK: 4, BlockSize: 4, Seqused: []int{1}}
	os.WriteFile(filepath.Join(corpus, "sparse_k1.json"), one.Marshal(), 0o644)
	junit := filepath.Join(dir, "gate.xml")
	code, out, _ := cli(t, "gate", "--corpus", corpus, "--cases", "5", "--kernels", "stream/bf16,mutant:pr301-n1-poison",
		"--junit", junit, "--out", filepath.Join(dir, "fail"))
	if code != exitMismatch {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	want := "FAIL mutant:pr301-n1-poison on " + filepath.Join(corpus, "sparse_k1.json")
	if !strings.Contains(out, want) || !strings.Contains(out, "replay: attnvet replay "+filepath.Join(corpus, "sparse_k1.json")+" --kernel mutant:pr301-n1-poison") {
		t.Errorf("summary lacks the corpus failure and its replay command:\n%s", out)
	}
	var doc campaign.JUnitSuites
	xb, _ := os.ReadFile(junit)
	if err := xml.Unmarshal(xb, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Failures == 0 || doc.Suites[0].Failures != 0 {
		t.Errorf("JUnit failures: total %d, correct kernel %d", doc.Failures, doc.Suites[0].Failures)
	}
}

func TestFuzzFindsShrinksAndReplays(t *testing.T) {
	dir := t.TempDir()
	js := filepath.Join(dir, "r.json")
	code, out, errs := cli(t, "fuzz", "--target", "pr301-n1-poison", "--cases", "30", "--seed", "5", "--save", "1",
		"--out", dir, "--json", js, "--progress", "0")
	if code != exitMismatch {
		t.Fatalf("exit %d, want 1:\n%s\n%s", code, out, errs)
	}
	m := regexp.MustCompile(`replay: (attnvet replay (\S+) --kernel (\S+))`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no replay command in:\n%s", out)
	}
	if m[3] != "mutant:pr301-n1-poison" || filepath.Dir(m[2]) != dir {
		t.Errorf("replay command %q", m[1])
	}
	// The printed command replays the failure as printed.
	fields := strings.Fields(m[1])[1:]
	code, rout, rerr := cli(t, fields...)
	if code != exitMismatch || !strings.Contains(rout, "FAIL: mutant:pr301-n1-poison does not meet bound") {
		t.Errorf("replay exit %d:\n%s\n%s", code, rout, rerr)
	}
	for _, want := range []string{"worst elements by err/bound", "jacobian", "out-round", "keys attended", "weight p_i"} {
		if !strings.Contains(rout, want) {
			t.Errorf("replay output lacks %q:\n%s", want, rout)
		}
	}
	// The file records its target: replay needs no --kernel.
	if code, _, _ := cli(t, "replay", m[2]); code != exitMismatch {
		t.Errorf("replay without --kernel: exit %d", code)
	}
	// The correct kernel passes the same case.
	if code, rout, _ := cli(t, "replay", m[2], "--kernel", "stream/bf16"); code != exitPass || !strings.Contains(rout, "PASS") {
		t.Errorf("correct kernel on the saved case: exit %d\n%s", code, rout)
	}
	r, err := campaign.LoadResult(js)
	if err != nil || r.Passed || r.Cases != 30 {
		t.Errorf("JSON result: %v %+v", err, r)
	}
	// The next campaign with the same --out replays the saved failure first.
	code, out, _ = cli(t, "fuzz", "--target", "pr301-n1-poison", "--cases", "3", "--seed", "6", "--save", "0", "--out", dir, "--progress", "0")
	if code != exitMismatch || !strings.Contains(out, "FAIL "+m[2]) || !strings.Contains(out, "replay: "+m[1]) {
		t.Errorf("saved failure not replayed first (exit %d):\n%s", code, out)
	}
}

func TestFuzzPassesOnCorrectKernel(t *testing.T) {
	code, out, errs := cli(t, "fuzz", "--target", "tiled/bc64/bf16", "--cases", "30", "--seed", "2", "--shard", "1/3", "--out", t.TempDir())
	if code != exitPass {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "indices     1..28 step 3 (seed 2)") || !strings.Contains(out, "PASS: no failure in 10 cases") {
		t.Errorf("summary:\n%s", out)
	}
}

func TestFuzzProgressLines(t *testing.T) {
	code, out, errs := cli(t, "fuzz", "--target", "stream/bf16", "--time", "500ms", "--seed", "4", "--progress", "100ms", "--out", t.TempDir())
	if code != exitPass {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "attnvet fuzz: stream/bf16 ") || !strings.Contains(lines[0], "cases/s") && !strings.Contains(lines[0], "/s") {
		t.Errorf("progress lines on a non-terminal:\n%s", errs)
	}
	if !strings.Contains(out, "stopped: time budget") {
		t.Errorf("summary:\n%s", out)
	}
}

func TestKernelsLists(t *testing.T) {
	code, out, _ := cli(t, "kernels")
	if code != exitPass {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"tiled/bc128/bf16", "stream/fp32", "mutant:pr301-n1-poison", "bound", "ratio"} {
		if !strings.Contains(out, want) {
			t.Errorf("kernels output lacks %q", want)
		}
	}
	code, out, _ = cli(t, "kernels", "--json", "tiled/*/fp16")
	var doc kernelsDoc
	if code != exitPass || json.Unmarshal([]byte(out), &doc) != nil || len(doc.Kernels) != 5 {
		t.Errorf("kernels --json tiled/*/fp16: exit %d, %d kernels\n%s", code, len(doc.Kernels), out)
	}
}

// TestBadInputs: every bad flag, missing file, malformed case or
// impossible shape gives exit 2 and one line on stderr, never a panic.
func TestBadInputs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", string(cases.Case{Family: "window", Seed: 1, H: 1, D: 4, T: 3}.Marshal()))
	malformed := write("malformed.json", `{"family": "window", "h": 1,`)
	unknownField := write("unknown.json", `{"family": "window", "h": 1, "d": 2, "t": 2, "bogus": 1}`)
	zeroHeads := write("h0.json", `{"family": "window", "h": 0, "d": 2, "t": 2}`)
	badFamily := write("fam.json", `{"family": "dense", "h": 1, "d": 2, "t": 2}`)
	hugeCase := write("huge.json", `{"family": "window", "h": 4096, "d": 4096, "t": 4096}`)
	badHkv := write("hkv.json", `{"family": "window", "h": 3, "hkv": 2, "d": 2, "t": 2}`)
	seqMismatch := write("seq.json", `{"family": "sparse", "h": 1, "d": 2, "b": 2, "win": 2, "seqused": [1]}`)
	badCorpus := filepath.Join(dir, "badcorpus")
	os.Mkdir(badCorpus, 0o755)
	os.WriteFile(filepath.Join(badCorpus, "x.json"), []byte(`{"family": "window", "h": -1}`), 0o644)
	emptyCorpus := filepath.Join(dir, "empty")
	os.Mkdir(emptyCorpus, 0o755)
	for _, tc := range []struct {
		name string
		args []string
		want string // a fragment of the one-line error
	}{
		{"unknown command", []string{"gatee"}, "unknown command"},
		{"gate unknown flag", []string{"gate", "--bogus"}, "bogus"},
		{"gate negative cases", []string{"gate", "--cases", "-1"}, "--cases -1"},
		{"gate non-numeric cases", []string{"gate", "--cases", "many"}, "invalid value"},
		{"gate bad seed", []string{"gate", "--seed", "-3"}, "invalid value"},
		{"gate no kernel matches", []string{"gate", "--kernels", "nope/*"}, "no kernel matches"},
		{"gate bad glob", []string{"gate", "--kernels", "[x"}, "bad kernel pattern"},
		{"gate unknown mutant", []string{"gate", "--kernels", "mutant:nope"}, "no mutant matches"},
		{"gate unknown criterion", []string{"gate", "--criterion", "close-enough"}, "unknown criterion"},
		{"gate missing corpus", []string{"gate", "--corpus", filepath.Join(dir, "nope")}, "no such file"},
		{"gate corpus is a file", []string{"gate", "--corpus", good}, "not a directory"},
		{"gate empty corpus", []string{"gate", "--corpus", emptyCorpus}, "no *.json"},
		{"gate malformed corpus", []string{"gate", "--corpus", badCorpus}, "x.json"},
		{"gate junit dir missing", []string{"gate", "--junit", filepath.Join(dir, "no", "x.xml")}, "does not exist"},
		{"gate json is a dir", []string{"gate", "--json", dir}, "is a directory"},
		{"gate extra argument", []string{"gate", "now"}, "unexpected argument"},
		{"gate bad workers", []string{"gate", "--workers", "-2"}, "--workers"},
		{"gate bad family", []string{"gate", "--family", "bogus"}, "--family"},
		{"gate nothing to run", []string{"gate", "--cases", "0", "--corpus", "none"}, "nothing to run"},
		{"fuzz unknown target", []string{"fuzz", "--target", "tiled/bc7/bf16"}, "unknown target"},
		{"fuzz exec target not found", []string{"fuzz", "--target", "exec:./no-such-kernel"}, "no-such-kernel"},
		{"fuzz empty exec", []string{"fuzz", "--target", "exec:"}, "needs a command"},
		{"fuzz bad shard", []string{"fuzz", "--shard", "2/2", "--seed", "1"}, "shard"},
		{"fuzz shard not a fraction", []string{"fuzz", "--shard", "half", "--seed", "1"}, "want i/n"},
		{"fuzz shard without seed", []string{"fuzz", "--shard", "0/2"}, "explicit --seed"},
		{"fuzz negative time", []string{"fuzz", "--time", "-1s"}, "--time"},
		{"fuzz bad duration", []string{"fuzz", "--time", "soon"}, "invalid value"},
		{"fuzz duration without unit", []string{"fuzz", "--time", "10"}, "a duration needs a unit, e.g. 10s or 10m"},
		{"fuzz progress without unit", []string{"fuzz", "--progress", "2"}, "needs a unit"},
		{"gate case timeout without unit", []string{"gate", "--case-timeout", "30"}, "needs a unit"},
		{"fuzz out is a file", []string{"fuzz", "--cases", "1", "--out", good}, "not a directory"},
		{"fuzz junit dir missing", []string{"fuzz", "--cases", "1", "--junit", filepath.Join(dir, "no", "x.xml")}, "does not exist"},
		{"fuzz resume without journal", []string{"fuzz", "--resume", emptyCorpus}, "no campaign journal there"},
		{"fuzz resume with campaign flags", []string{"fuzz", "--resume", emptyCorpus, "--seed", "3", "--cases", "9"}, "--cases, --seed cannot change them"},
		{"fuzz no budget", []string{"fuzz", "--time", "0", "--cases", "0"}, "give a budget"},
		{"fuzz negative cases", []string{"fuzz", "--cases", "-4"}, "--cases"},
		{"fuzz negative save", []string{"fuzz", "--save", "-1", "--cases", "1"}, "--save"},
		{"fuzz extra argument", []string{"fuzz", "x"}, "unexpected argument"},
		{"fuzz json dir missing", []string{"fuzz", "--cases", "1", "--json", filepath.Join(dir, "no", "r.json")}, "does not exist"},
		{"replay no file", []string{"replay"}, "missing CASE.json"},
		{"replay two files", []string{"replay", good, good}, "one case file"},
		{"replay missing file", []string{"replay", filepath.Join(dir, "none.json"), "--kernel", "stream/bf16"}, "no such file"},
		{"replay malformed", []string{"replay", malformed, "--kernel", "stream/bf16"}, "bad case JSON"},
		{"replay unknown field", []string{"replay", unknownField, "--kernel", "stream/bf16"}, "bogus"},
		{"replay zero heads", []string{"replay", zeroHeads, "--kernel", "stream/bf16"}, "bad shape"},
		{"replay bad family", []string{"replay", badFamily, "--kernel", "stream/bf16"}, "family"},
		{"replay too large", []string{"replay", hugeCase, "--kernel", "stream/bf16"}, "too large"},
		{"replay bad hkv", []string{"replay", badHkv, "--kernel", "stream/bf16"}, "hkv"},
		{"replay seqused mismatch", []string{"replay", seqMismatch, "--kernel", "stream/bf16"}, "seqused"},
		{"replay no target recorded", []string{"replay", good}, "--kernel NAME"},
		{"replay unknown kernel", []string{"replay", good, "--kernel", "nope"}, "unknown target"},
		{"replay exec kernel not found", []string{"replay", good, "--kernel", "exec:./no-such-kernel"}, "no-such-kernel"},
		{"replay bad top", []string{"replay", good, "--kernel", "stream/bf16", "--top", "0"}, "--top"},
		{"replay bad criterion", []string{"replay", good, "--kernel", "stream/bf16", "--criterion", "x"}, "unknown criterion"},
		{"replay incompatible dtype", []string{"replay", write("fp16.json", `{"family":"window","dtype":"fp16","h":1,"d":2,"t":2}`), "--kernel", "stream/bf16"}, "takes bf16"},
		{"kernels bad pattern", []string{"kernels", "[x"}, "bad pattern"},
		{"kernels no match", []string{"kernels", "zzz"}, "no kernel or mutant"},
		{"kernels unknown flag", []string{"kernels", "--long"}, "long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := cli(t, tc.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want 2 (stderr %q)", code, errs)
			}
			lines := strings.Split(strings.TrimRight(errs, "\n"), "\n")
			if len(lines) != 1 || lines[0] == "" {
				t.Errorf("stderr has %d lines, want one:\n%s", len(lines), errs)
			}
			if !strings.Contains(errs, tc.want) {
				t.Errorf("stderr %q lacks %q", errs, tc.want)
			}
			if strings.Contains(errs, "panic") || strings.Contains(errs, "goroutine") || strings.Contains(errs, "internal error") {
				t.Errorf("stderr shows a crash: %s", errs)
			}
		})
	}
}

func TestHelpForCampaignCommands(t *testing.T) {
	for _, c := range []string{"gate", "fuzz", "replay", "kernels"} {
		code, out, _ := cli(t, "help", c)
		if code != exitPass || !strings.Contains(out, "usage: attnvet "+c) || !strings.Contains(out, "-") {
			t.Errorf("help %s: exit %d\n%s", c, code, out)
		}
	}
}

// TestAttnvetProcess is not a test: with ATTNVET_TEST_CLI set it is the
// attnvet process (its arguments tab-separated in the variable) for the
// tests that signal or kill a campaign.
func TestAttnvetProcess(t *testing.T) {
	args := os.Getenv("ATTNVET_TEST_CLI")
	if args == "" {
		t.Skip("the attnvet process of the signal tests")
	}
	if d := os.Getenv("ATTNVET_TEST_FLUSH"); d != "" {
		var err error
		if testFlushEvery, err = time.ParseDuration(d); err != nil {
			t.Fatal(err)
		}
	}
	if os.Getenv("ATTNVET_TEST_SIGNAL_READY") != "" {
		testSignalReady = func() { fmt.Fprintln(os.Stderr, signalReadyLine) }
	}
	os.Exit(run(strings.Split(args, "\t"), os.Stdout, os.Stderr))
}

// signalReadyLine is what TestAttnvetProcess prints on stderr, with
// ATTNVET_TEST_SIGNAL_READY set, once the SIGTERM handler is in place.
const signalReadyLine = "attnvet test: signal handler ready"

func attnvetProcess(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestAttnvetProcess$")
	cmd.Env = append(os.Environ(), "ATTNVET_TEST_CLI="+strings.Join(args, "\t"))
	return cmd
}

// savedCases is testkit.CaseFiles.
func savedCases(t *testing.T, dir string) map[string]string { return testkit.CaseFiles(t, dir) }

// The acceptance of issue 14, item 6: a fuzz campaign killed with SIGKILL
// has its failures on disk (the first of them saved, every one in the
// journal), and --resume finishes it with the failures, counts and saved
// files of an uninterrupted run of the same seed and --cases budget.
func TestFuzzKilledThenResumedEqualsUninterrupted(t *testing.T) {
	// The killed process journals every 20 ms (not every 500 ms), so a
	// small campaign is still running when its first failure is on disk.
	const n = 400
	if testing.Short() {
		t.Skip("runs three campaigns of 400 cases")
	}
	base := t.TempDir()
	killed, whole := filepath.Join(base, "killed"), filepath.Join(base, "whole")
	flags := []string{"--target", "mutant:pr301-n1-stale-state", "--seed", "5", "--cases", strconv.Itoa(n), "--save", "3", "--shrink-budget", "40", "--progress", "0"}
	cmd := attnvetProcess(append([]string{"fuzz", "--out", killed, "--json", filepath.Join(base, "never.json")}, flags...)...)
	cmd.Env = append(cmd.Env, "ATTNVET_TEST_FLUSH=20ms")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once it has journaled some cases and saved a failure.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		j, err := campaign.LoadJournal(killed)
		if err == nil && j.Done > 0 && len(savedCases(t, killed)) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the campaign journaled nothing in 2 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	j, err := campaign.LoadJournal(killed)
	if err != nil {
		t.Fatal(err)
	}
	if j.End != nil || j.Done >= n {
		t.Fatalf("the campaign ended before the kill (%d cases journaled): the test proves nothing", j.Done)
	}
	if _, err := os.Stat(filepath.Join(base, "never.json")); err == nil {
		t.Errorf("a killed campaign wrote its JSON")
	}
	t.Logf("killed after %d cases journaled, %d case files saved", j.Done, len(savedCases(t, killed)))

	// report --merge reads the journal: the failures so far, and the gap.
	kj := filepath.Join(killed, campaign.JournalFile)
	code, out, errs := cli(t, "report", "--merge", kj, "--json", filepath.Join(base, "so-far.json"))
	if code != exitMismatch || !strings.Contains(out, "GAP         fuzz seed 5: shard 0/1 stopped early: indices ") ||
		!strings.Contains(out, "replay: attnvet replay "+killed) || !strings.Contains(errs, "1 gaps") {
		t.Errorf("merge of the killed journal: exit %d\n%s\n%s", code, out, errs)
	}
	if r, err := campaign.LoadResult(filepath.Join(base, "so-far.json")); err != nil || r.Complete || r.Cases != j.Done || r.Runs[0].Stopped != "killed" {
		t.Errorf("merged killed journal: %v %+v", err, r)
	}

	// A fresh campaign does not overwrite the killed one's journal.
	if code, _, errs := cli(t, append([]string{"fuzz", "--out", killed}, flags...)...); code != exitUsage || !strings.Contains(errs, "--resume "+killed) {
		t.Errorf("fresh fuzz over a killed journal: exit %d %q", code, errs)
	}

	rjs, wjs, junit := filepath.Join(base, "resumed.json"), filepath.Join(base, "whole.json"), filepath.Join(base, "resumed.xml")
	code, out, errs = cli(t, "fuzz", "--resume", killed, "--json", rjs, "--junit", junit, "--workers", "1")
	if code != exitMismatch || !strings.Contains(out, "resuming "+filepath.Join(killed, campaign.JournalFile)) || !strings.Contains(out, "(killed)") ||
		!strings.Contains(out, "resumed     ") {
		t.Fatalf("resume: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := cli(t, append([]string{"fuzz", "--out", whole, "--json", wjs}, flags...)...); code != exitMismatch {
		t.Fatalf("uninterrupted: exit %d\n%s\n%s", code, out, errs)
	}
	r, err1 := campaign.LoadResult(rjs)
	w, err2 := campaign.LoadResult(wjs)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if got, want := mergeCounts(r), mergeCounts(w); !reflect.DeepEqual(got, want) {
		t.Errorf("resumed counts %v, uninterrupted %v", got, want)
	}
	if !reflect.DeepEqual(r.EdgeClasses, w.EdgeClasses) || !reflect.DeepEqual(r.Worst, w.Worst) || r.Passed || !r.Complete {
		t.Errorf("resumed edge classes, worst or verdict differ: %+v vs %+v", r.Worst, w.Worst)
	}
	failed := func(r *campaign.Result) []string {
		var ks []string
		for _, f := range r.Failures {
			ks = append(ks, f.Case+" "+filepath.Base(f.File))
		}
		sort.Strings(ks)
		return ks
	}
	if got, want := failed(r), failed(w); !reflect.DeepEqual(got, want) {
		t.Errorf("resumed failures %v, uninterrupted %v", got, want)
	}
	if got, want := savedCases(t, killed), savedCases(t, whole); !reflect.DeepEqual(got, want) || len(want) != 3 {
		t.Errorf("saved files differ: %d resumed, %d uninterrupted", len(got), len(want))
	}
	// Merging the finished journal is the resumed result.
	if code, _, errs := cli(t, "report", "--merge", kj, "--json", filepath.Join(base, "journal.json")); code != exitMismatch {
		t.Errorf("merge of the finished journal: exit %d %s", code, errs)
	} else if jr, err := campaign.LoadResult(filepath.Join(base, "journal.json")); err != nil || !jr.Complete || !reflect.DeepEqual(mergeCounts(jr), mergeCounts(w)) {
		t.Errorf("merged finished journal: %v, %v, want %v", err, mergeCounts(jr), mergeCounts(w))
	}
	x, err := os.ReadFile(junit)
	if err != nil || !bytes.Contains(x, []byte(`type="mismatch"`)) || bytes.Contains(x, []byte(`type="incomplete"`)) {
		t.Errorf("resumed JUnit: %v", err)
	}
}

// Issue 14, item 7: a campaign stopped by SIGTERM is not a pass: exit 2,
// "passed": false and "complete": false in its JSON, an error in its
// JUnit, and a merge of it with the other shards names the gap and exits
// 2 (and --resume completes it).
func TestInterruptedFuzzAndGateAreNotPasses(t *testing.T) {
	dir := t.TempDir()
	start := func(env string, args ...string) (*exec.Cmd, *bufio.Reader) {
		cmd := attnvetProcess(args...)
		if env != "" {
			cmd.Env = append(cmd.Env, env)
		}
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, bufio.NewReader(stderr)
	}
	exitOf := func(cmd *exec.Cmd) int {
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	}
	// A fuzz shard: SIGTERM after its first progress line (the signal
	// handler is in place by then).
	shard := func(i string) string { return filepath.Join(dir, "shard-"+i+".json") }
	fz := []string{"--target", "stream/bf16", "--seed", "3", "--cases", "1500"}
	cmd, stderr := start("", append([]string{"fuzz", "--shard", "1/3", "--progress", "50ms", "--json", shard("1"), "--junit", filepath.Join(dir, "f.xml"),
		"--out", filepath.Join(dir, "out-1")}, fz...)...)
	if _, err := stderr.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	io.Copy(io.Discard, stderr) // to EOF: the process has exited
	if code := exitOf(cmd); code != exitUsage {
		t.Errorf("fuzz stopped by SIGTERM: exit %d, want 2", code)
	}
	r, err := campaign.LoadResult(shard("1"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Passed || r.Complete || r.Runs[0].Missing == nil || r.Runs[0].Stopped != "signal" {
		t.Fatalf("interrupted fuzz JSON: passed %v complete %v missing %+v", r.Passed, r.Complete, r.Runs[0].Missing)
	}
	if x, _ := os.ReadFile(filepath.Join(dir, "f.xml")); !bytes.Contains(x, []byte(`type="incomplete"`)) {
		t.Errorf("interrupted fuzz JUnit has no incomplete error:\n%s", x)
	}
	for _, i := range []string{"0", "2"} {
		if code, out, errs := cli(t, append([]string{"fuzz", "--shard", i + "/3", "--json", shard(i), "--progress", "0", "--out", filepath.Join(dir, "out-"+i)}, fz...)...); code != exitPass {
			t.Fatalf("shard %s: exit %d\n%s\n%s", i, code, out, errs)
		}
	}
	m := r.Runs[0].Missing
	code, out, errs := cli(t, "report", "--merge", shard("0"), shard("1"), shard("2"), "--json", filepath.Join(dir, "m.json"))
	wantGap := "GAP         fuzz seed 3: shard 1/3 stopped early: " + summary.Missing(m)
	if code != exitUsage || !strings.Contains(out, wantGap) || !strings.Contains(out, "INCOMPLETE: ") || strings.Contains(out, "PASS") ||
		!strings.Contains(errs, "gaps") || strings.Count(errs, "\n") != 1 {
		t.Errorf("merge with a gap: exit %d, want 2 and %q\n%s\n%s", code, wantGap, out, errs)
	}
	if mr, err := campaign.LoadResult(filepath.Join(dir, "m.json")); err != nil || mr.Passed || mr.Complete || len(mr.Gaps) != 1 || mr.Gaps[0].Cases != m.Cases {
		t.Errorf("merged JSON: %v %+v", err, mr)
	}
	// Resumed, the shard completes and the merge passes.
	if code, out, errs := cli(t, "fuzz", "--resume", filepath.Join(dir, "out-1"), "--json", shard("1"), "--progress", "0"); code != exitPass || !strings.Contains(out, "(interrupted)") {
		t.Fatalf("resume of the interrupted shard: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := cli(t, "report", "--merge", shard("0"), shard("1"), shard("2"), "--json", filepath.Join(dir, "m.json")); code != exitPass || !strings.Contains(out, "PASS: no failure in 1,500 cases") {
		t.Errorf("merge after the resume: exit %d\n%s\n%s", code, out, errs)
	}

	// gate: SIGTERM once it is running.
	gj, gx := filepath.Join(dir, "gate.json"), filepath.Join(dir, "gate.xml")
	// The process says when its handler is in place (no guessed sleep);
	// the signal follows once the campaign has had 100 ms to run.
	cmd, stderr = start("ATTNVET_TEST_SIGNAL_READY=1", "gate", "--corpus", "none", "--cases", "1000000", "--kernels", "stream/bf16", "--json", gj, "--junit", gx, "--out", dir)
	if line, err := stderr.ReadString('\n'); err != nil || strings.TrimSpace(line) != signalReadyLine {
		cmd.Process.Kill()
		t.Fatalf("gate's first stderr line %q (%v), want %q", line, err, signalReadyLine)
	}
	time.Sleep(100 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	errb, _ := io.ReadAll(stderr)
	if code := exitOf(cmd); code != exitUsage || !strings.Contains(string(errb), "interrupted before every case ran: not a pass") {
		t.Errorf("gate stopped by SIGTERM: exit %d, want 2; stderr %q", code, errb)
	}
	g, err := campaign.LoadResult(gj)
	if err != nil || g.Passed || g.Complete {
		t.Errorf("interrupted gate JSON: %v, passed %v complete %v", err, g.Passed, g.Complete)
	}
	var doc campaign.JUnitSuites
	if x, err := os.ReadFile(gx); err != nil || xml.Unmarshal(x, &doc) != nil || doc.Errors == 0 || !bytes.Contains(x, []byte(`type="incomplete"`)) {
		t.Errorf("interrupted gate JUnit: %v, errors %d", err, doc.Errors)
	}
}

// TestGateFamilyFiltersCorpus: gate --family runs only that family's corpus
// cases.
func TestGateFamilyFiltersCorpus(t *testing.T) {
	js := filepath.Join(t.TempDir(), "g.json")
	var so, se bytes.Buffer
	if code := run([]string{"gate", "--family", "window", "--cases", "0", "--kernels", "stream/fp32", "--json", js}, &so, &se); code != exitPass {
		t.Fatalf("exit %d: %s", code, se.String())
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		CorpusCases int `json:"corpus_cases"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	all, _ := corpus.All()
	want := 0
	for _, c := range all {
		if c.Case.Family == problem.Window {
			want++
		}
	}
	if res.CorpusCases != want || want == 0 {
		t.Errorf("gate --family window ran %d corpus cases, want the %d window ones", res.CorpusCases, want)
	}
}

// tuneRuntime holds a campaign to its workers' cores (the collector's idle
// workers otherwise spin on the others) unless GOMAXPROCS is set, and its
// restore puts the previous settings back.
func TestTuneRuntimeLimitsCores(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	if procs < 2 {
		t.Skip("one core: nothing to limit")
	}
	for _, tc := range []struct {
		workers int
		env     string
		want    int
	}{
		{1, "", 1},
		{0, "", procs},
		{procs + 3, "", procs},
		{1, "2", procs},
	} {
		e := &env{getenv: func(k string) string {
			if k == "GOMAXPROCS" {
				return tc.env
			}
			return ""
		}}
		restore := tuneRuntime(e, tc.workers)
		got := runtime.GOMAXPROCS(0)
		restore()
		if got != tc.want || runtime.GOMAXPROCS(0) != procs {
			t.Errorf("workers %d, GOMAXPROCS=%q: %d cores during the run, %d after; want %d, %d",
				tc.workers, tc.env, got, runtime.GOMAXPROCS(0), tc.want, procs)
		}
	}
}
