package main

import (
	"fmt"
	"strconv"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/ref"
)

// misdeclarationHints re-judges a failing bundle under the declarations a
// harness most often gets wrong (the window off by one, causal, P's
// precision, the output rounding, the input dtype) and names those under
// which it passes bound. They are hints for the user to check, never a
// pass: the verdict stays the declared one.
func misdeclarationHints(f *bundle.File, override map[string]string, b *interop.Bundle) []string {
	in, p := b.Inputs, b.Profile
	type alt struct{ key, value, why string }
	var alts []alt
	switch in.Family {
	case problem.Window:
		for _, w := range []int{in.W + 1, in.W - 1, 0} {
			if w >= 0 && w != in.W {
				alts = append(alts, alt{interop.KeyWindow, strconv.Itoa(w), "the window counts keys differently"})
			}
		}
	case problem.Dense:
		alts = append(alts, alt{interop.KeyCausal, strconv.FormatBool(in.WinRight != 0), "causal"})
		if in.WinLeft > 0 {
			for _, w := range []int{in.WinLeft + 1, in.WinLeft - 1} {
				alts = append(alts, alt{interop.KeyWindowLeft, strconv.Itoa(w), "window_left is W−1 for a W-key window"})
			}
		}
	}
	if p.P != p.In {
		alts = append(alts, alt{interop.KeyPDType, p.In.String(), "P rounded to the input dtype"})
	} else {
		alts = append(alts, alt{interop.KeyPDType, "fp32", "P kept in fp32"})
	}
	alts = append(alts, alt{interop.KeyOutRounding, map[bool]string{true: "away", false: "rne"}[p.OutRound.String() == "rne"], "the output cast's ties"})
	var hints []string
	for _, a := range alts {
		o := map[string]string{}
		for k, v := range override {
			o[k] = v
		}
		o[a.key] = a.value // a field overrides the profile's
		nb, err := interop.Decode(f, o)
		if err != nil || nb.O == nil || len(nb.Inputs.Violations()) > 0 {
			continue
		}
		r := ref.Compute(nb.Inputs, ref.Options{})
		v := tolerance.BoundCriterion{Mode: tolerance.Rigorous}.Judge(&tolerance.Input{In: nb.Inputs, Ref: r, Out: nb.O, OutLSE: nb.LSE, OutMaxLogit: nb.MaxLogit, Profile: nb.Profile})
		if v.Pass {
			hints = append(hints, fmt.Sprintf("with %s=%s (%s) this bundle would pass bound: check what the kernel computes; the verdict stands as declared", a.key, a.value, a.why))
		}
	}
	return hints
}
