package report

import (
	"math"
	"testing"
	"time"

	"gonum.org/v1/plot"
)

// decadeTicks on a degenerate axis: `attnvet report --cases 4 --kernels
// stream/bf16 --family window` (and 'report --merge' of its report.json)
// hung drawing report.html: an axis from 0 made lo = int(−Inf), and the
// tick loop ran from the smallest int up (found building FuzzMergeReports'
// seed, a 4-case report).
func TestDecadeTicksDegenerateAxis(t *testing.T) {
	for _, r := range [][2]float64{{0, 1}, {-1, 1}, {math.NaN(), math.NaN()}, {1e-12, math.Inf(1)}, {0, 0}, {5, 5}, {1e-320, 1e308}} {
		done := make(chan int, 1)
		go func() { done <- len(decadeTicks{}.Ticks(r[0], r[1])) }()
		select {
		case n := <-done:
			if n > 1000 {
				t.Errorf("Ticks(%g, %g): %d ticks", r[0], r[1], n)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("Ticks(%g, %g) did not return in 2 s", r[0], r[1])
		}
	}
}

// A log axis whose data have one value (plot widens it to [v−1, v+1]: from
// 0 for v = 1) or start at 0 is kept positive before drawing.
func TestLogRangePositive(t *testing.T) {
	for _, r := range [][2]float64{{1, 1}, {0, 2}, {-1, 1}, {0, 0}, {math.NaN(), math.NaN()}} {
		a := plot.Axis{Min: r[0], Max: r[1], Scale: plot.LogScale{}}
		logRange(&a)
		if !(a.Min > 0 && a.Max > a.Min) {
			t.Errorf("axis [%g, %g] became [%g, %g]", r[0], r[1], a.Min, a.Max)
		}
	}
}
