package tolerance

import (
	"math"
	"testing"

	"github.com/attnvet/attnvet/ref"
)

func TestTermsDominant(t *testing.T) {
	for _, c := range []struct {
		t    Terms
		want string
	}{
		{Terms{}, "exact"},
		{Terms{Total: math.Inf(1)}, "unbounded"},
		{Terms{Range: 1, Underflow: 5, Total: 6}, "range"},
		{Terms{Jacobian: 1, PRound: 3, Output: 2, Total: 6}, "p_rounding"},
		{Terms{Jacobian: 2, Accumulate: 2, Total: 4}, "jacobian"},
		{Terms{Underflow: 1, Division: 4, Total: 5}, "division"},
	} {
		if got := c.t.Dominant(); got != c.want {
			t.Errorf("%+v: %s, want %s", c.t, got, c.want)
		}
	}
}

func TestRowClass(t *testing.T) {
	inf := math.Inf(1)
	for _, c := range []struct {
		r    ref.Row
		want string
	}{
		{ref.Row{N: 0, Sink: -inf}, "n0"},
		{ref.Row{N: 1, Sink: inf}, "n1+sink+inf"},
		{ref.Row{N: 5, Sink: 2}, "sink"},
		{ref.Row{N: 5, Sink: -inf}, ""},
	} {
		if got := RowClass(&c.r); got != c.want {
			t.Errorf("%+v: %q, want %q", c.r, got, c.want)
		}
	}
}
