// Package targets resolves the name of a kernel under test to something a
// campaign can run: a correct emulation from the registry
// ("tiled/bc32/bf16"), a mutant ("mutant:NAME" or a bare mutant name), or
// an external worker process ("exec:CMD", internal/worker).
//
// A Target carries the kernel and the loop structure its tolerance is
// derived from (tolerance.Shape): registry kernels and mutants declare
// theirs; an external kernel's is unknown (the zero Shape, the worst case).
package targets

import (
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/internal/worker"
)

// Kind says where a target's kernel comes from.
type Kind string

const (
	Registry Kind = "kernel" // a correct emulation
	Mutant   Kind = "mutant" // a deliberately broken emulation
	Exec     Kind = "exec"   // an external worker process
)

// Target is one kernel under test.
type Target struct {
	Name     string // the name it was resolved from, canonical: "tiled/bc32/bf16", "mutant:NAME", "exec:CMD"
	Kind     Kind
	Kernel   impl.Kernel
	Shape    tolerance.Shape
	BugClass string // mutants: the SPEC.md §3 bug class it models
	Doc      string // mutants: the defect and what triggers it
	Family   string // mutants: the family whose inputs trigger it ("" any)
}

// Trusted reports whether the kernel is known not to modify its inputs
// (the registry's emulations), so several targets can share one set.
func (t Target) Trusted() bool { return t.Kind == Registry }

// Close releases what the target holds (an external worker's processes).
func (t Target) Close() error {
	if c, ok := t.Kernel.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// CloseAll closes every target.
func CloseAll(ts []Target) {
	for _, t := range ts {
		t.Close()
	}
}

// WorkerStats returns the counts of an external worker target (starts,
// crashes, timeouts, …); ok is false for in-process kernels.
func (t Target) WorkerStats() (s worker.Stats, ok bool) {
	if w, isW := t.Kernel.(interface{ Stats() worker.Stats }); isW {
		return w.Stats(), true
	}
	return worker.Stats{}, false
}

// Options configure how targets are built. The zero value is the default.
// They apply to exec: targets only; registry kernels and mutants ignore
// them.
type Options struct {
	// CaseTimeout bounds one request to an exec worker (0: the worker
	// default, 30 s); a worker past it is killed and restarted.
	CaseTimeout time.Duration
	// Profile, if not "", names the built-in precision profile an exec
	// worker is judged under, overriding the one its hello declares
	// ("": as declared; a worker that declares nothing is bf16).
	Profile string
	// Procs is how many worker processes serve an exec target's requests
	// in parallel (--procs N; 0: 1). Each says hello and must declare
	// what the first declared.
	Procs int
	// Deadline, if set, is when the run's time budget (--time) ends: a
	// worker that has not answered its hello by then is an error, even
	// within the start timeout.
	Deadline time.Time
	// Logf receives the worker's restart and retry messages (nil: stderr,
	// prefixed "attnvet: ").
	Logf func(format string, args ...any)
}

// Validate checks the options without starting anything.
func (o Options) Validate() error {
	if o.CaseTimeout < 0 {
		return fmt.Errorf("case timeout %v is negative", o.CaseTimeout)
	}
	if o.Procs < 0 || o.Procs > MaxProcs {
		return fmt.Errorf("--procs %d: want 1 to %d worker processes", o.Procs, MaxProcs)
	}
	if o.Profile != "" {
		if _, err := profile.Lookup(o.Profile); err != nil {
			return err
		}
	}
	return nil
}

// MaxProcs bounds Options.Procs.
const MaxProcs = 256

// IsExec reports whether name (a target name or a Select item) names an
// external worker.
func IsExec(name string) bool { return strings.HasPrefix(strings.TrimSpace(name), ExecPrefix) }

// MutantPrefix and ExecPrefix mark the kinds of target names.
const (
	MutantPrefix = "mutant:"
	ExecPrefix   = "exec:"
)

// Resolve returns the target named name: a registry kernel name, a mutant
// as "mutant:NAME" or a bare mutant name, or "exec:CMD" (started with opt).
func Resolve(name string, opt Options) (Target, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return Target{}, fmt.Errorf("empty target name (see 'attnvet kernels')")
	case strings.HasPrefix(name, ExecPrefix):
		return resolveExec(strings.TrimPrefix(name, ExecPrefix), opt)
	case strings.HasPrefix(name, MutantPrefix):
		return lookupMutant(strings.TrimPrefix(name, MutantPrefix))
	}
	if e, err := impl.Lookup(name); err == nil {
		return FromEmulation(e), nil
	}
	if t, err := lookupMutant(name); err == nil {
		return t, nil
	}
	return Target{}, fmt.Errorf("unknown target %q: not a registry kernel or a mutant (see 'attnvet kernels')", name)
}

