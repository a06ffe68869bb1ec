package props

// The properties under go test, with gopter.
//
// Environment (all optional):
//
//	ATTNVET_PROPS_SEED=N      campaign seed (default 1; "time" draws one)
//	ATTNVET_PROPS_N=N         cases per property (default 100, 500 with ATTNVET_LONG=1; 50 with -short)
//	ATTNVET_REPLAY=FILE|JSON  check only this case (run one property with -run)
//	ATTNVET_PROPS_INJECT=pr301  run the kernels with an injected defect
//
// A failure prints the seed, the shrunk case as JSON (also saved under
// testdata/failures/, which later runs replay first) and the commands that
// replay it.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/prop"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
)

const importPath = "github.com/attnvet/attnvet/props"

// injections are the defects ATTNVET_PROPS_INJECT can put into the kernels.
var injections = map[string]func(impl.Config) *impl.Hooks{"pr301": pr301Hooks}

// pr301Hooks models PR #301's fused stream kernel: with exactly one key the
// merge loop runs zero times and the final (m, l, o) are never bound, so
// the row keeps what the registers held: the previous head's output (head
// h−1 of the same token), or zeros for the first head of a KV group.
func pr301Hooks(cfg impl.Config) *impl.Hooks {
	if cfg.Kind != impl.Stream {
		return nil
	}
	var mu sync.Mutex
	last := map[[2]int][]float32{}
	return &impl.Hooks{Row: func(in *problem.Inputs, t, h int, keys []problem.Key, pre []float32) {
		mu.Lock()
		defer mu.Unlock()
		if len(keys) == 1 {
			if prev, ok := last[[2]int{t, h - 1}]; ok && h%(in.H/in.Hkv) != 0 {
				copy(pre, prev)
			} else {
				clear(pre)
			}
		}
		last[[2]int{t, h}] = slices.Clone(pre)
	}}
}

type settings struct {
	seed   int64
	n      int
	replay string
	inject string
}

func loadSettings(t *testing.T) settings {
	t.Helper()
	// 100 cases per property in the README's quick run, 500 in .ci/run's
	// long step (ATTNVET_LONG=1); ATTNVET_PROPS_N overrides both.
	s := settings{seed: 1, n: 100, replay: os.Getenv("ATTNVET_REPLAY"), inject: os.Getenv("ATTNVET_PROPS_INJECT")}
	if os.Getenv("ATTNVET_LONG") != "" {
		s.n = 500
	}
	if testing.Short() {
		s.n = 50
	}
	switch v := os.Getenv("ATTNVET_PROPS_SEED"); v {
	case "":
	case "time":
		s.seed = time.Now().UnixNano()
	default:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("ATTNVET_PROPS_SEED=%q: want an integer or \"time\"", v)
		}
		s.seed = n
	}
	if v := os.Getenv("ATTNVET_PROPS_N"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("ATTNVET_PROPS_N=%q: want a positive integer", v)
		}
		s.n = n
	}
	if s.inject != "" && injections[s.inject] == nil {
		t.Fatalf("ATTNVET_PROPS_INJECT=%q: known defects are pr301", s.inject)
	}
	return s
}

func (s settings) checker() *Checker {
	return &Checker{Hooks: injections[s.inject]}
}

// checkSafe runs p on c, turning a panic into an error.
func checkSafe(p Property, ch *Checker, c cases.Case) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return p.Check(ch, c)
}

// outcome is one gopter campaign of a property.
type outcome struct {
	result *gopter.TestResult
	orig   cases.Case
	shrunk cases.Case
	err    error // the property's error on the shrunk case
}

// campaign checks p on n cases drawn with seed, gopter shrinking failures.
func campaign(p Property, ch *Checker, seed int64, n int) outcome {
	params := gopter.DefaultTestParametersWithSeed(seed)
	params.MinSuccessfulTests = n
	params.MaxShrinkCount = 500
	ps := gopter.NewProperties(params)
	gen := Gen{Family: p.Family, Size: Small}.Gopter(p.Adapt)
	ps.Property(p.Name, prop.ForAll(func(c cases.Case) string {
		if err := checkSafe(p, ch, c); err != nil {
			return err.Error()
		}
		return ""
	}, gen))
	var o outcome
	ps.Run(reporterFunc(func(_ string, r *gopter.TestResult) { o.result = r }))
	if !o.result.Passed() && len(o.result.Args) > 0 {
		o.orig = o.result.Args[0].OrigArg.(cases.Case)
		o.shrunk = o.result.Args[0].Arg.(cases.Case)
		o.err = checkSafe(p, ch, o.shrunk)
	}
	return o
}

type reporterFunc func(string, *gopter.TestResult)

func (f reporterFunc) ReportTestResult(name string, r *gopter.TestResult) { f(name, r) }

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// cdRoot is "cd <module root> && ", so printed commands run from anywhere.
func cdRoot() string {
	root, err := filepath.Abs("..")
	if err != nil {
		return ""
	}
	return "cd " + shellQuote(root) + " && "
}

