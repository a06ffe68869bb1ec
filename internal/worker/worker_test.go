package worker

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/props"
	"github.com/attnvet/attnvet/ref"
)

// The test binary doubles as a fake worker: with ATTNVET_FAKE_WORKER set
// it serves the protocol (with the tiled emulation as its kernel) and
// misbehaves as the mode says.
func TestMain(m *testing.M) {
	if mode := os.Getenv("ATTNVET_FAKE_WORKER"); mode != "" {
		os.Exit(fakeWorker(mode, os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// fakeWorker modes: ok; crash@N (exit on request N); crash-once@N (only
// in the first process: a marker file in ATTNVET_FAKE_DIR); hang@N;
// garbage@N (text on stdout); error@N; shape@N (o of the wrong shape);
// nohello; badhello; huge@N (a length prefix of 2 GiB); noprofile.
func fakeWorker(mode string, stdin io.Reader, stdout io.Writer) int {
	what, at := mode, int64(-1)
	if i := strings.IndexByte(mode, '@'); i >= 0 {
		what = mode[:i]
		at, _ = strconv.ParseInt(mode[i+1:], 10, 64)
	}
	r := bufio.NewReader(stdin)
	w := bufio.NewWriter(stdout)
	reply := func(f *bundle.File) {
		var b bytes.Buffer
		if err := f.WriteSafetensors(&b); err != nil {
			panic(err)
		}
		WriteFrame(w, b.Bytes())
		w.Flush()
	}
	em, _ := impl.Lookup("tiled/bc32/bf16")
	for {
		payload, err := ReadFrame(r, 1<<30)
		if err != nil {
			return 0 // stdin closed
		}
		f, err := bundle.Parse(payload)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fake worker: bad frame:", err)
			return 2
		}
		if f.Metadata[KeyRequest] == "hello" {
			switch what {
			case "nohello":
				fmt.Fprintln(os.Stderr, "fake worker: I do not speak hello")
				return 1
			case "badhello":
				g := bundle.NewFile()
				g.Metadata["score_dtype"] = "int4"
				reply(g)
				continue
			}
			g := bundle.NewFile()
			if what != "noprofile" {
				for k, v := range interop.ProfileMeta(em.Profile()) {
					g.Metadata[k] = v
				}
			}
			reply(g)
			continue
		}
		seq, _ := strconv.ParseInt(f.Metadata[KeySeq], 10, 64)
		hit := seq == at
		if what == "crash-once" && hit {
			marker := filepath.Join(os.Getenv("ATTNVET_FAKE_DIR"), "crashed")
			if _, err := os.Stat(marker); err == nil {
				hit = false
			} else {
				os.WriteFile(marker, nil, 0o644)
			}
		}
		if hit {
			switch what {
			case "crash", "crash-once":
				fmt.Fprintln(os.Stderr, "fake worker: segmentation fault (pretend)")
				return 139
			case "hang":
				time.Sleep(time.Hour)
			case "garbage":
				fmt.Fprintln(w, "debug: computing attention")
				w.Flush()
				continue
			case "huge":
				var h [8]byte
				binary.LittleEndian.PutUint64(h[:], 2<<30)
				w.Write(h[:])
				w.Flush()
				continue
			case "error":
				g := bundle.NewFile()
				g.Metadata["error"] = "unsupported head count"
				reply(g)
				continue
			}
		}
		b, err := interop.Decode(f, nil)
		if err != nil {
			g := bundle.NewFile()
			g.Metadata["error"] = err.Error()
			reply(g)
			continue
		}
		out, err := em.Run(b.Inputs)
		if err != nil {
			panic(err)
		}
		in := b.Inputs
		shape := []int{in.T, in.H, in.Dv}
		if hit && what == "shape" {
			shape = []int{in.T, in.Dv, in.H}
		}
		o, err := bundle.NewFloat32("o", bundle.BF16, shape, out.O)
		if err != nil {
			panic(err)
		}
		g := bundle.NewFile()
		g.Add(o)
		reply(g)
	}
}

func fakeCmd(t *testing.T, mode string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("ATTNVET_FAKE_WORKER='%s' ATTNVET_FAKE_DIR='%s' exec '%s'", mode, t.TempDir(), exe)
}

func newWorker(t *testing.T, mode string, opt Options) *Worker {
	t.Helper()
	w, err := New(fakeCmd(t, mode), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func inputs(t *testing.T, i int) *problem.Inputs {
	t.Helper()
	c := props.CaseAt(11, i, "")
	c.DType = ""
	in, err := cases.Generate(c, num.BF16)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func judge(t *testing.T, w *Worker, in *problem.Inputs, out *impl.Output) tolerance.Verdict {
	t.Helper()
	r := ref.Compute(in, ref.Options{Workers: 1})
	return tolerance.BoundCriterion{Mode: tolerance.Rigorous}.Judge(&tolerance.Input{In: in, Ref: r, Out: out.O, OutLSE: out.LSE, Profile: w.Profile()})
}

func TestWorkerRuns(t *testing.T) {
	w := newWorker(t, "ok", DefaultOptions())
	if w.Profile() != profile.MustLookup("bf16") {
		t.Fatalf("profile %+v", w.Profile())
	}
	em, _ := impl.Lookup("tiled/bc32/bf16")
	for i := 0; i < 20; i++ {
		in := inputs(t, i)
		if len(in.Violations()) > 0 {
			continue
		}
		out, err := w.Run(in)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		want, _ := em.Run(in)
		for j := range want.O {
			if num.Round32(num.BF16, want.O[j], num.RNE) != out.O[j] && !(out.O[j] != out.O[j]) {
				t.Fatalf("case %d: element %d = %v, want %v", i, j, out.O[j], want.O[j])
			}
		}
		if v := judge(t, w, in, out); !v.Pass {
			t.Errorf("case %d: %+v", i, v)
		}
	}
	if s := w.Stats(); s.Starts != 1 || s.Crashes+s.Timeouts+s.Malformed+s.Reported != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestWorkerConcurrent(t *testing.T) {
	opt := DefaultOptions()
	opt.Procs = 2
	w := newWorker(t, "ok", opt)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < 16; i += 4 {
				in := inputs(t, i)
				if _, err := w.Run(in); err != nil {
					errs <- err
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s := w.Stats(); s.Starts != 2 || s.Requests != 16 {
		t.Errorf("stats %+v", s)
	}
}

func TestWorkerFailures(t *testing.T) {
	for _, tc := range []struct {
		mode    string
		kind    string
		msg     string
		stats   Stats
		timeout time.Duration
	}{
		{"crash@2", Crash, "it died on this request 2 times", Stats{Requests: 3, Starts: 3, Crashes: 2}, 0},
		{"hang@2", Timeout, "no reply within 300ms; killed", Stats{Requests: 3, Starts: 2, Timeouts: 1}, 300 * time.Millisecond},
		{"garbage@2", Malformed, "the worker must write only frames to stdout", Stats{Requests: 3, Starts: 2, Malformed: 1}, 0},
		{"huge@2", Malformed, "length prefix 2147483648 exceeds the 1073741824-byte limit", Stats{Requests: 3, Starts: 2, Malformed: 1}, 0},
		{"error@2", Reported, "the worker reported: unsupported head count", Stats{Requests: 3, Starts: 1, Reported: 1}, 0},
		{"shape@2", Malformed, "tensor o: shape", Stats{Requests: 3, Starts: 2, Malformed: 1}, 0},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			opt := DefaultOptions()
			if tc.timeout > 0 {
				opt.CaseTimeout = tc.timeout
			}
			var logs []string
			var mu sync.Mutex
			opt.Logf = func(f string, a ...any) { mu.Lock(); logs = append(logs, fmt.Sprintf(f, a...)); mu.Unlock() }
			w := newWorker(t, tc.mode, opt)
			in := inputs(t, 1)
			if _, err := w.Run(in); err != nil {
				t.Fatalf("request 1: %v", err)
			}
			_, err := w.Run(in)
			var we *Error
			if !errors.As(err, &we) {
				t.Fatalf("request 2: %v, want a *worker.Error", err)
			}
			if we.Kind != tc.kind || we.Request != 2 || !strings.Contains(we.Msg, tc.msg) || we.Case != interop.Describe(in) {
				t.Errorf("error %+v, want kind %s with %q", we, tc.kind, tc.msg)
			}
			if tc.kind == Crash && !strings.Contains(err.Error(), "segmentation fault (pretend)") {
				t.Errorf("stderr tail missing: %v", err)
			}
			// The campaign goes on: the next request is served (by a fresh process).
			if _, err := w.Run(in); err != nil {
				t.Fatalf("request 3 after the failure: %v", err)
			}
			if s := w.Stats(); s != tc.stats {
				t.Errorf("stats %+v, want %+v", s, tc.stats)
			}
			if tc.kind != Reported && len(logs) == 0 {
				t.Error("nothing logged")
			}
		})
	}
}

// A worker killed from outside mid-run: the request is retried on a fresh
// process and succeeds; no failure is reported.
func TestWorkerCrashOnceRetried(t *testing.T) {
	w := newWorker(t, "crash-once@2", DefaultOptions())
	in := inputs(t, 2)
	for i := 0; i < 3; i++ {
		if _, err := w.Run(in); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	if s := w.Stats(); s.Crashes != 1 || s.Retried != 1 || s.Starts != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestWorkerKilledFromOutside(t *testing.T) {
	w := newWorker(t, "ok", DefaultOptions())
	in := inputs(t, 3)
	if _, err := w.Run(in); err != nil {
		t.Fatal(err)
	}
	p := <-w.slots
	p.cmd.Process.Kill()
	<-p.done
	w.slots <- p
	if _, err := w.Run(in); err != nil {
		t.Fatalf("after kill: %v", err)
	}
	if s := w.Stats(); s.Crashes != 1 || s.Retried != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestWorkerStartErrors(t *testing.T) {
	for _, tc := range []struct{ cmd, want string }{
		{"", "worker: empty command"},
		{"exit 3", "no hello reply (crash)"},
		{"/nonexistent/worker", "not found"},
	} {
		if _, err := New(tc.cmd, DefaultOptions()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q): %v, want %q", tc.cmd, err, tc.want)
		}
	}
	for _, tc := range []struct{ mode, want string }{
		{"nohello", "I do not speak hello"},
		{"badhello", `its hello declares a bad profile: metadata score_dtype: unknown dtype "int4"`},
	} {
		if _, err := New(fakeCmd(t, tc.mode), DefaultOptions()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.mode, err, tc.want)
		}
	}
	// A hello without a profile means bf16.
	w := newWorker(t, "noprofile", DefaultOptions())
	if w.Profile().Name != "bf16" {
		t.Errorf("profile %s", w.Profile().Name)
	}
	// Options.Profile overrides the declaration.
	p := profile.MustLookup("bf16rne")
	opt := DefaultOptions()
	opt.Profile = &p
	if w := newWorker(t, "ok", opt); w.Profile() != p {
		t.Errorf("override ignored: %+v", w.Profile())
	}
}

func TestWorkerClose(t *testing.T) {
	w := newWorker(t, "ok", DefaultOptions())
	w.Close()
	w.Close()
	_, err := w.Run(inputs(t, 0))
	var we *Error
	if !errors.As(err, &we) || !strings.Contains(we.Msg, "closed") {
		t.Errorf("Run after Close: %v", err)
	}
}

func TestFrames(t *testing.T) {
	var b bytes.Buffer
	WriteFrame(&b, []byte("hello"))
	WriteFrame(&b, nil)
	got, err := ReadFrame(&b, 100)
	if err != nil || string(got) != "hello" {
		t.Fatalf("%q %v", got, err)
	}
	if got, err := ReadFrame(&b, 100); err != nil || len(got) != 0 {
		t.Fatalf("empty frame: %q %v", got, err)
	}
	if _, err := ReadFrame(&b, 100); err != io.EOF {
		t.Errorf("end: %v", err)
	}
	WriteFrame(&b, []byte("hello"))
	if _, err := ReadFrame(&b, 4); !errors.Is(err, errFrameTooLarge) {
		t.Errorf("limit: %v", err)
	}
	b.Reset()
	WriteFrame(&b, []byte("hello"))
	b.Truncate(10)
	if _, err := ReadFrame(&b, 100); err != io.ErrUnexpectedEOF {
		t.Errorf("truncated: %v", err)
	}
}

func TestLastLines(t *testing.T) {
	if got := lastLines("a\n\nb\nc\nd\n", 2, 100); got != "c | d" {
		t.Errorf("%q", got)
	}
	if got := lastLines("abcdef", 1, 3); got != "…def" {
		t.Errorf("%q", got)
	}
}

func TestExecPrefix(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"/usr/bin/python3 examples/torch_worker.py", "exec "},
		{"  python3 -u w.py --naive", "exec "},
		{"'/path with space/w' x", "exec "},
		{"exec python3 w.py", ""},
		{"A=1 python3 w.py", ""},
		{"cd dir && python3 w.py", ""},
		{"python3 w.py 2>log", ""},
		{"python3 $W", ""},
		{"", ""},
	} {
		if got := execPrefix(tc.line); got != tc.want {
			t.Errorf("execPrefix(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

// A compound command line: the shell stays, the worker is its child; a
// timeout still kills both (the process group).
func TestWorkerCompoundCommand(t *testing.T) {
	opt := DefaultOptions()
	opt.CaseTimeout = 300 * time.Millisecond
	w := newWorker(t, "hang@1", opt)
	w2, err := New("true; "+w.Command(), opt)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	_, err = w2.Run(inputs(t, 0))
	var we *Error
	if !errors.As(err, &we) || we.Kind != Timeout {
		t.Fatalf("%v, want a timeout", err)
	}
	if _, err := w2.Run(inputs(t, 0)); err != nil {
		t.Fatalf("after the timeout: %v", err)
	}
}
