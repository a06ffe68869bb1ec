package interop

import (
	"bytes"
	"testing"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/ref"
)

// FuzzDecode: any bytes, read as a bundle and decoded, give an error or
// inputs that pass Check, whose violations can be listed and, if there are
// none, judged as attnvet check does; never a panic.
func FuzzDecode(f *testing.F) {
	for i, c := range []func() (*bundle.File, error){
		func() (*bundle.File, error) {
			in := mustGen(sparseCase(), num.BF16)
			return Encode(in, profile.MustLookup("bf16"), make([]float32, in.OutLen()))
		},
		func() (*bundle.File, error) {
			in := mustGen(windowCase(), num.FP16)
			return Encode(in, profile.MustLookup("fp16"), make([]float32, in.OutLen()))
		},
	} {
		b, err := c()
		if err != nil {
			f.Fatal(i, err)
		}
		var buf bytes.Buffer
		if err := b.WriteSafetensors(&buf); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes(), "")
		buf.Reset()
		if err := b.WriteNpz(&buf); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes(), "bf16")
	}
	f.Fuzz(func(t *testing.T, data []byte, prof string) {
		file, err := bundle.Parse(data)
		if err != nil {
			return
		}
		var override map[string]string
		if prof != "" {
			override = map[string]string{KeyProfile: prof, KeyIndexTopK: "6", KeyTokensPerBatch: "2"}
		}
		b, err := Decode(file, override)
		if err != nil {
			return
		}
		in := b.Inputs
		if err := in.Check(); err != nil {
			t.Fatalf("Decode accepted inputs that fail Check: %v", err)
		}
		if len(in.Violations()) > 0 || b.O == nil || in.OutLen() > 1<<14 || in.T*in.T*in.H > 1<<18 {
			return
		}
		r := ref.Compute(in, ref.Options{Workers: 1})
		tolerance.BoundCriterion{Mode: tolerance.Rigorous}.Judge(&tolerance.Input{In: in, Ref: r, Out: b.O, Profile: b.Profile})
	})
}
