package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/testpy"
)

func torchPython(t *testing.T) string { return testpy.Torch(t) }

// manifestEntry is what a bundle maker's manifest.json says of a bundle:
// the exit code check must give it, and the flags it needs.
type manifestEntry struct {
	Exit int      `json:"exit"`
	Args []string `json:"args"`
}

// makeBundles runs examples/SCRIPT with torch into a fresh directory and
// reads the manifest.json it writes there.
func makeBundles(t *testing.T, script string) (dir string, manifest map[string]manifestEntry) {
	t.Helper()
	py := torchPython(t)
	dir = t.TempDir()
	if out, err := exec.Command(py, filepath.Join("..", "..", "examples", script), dir).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &manifest); err != nil {
		t.Fatal(err)
	}
	return dir, manifest
}

// Bundles made by examples/make_bundles.py (torch inputs and outputs, a
// safetensors writer and numpy.savez, none of attnvet's code): correct
// outputs pass, defective ones fail, malformed files exit 2 with a message
// naming what is wrong.
func TestCheckTorchBundles(t *testing.T) {
	t.Parallel() // waits on its Python process
	dir, manifest := makeBundles(t, "make_bundles.py")
	// What the manifest must say, and what the messages must name: the
	// expectations live here too, so a changed script cannot weaken them.
	want := map[string]struct {
		code int
		msg  string
	}{
		"sparse_ok.safetensors":            {exitPass, ""},
		"window_ok.safetensors":            {exitPass, ""},
		"window_ok_fp32.npz":               {exitPass, ""},
		"sparse_perturbed.safetensors":     {exitMismatch, "bound: 1 of 2048 elements beyond the allowance"},
		"window_dropkey.safetensors":       {exitMismatch, "bound: "},
		"sparse_truncated.safetensors":     {exitUsage, "tensor o: data_offsets"},
		"window_badshape.safetensors":      {exitUsage, "tensor v: shape [40 1 16], want [T, Hkv, Dv] = [40, 2, Dv]"},
		"sparse_nan_seqused.npz":           {exitUsage, "tensor seqused_kv: value NaN at [1] is not an int32"},
		"sparse_q_not_bf16.safetensors":    {exitUsage, "at [0, 0, 0] is not representable in bf16 (the declared in_dtype)"},
		"sparse_pad_in_prefix.safetensors": {exitUsage, "pad_in_prefix (token 3): entry 2 is -1"},
	}
	var names []string
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(manifest) != len(want) {
		t.Errorf("manifest lists %d bundles, want %d", len(manifest), len(want))
	}
	for _, name := range names {
		w := want[name]
		t.Run(name, func(t *testing.T) {
			m, ok := manifest[name]
			if !ok || m.Exit != w.code {
				t.Fatalf("manifest: %+v, want exit %d", m, w.code)
			}
			args := append([]string{"check", filepath.Join(dir, name)}, m.Args...)
			code, out, errs := attnvet(args...)
			if code != w.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, w.code, out, errs)
			}
			switch w.code {
			case exitPass:
				if !strings.Contains(out, "bound      yes    PASS") {
					t.Errorf("stdout:\n%s", out)
				}
			case exitMismatch:
				if !strings.Contains(out, w.msg) {
					t.Errorf("stdout lacks %q:\n%s", w.msg, out)
				}
			case exitUsage:
				if !strings.Contains(errs, w.msg) || strings.Count(errs, "\n") != 1 {
					t.Errorf("stderr %q, want one line with %q", errs, w.msg)
				}
			}
		})
	}
}
