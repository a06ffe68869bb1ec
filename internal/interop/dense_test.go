package interop

import (
	"bytes"
	"math"
	"reflect"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/props"
	"github.com/attnvet/attnvet/ref"
)

// reparse serialises f as safetensors, parses and decodes it.
func reparse(t *testing.T, f *bundle.File) *Bundle {
	t.Helper()
	var buf bytes.Buffer
	if err := f.WriteSafetensors(&buf); err != nil {
		t.Fatal(err)
	}
	g, err := bundle.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Decode(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDenseRoundTrip: generated dense problems with their modifiers and
// lse conventions survive Encode + AddLSE + Decode, and the decoded bundle
// gets the verdict the in-memory problem gets.
func TestDenseRoundTrip(t *testing.T) {
	for _, fam := range []problem.Family{problem.Dense, problem.Combine, problem.MLA} {
		t.Run(string(fam), func(t *testing.T) { familyRoundTrip(t, fam) })
	}
}

func familyRoundTrip(t *testing.T, fam problem.Family) {
	k, _ := impl.Lookup("tiled/bc16/bf16")
	seen := 0
	for i := 0; seen < 40 && i < 400; i++ {
		c := props.CaseAt(7, i, fam)
		in, err := cases.Generate(c, num.BF16)
		if err != nil {
			t.Fatal(err)
		}
		if in.Format != num.BF16 || len(in.Violations()) > 0 {
			continue
		}
		seen++
		out, err := k.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Encode(in, k.Profile(), out.O)
		if err != nil {
			t.Fatal(err)
		}
		if out.LSE != nil {
			if err := AddLSE(f, in, out.LSE); err != nil {
				t.Fatal(err)
			}
		}
		b := reparse(t, f)
		got := b.Inputs
		sameInputs(t, in, got)
		if !sameBits(in.Cache, got.Cache) || !sameBits(in.ExtraCache, got.ExtraCache) || !reflect.DeepEqual(in.Idx, got.Idx) ||
			!reflect.DeepEqual(in.TopkLen, got.TopkLen) || in.ExtraTopK != got.ExtraTopK {
			t.Fatalf("case %d: mla scopes differ after the round trip: %s", i, c)
		}
		if !sameBits(in.CombV, got.CombV) || !sameBits(in.CombS, got.CombS) || in.States != got.States {
			t.Fatalf("case %d: combine states differ after the round trip: %s", i, c)
		}
		if !reflect.DeepEqual([]any{in.CuQ, in.CuK, in.WinLeft, in.WinRight, in.Softcap, in.Alibi, in.AlibiForm, in.LSE},
			[]any{got.CuQ, got.CuK, got.WinLeft, got.WinRight, got.Softcap, got.Alibi, got.AlibiForm, got.LSE}) {
			t.Fatalf("case %d: dense fields differ after the round trip: %s", i, c)
		}
		if !sameBits(b.O, out.O) || !sameBits(b.LSE, out.LSE) {
			t.Fatalf("case %d: outputs differ after the round trip", i)
		}
	}
	if seen < 20 {
		t.Fatalf("only %d judged cases", seen)
	}
}

// TestDenseBatchLayout: the same problem dumped in the batch layout
// ([B, S, H, D], softmax_lse [B, H, Sq]) decodes to the same inputs and
// outputs as the varlen one, and a wrong lse fails bound naming lse.
func TestDenseBatchLayout(t *testing.T) {
	c := cases.Case{Family: problem.Dense, Seed: 3, H: 4, Hkv: 2, D: 8, Sq: []int{3, 3}, Sk: []int{5, 5}, Causal: true,
		LSE: &cases.LSESpec{Base: "e", Empty: "+inf"}}
	in, err := cases.Generate(c, num.BF16)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := impl.Lookup("stream/bf16")
	out, _ := k.Run(in)
	vf, err := Encode(in, k.Profile(), out.O)
	if err != nil {
		t.Fatal(err)
	}
	if err := AddLSE(vf, in, out.LSE); err != nil {
		t.Fatal(err)
	}
	bf := bundle.NewFile()
	for k, v := range vf.Metadata {
		bf.Metadata[k] = v
	}
	add := func(name string, shape []int, vals []float32, dt bundle.DType) {
		x, err := bundle.NewFloat32(name, dt, shape, vals)
		if err != nil {
			t.Fatal(err)
		}
		bf.Add(x)
	}
	add(TQ, []int{2, 3, 4, 8}, in.Q, bundle.BF16)
	add(TK, []int{2, 5, 2, 8}, in.K, bundle.BF16)
	add(TV, []int{2, 5, 2, 8}, in.V, bundle.BF16)
	add(TOut, []int{2, 3, 4, 8}, out.O, bundle.BF16)
	lse := make([]float32, len(out.LSE)) // [B, H, Sq]
	for t := 0; t < 6; t++ {
		for h := 0; h < 4; h++ {
			lse[(t/3*4+h)*3+t%3] = out.LSE[t*4+h]
		}
	}
	add(TLSE, []int{2, 4, 3}, lse, bundle.F32)
	a, b := reparse(t, vf), reparse(t, bf)
	sameInputs(t, a.Inputs, b.Inputs)
	if !reflect.DeepEqual(a.Inputs.CuK, b.Inputs.CuK) || !reflect.DeepEqual(a.O, b.O) || !reflect.DeepEqual(a.LSE, b.LSE) {
		t.Fatal("batch and varlen layouts decode differently")
	}
	judge := func(bb *Bundle) tolerance.Verdict {
		r := ref.Compute(bb.Inputs, ref.Options{})
		return tolerance.BoundCriterion{Mode: tolerance.Rigorous}.Judge(&tolerance.Input{In: bb.Inputs, Ref: r, Out: bb.O, OutLSE: bb.LSE, Profile: bb.Profile})
	}
	if v := judge(b); !v.Pass || v.LSE == nil || v.LSE.Checked != 24 {
		t.Fatalf("correct batch-layout bundle: %+v", v)
	}
	b.LSE[5] += 0.01
	if v := judge(b); v.Pass || !reflect.DeepEqual(v.FailedOutputs, []string{"lse"}) {
		t.Fatalf("wrong lse: pass=%v failed outputs %v, want a failure of lse alone", v.Pass, v.FailedOutputs)
	}
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestWindowLayouts: a window problem dumped as [T, H, D], as [1, S, H, D]
// (layout bshd) and as [1, H, S, D] (layout bhsd, transposed here
// independently) decodes to the same inputs and output.
func TestWindowLayouts(t *testing.T) {
	c := cases.Case{Family: problem.Window, Seed: 9, T: 7, H: 4, Hkv: 2, D: 3, Dv: 5, Window: 3}
	in, err := cases.Generate(c, num.BF16)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := impl.Lookup("stream/bf16")
	out, _ := k.Run(in)
	base, err := Encode(in, k.Profile(), out.O)
	if err != nil {
		t.Fatal(err)
	}
	ref := reparse(t, base)
	for _, layout := range []string{"bshd", "bhsd"} {
		f := bundle.NewFile()
		for key, v := range base.Metadata {
			f.Metadata[key] = v
		}
		f.Metadata[KeyLayout] = layout
		for _, tc := range []struct {
			name string
			vals []float32
			h, d int
		}{{TQ, in.Q, in.H, in.D}, {TK, in.K, in.Hkv, in.D}, {TV, in.V, in.Hkv, in.Dv}, {TO, out.O, in.H, in.Dv}} {
			vals, shape := tc.vals, []int{1, in.T, tc.h, tc.d}
			if layout == "bhsd" {
				vals = make([]float32, len(tc.vals))
				for s := 0; s < in.T; s++ {
					for h := 0; h < tc.h; h++ {
						for j := 0; j < tc.d; j++ {
							vals[(h*in.T+s)*tc.d+j] = tc.vals[(s*tc.h+h)*tc.d+j]
						}
					}
				}
				shape = []int{1, tc.h, in.T, tc.d}
			}
			x, err := bundle.NewFloat32(tc.name, bundle.BF16, shape, vals)
			if err != nil {
				t.Fatal(err)
			}
			f.Add(x)
		}
		got := reparse(t, f)
		sameInputs(t, ref.Inputs, got.Inputs)
		if !sameBits(ref.O, got.O) {
			t.Errorf("layout %s: o differs", layout)
		}
	}
}

// A worker request holds no output tensor: its outputs key is what
// declares lse and max_logit, so a worker decoding its request with
// Decode computes the outputs the reply must carry, in the request's
// conventions.
func TestRequestOutputsDeclareLSE(t *testing.T) {
	p, err := ResolveProfile(map[string]string{"profile": "bf16"}, num.BF16, num.BF16)
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range []problem.Family{problem.Dense, problem.MLA} {
		done := false
		for i := 0; !done && i < 400; i++ {
			in, err := cases.Generate(props.CaseAt(3, i, fam), num.BF16)
			if err != nil || in.LSE == nil || in.Format != num.BF16 || in.MLAQuant != nil {
				continue
			}
			done = true
			f, err := Encode(in, p, nil)
			if err != nil {
				t.Fatal(err)
			}
			if b := reparse(t, f); b.Inputs.LSE != nil || b.Inputs.MaxLogit != nil {
				t.Errorf("%s: no output tensor and no outputs key, yet lse %v max_logit %v", fam, b.Inputs.LSE, b.Inputs.MaxLogit)
			}
			f.Metadata[KeyOutputs] = "o,lse"
			if in.MaxLogit != nil {
				f.Metadata[KeyOutputs] += ",max_logit"
			}
			b := reparse(t, f)
			if b.Inputs.LSE == nil || *b.Inputs.LSE != *in.LSE {
				t.Errorf("%s: outputs=%s decodes lse %v, want %v", fam, f.Metadata[KeyOutputs], b.Inputs.LSE, *in.LSE)
			}
			if (in.MaxLogit == nil) != (b.Inputs.MaxLogit == nil) || (in.MaxLogit != nil && *b.Inputs.MaxLogit != *in.MaxLogit) {
				t.Errorf("%s: max_logit %v, want %v", fam, b.Inputs.MaxLogit, in.MaxLogit)
			}
			if len(b.LSE) != 0 || b.O != nil {
				t.Errorf("%s: a request decoded with outputs (%d lse, %d o)", fam, len(b.LSE), len(b.O))
			}
		}
		if !done {
			t.Fatalf("%s: no bf16 case with an lse output in 400", fam)
		}
	}
}
