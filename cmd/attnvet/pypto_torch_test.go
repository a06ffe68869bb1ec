package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckPyptoTorchBundles: csa, hca and swa bundles made by
// examples/make_pypto_bundles.py (torch, float64 attention from the SPEC's
// semantics, none of attnvet's code) pass; one perturbed element, and a
// kernel keeping compressed slots below ⌊p/4⌋ instead of ⌊(p+1)/4⌋, fail;
// a csa bundle without index_topk is refused naming the key.
func TestCheckPyptoTorchBundles(t *testing.T) {
	t.Parallel() // waits on its Python process
	py := torchPython(t)
	dir := t.TempDir()
	if out, err := exec.Command(py, filepath.Join("..", "..", "examples", "make_pypto_bundles.py"), dir).CombinedOutput(); err != nil {
		t.Fatalf("make_pypto_bundles.py: %v\n%s", err, out)
	}
	flags := map[string][]string{
		"csa": {"--tokens-per-batch", "2", "--index-topk", "10"},
		"hca": {"--tokens-per-batch", "2", "--compress-ratio", "2"},
		"swa": {"--tokens-per-batch", "2"},
	}
	for _, tc := range []struct {
		name string
		code int
		msg  string
	}{
		{"csa_ok", exitPass, "PASS"},
		{"hca_ok", exitPass, "PASS"},
		{"swa_ok", exitPass, "PASS"},
		{"csa_perturbed", exitMismatch, "bound: 1 of 1024 elements beyond the allowance"},
		{"hca_perturbed", exitMismatch, "bound: 1 of 1024 elements beyond the allowance"},
		{"swa_perturbed", exitMismatch, "bound: 1 of 1024 elements beyond the allowance"},
		{"csa_bound_p_over_4", exitMismatch, "bound: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"check", filepath.Join(dir, tc.name+".npz"), "--profile", "bf16rne"}, flags[tc.name[:3]]...)
			code, out, errs := attnvet(args...)
			if code != tc.code || !strings.Contains(out, tc.msg) {
				t.Fatalf("exit %d, want %d with %q\nstdout:\n%s\nstderr:\n%s", code, tc.code, tc.msg, out, errs)
			}
		})
	}
	code, _, errs := attnvet("check", filepath.Join(dir, "csa_ok.npz"), "--profile", "bf16rne", "--tokens-per-batch", "2")
	if code != exitUsage || !strings.Contains(errs, "metadata index_topk is missing") {
		t.Errorf("csa without index_topk: exit %d, stderr %q", code, errs)
	}
}
