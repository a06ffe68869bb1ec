package safeio

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestReadFileRefusesNonRegularFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadFile(dir, DefaultLimit); !IsDir(err) {
		t.Errorf("directory: %v, want a directory NotRegularError", err)
	}
	if runtime.GOOS == "windows" {
		return
	}
	fifo := filepath.Join(dir, "fifo")
	if err := mkfifo(fifo); err != nil {
		t.Skip(err)
	}
	for _, p := range []string{fifo, "/dev/zero", "/dev/null"} {
		done := make(chan error, 1)
		go func() { _, err := ReadFile(p, DefaultLimit); done <- err }()
		select {
		case err := <-done:
			var nr *NotRegularError
			if !errors.As(err, &nr) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s: %v, want a one-line NotRegularError", p, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: ReadFile still blocked after 5 s", p)
		}
	}
}

func TestReadFileLimit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(p, 1000); err != nil || len(b) != 1000 {
		t.Fatalf("at the limit: %d bytes, %v", len(b), err)
	}
	_, err := ReadFile(p, 999)
	var le *LimitError
	if !errors.As(err, &le) || le.Need != 1000 || le.Limit != 999 || !strings.Contains(err.Error(), "--max-memory") {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := ReadJSON(p, 1000*JSONFactor); err != nil {
		t.Fatalf("JSON at the limit: %v", err)
	}
	if _, err := ReadJSON(p, 1000*JSONFactor-1); !errors.As(err, &le) || le.Need != 1000*JSONFactor {
		t.Fatalf("JSON over the limit: %v", err)
	}
	// Reading allocates the file's size once (a buffer that grew to see EOF
	// took twice that).
	p8 := filepath.Join(t.TempDir(), "8m")
	if err := os.WriteFile(p8, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b8, err := ReadFile(p8, DefaultLimit)
	runtime.ReadMemStats(&m1)
	if err != nil || len(b8) != 8<<20 || m1.TotalAlloc-m0.TotalAlloc > 9<<20 {
		t.Errorf("8 MiB file: %d bytes read, %d allocated, %v", len(b8), m1.TotalAlloc-m0.TotalAlloc, err)
	}
	// A sparse file is refused from its size, before any read.
	big := filepath.Join(t.TempDir(), "sparse")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(2 << 30); err != nil {
		t.Skip(err)
	}
	f.Close()
	start := time.Now()
	if _, err := ReadFile(big, DefaultLimit); !errors.As(err, &le) {
		t.Fatalf("2 GiB sparse file: %v", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("refusing the sparse file took %v", time.Since(start))
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing"), DefaultLimit); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestSizes(t *testing.T) {
	for s, want := range map[string]int64{"512MiB": 512 << 20, "2GiB": 2 << 30, "2G": 2 << 30, "1.5GiB": 3 << 29, "1024": 1024,
		"10 MB": 10e6, "64k": 64 << 10, "1TiB": 1 << 40, "7b": 7} {
		if got, err := ParseSize(s); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "GiB", "-1GiB", "0", "1XB", "1e3", "0.1", "1..2G", "99999999999TiB"} {
		if got, err := ParseSize(s); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", s, got)
		}
	}
	for n, want := range map[int64]string{1 << 30: "1GiB", 3 << 29: "1.5GiB", 512 << 20: "512MiB", 100: "100B", 1536: "1.5KiB"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int64]int64{1: 1 << 20, 1<<30 + 1: 2 << 30, 6 << 30: 8 << 30, 1 << 30: 1 << 30} {
		if got := Suggest(n); got != want {
			t.Errorf("Suggest(%d) = %d, want %d", n, got, want)
		}
	}
	if err := Check("x", 1<<30+1<<20, 1<<30); err == nil || !strings.Contains(err.Error(), "about 1.1GiB of memory, over the 1GiB limit (raise it with --max-memory 2GiB)") {
		t.Errorf("just over the limit: %v", err)
	}
	if err := Check("x", -1, 10); err == nil {
		t.Error("Check of an overflowed (negative) need passed")
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"q":                   "q",
		"héllo wörld ✓":       "héllo wörld ✓",
		"a\x1b[31mred":        `a\x1b[31mred`,
		"two\nlines\r\t":      `two\nlines\r\t`,
		"bad\xffutf8":         `bad\xffutf8`,
		"del\x7f c1\u009b":    `del\x7f c1\u009b`,
		"evil\u202egnp.exe":   `evil\u202egnp.exe`,
		"sep\u2028x":          `sep\u2028x`,
		"back\\slash \"quote": "back\\slash \"quote",
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestShellQuote pastes each quoted word into a shell and checks that the
// shell sees exactly the word, and that nothing ran.
func TestShellQuote(t *testing.T) {
	words := []string{"plain.npz", "x $(touch PWN).npz", "it's", "`touch PWN`", "a b c", "*", "~", "--flag=a;b", "", "'", `\`, "ünï", "$HOME"}
	ctrl := []string{"a\tb", "esc\x1b[2J", "new\nline", "bad\xff", "q'\x1b\\'; touch PWN; '"}
	for _, w := range append(words, ctrl...) {
		if q := ShellQuote(w); Printable(q) != q {
			t.Errorf("ShellQuote(%q) = %q holds raw control characters", w, q)
		}
	}
	dir := t.TempDir()
	run := func(shell string, ws []string) {
		sh, err := exec.LookPath(shell)
		if err != nil {
			t.Logf("no %s: %v", shell, err)
			return
		}
		for _, w := range ws {
			cmd := exec.Command(sh, "-c", "printf %s "+ShellQuote(w))
			cmd.Dir = dir
			out, err := cmd.Output()
			if err != nil || string(out) != w {
				t.Errorf("%s: ShellQuote(%q) = %s gives %q (%v)", shell, w, ShellQuote(w), out, err)
			}
		}
	}
	run("sh", words)
	run("bash", append(words, ctrl...))
	// A shell without $'…' reads a different word, but runs nothing.
	run("dash", nil)
	if sh, err := exec.LookPath("dash"); err == nil {
		for _, w := range ctrl {
			cmd := exec.Command(sh, "-c", "printf %s "+ShellQuote(w))
			cmd.Dir = dir
			cmd.Run()
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "PWN")); err == nil {
		t.Fatal("a quoted word ran a command")
	}
}
