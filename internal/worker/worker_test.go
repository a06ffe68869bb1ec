package worker

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
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
	code := m.Run()
	closeSharedTorch()
	os.Exit(code)
}

// fakeWorker modes: ok; crash@N (exit on request N); crash-once@N (only
// in the first process: a marker file in ATTNVET_FAKE_DIR); hang@N;
// garbage@N (text on stdout); error@N; shape@N (o of the wrong shape);
// nohello; badhello; huge@N (a length prefix of 2 GiB); noprofile;
// big@N (a length prefix of 64 MiB, within the frame limit, then a
// hang); every@N (crash on every N-th request of each process);
// gib-every@N (a 1 GiB reply, streamed, on every N-th request of each
// process: scripts/hostile.sh);
// segv-once@N (a real SIGSEGV, first process only); term-once@N (SIGTERM to itself, first process
// only: a kill from outside); forkexit@N (start a child that holds
// stdout, then exit); hellohang; deaf (ignore stdin's end). The hello
// reply also carries the JSON object in ATTNVET_FAKE_HELLO; with a
// protocol 2 hello every request's tensors must come in the declared
// dtypes, quantized codes excepted (else the reply is an error). ATTNVET_FAKE_PID names a file
// the worker writes its pid to; ATTNVET_FAKE_KERNEL names the emulation
// it runs (default tiled/bc32/bf16). Modes unit-*: fakeDequant.
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
	if k := os.Getenv("ATTNVET_FAKE_KERNEL"); k != "" {
		em, _ = impl.Lookup(k)
	}
	extra := map[string]string{}
	if h := os.Getenv("ATTNVET_FAKE_HELLO"); h != "" {
		if err := json.Unmarshal([]byte(h), &extra); err != nil {
			panic(err)
		}
	}
	if pf := os.Getenv("ATTNVET_FAKE_PID"); pf != "" {
		os.WriteFile(pf, []byte(strconv.Itoa(os.Getpid())), 0o644)
	}
	served := int64(0)
	for {
		payload, err := ReadFrame(r, 1<<30)
		if err != nil {
			if what == "deaf" {
				time.Sleep(time.Hour)
			}
			return 0 // stdin closed
		}
		f, err := bundle.Parse(payload)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fake worker: bad frame:", err)
			return 2
		}
		if f.Metadata[KeyRequest] == "hello" {
			if h := fakeOnHello[what]; h != nil {
				h()
			}
			if what == "restartfail" {
				dir := os.Getenv("ATTNVET_FAKE_DIR")
				_, crashed := os.Stat(filepath.Join(dir, "crashed"))
				if _, err := os.Stat(filepath.Join(dir, "hellofailed")); crashed == nil && err != nil {
					os.WriteFile(filepath.Join(dir, "hellofailed"), nil, 0o644)
					return 1
				}
			}
			switch what {
			case "hellohang":
				time.Sleep(time.Hour)
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
			for k, v := range extra {
				g.Metadata[k] = v
			}
			reply(g)
			continue
		}
		seq, _ := strconv.ParseInt(f.Metadata[KeySeq], 10, 64)
		served++
		hit := seq == at
		if what == "every" || what == "gib-every" {
			hit = served%at == 0
		}
		if extra[KeyProtocol] == "2" {
			bad := ""
			for k, v := range extra {
				if name, ok := strings.CutPrefix(k, KeyDTypePrefix); ok {
					if t, ok := f.Tensors[name]; ok && string(t.DType) != v && !isCodes(t.DType) {
						bad = fmt.Sprintf("%s came as %s, declared %s", name, t.DType, v)
					}
				}
			}
			if bad != "" {
				g := bundle.NewFile()
				g.Metadata["error"] = bad
				reply(g)
				continue
			}
			if f.Metadata[KeyProtocol] != "2" {
				panic("a v2 request without protocol=2")
			}
		}
		if (what == "crash-once" || what == "term-once" || what == "segv-once" || what == "restartfail") && hit {
			marker := filepath.Join(os.Getenv("ATTNVET_FAKE_DIR"), "crashed")
			if _, err := os.Stat(marker); err == nil {
				hit = false
			} else {
				os.WriteFile(marker, nil, 0o644)
			}
		}
		if hit {
			switch what {
			case "crash", "crash-once", "every":
				fmt.Fprintln(os.Stderr, "fake worker: segmentation fault (pretend)")
				return 139
			case "segv-once":
				// Go's runtime turns a SIGSEGV into exit 2: let a shell take
				// over the process and die of the signal.
				fmt.Fprintln(os.Stderr, "fake worker: a real SIGSEGV")
				dieBySignal("SEGV")
			case "term-once", "restartfail":
				dieBySignal("TERM")
			case "forkexit":
				c := exec.Command("sleep", "30")
				c.Stdout = os.Stdout
				if err := c.Start(); err != nil {
					panic(err)
				}
				if pf := os.Getenv("ATTNVET_FAKE_PID"); pf != "" {
					os.WriteFile(pf+".child", []byte(strconv.Itoa(c.Process.Pid)), 0o644)
				}
				return 3
			case "big":
				var h [8]byte
				binary.LittleEndian.PutUint64(h[:], 64<<20)
				w.Write(h[:])
				w.Flush()
				time.Sleep(time.Hour)
			case "gib-every":
				// A 1 GiB reply (within the frame limit), streamed: its
				// length prefix, then zeros until attnvet hangs up.
				var h [8]byte
				binary.LittleEndian.PutUint64(h[:], 1<<30)
				w.Write(h[:])
				zeros := make([]byte, 1<<20)
				for range 1 << 10 {
					if _, err := w.Write(zeros); err != nil {
						return 141
					}
				}
				w.Flush()
				continue
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
		if !fakeDequant(what, f) {
			g := bundle.NewFile()
			g.Metadata["error"] = "no quantized tensors for mode " + what
			reply(g)
			continue
		}
		b, err := interop.Decode(f, nil)
		if err != nil {
			g := bundle.NewFile()
			g.Metadata["error"] = err.Error()
			reply(g)
			continue
		}
		if b.Inputs.LSE == nil && strings.Contains(f.Metadata[KeyOutputs], TLSE) {
			c, err := problem.ParseLSEConv(f.Metadata["lse_base"], f.Metadata["lse_empty"], f.Metadata["lse_sink"], b.Inputs.Sink != nil)
			if err != nil {
				panic(err)
			}
			b.Inputs.LSE = &c
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
		if out.LSE != nil && what != "nolse" {
			lshape := []int{in.T, in.H}
			if hit && what == "lseshape" {
				lshape = []int{in.H, in.T}
			}
			l, err := bundle.NewFloat32(TLSE, bundle.F32, lshape, out.LSE)
			if err != nil {
				panic(err)
			}
			g.Add(l)
		}
		reply(g)
	}
}

// fakeDequant makes the fake worker dequantize wrongly, as the mode
// says: unit-block-scales (every NVFP4 block scale read as 1),
// unit-global-scale (the NVFP4 global scales read as 1), unit-int8-scale
// (the INT8 scales read as 1), unit-descale (the FP8 descales read as 1).
// It says whether the request had the tensors the mode rewrites (any mode
// not listed: true).
func fakeDequant(mode string, f *bundle.File) bool {
	ones := func(names ...string) bool {
		found := false
		for _, n := range names {
			t := f.Tensors[n]
			if t == nil {
				continue
			}
			found = true
			if t.DType == bundle.U8 || t.DType == bundle.F8E4M3 {
				nt, _ := bundle.NewBytes(n, t.DType, t.Shape, bytes.Repeat([]byte{0x38}, len(t.Data))) // e4m3 1.0
				f.Add(nt)
				continue
			}
			v := make([]float32, len(t.Data)/4)
			for i := range v {
				v[i] = 1
			}
			nt, _ := bundle.NewFloat32(n, t.DType, t.Shape, v)
			f.Add(nt)
		}
		return found
	}
	switch mode {
	case "unit-block-scales":
		return ones(interop.TKBlockScale, interop.TVBlockScale)
	case "unit-global-scale":
		return ones(interop.TKGlobalScale, interop.TVGlobalScale)
	case "unit-int8-scale":
		return ones(interop.TKScale, interop.TVScale)
	case "unit-descale":
		return ones(interop.TQDescale, interop.TKDescale, interop.TVDescale)
	}
	return true
}

// fakeOnHello holds platform-specific fake modes' actions at the hello.
var fakeOnHello = map[string]func(){}

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
	if k := os.Getenv("ATTNVET_FAKE_KERNEL"); k != "" {
		em, _ = impl.Lookup(k)
	}
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
		{"crash@2", Crash, "it died on this request 2 times", Stats{Procs: 1, Requests: 3, Starts: 3, Crashes: 2}, 0},
		{"hang@2", Timeout, "no reply within 300ms; killed", Stats{Procs: 1, Requests: 3, Starts: 2, Timeouts: 1}, 300 * time.Millisecond},
		{"garbage@2", Malformed, "the worker must write only frames to stdout", Stats{Procs: 1, Requests: 3, Starts: 2, Malformed: 1}, 0},
		{"huge@2", Malformed, "length prefix 2147483648 exceeds the largest valid reply to this case", Stats{Procs: 1, Requests: 3, Starts: 2, Malformed: 1}, 0},
		{"error@2", Reported, "the worker reported: unsupported head count", Stats{Procs: 1, Requests: 3, Starts: 1, Reported: 1}, 0},
		{"shape@2", Malformed, "tensor o: shape", Stats{Procs: 1, Requests: 3, Starts: 2, Malformed: 1}, 0},
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
			if s := w.Stats(); !reflect.DeepEqual(s, tc.stats) {
				t.Errorf("stats %+v, want %+v", s, tc.stats)
			}
			if tc.kind != Reported && len(logs) == 0 {
				t.Error("nothing logged")
			}
		})
	}
}

