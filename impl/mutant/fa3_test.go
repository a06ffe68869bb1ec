package mutant_test

import (
	"math"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/impl/mutant"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/ref"
)

// fa3Cases are dense FP8 cases, each the trigger of some FA3 mutant: GQA
// over two sequences (q_descale by query head), large v descales (v_descale
// folded into P overflows), a long tail of keys at e^−7.2 (P without the
// offset), an lse (the offset's 2^−8).
func fa3Cases() []cases.Case {
	lse := &cases.LSESpec{Base: "e", Empty: "-inf"}
	return []cases.Case{
		{Family: problem.Dense, DType: "fp32", Seed: 24, H: 4, Hkv: 2, D: 16, Sq: []int{3, 2}, Sk: []int{40, 70},
			FP8: "e4m3", AccBits: 14, FP8Edge: cases.FP8EdgeBigV, LSE: lse},
		{Family: problem.Dense, DType: "fp32", Seed: 26, H: 2, D: 16, Sq: []int{2}, Sk: []int{1000},
			FP8: "e4m3", FP8Edge: cases.FP8EdgeTail},
	}
}

// TestFA3MutantsKilled: every FA3 FP8 mutant fails the rigorous bound (on
// o or on the lse) on some case of fa3Cases, and the correct emulation
// passes them all.
func TestFA3MutantsKilled(t *testing.T) {
	var ins []*problem.Inputs
	var refs []*ref.Result
	for _, c := range fa3Cases() {
		in, err := cases.Generate(c, num.FP32)
		if err != nil {
			t.Fatal(err)
		}
		if vs := in.Violations(); len(vs) > 0 {
			t.Fatalf("%v: %s", vs, c)
		}
		ins, refs = append(ins, in), append(refs, ref.Compute(in, ref.Options{}))
	}
	fails := func(k impl.Kernel, sh tolerance.Shape, i int) bool {
		out, err := k.Run(ins[i])
		if err != nil {
			t.Fatal(err)
		}
		x := &tolerance.Input{In: ins[i], Ref: refs[i], Out: out.O, OutLSE: out.LSE, Profile: k.Profile(), Shape: sh}
		allowed, _, skip := tolerance.Bounds(x, tolerance.Rigorous)
		for e, ro := range refs[i].O {
			if d := math.Abs(float64(out.O[e]) - ro); !skip[e] && !(d <= allowed[e]) {
				return true
			}
		}
		return ins[i].LSE != nil && tolerance.JudgeLSE(x, tolerance.Rigorous).Failed > 0
	}
	base, err := impl.Lookup("fa3/bc128/fp8bf16")
	if err != nil {
		t.Fatal(err)
	}
	for i := range ins {
		if fails(base, tolerance.Shape{Kind: "fa3", Bc: 128}, i) {
			t.Errorf("the correct FA3 emulation fails case %d", i)
		}
	}
	n := 0
	for _, m := range mutant.All() {
		if !strings.HasPrefix(m.Name, "fa3-") {
			continue
		}
		n++
		killed := false
		for i := range ins {
			killed = killed || fails(m.Kernel, m.Shape, i)
		}
		if !killed {
			t.Errorf("%s survives the bound on every FA3 case", m.Name)
		}
	}
	if n != 7 {
		t.Errorf("%d FA3 mutants, want 7", n)
	}
}

// TestInt8MutantsKilled: both INT8-KV mutants fail the rigorous bound on a
// per-channel GQA case; their base passes it.
func TestInt8MutantsKilled(t *testing.T) {
	c := cases.Case{Family: problem.Dense, Seed: 27, H: 4, Hkv: 2, D: 8, Sq: []int{2, 1}, Sk: []int{12, 30}, Int8KV: "per_channel"}
	in, err := cases.Generate(c, num.BF16)
	if err != nil {
		t.Fatal(err)
	}
	r := ref.Compute(in, ref.Options{})
	fails := func(k impl.Kernel, sh tolerance.Shape) bool {
		out, err := k.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		x := &tolerance.Input{In: in, Ref: r, Out: out.O, Profile: k.Profile(), Shape: sh}
		allowed, _, skip := tolerance.Bounds(x, tolerance.Rigorous)
		for e, ro := range r.O {
			if d := math.Abs(float64(out.O[e]) - ro); !skip[e] && !(d <= allowed[e]) {
				return true
			}
		}
		return false
	}
	base, _ := impl.Lookup("tiled/bc128/bf16rne")
	if fails(base, tolerance.Shape{Kind: "tiled", Bc: 128}) {
		t.Error("tiled/bc128/bf16rne fails the INT8-KV case")
	}
	for _, name := range []string{"int8-channel-scale-no-head", "int8-codes-as-uint8"} {
		m, err := mutant.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if !fails(m.Kernel, m.Shape) {
			t.Errorf("%s survives the bound", name)
		}
	}
}

// TestNVFP4MutantsKilled: the three NVFP4-KV mutants fail the rigorous
// bound on a GQA case with two blocks a head; their base passes it.
func TestNVFP4MutantsKilled(t *testing.T) {
	c := cases.Case{Family: problem.Dense, Seed: 28, H: 4, Hkv: 2, D: 32, Dv: 16, Sq: []int{2, 1}, Sk: []int{12, 30}, NVFP4KV: true}
	in, err := cases.Generate(c, num.BF16)
	if err != nil {
		t.Fatal(err)
	}
	r := ref.Compute(in, ref.Options{})
	fails := func(k impl.Kernel, sh tolerance.Shape) bool {
		out, err := k.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		x := &tolerance.Input{In: in, Ref: r, Out: out.O, Profile: k.Profile(), Shape: sh}
		allowed, _, skip := tolerance.Bounds(x, tolerance.Rigorous)
		for e, ro := range r.O {
			if d := math.Abs(float64(out.O[e]) - ro); !skip[e] && !(d <= allowed[e]) {
				return true
			}
		}
		return false
	}
	base, _ := impl.Lookup("tiled/bc128/bf16rne")
	if fails(base, tolerance.Shape{Kind: "tiled", Bc: 128}) {
		t.Error("tiled/bc128/bf16rne fails the NVFP4-KV case")
	}
	for _, name := range []string{"nvfp4-next-block-scale", "nvfp4-no-global-scale", "nvfp4-nibble-swap"} {
		m, err := mutant.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if !fails(m.Kernel, m.Shape) {
			t.Errorf("%s survives the bound", name)
		}
	}
}
