package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/bundlecheck"
	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/internal/testbundle"
)

// attnvet runs the CLI in-process.
func attnvet(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func checkSparseCase() cases.Case {
	return cases.Case{Version: 1, Family: problem.Sparse, Seed: 5, H: 4, D: 16, B: 2, S: 2, Win: 8, IdxTopK: 12, BlockSize: 4,
		Seqused: []int{9, 30}, Sink: &cases.Sink{Kind: "random", Scale: 1}, Indices: "shuffled", BlockTable: "permuted"}
}

func checkWindowCase() cases.Case {
	return cases.Case{Version: 1, Family: problem.Window, Seed: 6, H: 4, Hkv: 2, D: 16, Dv: 8, T: 24, Window: 6,
		Sink: &cases.Sink{Kind: "random", Scale: 1}}
}

func TestCheckVerdicts(t *testing.T) {
	dir := t.TempDir()
	truncate := func(path string) {
		b, _ := os.ReadFile(path)
		os.WriteFile(path, b[:len(b)-50], 0o644)
	}
	for _, tc := range []struct {
		name   string
		c      cases.Case
		kernel string
		edit   func(*bundle.File)
		after  func(string)
		code   int
		out    []string
		stderr string
	}{
		{"sparse_ok.safetensors", checkSparseCase(), "tiled/bc32/bf16", nil, nil, exitPass,
			[]string{"sparse T=4 (B=2×S=2) H=4 D=16 WIN=8 TOPK=20 BS=4", "profile     bf16 (in=bf16", "bound      yes    PASS", "PASS "}, ""},
		{"window_ok.safetensors", checkWindowCase(), "splitkv/p2/bc32/fp16", nil, nil, exitPass,
			[]string{"window T=24 H=4 Hkv=2 D=16 Dv=8 W=6", "profile     fp16", "PASS "}, ""},
		{"sparse_mutant.safetensors", checkSparseCase(), "mutant:current-key-dropped", nil, nil, exitMismatch,
			[]string{"bound      yes    FAIL", "worst elements by err/bound", "FAIL ", "elements beyond the allowance"}, ""},
		{"window_mutant.safetensors", checkWindowCase(), "mutant:window-start-off-by-one", nil, nil, exitMismatch,
			[]string{"FAIL "}, ""},
		{"truncated.safetensors", checkSparseCase(), "tiled/bc32/bf16", nil, truncate, exitUsage,
			[]string{"INVALID"}, "out of range of the"},
		{"no_o.safetensors", checkSparseCase(), "tiled/bc32/bf16", func(f *bundle.File) { delete(f.Tensors, "o") }, nil, exitUsage,
			nil, "tensor o: missing"},
		{"bad_s.safetensors", checkSparseCase(), "tiled/bc32/bf16", func(f *bundle.File) { f.Metadata["tokens_per_batch"] = "3" }, nil, exitUsage,
			nil, "tensor q: T=4 tokens, want B·tokens_per_batch = 2·3 = 6"},
		{"contract.safetensors", checkSparseCase(), "tiled/bc32/bf16", func(f *bundle.File) {
			f.Tensors["seqused_kv"].Data[0] = 0 // seqused_kv[0] = 0 < S-1
		}, nil, exitUsage, []string{"negative_seqused: seqused_kv[0] = 0 < tokens_per_batch-1 = 1 [tensor seqused_kv]", "CONTRACT"}, "contract violations in the inputs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeBundle(t, dir, tc.name, tc.c, tc.kernel, tc.edit)
			if tc.after != nil {
				tc.after(p)
			}
			code, out, errs := attnvet("check", p)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errs)
			}
			for _, w := range tc.out {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if tc.stderr == "" && errs != "" {
				t.Errorf("stderr: %s", errs)
			}
			if tc.stderr != "" && (!strings.Contains(errs, tc.stderr) || strings.Count(errs, "\n") != 1) {
				t.Errorf("stderr %q, want one line with %q", errs, tc.stderr)
			}
		})
	}
}

