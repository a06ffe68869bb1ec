// Package testbundle writes the bundles tests check: a case generated,
// run through a kernel and encoded as attnvet export would. Only tests
// import it.
package testbundle

import (
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/targets"
)

// Write generates c, runs kernel on it and writes the bundle (with edit
// applied, if not nil) to dir/name: .npz by that suffix, else safetensors.
func Write(t testing.TB, dir, name string, c cases.Case, kernel string, edit func(*bundle.File)) string {
	t.Helper()
	tg, err := targets.Resolve(kernel, targets.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := tg.Kernel.Profile()
	in, err := cases.Generate(c, p.In)
	if err != nil {
		t.Fatal(err)
	}
	out, err := tg.Kernel.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	f, err := interop.Encode(in, p, out.O)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(f)
	}
	path := filepath.Join(dir, name)
	write := f.WriteSafetensors
	if strings.HasSuffix(name, ".npz") {
		write = f.WriteNpz
	}
	if err := bundle.WriteFileAtomic(path, func(w io.Writer) error { return write(w) }); err != nil {
		t.Fatal(err)
	}
	return path
}