// replayCommand is the command that checks one case (inline JSON or a
// file) on p.
func replayCommand(p Property, inject string, replay string) string {
	env := ""
	if inject != "" {
		env = "ATTNVET_PROPS_INJECT=" + inject + " "
	}
	return fmt.Sprintf("%s%sATTNVET_REPLAY=%s go test %s -run '^TestProperties$/^%s$' -v", cdRoot(), env, shellQuote(replay), importPath, p.Name)
}

// saveFailure writes c to dir as <property>-<hash>.json (temp file, then
// rename) and returns its absolute path.
func saveFailure(dir string, p Property, c cases.Case, why string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	c.Description = oneLine(fmt.Sprintf("%s fails: %s", p.Name, why))
	b := c.Marshal()
	sum := sha256.Sum256([]byte(c.String()))
	path := filepath.Join(dir, p.Name+"-"+hex.EncodeToString(sum[:4])+".json")
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return filepath.Abs(path)
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// report describes a failed campaign: seed, shrunk case, replay commands.
func report(p Property, s settings, o outcome, saved string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "property %s FAILED after %d passing cases (seed %d, %d shrink steps)\n",
		p.Name, o.result.Succeeded, s.seed, o.result.Args[0].Shrinks)
	fmt.Fprintf(&b, "failure: %v\n", o.err)
	fmt.Fprintf(&b, "shrunk case:\n%s", o.shrunk.Marshal())
	fmt.Fprintf(&b, "original case: %s\n", o.orig)
	if saved != "" {
		fmt.Fprintf(&b, "saved to %s\n", saved)
		fmt.Fprintf(&b, "replay the saved case:   %s\n", replayCommand(p, s.inject, saved))
	}
	fmt.Fprintf(&b, "replay the shrunk case:  %s\n", replayCommand(p, s.inject, o.shrunk.String()))
	env := ""
	if s.inject != "" {
		env = "ATTNVET_PROPS_INJECT=" + s.inject + " "
	}
	fmt.Fprintf(&b, "rerun the campaign:      %s%sATTNVET_PROPS_SEED=%d ATTNVET_PROPS_N=%d go test %s -run '^TestProperties$/^%s$' -v\n",
		cdRoot(), env, s.seed, s.n, importPath, p.Name)
	return b.String()
}

// loadReplay reads ATTNVET_REPLAY: inline JSON or a file.
func loadReplay(v string) (cases.Case, error) {
	if strings.HasPrefix(strings.TrimSpace(v), "{") {
		return cases.Parse([]byte(v))
	}
	return cases.Load(v)
}

// TestProperties runs every property on ATTNVET_PROPS_N cases (in
// parallel subtests), after replaying the failures saved in
// testdata/failures.
func TestProperties(t *testing.T) {
	s := loadSettings(t)
	t.Logf("seed %d, %d cases per property (ATTNVET_PROPS_SEED, ATTNVET_PROPS_N)", s.seed, s.n)
	for _, p := range Properties() {
		t.Run(p.Name, func(t *testing.T) {
			ch := s.checker()
			if s.replay != "" {
				c, err := loadReplay(s.replay)
				if err != nil {
					t.Fatalf("ATTNVET_REPLAY: %v", err)
				}
				if p.Adapt != nil {
					c = p.Adapt(c)
				}
				t.Logf("replaying %s", c)
				if err := checkSafe(p, ch, c); err != nil {
					t.Fatalf("%v", err)
				}
				return
			}
			t.Parallel()
			saved, _ := filepath.Glob(filepath.Join("testdata", "failures", p.Name+"-*.json"))
			for _, path := range saved {
				c, err := cases.Load(path)
				if err != nil {
					t.Fatalf("saved failure: %v", err)
				}
				if err := checkSafe(p, ch, c); err != nil {
					t.Errorf("saved failure %s still fails: %v\nreplay: %s", path, err, replayCommand(p, s.inject, path))
				}
			}
			start := time.Now()
			o := campaign(p, ch, s.seed, s.n)
			if o.result.Passed() {
				t.Logf("%s: %d cases passed in %v", p.Name, o.result.Succeeded, time.Since(start).Round(time.Millisecond))
				return
			}
			if o.result.Error != nil || len(o.result.Args) == 0 {
				t.Fatalf("%s: %v after %d cases (seed %d): %v\n%s", p.Name, o.result.Status, o.result.Succeeded, s.seed, o.result.Error, o.result.ErrorStack)
			}
			dir := filepath.Join("testdata", "failures")
			if s.inject != "" {
				dir = filepath.Join(os.TempDir(), "attnvet-props-failures")
			}
			path, err := saveFailure(dir, p, o.shrunk, fmt.Sprint(o.err))
			if err != nil {
				t.Logf("could not save the failure: %v", err)
			}
			t.Errorf("%s", report(p, s, o, path))
		})
	}
}
