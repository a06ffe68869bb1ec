package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/safeio"
	"github.com/attnvet/attnvet/internal/show"
	"github.com/attnvet/attnvet/internal/targets"
	"github.com/attnvet/attnvet/internal/testkit"
	"github.com/attnvet/attnvet/internal/tolerance"
)

// With ATTNVET_TEST_CLI=1 the test binary is attnvet itself, so a test can
// measure a run's peak RSS from outside (/usr/bin/time).
func init() {
	if os.Getenv("ATTNVET_TEST_CLI") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
}

func rawSafetensors(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

// npzBomb is testkit.NpzBomb with member q.npy.
func npzBomb(t testing.TB, total int64) []byte {
	t.Helper()
	b, err := testkit.NpzBomb("q", total)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type hostile struct {
	name string
	args []string
	want string // in the one line on stderr
}

// hostileInputs writes the reproducers of issue 14 to dir.
func hostileInputs(t *testing.T, dir string) []hostile {
	t.Helper()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bomb := write("bomb.npz", npzBomb(t, 3<<29))
	// ori_kv [0, 2^62, 1, 32]: BS·D wrapped to 0 and a division panicked.
	f32 := func(name string, shape string, b, e int) string {
		return fmt.Sprintf(`"%s":{"dtype":"F32","shape":%s,"data_offsets":[%d,%d]}`, name, shape, b, e)
	}
	i32 := func(name string, shape string, b, e int) string {
		return fmt.Sprintf(`"%s":{"dtype":"I32","shape":%s,"data_offsets":[%d,%d]}`, name, shape, b, e)
	}
	overflow := write("overflow.safetensors", rawSafetensors(`{"__metadata__":{"family":"sparse","index_topk":"1"},`+
		f32("q", "[1,1,32]", 0, 128)+","+f32("ori_kv", "[0,4611686018427387904,1,32]", 128, 128)+","+
		i32("ori_block_table", "[1,1]", 128, 132)+","+i32("cmp_sparse_indices", "[1,1]", 132, 136)+","+
		i32("seqused_kv", "[1]", 136, 140)+","+f32("o", "[1,1,32]", 140, 268)+"}", make([]byte, 268)))
	alias := write("alias.safetensors", rawSafetensors(`{"__metadata__":{"family":"window"},`+
		f32("q", "[1,1,4]", 0, 16)+","+f32("k", "[1,1,4]", 16, 32)+","+f32("v", "[1,1,4]", 32, 48)+","+f32("o", "[1,1,4]", 0, 16)+"}", make([]byte, 48)))
	sparse := filepath.Join(dir, "sparse.safetensors")
	sf, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	if err := sf.Truncate(2 << 30); err != nil {
		t.Skip(err)
	}
	sf.Close()
	big := write("big.json", []byte(`{"version":1,"family":"window","seed":1,"h":64,"hkv":1,"d":4096,"t":128,"values":{}}`))
	hs := []hostile{
		{"npz bomb", []string{"check", bomb, "--family", "window"}, "over the 1GiB limit (raise it with --max-memory 2GiB)"},
		{"2 GiB sparse file", []string{"check", sparse}, "the file (2147483648 bytes) needs about 2GiB of memory, over the 1GiB limit"},
		{"shape overflow", []string{"check", overflow}, "tensor ori_kv: shape [0 4611686018427387904 1 32] overflows"},
		{"aliased buffers", []string{"check", alias}, "tensors q and o overlap"},
		{"directory", []string{"check", dir}, "a directory: check wants bundle files, e.g. attnvet check " + safeio.ShellQuote(dir) + "/*.safetensors"},
		{"replay of a directory", []string{"replay", dir}, "is a directory: replay wants one case file"},
		{"replay of a case over the memory limit", []string{"replay", big, "--kernel", "stream/bf16"}, "needs about 4.1GiB of memory, over the 1GiB limit (raise it with --max-memory 8GiB)"},
		{"export of a case over the memory limit", []string{"export", big, filepath.Join(dir, "out.safetensors")}, "over the 1GiB limit"},
	}
	if runtime.GOOS != "windows" {
		fifo := filepath.Join(dir, "fifo")
		if err := mkfifo(fifo); err != nil {
			t.Fatal(err)
		}
		hs = append(hs,
			hostile{"/dev/zero", []string{"check", "/dev/zero"}, "a character device, not a regular file"},
			hostile{"FIFO", []string{"check", fifo}, "a named pipe (FIFO), not a regular file"},
			hostile{"replay of a FIFO", []string{"replay", fifo}, "a named pipe (FIFO), not a regular file"},
			hostile{"merge of a FIFO", []string{"report", "--merge", fifo}, "a named pipe (FIFO), not a regular file"},
			hostile{"export of a FIFO", []string{"export", fifo, filepath.Join(dir, "out.safetensors")}, "a named pipe (FIFO), not a regular file"},
			hostile{"--known FIFO", []string{"fuzz", "--cases", "1", "--known", fifo}, "a named pipe (FIFO), not a regular file"},
			hostile{"resume with a FIFO journal", []string{"fuzz", "--resume", fifoJournalDir(t, dir)}, "a named pipe (FIFO), not a regular file"})
	}
	return hs
}

// fifoJournalDir is a campaign directory whose journal is a FIFO.
func fifoJournalDir(t *testing.T, dir string) string {
	d := filepath.Join(dir, "fifo-campaign")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mkfifo(filepath.Join(d, campaign.JournalFile)); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestHostileInputs: every reproducer of issue 14 exits 2 with one line
// that says what is wrong, within 5 s (a FIFO hung forever, /dev/zero and
// the zip bomb ran out of memory, the overflow panicked with exit 2).
func TestHostileInputs(t *testing.T) {
	dir := t.TempDir()
	for _, h := range hostileInputs(t, dir) {
		type result struct {
			code         int
			stdout, errs string
		}
		done := make(chan result, 1)
		start := time.Now()
		go func() {
			code, out, errs := attnvet(h.args...)
			done <- result{code, out, errs}
		}()
		select {
		case r := <-done:
			lines := strings.Split(strings.TrimSuffix(r.errs, "\n"), "\n")
			if r.code != exitUsage || len(lines) != 1 || !strings.Contains(r.errs, h.want) || strings.Contains(r.errs, "internal error") {
				t.Errorf("%s: exit %d, stderr %q; want exit 2 and one line with %q", h.name, r.code, r.errs, h.want)
			}
			t.Logf("%s: %.3fs: %s", h.name, time.Since(start).Seconds(), strings.TrimSpace(r.errs))
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: %v still running after 5 s", h.name, h.args)
		}
	}
}

// TestHostileInputsMemory runs each reproducer as a process under
// /usr/bin/time: peak RSS stays far under the 1 GiB default limit (the
// 1 MB zip bomb took 2.7 GB, /dev/zero 6.6 GB, the 2 GiB file 2.1 GB).
func TestHostileInputsMemory(t *testing.T) {
	tm := "/usr/bin/time"
	if _, err := os.Stat(tm); err != nil || runtime.GOOS != "linux" {
		t.Skip("no /usr/bin/time")
	}
	dir := t.TempDir()
	for _, h := range hostileInputs(t, dir) {
		rss, code, errs := measure(t, tm, h.args...)
		t.Logf("%s: peak RSS %d KiB, exit %d", h.name, rss, code)
		if code != exitUsage || rss > 128<<10 {
			t.Errorf("%s: exit %d, peak RSS %d KiB (want exit 2 and at most 128 MiB)\n%s", h.name, code, rss, errs)
		}
	}
}

// measure runs attnvet (this test binary) under /usr/bin/time, killing it
// after 5 s, and returns its peak RSS in KiB, its exit code and stderr.
func measure(t *testing.T, tm string, args ...string) (rssKiB int64, code int, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rssFile := filepath.Join(t.TempDir(), "rss")
	cmd := exec.CommandContext(ctx, tm, append([]string{"-o", rssFile, "-f", "%M", os.Args[0]}, args...)...)
	cmd.Env = append(os.Environ(), "ATTNVET_TEST_CLI=1")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%v: still running after 5 s", args)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	code = cmd.ProcessState.ExitCode()
	b, err := os.ReadFile(rssFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(b))
	if len(lines) == 0 {
		t.Fatalf("no RSS from %s: %q", tm, b)
	}
	rssKiB, err = strconv.ParseInt(lines[len(lines)-1], 10, 64)
	if err != nil {
		t.Fatalf("RSS %q: %v", b, err)
	}
	return rssKiB, code, errb.String()
}

// TestMemoryLimitHolds: a case and a bundle just inside --max-memory run
// within it (peak RSS measured), and the next size up is refused.
func TestMemoryLimitHolds(t *testing.T) {
	tm := "/usr/bin/time"
	if _, err := os.Stat(tm); err != nil || runtime.GOOS != "linux" {
		t.Skip("no /usr/bin/time")
	}
	dir := t.TempDir()
	mk := func(tokens int) string {
		c := cases.Case{Version: 1, Family: problem.Window, Seed: 3, H: 64, Hkv: 1, D: 4096, T: tokens}
		p := filepath.Join(dir, fmt.Sprintf("t%d.json", tokens))
		if err := os.WriteFile(p, c.Marshal(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const limit = 128 << 20
	fits, over := mk(2), mk(3)
	rss, code, errs := measure(t, tm, "replay", fits, "--kernel", "stream/bf16", "--max-memory", "128MiB")
	t.Logf("replay t=2 within 128MiB: peak RSS %d KiB", rss)
	if code != exitPass || rss<<10 > limit {
		t.Errorf("replay t=2, --max-memory 128MiB: exit %d, peak RSS %d KiB\n%s", code, rss, errs)
	}
	if _, code, errs := measure(t, tm, "replay", over, "--kernel", "stream/bf16", "--max-memory", "128MiB"); code != exitUsage || !strings.Contains(errs, "over the 128MiB limit") {
		t.Errorf("replay t=3, --max-memory 128MiB: exit %d\n%s", code, errs)
	}
	st := filepath.Join(dir, "t2.safetensors")
	if code, _, errs := attnvet("export", fits, st, "--kernel", "stream/bf16"); code != exitPass {
		t.Fatal(errs)
	}
	rss, code, errs = measure(t, tm, "check", st, "--max-memory", "128MiB")
	t.Logf("check t=2 within 128MiB: peak RSS %d KiB", rss)
	if code != exitPass || rss<<10 > limit {
		t.Errorf("check t=2, --max-memory 128MiB: exit %d, peak RSS %d KiB\n%s", code, rss, errs)
	}
	if code, _, errs := attnvet("check", st, "--max-memory", "100MiB"); code != exitUsage || !strings.Contains(errs, "judging its 524288 output elements needs about") {
		t.Errorf("check t=2, --max-memory 100MiB: exit %d\n%s", code, errs)
	}
	for _, bad := range []string{"lots", "0", "512KiB", "-1GiB"} {
		if code, _, errs := attnvet("check", st, "--max-memory", bad); code != exitUsage || !strings.Contains(errs, "max-memory") {
			t.Errorf("--max-memory %s: exit %d, %s", bad, code, errs)
		}
	}
}

// TestCheckPanicIsInternal: a panic while judging a bundle is exit 3 (it
// was reported as an invalid bundle, exit 2), with status internal.
func TestCheckPanicIsInternal(t *testing.T) {
	dir := t.TempDir()
	ok := writeBundle(t, dir, "ok.safetensors", checkWindowCase(), "tiled/bc128/bf16", nil)
	defer func(d func(*bundle.File, map[string]string) (*interop.Bundle, error)) { decodeBundle = d }(decodeBundle)
	decodeBundle = func(*bundle.File, map[string]string) (*interop.Bundle, error) {
		var z []int
		return nil, fmt.Errorf("%d", z[3]) // index out of range
	}
	js := filepath.Join(dir, "c.json")
	code, out, errs := attnvet("check", ok, "--json", js)
	if code != exitInternal || !strings.Contains(errs, "internal error: runtime error: index out of range") || !strings.Contains(out, "INTERNAL ERROR") {
		t.Fatalf("exit %d, want 3\n%s\n%s", code, out, errs)
	}
	b, _ := os.ReadFile(js)
	if !strings.Contains(string(b), `"status": "internal"`) || !strings.Contains(string(b), `"exit": 3`) {
		t.Errorf("JSON: %s", b)
	}
}

type panicky struct{ tolerance.Criterion }

func (panicky) Name() string { return "panicky" }
func (panicky) Judge(*tolerance.Input) tolerance.Verdict {
	var m map[string]int
	m["x"]++ // assignment to entry in nil map
	return tolerance.Verdict{}
}

// TestCheckCriterionPanicIsInternal: a criterion that panics is exit 3,
// not a failed verdict (exit 1).
func TestCheckCriterionPanicIsInternal(t *testing.T) {
	ok := writeBundle(t, t.TempDir(), "ok.safetensors", checkWindowCase(), "tiled/bc128/bf16", nil)
	defer func(c func() []tolerance.Criterion) { checkCriteria = c }(checkCriteria)
	checkCriteria = func() []tolerance.Criterion { return append(tolerance.All(), panicky{}) }
	code, out, errs := attnvet("check", ok)
	if code != exitInternal || !strings.Contains(errs, "internal error: criterion panicky panicked: assignment to entry in nil map") {
		t.Fatalf("exit %d, want 3\n%s\n%s", code, out, errs)
	}
}

// TestPrintedCommandsAreQuoted: the check command export prints for an
// .npz runs what it shows when pasted (it ran `touch`).
func TestPrintedCommandsAreQuoted(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	cf := filepath.Join(dir, "case.json")
	if err := os.WriteFile(cf, checkSparseCase().Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := "x $(touch PWN) `touch PWN2` it's.npz"
	code, stdout, errs := attnvet("export", cf, filepath.Join(dir, out), "--kernel", "tiled/bc128/bf16")
	i := strings.Index(stdout, "attnvet check ")
	if code != exitPass || i < 0 {
		t.Fatalf("export: exit %d\n%s\n%s", code, stdout, errs)
	}
	line := strings.TrimSpace(stdout[i:])
	cmd := exec.Command(sh, "-c", `attnvet() { for a in "$@"; do printf '%s\n' "$a"; done; }; `+line)
	cmd.Dir = dir
	got, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
	if _, err := os.Stat(filepath.Join(dir, "PWN")); err == nil {
		t.Fatalf("pasting %q ran touch", line)
	}
	if len(args) < 2 || args[0] != "check" || args[1] != filepath.Join(dir, out) {
		t.Fatalf("pasting %q gives the arguments %q", line, args)
	}
	if code, _, errs := attnvet(args...); code != exitPass {
		t.Errorf("%q: exit %d\n%s", args, code, errs)
	}
}

// TestInputTextIsEscaped: tensor and metadata names, descriptions and a
// worker's messages reach the terminal with their control characters
// escaped.
func TestInputTextIsEscaped(t *testing.T) {
	dir := t.TempDir()
	evil := "evil\x1b]0;pwned\x07\x1b[2J\nFAKE PASS"
	p := writeBundle(t, dir, "e.safetensors", checkWindowCase(), "tiled/bc128/bf16", func(f *bundle.File) {
		x := f.Tensors["attn_sink"]
		f.Add(&bundle.Tensor{Name: evil, DType: x.DType, Shape: x.Shape, Data: x.Data})
		f.Metadata["key\x1b[31m"] = "v"
	})
	code, out, errs := attnvet("check", p)
	if code != exitPass {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if strings.ContainsAny(out+errs, "\x1b\x07") || strings.Contains(out, "\nFAKE PASS") || !strings.Contains(out, `evil\x1b]0;pwned\x07\x1b[2J\nFAKE PASS`) {
		t.Errorf("raw control characters reach the terminal:\n%q", out)
	}
	// An unreadable bundle named with an escape, and its error.
	bad := filepath.Join(dir, "bad\x1b[2J.safetensors")
	os.WriteFile(bad, []byte("garbage"), 0o644)
	code, out, errs = attnvet("check", bad)
	if code != exitUsage || strings.ContainsAny(out+errs, "\x1b") {
		t.Errorf("exit %d, raw escape in\n%q\n%q", code, out, errs)
	}
	// replay's printout of a description and of a kernel's (a worker's) error.
	c := checkWindowCase()
	c.Description = "desc\x1b[2J"
	tg, err := targets.Resolve("tiled/bc128/bf16", targets.Options{})
	if err != nil {
		t.Fatal(err)
	}
	crit, _ := tolerance.Lookup(tolerance.NameBound)
	d, err := campaign.Check(c, tg, crit)
	if err != nil {
		t.Fatal(err)
	}
	d.Status, d.Err = campaign.Fail, errors.New("worker exec:x: error=boom\x1b[2J\r\nPASS: fake")
	var b bytes.Buffer
	show.Replay(&b, "case\x1b.json", d, 3)
	if strings.ContainsAny(b.String(), "\x1b\r") || strings.Contains(b.String(), "\nPASS: fake") || !strings.Contains(b.String(), `error=boom\x1b[2J\r; PASS: fake`) {
		t.Errorf("replay printout:\n%q", b.String())
	}
	if got := safeio.OneLine("a\x1b[2J\nb\u009bc\xff"); got != `a\x1b[2J; b\u009bc\xff` {
		t.Errorf("oneLine: %q", got)
	}
}
