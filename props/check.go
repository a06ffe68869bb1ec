package props

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/pipeline"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/tolerance"
)

// Checker runs emulations on cases and judges them. The zero Checker runs
// every correct emulation (impl.Configs) under the rigorous bound.
type Checker struct {
	// Configs are the kernels under test; nil means impl.Configs().
	Configs []impl.Config
	// Hooks, if not nil, gives each kernel run its own hooks (a test's
	// injected defect); it may return nil for configs it leaves alone.
	// It is called once per run, so hooks may keep per-run state.
	Hooks func(impl.Config) *impl.Hooks
}

func (ch *Checker) configs() []impl.Config {
	if ch.Configs == nil {
		return impl.Configs()
	}
	return ch.Configs
}

// run computes kernel cfg on in.
func (ch *Checker) run(cfg impl.Config, in *problem.Inputs) (*impl.Output, error) {
	if ch.Hooks != nil {
		cfg.Hooks = ch.Hooks(cfg)
	}
	out, err := pipeline.Run(impl.New(cfg), in, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", impl.ConfigName(cfg), err)
	}
	return out, nil
}

// Failure is a kernel's output element outside what a property allows.
type Failure struct {
	Property string
	Kernel   string
	Elem     int     // flat index into o, (t·H + h)·Dv + j
	T, H, J  int     // token, head, column of Elem
	Got      float64 // the kernel's value (or the left side of a relation)
	Want     float64 // what the property expects
	Allowed  float64 // the allowed |Got − Want|
	Detail   string
}

func (f *Failure) Error() string {
	s := fmt.Sprintf("%s: %s: o[t=%d,h=%d,j=%d] = %v, want %v (|diff| %.3g, allowed %.3g)",
		f.Property, f.Kernel, f.T, f.H, f.J, f.Got, f.Want, math.Abs(f.Got-f.Want), f.Allowed)
	if f.Detail != "" {
		s += ": " + f.Detail
	}
	return s
}

func newFailure(prop, kernel string, in *problem.Inputs, e int, got, want, allowed float64, detail string) *Failure {
	row := e / in.Dv
	return &Failure{Property: prop, Kernel: kernel, Elem: e, T: row / in.H, H: row % in.H, J: e % in.Dv,
		Got: got, Want: want, Allowed: allowed, Detail: detail}
}

// formats returns the input formats c is generated in for cfgs, with the
// configs that take each.
func formats(c cases.Case, cfgs []impl.Config) ([]num.Format, map[num.Format][]impl.Config) {
	var fs []num.Format
	by := map[num.Format][]impl.Config{}
	for _, cfg := range cfgs {
		f := c.Format(cfg.Profile.In)
		if !impl.Compatible(f, cfg.Profile) {
			continue
		}
		if by[f] == nil {
			fs = append(fs, f)
		}
		by[f] = append(by[f], cfg)
	}
	return fs, by
}

// Check is the differential property: on case c, every kernel's output is
// within the rigorous bound of the float64 reference, element by element.
// Inputs with contract violations are not judged numerically; instead
// Check requires that the violations c plants are reported (and no others).
func (ch *Checker) Check(c cases.Case) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("invalid case: %v", err)
	}
	fs, by := formats(c, ch.configs())
	for _, f := range fs {
		p, err := pipeline.Prepare(c, f)
		if err != nil {
			return fmt.Errorf("generate (%s): %v", f, err)
		}
		in, r := p.In, p.Ref
		if err := CheckViolations(c, in, p.Violations); err != nil {
			return err
		}
		if len(p.Violations) > 0 {
			continue // reported, not judged
		}
		for _, cfg := range by[f] {
			out, err := ch.run(cfg, in)
			if err != nil {
				return err
			}
			x := p.Input(out, cfg.Profile, tolerance.ShapeOf(cfg))
			if v := (tolerance.BoundCriterion{Mode: tolerance.Rigorous}).Judge(x); !v.Pass {
				e := v.WorstElem
				allowed, _, _ := tolerance.Bounds(x, tolerance.Rigorous)
				return newFailure("differential", impl.ConfigName(cfg), in, e, float64(out.O[e]), r.O[e], allowed[e],
					fmt.Sprintf("%d of %d elements beyond the bound, worst err/bound %.3g", v.Failed, v.Checked, v.Worst))
			}
		}
	}
	return nil
}

// ViolationPlants are the Case.Plant edits that break the kernel contract.
var ViolationPlants = []string{problem.VPadInPrefix, problem.VValidAfter, problem.VWindowSlot, problem.VBlockTable}

// ExpectedViolations returns the violations case c must report (plants
// that found a token to edit and that no later duplicate plant can undo: at
// least one of these is reported) and the ones it may report (every
// violation plant, non-finite planted values, seqused_kv < S−1).
func ExpectedViolations(c cases.Case, f num.Format) (must, may []string) {
	if problem.IsPypto(c.Family) {
		for _, p := range c.Plant {
			if slices.Contains(PyptoViolationPlants, p) {
				may = append(may, p)
			}
		}
	}
	if c.Family == problem.Sparse {
		for i, p := range c.Plant {
			if !slices.Contains(ViolationPlants, p) || !plantApplies(c, p) {
				continue
			}
			if slices.Contains(c.Plant[i+1:], "duplicate") {
				// A later duplicate may copy a valid entry over the
				// planted one: the violation may or may not survive.
				may = append(may, p)
				continue
			}
			must = append(must, p)
		}
		for _, u := range c.Seqused {
			if u < max(c.S, 1)-1 {
				may = append(may, problem.VNegativeSeqused)
			}
		}
	}
	if c.Family == problem.Dense {
		may = append(may, denseExpectedViolations(c)...)
	}
	for _, s := range c.Specials {
		v := num.Round64(f, s.Value.Resolve(f), num.RNE)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			may = append(may, problem.VNonFinite)
		}
	}
	if sc := float64(float32(c.Scale)); math.IsNaN(sc) || math.IsInf(sc, 0) {
		must = append(must, problem.VScale) // beyond FP32, the kernels' scale format
	}
	if c.Sink != nil {
		for _, v := range append([]cases.Float{c.Sink.Value}, c.Sink.Values...) {
			if math.IsNaN(v.Resolve(num.FP32)) {
				may = append(may, problem.VNonFinite)
			}
		}
	}
	return must, append(may, must...)
}

// CheckViolations checks that in, generated from c, reports the violations
// c plants and no others.
func CheckViolations(c cases.Case, in *problem.Inputs, vs []problem.Violation) error {
	must, may := ExpectedViolations(c, in.Format)
	if len(must) > 0 && len(vs) == 0 {
		return fmt.Errorf("violations: planted %s, none reported", strings.Join(must, ", "))
	}
	for _, v := range vs {
		if !slices.Contains(may, v.Name) {
			return fmt.Errorf("violations: unexpected %s (expected only %v)", v, may)
		}
	}
	return nil
}

// plantApplies reports whether plant p finds a token to edit in c (the
// conditions of the case generator).
func plantApplies(c cases.Case, p string) bool {
	in := lensOnly(c)
	for t := 0; t < in.T; t++ {
		if cases.PlantFits(p, in.TokenLens(t), in.TopK) {
			return true
		}
	}
	return false
}