func TestCheckJSONAndJUnit(t *testing.T) {
	dir := t.TempDir()
	ok := writeBundle(t, dir, "ok.safetensors", checkSparseCase(), "tiled/bc32/bf16", nil)
	bad := writeBundle(t, dir, "bad.safetensors", checkSparseCase(), "mutant:current-key-dropped", nil)
	broken := filepath.Join(dir, "broken.safetensors")
	os.WriteFile(broken, []byte("not a bundle"), 0o644)
	js, ju := filepath.Join(dir, "c.json"), filepath.Join(dir, "c.xml")
	code, out, errs := attnvet("check", ok, bad, broken, "--json", js, "--junit", ju, "--criterion", "bound,prob")
	if code != exitUsage {
		t.Fatalf("exit %d, want 2 (one bundle is invalid)\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "3 bundles: 1 pass, 1 fail, 0 contract violations, 1 invalid") {
		t.Errorf("summary missing:\n%s", out)
	}
	if !strings.Contains(errs, "broken.safetensors: safetensors: header length") || strings.Count(errs, "\n") != 1 {
		t.Errorf("stderr %q", errs)
	}
	var doc bundlecheck.File
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != 1 || doc.Exit != exitUsage || len(doc.Bundles) != 3 || doc.Bundles[2].Status != "invalid" {
		t.Fatalf("JSON: %+v", doc)
	}
	if doc.Bundles[0].Status != "pass" || doc.Bundles[1].Status != "fail" || len(doc.Bundles[1].Worst) == 0 || doc.Bundles[1].Worst[0].Ratio <= 1 {
		t.Errorf("JSON bundles: %+v", doc.Bundles)
	}
	gating := 0
	for _, v := range doc.Bundles[1].Verdicts {
		if v.Gating {
			gating++
		}
	}
	if gating != 2 || len(doc.Bundles[1].Verdicts) != 7 {
		t.Errorf("verdicts %+v", doc.Bundles[1].Verdicts)
	}
	var xj campaign.JUnitSuites
	xb, _ := os.ReadFile(ju)
	if err := xml.Unmarshal(xb, &xj); err != nil {
		t.Fatal(err)
	}
	if xj.Tests != 6 || xj.Failures != 2 || xj.Errors != 2 || len(xj.Suites) != 1 {
		t.Errorf("JUnit: %d tests, %d failures, %d errors", xj.Tests, xj.Failures, xj.Errors)
	}
	// The invalid bundle alone: exit 2, a one-line error.
	code, _, errs = attnvet("check", broken)
	if code != exitUsage || !strings.Contains(errs, "broken.safetensors: safetensors: header length") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
	// Without it: exit 1.
	if code, out, _ = attnvet("check", ok, bad); code != exitMismatch {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

func TestCheckNpzAndFlags(t *testing.T) {
	dir := t.TempDir()
	p := writeBundle(t, dir, "w.npz", checkWindowCase(), "tiled/bc32/bf16", nil)
	// Without flags: the family is inferred, but the profile defaults
	// differ (o's dtype is stored as F32 in .npz) and the window is 0.
	code, out, _ := attnvet("check", p)
	if code == exitPass {
		t.Errorf("a window-6 bundle checked as full causal passes:\n%s", out)
	}
	code, out, errs := attnvet("check", p, "--window", "6", "--profile", "bf16", "--softmax-scale", "0.25")
	if code != exitPass {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	// A flag overrides the file's metadata.
	s := writeBundle(t, dir, "s.safetensors", checkSparseCase(), "tiled/bc32/bf16", nil)
	if code, out, _ := attnvet("check", s, "--softmax-scale", "0.3"); code != exitMismatch {
		t.Errorf("a wrong --softmax-scale passes (exit %d):\n%s", code, out)
	}
	if code, _, errs := attnvet("check", s, "--in-dtype", "fp8"); code != exitUsage || !strings.Contains(errs, `metadata in_dtype: unknown dtype "fp8"`) {
		t.Errorf("exit %d: %s", code, errs)
	}
}

func TestCheckUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"check"}, "missing BUNDLE"},
		{[]string{"check", "x.safetensors", "--criterion", "nope"}, `--criterion: unknown criterion "nope"`},
		{[]string{"check", "x.safetensors", "--criterion", ","}, "name at least one criterion"},
		{[]string{"check", "x.safetensors", "--top", "-1"}, "--top -1"},
		{[]string{"check", "x.safetensors", "--json", "/nonexistent/dir/x.json"}, "directory /nonexistent/dir does not exist"},
		{[]string{"check", "/nonexistent.safetensors"}, "no such file"},
	} {
		code, _, errs := attnvet(tc.args...)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, errs, tc.want)
		}
	}
	code, out, _ := attnvet("help", "check")
	if code != exitPass || !strings.Contains(out, "-tokens-per-batch") || !strings.Contains(out, "-junit") {
		t.Errorf("help check:\n%s", out)
	}
}