// resolveExec builds the target for an external worker command
// (DESIGN.md "External kernels").
func resolveExec(cmd string, o Options) (Target, error) {
	if strings.TrimSpace(cmd) == "" {
		return Target{}, fmt.Errorf("exec: target needs a command (exec:'CMD')")
	}
	if err := o.Validate(); err != nil {
		return Target{}, err
	}
	opt := worker.DefaultOptions()
	if o.CaseTimeout > 0 {
		opt.CaseTimeout = o.CaseTimeout
	}
	if o.Profile != "" {
		p := profile.MustLookup(o.Profile) // Validate checked it
		opt.Profile = &p
	}
	if o.Procs > 0 {
		opt.Procs = o.Procs
	}
	opt.Deadline = o.Deadline
	opt.Logf = o.Logf
	if opt.Logf == nil {
		opt.Logf = func(format string, a ...any) { fmt.Fprintf(os.Stderr, "attnvet: "+format+"\n", a...) }
	}
	w, err := worker.New(cmd, opt)
	if err != nil {
		return Target{}, err
	}
	// The worker's loop structure is unknown: the zero Shape (worst case).
	return Target{Name: ExecPrefix + cmd, Kind: Exec, Kernel: w}, nil
}

// FromEmulation is the target of a correct registry emulation.
func FromEmulation(e *impl.Emulation) Target {
	return Target{Name: e.Name(), Kind: Registry, Kernel: e, Shape: tolerance.ShapeOf(e.Config)}
}

// Select resolves a comma-separated list of names and path.Match globs:
// each item is a registry glob (path.Match: "tiled/*/fp16", "stream/*", "all"), a
// mutant ("mutant:NAME", "mutant:*"), a bare mutant name, or "exec:CMD".
// Duplicates are dropped; the order is the order of the items. Exec
// targets are started with opt; on an error, those already started are
// closed.
func Select(spec string, opt Options) (ts []Target, err error) {
	var out []Target
	defer func() {
		if err != nil {
			CloseAll(out)
		}
	}()
	seen := map[string]bool{}
	add := func(t Target) {
		if !seen[t.Name] {
			seen[t.Name] = true
			out = append(out, t)
		}
	}
	items := strings.Split(spec, ",")
	if strings.TrimSpace(spec) == "" {
		items = []string{"all"}
	}
	for _, it := range items {
		it = strings.TrimSpace(it)
		switch {
		case it == "":
			return nil, fmt.Errorf("empty item in kernel list %q", spec)
		case strings.HasPrefix(it, ExecPrefix):
			if seen[it] {
				continue // do not start a duplicate worker
			}
			t, err := Resolve(it, opt)
			if err != nil {
				return nil, err
			}
			add(t)
		case strings.HasPrefix(it, MutantPrefix):
			ms, err := matchMutants(strings.TrimPrefix(it, MutantPrefix))
			if err != nil {
				return nil, err
			}
			for _, m := range ms {
				add(m)
			}
		default:
			es, err := impl.Match(it)
			if err == nil {
				for _, e := range es {
					add(FromEmulation(e))
				}
				continue
			}
			if t, merr := lookupMutant(it); merr == nil {
				add(t)
				continue
			}
			return nil, err
		}
	}
	return out, nil
}

func matchMutants(glob string) ([]Target, error) {
	if _, err := path.Match(glob, ""); err != nil {
		return nil, fmt.Errorf("bad mutant pattern %q: %v", glob, err)
	}
	var out []Target
	for _, t := range Mutants() {
		if ok, _ := path.Match(glob, strings.TrimPrefix(t.Name, MutantPrefix)); ok {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no mutant matches %q (see 'attnvet kernels')", glob)
	}
	return out, nil
}

// Registry lists every correct emulation as a target, sorted by name.
func RegistryTargets() []Target {
	var out []Target
	for _, c := range impl.Configs() {
		out = append(out, FromEmulation(impl.New(c)))
	}
	return out
}