// A worker that dies on a request by itself (exit 139, or a real
// SIGSEGV) and answers it on a fresh process: a crash_retried failure,
// not a pass (issue 14, defect 5).
func TestWorkerCrashRetried(t *testing.T) {
	for _, mode := range []string{"crash-once@2", "segv-once@2"} {
		t.Run(mode, func(t *testing.T) {
			w := newWorker(t, mode, DefaultOptions())
			in := inputs(t, 2)
			if _, err := w.Run(in); err != nil {
				t.Fatalf("request 1: %v", err)
			}
			_, err := w.Run(in)
			var we *Error
			if !errors.As(err, &we) || we.Kind != CrashRetried || we.Request != 2 || !strings.Contains(we.Msg, "a fresh process answered it") {
				t.Fatalf("request 2: %v, want a crash_retried failure", err)
			}
			if mode == "segv-once@2" && !strings.Contains(we.Msg, "segmentation fault") {
				t.Errorf("no signal in %q", we.Msg)
			}
			if _, err := w.Run(in); err != nil {
				t.Fatalf("request 3: %v", err)
			}
			if s := w.Stats(); s.Crashes < 1 || s.Retried < 1 || s.CrashRetried < 1 || s.Killed != 0 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

// A worker that crashes on every third request of each process: every
// one of those crashes is counted and reported (issue 14, defect 5: 165
// crashes passed as a clean run).
func TestWorkerCrashEveryThird(t *testing.T) {
	w := newWorker(t, "every@3", DefaultOptions())
	in := inputs(t, 2)
	failed := 0
	for i := 0; i < 12; i++ {
		_, err := w.Run(in)
		var we *Error
		if errors.As(err, &we) && we.Kind == CrashRetried {
			failed++
		} else if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	s := w.Stats()
	if failed == 0 || int64(failed) != s.Crashes || s.CrashRetried != s.Crashes {
		t.Errorf("%d crash_retried failures, stats %+v", failed, s)
	}
}

// Killed from outside, and the first restart dies in its hello: the
// request is served by the next start, not reported.
func TestWorkerRestartFailsOnce(t *testing.T) {
	w := newWorker(t, "restartfail@2", DefaultOptions())
	in := inputs(t, 2)
	for i := 0; i < 3; i++ {
		if _, err := w.Run(in); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	if s := w.Stats(); s.Starts != 3 || s.Killed != 1 || s.Retried != 1 || s.CrashRetried != 0 {
		t.Errorf("stats %+v", s)
	}
}

// A signal from outside (SIGTERM) is not the worker's doing: the retry's
// result stands.
func TestWorkerTerminatedFromOutside(t *testing.T) {
	w := newWorker(t, "term-once@2", DefaultOptions())
	in := inputs(t, 2)
	for i := 0; i < 3; i++ {
		if _, err := w.Run(in); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	if s := w.Stats(); s.Crashes != 1 || s.Killed != 1 || s.Retried != 1 || s.CrashRetried != 0 || s.Starts != 2 {
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
	if s := w.Stats(); s.Crashes != 1 || s.Retried != 1 || s.Killed != 1 || s.CrashRetried != 0 {
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

// A length prefix within the frame limit but beyond the largest valid
// reply to the case (64 MiB for a tiny o) is rejected unread, at once
// (issue 14, defect 8: 1 GiB replies took 6.4 GB RSS).
func TestWorkerOversizeReply(t *testing.T) {
	opt := DefaultOptions()
	opt.CaseTimeout = 20 * time.Second
	w := newWorker(t, "big@1", opt)
	in := inputs(t, 1)
	start := time.Now()
	_, err := w.Run(in)
	var we *Error
	if !errors.As(err, &we) || we.Kind != Malformed || !strings.Contains(we.Msg, "length prefix 67108864 exceeds the largest valid reply to this case") {
		t.Fatalf("%v, want a malformed reply rejected from its length prefix", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v: the reply was read, not rejected from its prefix", d)
	}
	if want := int64(8*in.T*in.H*in.Dv + replyHeader); replyLimit(in, DefaultMaxFrame) != want {
		t.Errorf("replyLimit %d, want %d", replyLimit(in, DefaultMaxFrame), want)
	}
	if got := replyLimit(&problem.Inputs{T: 1 << 20, H: 1 << 10, Dv: 1 << 10}, DefaultMaxFrame); got != DefaultMaxFrame {
		t.Errorf("replyLimit of a huge case %d, want the frame limit", got)
	}
}

// A worker that exits while a process it started keeps its stdout open
// is a crash when it exits, not a timeout at the end of the case timeout
// (issue 14, defect 13).
func TestWorkerLeaderExitsChildHoldsStdout(t *testing.T) {
	opt := DefaultOptions()
	opt.CaseTimeout = 20 * time.Second
	opt.Retries = -1
	pidFile := filepath.Join(t.TempDir(), "pid")
	w, err := New("ATTNVET_FAKE_PID='"+pidFile+"' "+fakeCmd(t, "forkexit@1"), opt)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	start := time.Now()
	_, err = w.Run(inputs(t, 1))
	var we *Error
	if !errors.As(err, &we) || we.Kind != Crash {
		t.Fatalf("%v, want a crash", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("reported after %v", d)
	}
	if !strings.Contains(we.Msg, "exit status 3") {
		t.Errorf("no exit status in %q", we.Msg)
	}
}

// A hello with no answer gives up at the run's deadline when that comes
// before the start timeout.
func TestWorkerHelloDeadline(t *testing.T) {
	t.Parallel() // waits on its worker processes
	opt := DefaultOptions()
	opt.Deadline = time.Now().Add(500 * time.Millisecond)
	start := time.Now()
	_, err := New(fakeCmd(t, "hellohang"), opt)
	if err == nil || !strings.Contains(err.Error(), "no hello reply (timeout)") || !strings.Contains(err.Error(), "time budget, --time, ended first") {
		t.Fatalf("%v, want a hello timeout at the deadline", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v with a 500ms deadline", d)
	}
}

func fakeV2(t *testing.T, mode string, hello map[string]string) string {
	t.Helper()
	b, err := json.Marshal(hello)
	if err != nil {
		t.Fatal(err)
	}
	return "ATTNVET_FAKE_HELLO='" + string(b) + "' " + fakeCmd(t, mode)
}

// findCase returns the first generated case (seed 11) that keeps the
// contract and satisfies ok.
func findCase(t *testing.T, ok func(*problem.Inputs) bool) *problem.Inputs {
	t.Helper()
	for i := 0; i < 1000; i++ {
		in := inputs(t, i)
		if len(in.Violations()) == 0 && ok(in) {
			return in
		}
	}
	t.Fatal("no such case in 1000")
	return nil
}

// Protocol 2: inputs come in the declared dtypes; a case a declaration
// cannot represent exactly, or outside the declared families and limits,
// is not sent and is a *SkipError with its reason.
func TestWorkerProtocol2(t *testing.T) {
	hello := map[string]string{"protocol": "2", "dtype.attn_sink": "F16", "dtype.q": "F32", "dtype.k": "F32", "dtype.v": "F32", "dtype.seqused_kv": "I64",
		"families": "window", "max_head_dim": "16"}
	w, err := New(fakeV2(t, "ok", hello), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.ProtocolVersion() != 2 {
		t.Fatalf("protocol %d", w.ProtocolVersion())
	}
	f16 := func(in *problem.Inputs) bool {
		for _, s := range in.Sink {
			if _, err := bundle.NewFloat32("s", bundle.F16, []int{1}, []float32{s}); err != nil {
				return false
			}
		}
		return true
	}
	small := func(in *problem.Inputs) bool { return in.Family == problem.Window && in.D <= 16 && in.Dv <= 16 }
	// Sent: a window case with an F16-representable sink arrives in the
	// declared dtypes (the fake errors otherwise) and passes.
	in := findCase(t, func(in *problem.Inputs) bool { return small(in) && in.Sink != nil && f16(in) })
	out, err := w.Run(in)
	if err != nil {
		t.Fatalf("sendable case: %v", err)
	}
	if v := judge(t, w, in, out); !v.Pass {
		t.Errorf("verdict %+v", v)
	}
	for _, tc := range []struct {
		reason string
		ok     func(*problem.Inputs) bool
	}{
		{"attn_sink not representable in F16", func(in *problem.Inputs) bool { return small(in) && in.Sink != nil && !f16(in) }},
		{"family sparse not in families=window", func(in *problem.Inputs) bool { return in.Family == problem.Sparse }},
		{"max_head_dim=16", func(in *problem.Inputs) bool { return in.Family == problem.Window && in.D > 16 }},
	} {
		in := findCase(t, tc.ok)
		_, err := w.Run(in)
		var se *SkipError
		if !errors.As(err, &se) || se.Reason != tc.reason {
			t.Errorf("%s: %v, want a skip", tc.reason, err)
		}
	}
	s := w.Stats()
	if s.Requests != 1 || s.Skipped != 3 || len(s.SkipReasons) != 3 || s.SkipReasons["max_head_dim=16"] != 1 {
		t.Errorf("stats %+v", s)
	}
	// The limits.
	d, err := parseDecl(map[string]string{"protocol": "2", "max_tokens": "8", "max_heads": "4", "head_dims": "16, 8", "dv_equals_d": "true", "sink": "false"})
	if err != nil {
		t.Fatal(err)
	}
	base := problem.Inputs{Family: problem.Window, T: 8, H: 4, D: 8, Dv: 8}
	for _, tc := range []struct {
		mod  func(*problem.Inputs)
		want string
	}{
		{func(*problem.Inputs) {}, ""},
		{func(in *problem.Inputs) { in.T = 9 }, "max_tokens=8"},
		{func(in *problem.Inputs) { in.H = 5 }, "max_heads=4"},
		{func(in *problem.Inputs) { in.D = 12 }, "head_dims=8,16"},
		{func(in *problem.Inputs) { in.Dv = 16 }, "dv_equals_d"},
		{func(in *problem.Inputs) { in.Sink = []float32{0, 0, 0, 0} }, "sink=false"},
	} {
		in := base
		tc.mod(&in)
		if got := d.skipReason(&in); got != tc.want {
			t.Errorf("skipReason(%+v) = %q, want %q", in, got, tc.want)
		}
	}
}

// A v1 worker is served as before: the hello says protocol=1 (and
// protocol_max=2), v2 keys without protocol=2 are refused, bad v2
// declarations are refused with the key at fault.
func TestWorkerProtocol2Hellos(t *testing.T) {
	for _, tc := range []struct {
		hello map[string]string
		want  string
	}{
		{map[string]string{"families": "window"}, `declares families="window", a protocol 2 key, without protocol=2`},
		{map[string]string{"protocol": "3"}, `protocol="3"; attnvet speaks 1 and 2`},
		{map[string]string{"protocol": "2", "dtype.q": "I32"}, "q is a float input"},
		{map[string]string{"protocol": "2", "dtype.ori_block_table": "F32"}, "ori_block_table is an integer input"},
		{map[string]string{"protocol": "2", "dtype.qq": "F16"}, `no input is named "qq"`},
		{map[string]string{"protocol": "2", "dtype.q": "F8"}, `unknown dtype "F8"`},
		{map[string]string{"protocol": "2", "max_head_dim": "0"}, "max_head_dim=\"0\": want an integer ≥ 1"},
		{map[string]string{"protocol": "2", "families": "window,densest"}, `unknown family "densest"`},
		{map[string]string{"protocol": "2", "sink": "maybe"}, "want true or false"},
	} {
		if _, err := New(fakeV2(t, "ok", tc.hello), DefaultOptions()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.hello, err, tc.want)
		}
	}
	w := newWorker(t, "ok", DefaultOptions())
	if w.ProtocolVersion() != 1 {
		t.Errorf("v1 worker: protocol %d", w.ProtocolVersion())
	}
}

// A v2 reply whose seq is not the request's is malformed.
func TestWorkerProtocol2Seq(t *testing.T) {
	w, err := New(fakeV2(t, "ok", map[string]string{"protocol": "2"}), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	in := inputs(t, 1)
	f := bundle.NewFile()
	f.Metadata[KeySeq] = "7"
	var b bytes.Buffer
	f.WriteSafetensors(&b)
	if _, kind, err := w.decode(b.Bytes(), in, 3); kind != Malformed || err == nil || !strings.Contains(err.Error(), `seq="7", the request was seq=3`) {
		t.Errorf("%s %v", kind, err)
	}
}

// runConcurrently runs n requests from g goroutines and returns the
// errors by request number (seq order is the order of Run calls).
func runConcurrently(t *testing.T, w *Worker, g, n int) map[int64]error {
	t.Helper()
	var mu sync.Mutex
	errs := map[int64]error{}
	var wg sync.WaitGroup
	em, _ := impl.Lookup("tiled/bc32/bf16")
	if k := os.Getenv("ATTNVET_FAKE_KERNEL"); k != "" {
		em, _ = impl.Lookup(k)
	}
	for k := 0; k < g; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			for i := k; i < n; i += g {
				in := inputs(t, i)
				out, err := w.Run(in)
				if err != nil {
					var we *Error
					if errors.As(err, &we) {
						mu.Lock()
						errs[we.Request] = err
						mu.Unlock()
						continue
					}
					t.Error(err)
					continue
				}
				want, _ := em.Run(in)
				for j := range want.O {
					if num.Round32(num.BF16, want.O[j], num.RNE) != out.O[j] && out.O[j] == out.O[j] {
						t.Errorf("case %d: element %d = %v, want %v", i, j, out.O[j], want.O[j])
						break
					}
				}
			}
		}(k)
	}
	wg.Wait()
	return errs
}

// Protocol 2 max_inflight: several requests in flight on one process,
// answered in order.
func TestWorkerInflight(t *testing.T) {
	w, err := New(fakeV2(t, "ok", map[string]string{"protocol": "2", "max_inflight": "4"}), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if errs := runConcurrently(t, w, 4, 40); len(errs) > 0 {
		t.Fatal(errs)
	}
	s := w.Stats()
	if s.Starts != 1 || s.Requests != 40 || s.Crashes+s.Timeouts+s.Malformed+s.Resent != 0 {
		t.Errorf("stats %+v", s)
	}
	if m := w.pipes[0].maxPending; m < 2 || m > 4 {
		t.Errorf("at most %d requests were in flight, want 2 to 4", m)
	}
	w.Close()
	if _, err := w.Run(inputs(t, 0)); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Run after Close: %v", err)
	}
}

// With requests in flight, a failure goes to the request the worker was
// answering; the requests behind it are sent again and succeed.
func TestWorkerInflightFailures(t *testing.T) {
	t.Parallel() // waits on its worker processes
	for _, tc := range []struct {
		mode string
		kind string
		msg  string
	}{
		{"crash@5", Crash, "it died on this request 2 times"},
		{"hang@5", Timeout, "no reply within 3s"},
		{"garbage@5", Malformed, "the worker must write only frames"},
		{"big@5", Malformed, "exceeds the largest valid reply to this case"},
		{"shape@5", Malformed, "tensor o: shape"},
		{"error@5", Reported, "unsupported head count"},
		{"crash-once@5", CrashRetried, "a fresh process answered it"},
		{"forkexit@5", Crash, "exit status 3"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			opt := DefaultOptions()
			opt.CaseTimeout = 3 * time.Second
			if tc.mode != "hang@5" {
				opt.CaseTimeout = 20 * time.Second
			}
			opt.Procs = 2
			w, err := New(fakeV2(t, tc.mode, map[string]string{"protocol": "2", "max_inflight": "3"}), opt)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			start := time.Now()
			errs := runConcurrently(t, w, 5, 30)
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("took %v", d)
			}
			var we *Error
			if len(errs) != 1 || !errors.As(errs[5], &we) || we.Kind != tc.kind || !strings.Contains(we.Error(), tc.msg) {
				t.Fatalf("errors %v, want request 5 only, %s with %q", errs, tc.kind, tc.msg)
			}
			t.Logf("stats %+v", w.Stats())
		})
	}
}
