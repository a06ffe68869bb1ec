package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// Bundles of the field's conventions made by examples/make_field_bundles.py
// (torch, written from the SPEC pages' descriptions of FlashAttention's
// dense layouts, FlashMLA's sparse decode and flashinfer's merge_states,
// none of attnvet's code): a correct BF16 kernel's outputs pass; each
// defect fails, naming the output that is wrong. The expectations live
// here, so a changed script cannot weaken them.
func TestCheckFieldTorchBundles(t *testing.T) {
	t.Parallel() // waits on its Python process
	dir, manifest := makeBundles(t, "make_field_bundles.py")
	// msg: what the FAIL line must say; lseOnly: out itself must pass.
	want := map[string]struct {
		code    int
		msg     string
		lseOnly bool
	}{
		"dense_batch_causal_ok.safetensors":  {exitPass, "", false},
		"dense_varlen_window_ok.safetensors": {exitPass, "", false},
		"dense_paged_ok.safetensors":         {exitPass, "", false},
		"dense_topleft_causal.safetensors":   {exitMismatch, "bound lse: 48 of 48 rows", false},
		"dense_lse_off.safetensors":          {exitMismatch, "bound lse: 16 of 16 rows", true},
		"mla_ok.safetensors":                 {exitPass, "", false},
		"mla_lse_base2.safetensors":          {exitMismatch, "bound lse: 12 of 16 rows", true},
		"mla_sink_in_lse.safetensors":        {exitMismatch, "bound lse: 6 of 16 rows", true},
		"combine_ok.safetensors":             {exitPass, "", false},
		"combine_dropstate.safetensors":      {exitMismatch, "bound: 124 of 768 elements", false},
	}
	if len(manifest) != len(want) {
		t.Errorf("manifest lists %d bundles, want %d", len(manifest), len(want))
	}
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			if m, ok := manifest[name]; !ok || m.Exit != w.code {
				t.Fatalf("manifest: %+v, want exit %d", m, w.code)
			}
			code, out, errs := attnvet("check", filepath.Join(dir, name), "--top", "0")
			if code != w.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, w.code, out, errs)
			}
			if w.code == exitPass && !strings.Contains(out, "bound      yes    PASS") {
				t.Errorf("stdout:\n%s", out)
			}
			if w.code == exitMismatch && !strings.Contains(out, w.msg) {
				t.Errorf("stdout lacks %q:\n%s", w.msg, out)
			}
			if w.lseOnly && !strings.Contains(out, "bound: 0 of ") {
				t.Errorf("out should pass, only the lse fail:\n%s", out)
			}
		})
	}
}
