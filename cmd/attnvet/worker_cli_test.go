package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/worker"
)

// The test binary doubles as an exec worker (docs/worker.md): with
// ATTNVET_TEST_WORKER set it serves the protocol with the tiled/bc32/bf16
// emulation, declaring no profile (bf16), and misbehaves as the mode says:
// "crash-sparse" exits on every sparse case, "hang-sparse" never answers
// one; window cases are answered correctly. "dense-only" declares
// protocol 2, families=dense and the quantized K/V caches it decodes.
func TestMain(m *testing.M) {
	if mode := os.Getenv("ATTNVET_TEST_WORKER"); mode != "" {
		os.Exit(testWorker(mode))
	}
	os.Exit(m.Run())
}

func testWorker(mode string) int {
	r, w := bufio.NewReader(os.Stdin), bufio.NewWriter(os.Stdout)
	reply := func(f *bundle.File) {
		var b bytes.Buffer
		if err := f.WriteSafetensors(&b); err != nil {
			panic(err)
		}
		worker.WriteFrame(w, b.Bytes())
		w.Flush()
	}
	em, _ := impl.Lookup("tiled/bc32/bf16")
	for {
		payload, err := worker.ReadFrame(r, 1<<30)
		if err != nil {
			return 0 // stdin closed
		}
		f, err := bundle.Parse(payload)
		if err != nil {
			return 2
		}
		if f.Metadata[worker.KeyRequest] == "hello" {
			h := bundle.NewFile()
			if mode == "dense-only" {
				// It decodes the quantized K/V caches as check does, so it
				// declares them: the skips left are the declarations' own.
				h.Metadata["protocol"], h.Metadata["families"], h.Metadata["quantized"] = "2", "dense", "int8_kv,nvfp4_kv,int4_kv"
			}
			reply(h)
			continue
		}
		b, err := interop.Decode(f, nil)
		if err != nil {
			g := bundle.NewFile()
			g.Metadata[interop.KeyError] = err.Error()
			reply(g)
			continue
		}
		in := b.Inputs
		if in.Family == "sparse" {
			switch mode {
			case "crash-sparse":
				fmt.Fprintln(os.Stderr, "test worker: segmentation fault (pretend)")
				return 139
			case "hang-sparse":
				time.Sleep(time.Hour)
			}
		}
		out, err := em.Run(in)
		if err != nil {
			panic(err)
		}
		o, err := bundle.NewFloat32("o", bundle.BF16, []int{in.T, in.H, in.Dv}, out.O)
		if err != nil {
			panic(err)
		}
		g := bundle.NewFile()
		g.Add(o)
		if out.LSE != nil {
			lse, err := bundle.NewFloat32("lse", bundle.F32, []int{in.T, in.H}, out.LSE)
			if err != nil {
				panic(err)
			}
			g.Add(lse)
		}
		reply(g)
	}
}

// testWorkerTarget is the exec: target of the test worker in mode.
func testWorkerTarget(t *testing.T, mode string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("exec:ATTNVET_TEST_WORKER=%s exec '%s'", mode, exe)
}

