package targets

import (
	"strings"
	"testing"
	"time"
)

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		kind       Kind
		err        string
	}{
		{name: "tiled/bc32/bf16", want: "tiled/bc32/bf16", kind: Registry},
		{name: " stream/fp32 ", want: "stream/fp32", kind: Registry},
		{name: "mutant:pr301-n1-poison", want: "mutant:pr301-n1-poison", kind: Mutant},
		{name: "pr301-n1-poison", want: "mutant:pr301-n1-poison", kind: Mutant},
		{name: "", err: "empty target"},
		{name: "tiled/bc7/bf16", err: "unknown target"},
		{name: "mutant:tiled/bc32/bf16", err: "unknown mutant"},
		{name: "exec:", err: "needs a command"},
		{name: "exec:   ", err: "needs a command"},
	} {
		got, err := Resolve(tc.name, Options{})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Resolve(%q): error %v, want one mentioning %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Resolve(%q): %v", tc.name, err)
			continue
		}
		if got.Name != tc.want || got.Kind != tc.kind || got.Kernel == nil {
			t.Errorf("Resolve(%q) = %q %q, want %q %q", tc.name, got.Name, got.Kind, tc.want, tc.kind)
		}
		if got.Kind == Registry && (got.Shape.Kind == "" || !got.Trusted()) {
			t.Errorf("Resolve(%q): registry kernel without a shape or not trusted: %+v", tc.name, got.Shape)
		}
		if got.Kind == Mutant && (got.BugClass == "" || got.Trusted()) {
			t.Errorf("Resolve(%q): mutant without a bug class, or trusted", tc.name)
		}
	}
}

func TestSelect(t *testing.T) {
	all := len(RegistryTargets())
	for _, tc := range []struct {
		spec string
		n    int
		err  string
	}{
		{spec: "", n: all},
		{spec: "all", n: all},
		{spec: "*/bf16", n: 1},
		{spec: "tiled/*/bf16", n: 5},
		{spec: "tiled/*/bf16,tiled/bc32/bf16", n: 5}, // duplicates dropped
		{spec: "stream/*,mutant:pr301-*", n: len(mustSelect(t, "stream/*")) + len(mustSelect(t, "mutant:pr301-*"))},
		{spec: "pr301-n1-poison", n: 1},
		{spec: "nope/*", err: "no kernel matches"},
		{spec: "[", err: "bad kernel pattern"},
		{spec: "mutant:[", err: "bad mutant pattern"},
		{spec: "mutant:zzz*", err: "no mutant matches"},
		{spec: "stream/bf16,,", err: "empty item"},
	} {
		got, err := Select(tc.spec, Options{})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Select(%q): error %v, want %q", tc.spec, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != tc.n {
			t.Errorf("Select(%q) = %d targets, %v; want %d", tc.spec, len(got), err, tc.n)
		}
	}
	if all != 78 { // 8 shapes × 8 profiles + pypto/bf16rne + fa3/bc128/fp8bf16 + exp2 and lazy × 6 profiles
		t.Errorf("%d registry kernels, want 78", all)
	}
}

func mustSelect(t *testing.T, spec string) []Target {
	ts, err := Select(spec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// Bad exec options are refused before any process starts; registry
// kernels and mutants ignore the options.
func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		opt Options
		err string
	}{
		{Options{Profile: "bf17"}, "unknown precision profile"},
		{Options{CaseTimeout: -1}, "negative"},
		{Options{Procs: -1}, "want 1 to 256 worker processes"},
		{Options{Procs: 257}, "want 1 to 256 worker processes"},
	} {
		if _, err := Resolve("exec:/no/such/worker", tc.opt); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Resolve(exec, %+v): %v, want %q", tc.opt, err, tc.err)
		}
		if _, err := Resolve("stream/bf16", tc.opt); err != nil {
			t.Errorf("Resolve(stream/bf16, %+v): %v", tc.opt, err)
		}
	}
	if err := (Options{Profile: "fp32", CaseTimeout: time.Second}).Validate(); err != nil {
		t.Error(err)
	}
	if !IsExec(" exec:w") || IsExec("tiled/bc32/bf16") || IsExec("mutant:exec:") {
		t.Error("IsExec")
	}
	if _, ok := mustSelect(t, "stream/bf16")[0].WorkerStats(); ok {
		t.Error("a registry kernel has worker stats")
	}
}