func TestExport(t *testing.T) {
	dir := t.TempDir()
	cf := filepath.Join(dir, "case.json")
	if err := os.WriteFile(cf, checkSparseCase().Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	st := filepath.Join(dir, "k.safetensors")
	code, out, errs := attnvet("export", cf, st, "--kernel", "tiled/bc128/bf16")
	if code != exitPass || !strings.Contains(out, "inputs and the output of tiled/bc128/bf16") {
		t.Fatalf("export: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := attnvet("check", st); code != exitPass {
		t.Fatalf("check of an exported emulation output: exit %d\n%s\n%s", code, out, errs)
	}
	// The bundle holds the case and the inputs exactly.
	f, err := bundle.ReadFile(st)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := cases.Parse([]byte(f.Metadata[interop.KeyCase])); err != nil || c.Seed != checkSparseCase().Seed {
		t.Errorf("attnvet_case: %v %v", c, err)
	}
	b, err := interop.Decode(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := cases.Generate(checkSparseCase(), num.BF16)
	for i := range in.Q {
		if in.Q[i] != b.Inputs.Q[i] {
			t.Fatalf("q[%d] differs", i)
		}
	}
	em, _ := impl.Lookup("tiled/bc128/bf16")
	want, _ := em.Run(in)
	for i := range want.O {
		if want.O[i] != b.O[i] {
			t.Fatalf("o[%d] = %v, want %v", i, b.O[i], want.O[i])
		}
	}
	if b.Profile != profile.MustLookup("bf16") {
		t.Errorf("profile %+v", b.Profile)
	}
	// Inputs only: check wants o.
	in2 := filepath.Join(dir, "in.safetensors")
	if code, _, errs := attnvet("export", cf, in2, "--profile", "fp32"); code != exitPass {
		t.Fatal(errs)
	}
	if code, _, errs := attnvet("check", in2); code != exitUsage || !strings.Contains(errs, "tensor o: missing") {
		t.Errorf("check without o: exit %d, %s", code, errs)
	}
	// .npz: the flags to check it with are printed, and they work.
	npz := filepath.Join(dir, "k.npz")
	code, out, _ = attnvet("export", cf, npz, "--kernel", "mutant:current-key-dropped")
	i := strings.Index(out, "attnvet check ")
	if code != exitPass || i < 0 {
		t.Fatalf("export npz: exit %d\n%s", code, out)
	}
	args := strings.Fields(strings.TrimSpace(out[i+len("attnvet "):]))
	if code, out, errs := attnvet(args...); code != exitMismatch {
		t.Errorf("%v: exit %d, want 1 (a mutant's output)\n%s\n%s", args, code, out, errs)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"export", cf}, "want CASE.json and OUT.safetensors"},
		{[]string{"export", cf, filepath.Join(dir, "x.bin")}, "must end in .safetensors or .npz"},
		{[]string{"export", cf, st, "--kernel", "nope"}, "--kernel: unknown target"},
		{[]string{"export", cf, st, "--kernel", "stream/bf16", "--profile", "fp32"}, "--profile and --kernel"},
		{[]string{"export", filepath.Join(dir, "none.json"), st}, "no such file"},
		{[]string{"export", cf, st, "--dtype", "fp64"}, `--dtype "fp64"`},
	} {
		code, _, errs := attnvet(tc.args...)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, errs, tc.want)
		}
	}
}

// TestCheckUnstatedSemantics: a window bundle without `window`, and an F32
// dump of bf16 values without in_dtype, are refused (exit 2, naming the
// key) instead of judged under a guessed default; --assume-defaults judges
// them; a wrongly declared window fails with a hint naming the window that
// passes.
func TestCheckUnstatedSemantics(t *testing.T) {
	dir := t.TempDir()
	c := cases.Case{Family: problem.Window, Seed: 4, T: 12, H: 2, D: 8, Window: 3, Sink: &cases.Sink{Kind: "random", Scale: 1}}
	in, err := cases.Generate(c, num.BF16)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := impl.Lookup("tiled/bc16/bf16rne")
	out, _ := k.Run(in)
	write := func(name string, edit func(f *bundle.File)) string {
		f, err := interop.Encode(in, k.Profile(), out.O)
		if err != nil {
			t.Fatal(err)
		}
		edit(f)
		p := filepath.Join(dir, name)
		if err := bundle.WriteFileAtomic(p, func(w io.Writer) error { return f.WriteSafetensors(w) }); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noWindow := write("nowindow.safetensors", func(f *bundle.File) { delete(f.Metadata, interop.KeyWindow) })
	offByOne := write("offbyone.safetensors", func(f *bundle.File) { f.Metadata[interop.KeyWindow] = "2" })
	var so, se bytes.Buffer
	if code := run([]string{"check", noWindow}, &so, &se); code != exitUsage || !strings.Contains(se.String(), "metadata window is missing") {
		t.Errorf("no window: exit %d, stderr %q", code, se.String())
	}
	so.Reset()
	se.Reset()
	if code := run([]string{"check", "--assume-defaults", noWindow}, &so, &se); code != exitMismatch {
		t.Errorf("no window, --assume-defaults (judged full causal): exit %d, want 1", code)
	}
	so.Reset()
	se.Reset()
	if code := run([]string{"check", offByOne}, &so, &se); code != exitMismatch || !strings.Contains(so.String(), "hint        with window=3") {
		t.Errorf("window 2 for a window-3 kernel: exit %d, output lacks the window=3 hint:\n%s", code, so.String())
	}
}

func writeBundle(t *testing.T, dir, name string, c cases.Case, kernel string, edit func(*bundle.File)) string {
	t.Helper()
	return testbundle.Write(t, dir, name, c, kernel, edit)
}
