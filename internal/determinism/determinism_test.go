package determinism

import (
	"bytes"
	"github.com/attnvet/attnvet/internal/testkit"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// update rewrites testdata/hashes.txt from this machine's results.
var update = testkit.Update

const golden = "testdata/hashes.txt"

// TestHashes compares the bits of the generator, the reference and every
// emulation on Cases with the recorded hashes.
func TestHashes(t *testing.T) {
	got, err := Compute()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if runtime.GOARCH != "amd64" {
			t.Fatalf("-update on %s: golden hashes are recorded on amd64", runtime.GOARCH)
		}
		var b bytes.Buffer
		if err := Format(&b, got); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(filepath.Dir(golden), ".hashes.tmp")
		if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, golden); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %d hashes to %s", len(got), golden)
		return
	}
	f, err := os.Open(golden)
	if err != nil {
		t.Fatalf("%v (generate it with: go test ./internal/determinism -update)", err)
	}
	defer f.Close()
	want, err := Parse(f)
	if err != nil {
		t.Fatalf("%s: %v", golden, err)
	}
	wm := map[string]string{}
	for _, l := range want {
		wm[l.Key] = l.Hash
	}
	gm := map[string]string{}
	var diffs []string
	for _, l := range got {
		gm[l.Key] = l.Hash
		switch w, ok := wm[l.Key]; {
		case !ok:
			diffs = append(diffs, "new:     "+l.Key)
		case w != l.Hash:
			diffs = append(diffs, "differs: "+l.Key)
		}
	}
	for _, l := range want {
		if _, ok := gm[l.Key]; !ok {
			diffs = append(diffs, "missing: "+l.Key)
		}
	}
	t.Logf("%d hashes on %s/%s", len(got), runtime.GOOS, runtime.GOARCH)
	if len(diffs) > 0 {
		if len(diffs) > 40 {
			diffs = append(diffs[:40], "...")
		}
		t.Errorf("%d of %d hashes differ from %s:\n%s", len(diffs), len(want), golden, strings.Join(diffs, "\n"))
	}
}

// TestHashesSensitive: the hashes see a one-bit change, and not a NaN's
// payload.
func TestHashesSensitive(t *testing.T) {
	h := func(xs ...float64) string {
		var b bytes.Buffer
		f64s(&b, xs...)
		return b.String()
	}
	if h(1, 2) == h(1, 2+0x1p-51) || h(0) == h(negZero()) {
		t.Error("a one-bit change is not seen")
	}
	if h(nan(0x7ff8000000000001)) != h(nan(0xfff8000000000000)) {
		t.Error("NaN payloads are hashed")
	}
	var a, b bytes.Buffer
	f32s(&a, []float32{1, 2})
	f32s(&b, []float32{1, 2, 0})
	if a.String() == b.String() {
		t.Error("lengths are not hashed")
	}
}

func TestParse(t *testing.T) {
	lines := []Line{{"a/b", strings.Repeat("0", 64)}, {"c", strings.Repeat("f", 64)}}
	var b bytes.Buffer
	Format(&b, lines)
	got, err := Parse(&b)
	if err != nil || len(got) != 2 || got[1] != lines[1] {
		t.Errorf("round trip: %v, %v", got, err)
	}
	if _, err := Parse(strings.NewReader("a b c\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad line: %v", err)
	}
}

func TestCasesValid(t *testing.T) {
	seen := map[string]bool{}
	for _, nc := range Cases() {
		if seen[nc.Name] {
			t.Errorf("duplicate name %s", nc.Name)
		}
		seen[nc.Name] = true
		if err := nc.Case.Validate(); err != nil {
			t.Errorf("%s: %v", nc.Name, err)
		}
	}
	if len(seen) < 20 {
		t.Errorf("%d cases, want at least 20", len(seen))
	}
}

func negZero() float64 { return math.Copysign(0, -1) }

func nan(bits uint64) float64 { return math.Float64frombits(bits) }
