// Package profile names the precision of each stage of an attention kernel:
// what its inputs are stored in, what scores and probabilities are rounded
// to, what it accumulates in, what it writes, and how the final cast rounds.
// The tolerance of a kernel is derived from its profile.
package profile

import (
	"fmt"
	"sort"
	"strings"

	"github.com/attnvet/attnvet/internal/num"
)

// Profile is a kernel's precision, stage by stage.
type Profile struct {
	Name  string     `json:"name"`
	In    num.Format `json:"in"`    // q, k, v storage
	Score num.Format `json:"score"` // scores S = scale·q·k as stored before the softmax
	P     num.Format `json:"p"`     // probabilities as fed to the P·V product
	Acc   num.Format `json:"acc"`   // dot products, max, exp, l and o accumulation
	Out   num.Format `json:"out"`   // output o
	// OutRound is the final cast's tie rule.
	OutRound num.Rounding `json:"out_rounding"`
	// LFromRoundedP: l sums the rounded P (an older variant) instead of the
	// unrounded values.
	LFromRoundedP bool `json:"l_from_rounded_p,omitempty"`
	// ExpULPs bounds the device exp's error in ulps of Acc (c_e in
	// docs/tolerance.md). Zero means DefaultExpULPs.
	ExpULPs float64 `json:"exp_ulps,omitempty"`
	// ExpGradual: the exp rounds results below FP32's smallest normal into
	// the subnormals (attnvet's emulations, glibc, Sleef). Without it the
	// bound lets an exp flush them to zero, as the field's do (CUDA's
	// ex2.approx.ftz, ONNX Runtime's MLAS softmax): docs/tolerance.md,
	// "Underflow".
	ExpGradual bool `json:"exp_gradual,omitempty"`
}

// DefaultExpULPs models a device exp accurate to 2 ulps of its format (our
// emulations are correctly rounded, i.e. within 0.5 ulp).
const DefaultExpULPs = 2

// ExpError returns c_e.
func (p Profile) ExpError() float64 {
	if p.ExpULPs > 0 {
		return p.ExpULPs
	}
	return DefaultExpULPs
}

func (p Profile) String() string { return p.Name }

// Describe spells a profile out stage by stage.
func (p Profile) Describe() string {
	s := fmt.Sprintf("in=%s score=%s p=%s acc=%s out=%s/%s", p.In, p.Score, p.P, p.Acc, p.Out, p.OutRound)
	if p.LFromRoundedP {
		s += " l=rounded-p"
	}
	if p.ExpGradual {
		s += " exp=gradual"
	}
	return s
}

var builtin = map[string]Profile{
	// The device kernel B today: BF16 tensors, FP32 scores and accumulators,
	// P cast to BF16 for the P·V matmul, default (ties-away) output cast.
	"bf16": {In: num.BF16, Score: num.FP32, P: num.BF16, Acc: num.FP32, Out: num.BF16, OutRound: num.Away},
	// The same with an explicit rint cast.
	"bf16rne": {In: num.BF16, Score: num.FP32, P: num.BF16, Acc: num.FP32, Out: num.BF16, OutRound: num.RNE},
	// BF16 tensors with P kept in FP32 (kernel A, the per-key stream).
	"bf16p32": {In: num.BF16, Score: num.FP32, P: num.FP32, Acc: num.FP32, Out: num.BF16, OutRound: num.Away},
	// The older variant: l summed from the BF16-rounded P.
	"bf16lrp": {In: num.BF16, Score: num.FP32, P: num.BF16, Acc: num.FP32, Out: num.BF16, OutRound: num.Away, LFromRoundedP: true},
	// BF16 tensors, scores stored in BF16 too.
	"bf16s16": {In: num.BF16, Score: num.BF16, P: num.BF16, Acc: num.FP32, Out: num.BF16, OutRound: num.Away},
	// FP16 tensors, FP32 accumulation, P in FP16.
	"fp16": {In: num.FP16, Score: num.FP32, P: num.FP16, Acc: num.FP32, Out: num.FP16, OutRound: num.RNE},
	// Everything in FP16, accumulators included.
	"fp16acc": {In: num.FP16, Score: num.FP16, P: num.FP16, Acc: num.FP16, Out: num.FP16, OutRound: num.RNE},
	// Plain FP32.
	"fp32": {In: num.FP32, Score: num.FP32, P: num.FP32, Acc: num.FP32, Out: num.FP32, OutRound: num.RNE},
}

func init() {
	for name, p := range builtin {
		p.Name = name
		builtin[name] = p
	}
}

// Lookup returns a built-in profile by name.
func Lookup(name string) (Profile, error) {
	p, ok := builtin[name]
	if !ok {
		return Profile{}, fmt.Errorf("unknown precision profile %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	return p, nil
}

// MustLookup is Lookup for names known at compile time.
func MustLookup(name string) Profile {
	p, err := Lookup(name)
	if err != nil {
		panic("profile: " + err.Error())
	}
	return p
}

// Names lists the built-in profiles, sorted.
func Names() []string {
	names := make([]string, 0, len(builtin))
	for n := range builtin {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
