// Package mutant is the catalog of deliberately broken attention kernels:
// each a small, named variant of a correct emulation (impl) that declares
// the correct kernel's precision profile and loop shape but computes
// something wrong. Each models one defect: the seed defect of PR #301 (the
// zero-trip loop at n = 1), the stale scratch read at n = 0, the bug
// classes of SPEC.md §3 that an attention-only kernel can have, and defects
// of the math itself (scale, sink, the online-softmax rescales, masks,
// precision slips).
//
// A verifier's criterion "kills" a mutant when it fails the mutant's output
// on some case; a good criterion kills every mutant and never fails a
// correct kernel (see internal/mutscore and docs/mutants.md).
//
// Mutants are built from the emulations' hook points (impl.Hooks), from a
// rewrite of the inputs before a correct kernel sees them, or by running
// the arithmetic of one profile while declaring another. A mutant whose
// trigger is absent from a case (no sink, n > 1, S = 1, ...) computes what
// its base computes, bit for bit; mutants never modify their inputs.
package mutant

import (
	"fmt"
	"sort"
	"strings"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/internal/tolerance"
)

// Mutant is one defective kernel of the catalog.
type Mutant struct {
	Name     string         // kebab-case, unique
	BugClass string         // "seed", "§3.N" (SPEC.md §3), "math" or "precision"
	Doc      string         // one line: the defect and what triggers it
	Family   problem.Family // the family whose inputs can trigger it; "" both
	Base     string         // registry name of the correct emulation it varies
	Kernel   impl.Kernel    // declares Base's profile; computes the defect
	Shape    tolerance.Shape
}

// All returns the catalog, in a fixed order: the seed defects, the §3
// classes in SPEC.md's order, then defects of the math and of precision.
// Each call builds fresh kernels.
func All() []Mutant {
	specs := catalog()
	ms := make([]Mutant, 0, len(specs))
	for _, s := range specs {
		ms = append(ms, s.build())
	}
	return ms
}

// Names lists the mutants' names in catalog order.
func Names() []string {
	var ns []string
	for _, s := range catalog() {
		ns = append(ns, s.name)
	}
	return ns
}

// Lookup returns the mutant named name.
func Lookup(name string) (Mutant, error) {
	for _, s := range catalog() {
		if s.name == name {
			return s.build(), nil
		}
	}
	ns := Names()
	sort.Strings(ns)
	return Mutant{}, fmt.Errorf("unknown mutant %q (known: %s)", name, strings.Join(ns, ", "))
}

// spec describes one mutant: a base emulation and what is changed.
type spec struct {
	name, class, doc string
	family           problem.Family
	base             string
	// actual edits the profile the kernel computes with; the declared
	// profile stays the base's.
	actual func(p *profile.Profile)
	hooks  *impl.Hooks
	// prep rewrites the inputs (always into a copy) before the kernel runs.
	prep func(in *problem.Inputs) *problem.Inputs
	// run replaces the whole run (for mutants that need two passes).
	run func(k *kernel, in *problem.Inputs) (*impl.Output, error)
}

func (s spec) build() Mutant {
	e, err := impl.Lookup(s.base)
	if err != nil {
		panic("mutant: " + s.name + ": " + err.Error())
	}
	cfg := e.Config
	declared := cfg.Profile
	if s.actual != nil {
		s.actual(&cfg.Profile)
	}
	cfg.Hooks = s.hooks
	k := &kernel{name: "mutant:" + s.name, declared: declared, cfg: cfg, prep: s.prep, run: s.run}
	return Mutant{
		Name: s.name, BugClass: s.class, Doc: s.doc, Family: s.family, Base: s.base, Kernel: k,
		Shape: tolerance.ShapeOf(cfg),
	}
}

// kernel is a mutant's impl.Kernel.
type kernel struct {
	name     string
	declared profile.Profile
	cfg      impl.Config // what it computes: hooks set, profile possibly altered
	prep     func(in *problem.Inputs) *problem.Inputs
	run      func(k *kernel, in *problem.Inputs) (*impl.Output, error)
}

func (k *kernel) Name() string             { return k.name }
func (k *kernel) Profile() profile.Profile { return k.declared }

func (k *kernel) Run(in *problem.Inputs) (*impl.Output, error) {
	if err := in.Check(); err != nil {
		return nil, err
	}
	// Fill the NaN row's cache now: hooks read it from the kernel's
	// goroutines, and a copy made by prep shares it.
	in.Poison()
	if k.prep != nil {
		in = k.prep(in)
	}
	if k.run != nil {
		return k.run(k, in)
	}
	return k.with(k.cfg.Hooks).Run(in)
}

// with is the kernel's computation with hooks h.
func (k *kernel) with(h *impl.Hooks) *impl.Emulation {
	c := k.cfg
	c.Hooks = h
	return impl.New(c).WithName(k.name)
}
