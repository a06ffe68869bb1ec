package jsonfloat

import (
	"math"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, x := range []float64{0, math.Copysign(0, -1), 1, -2.5, math.SmallestNonzeroFloat64, math.MaxFloat64, 0.1, math.Inf(1), math.Inf(-1), math.NaN()} {
		b := Marshal(x)
		y, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("%v: %v", x, err)
		}
		if math.Float64bits(x) != math.Float64bits(y) && !(math.IsNaN(x) && math.IsNaN(y)) {
			t.Errorf("%v -> %s -> %v", x, b, y)
		}
	}
	for _, bad := range []string{`"infinity"`, `"1.5"`, `true`, `{}`, `"`} {
		if _, err := Unmarshal([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if y, err := Unmarshal([]byte(`"inf"`)); err != nil || !math.IsInf(y, 1) {
		t.Errorf(`"inf" -> %v, %v`, y, err)
	}
}
