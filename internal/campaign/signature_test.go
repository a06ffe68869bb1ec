package campaign

import (
	"math"
	"testing"

	"github.com/attnvet/attnvet/internal/cases"
)

// The first field: error, gross (NaN, ±Inf, beyond GrossRatio), mismatch.
func TestSignatureKind(t *testing.T) {
	for _, c := range []struct {
		err   string
		worst float64
		want  string
	}{
		{"boom", 0, "error"}, {"", math.NaN(), "gross"}, {"", math.Inf(1), "gross"}, {"", GrossRatio * 1.01, "gross"},
		{"", GrossRatio, "mismatch"}, {"", 1.5, "mismatch"},
	} {
		if got := signatureKind(c.err, c.worst); got != c.want {
			t.Errorf("signatureKind(%q, %v) = %s, want %s", c.err, c.worst, got, c.want)
		}
	}
}

// A mismatch's signature has its worst row's class and its bound term; a
// gross failure's the family alone, whatever the row and term: sizes,
// dtype, GQA, window and specials never enter.
func TestSignatureOfIgnoresTheCaseFeatures(t *testing.T) {
	a := cases.Case{Family: "window", T: 7, H: 4, Hkv: 2, D: 16, Dv: 8, Window: 3, DType: "fp16"}
	b := cases.Case{Family: "window", T: 2, H: 1, D: 1}
	for _, c := range []cases.Case{a, b} {
		if sig, _, _ := signatureOf("mismatch", "o", "p_rounding", "sink", c); sig != "mismatch o window/sink p_rounding" {
			t.Errorf("mismatch: %q", sig)
		}
		if sig, _, _ := signatureOf("gross", "o", "exact", "n1+sink+inf", c); sig != "gross o window -" {
			t.Errorf("gross: %q", sig)
		}
	}
	if ShapeClass(a) == ShapeClass(b) {
		t.Fatal("the legacy shape classes of the two cases should differ")
	}
}

// A --known file of legacy (three-field) signatures, as an older attnvet
// wrote them, marks exactly the failures whose legacy signature it lists.
func TestLegacyKnownSignatures(t *testing.T) {
	o, whole := unrecorded120(t)
	if whole.FailuresOmitted > 0 || whole.FailedChecks == 0 || whole.WorkerFailedChecks > 0 {
		t.Fatalf("want every failure listed: %d failed, %d omitted", whole.FailedChecks, whole.FailuresOmitted)
	}
	legacy := map[string]int{}
	for _, f := range whole.Failures {
		legacy[LegacySignature(failureKind(f.Error, float64(f.Worst)), outputsOf(f.FailedOutputs), ShapeClass(f.Input))]++
	}
	if len(legacy) < 2 {
		t.Fatalf("want several legacy signatures, got %v", legacy)
	}
	var text []byte
	var drop string
	for s := range legacy {
		if drop == "" {
			drop = s
			continue
		}
		text = append(text, s+"\n"...)
	}
	k, err := ParseKnown(text)
	if err != nil {
		t.Fatal(err)
	}
	o.Known = k
	r := run(t, o)
	if want := whole.FailedChecks - legacy[drop]; r.KnownChecks != want || r.Passed {
		t.Errorf("legacy known file without %q: %d known checks, want %d (passed %v)", drop, r.KnownChecks, want, r.Passed)
	}
	o.Known[drop] = true
	if r := run(t, o); !r.Passed || r.KnownChecks != whole.FailedChecks {
		t.Errorf("every legacy signature known: passed %v, %d of %d known", r.Passed, r.KnownChecks, whole.FailedChecks)
	}
}

func TestParseKnownFourFields(t *testing.T) {
	k, err := ParseKnown([]byte("gross o window -\nmismatch o window/sink p_rounding\nnonfinite o window/fp16/sink\n"))
	if err != nil || len(k) != 3 || !k["gross o window -"] {
		t.Errorf("%v %v", k, err)
	}
	if _, err := ParseKnown([]byte("a b c d e\n")); err == nil {
		t.Error("five fields accepted")
	}
}