// An exec worker that crashes is a worker failure, reported apart from
// numerical mismatches with its replay command (carrying the worker
// flags), the worker's restarts in the summary, and exit 1; the replay
// command reproduces it.
func TestFuzzExecWorkerCrashes(t *testing.T) {
	dir := t.TempDir()
	js := filepath.Join(dir, "r.json")
	target := testWorkerTarget(t, "crash-sparse")
	code, out, errs := cli(t, "fuzz", "--target", target, "--cases", "10", "--seed", "3", "--save", "1",
		"--case-timeout", "20s", "--worker-profile", "bf16", "--out", dir, "--json", js, "--progress", "0", "--workers", "2")
	if code != exitMismatch {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	r, err := campaign.LoadResult(js)
	if err != nil {
		t.Fatal(err)
	}
	if r.WorkerFailedChecks == 0 || r.FailedChecks != 0 || r.Checks == 0 || r.WorkerFailureKinds["crash"] != r.WorkerFailedChecks {
		t.Fatalf("%d worker failures (%v), %d failed checks, %d checks: want crashes on the sparse cases only",
			r.WorkerFailedChecks, r.WorkerFailureKinds, r.FailedChecks, r.Checks)
	}
	// Each crash is retried once on a fresh process: two starts per failure.
	if s := r.Targets[0].Worker; s == nil || s.Crashes != int64(2*r.WorkerFailedChecks) || s.Starts < s.Crashes {
		t.Errorf("worker stats %+v", s)
	}
	for _, want := range []string{"worker failures " + fmt.Sprint(r.WorkerFailedChecks) + " (crash " + fmt.Sprint(r.WorkerFailedChecks) + ")",
		"WORKER CRASH: " + target, "segmentation fault (pretend)", "restarts (", "worker failures)"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	m := regexp.MustCompile(`replay: (attnvet replay .*)`).FindStringSubmatch(out)
	if m == nil || !strings.HasSuffix(m[1], " --worker-profile bf16 --case-timeout 20s") {
		t.Fatalf("no replay command with the worker flags in:\n%s", out)
	}
	// The replay command, as printed, reproduces the crash.
	args := shellSplit(t, m[1])[1:]
	code, rout, rerr := cli(t, args...)
	if code != exitMismatch || !strings.Contains(rout, "worker crash") {
		t.Errorf("replay: exit %d\n%s\n%s", code, rout, rerr)
	}
}

// A worker that hangs past --case-timeout is a timeout failure.
func TestGateExecWorkerTimeout(t *testing.T) {
	target := testWorkerTarget(t, "hang-sparse")
	js := filepath.Join(t.TempDir(), "gate.json")
	code, out, errs := cli(t, "gate", "--corpus", "none", "--cases", "3", "--family", "sparse", "--kernels", target,
		"--case-timeout", "150ms", "--workers", "1", "--out", t.TempDir(), "--json", js)
	r, err := campaign.LoadResult(js)
	if err != nil {
		t.Fatal(err)
	}
	n := r.WorkerFailedChecks
	if code != exitMismatch || n == 0 || r.WorkerFailureKinds["timeout"] != n || r.FailedChecks != 0 ||
		!strings.Contains(out, fmt.Sprintf("worker failures %d (timeout %d)", n, n)) || !strings.Contains(out, "no reply within 150ms") {
		t.Errorf("exit %d\n%s\n%s", code, out, errs)
	}
}

func TestWorkerFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fuzz", "--cases", "1", "--case-timeout", "0s"}, "--case-timeout 0s: want a positive duration"},
		{[]string{"fuzz", "--cases", "1", "--worker-profile", "bf17"}, "unknown precision profile"},
		{[]string{"fuzz", "--cases", "1", "--worker-profile", "fp32"}, "applies to exec: targets only"},
		{[]string{"gate", "--cases", "1", "--kernels", "stream/bf16", "--worker-profile", "fp32"}, "applies to exec: targets only"},
	} {
		code, _, errs := cli(t, tc.args...)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errs, tc.want)
		}
	}
}

// shellSplit splits a command line with single-quoted words and
// backslash escapes, as campaign.ReplayCommand quotes a quote.
func shellSplit(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	var cur strings.Builder
	in, any := false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'':
			in, any = !in, true
		case c == '\\' && !in && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			any = true
		case c == ' ' && !in:
			if any {
				out = append(out, cur.String())
			}
			cur.Reset()
			any = false
		default:
			cur.WriteByte(c)
			any = true
		}
	}
	if in {
		t.Fatalf("unbalanced quotes in %q", s)
	}
	if any {
		out = append(out, cur.String())
	}
	return out
}

// A worker whose hello declares one family is sent that family when
// --family is not given (not the sparse/window mix, all skipped), and
// the summary says so; two families the mix does not cover are exit 2.
func TestFuzzDrawsTheDeclaredFamily(t *testing.T) {
	target := testWorkerTarget(t, "dense-only")
	dir := t.TempDir()
	js := filepath.Join(dir, "r.json")
	code, out, errOut := cli(t, "fuzz", "--target", target, "--cases", "30", "--seed", "3", "--out", dir, "--json", js, "--progress", "0", "--worker-profile", "bf16")
	if code != 0 || !strings.Contains(out, "family dense, the one family the target declares") {
		t.Fatalf("exit %d, want 0 and the family named\n%s\n%s", code, out, errOut)
	}
	r, err := campaign.LoadResult(js)
	if err != nil {
		t.Fatal(err)
	}
	if r.Checks < 10 {
		t.Errorf("%d checks: want the dense cases judged", r.Checks)
	}
	for reason := range r.SkipReasons {
		if strings.Contains(reason, "family") {
			t.Errorf("skipped for %q: the campaign drew a family the worker does not declare", reason)
		}
	}
}
