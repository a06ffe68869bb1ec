package report

import (
	"math"
)

// RTolGrid is the rtol values at which a report records the atol an
// allclose check would need: 0 and 2^(−k/2) for k = 0..52 (1 down to
// 2^−26, half-octave steps), ascending.
func RTolGrid() []Float {
	g := []Float{0}
	for k := 52; k >= 0; k-- {
		g = append(g, Float(math.Pow(2, -float64(k)/2)))
	}
	return g
}

// Need is, for each rtol r of a grid, the smallest atol with which
// allclose (|a − e| ≤ atol + r·|e| for every element) passes everything
// recorded:
//
//	atol(r) = max over elements of (|a − e| − r·|e|)⁺
//
// An element whose finiteness differs from the reference's needs +Inf
// (no (atol, rtol) passes it); elements that agree on a non-finite value
// need 0. Needs merge by element-wise maximum.
type Need []Float

// NewNeed is a zero Need for grid g.
func NewNeed(g []Float) Need { return make(Need, len(g)) }

// Add records one element with error err ≥ 0 (+Inf for a finiteness
// mismatch) at reference magnitude ref = |e|.
func (n Need) Add(grid []Float, err, ref float64) {
	switch {
	case err == 0:
		return
	case math.IsInf(err, 1):
		for i := range n {
			n[i] = Float(err)
		}
		return
	}
	for i, r := range grid {
		rr := float64(float64(r) * ref)
		if a := err - rr; a > float64(n[i]) {
			if a+rr < err { // rounded down: allclose would still fail
				a = math.Nextafter(a, math.Inf(1))
			}
			n[i] = Float(a)
		}
	}
}

// Merge takes the element-wise maximum.
func (n Need) Merge(o Need) {
	for i := range min(len(n), len(o)) {
		if o[i] > n[i] {
			n[i] = o[i]
		}
	}
}

// Passes reports whether allclose(atol, grid[i]) passes everything recorded.
func (n Need) Passes(i int, atol float64) bool { return float64(n[i]) <= atol }

// TolPoint is one (atol, rtol) choice.
type TolPoint struct {
	ATol Float `json:"atol"`
	RTol Float `json:"rtol"`
	idx  int   // index of RTol in the grid
}

// Pareto is the Pareto set of grid points: the points (atol(r), r) whose
// atol is strictly below that of every smaller rtol, in ascending rtol
// (and so descending atol). Every point passes everything recorded; no
// grid point with a smaller rtol passes with the same atol. Empty when
// even rtol 1 needs an infinite atol.
func (n Need) Pareto(grid []Float) []TolPoint {
	var ps []TolPoint
	best := math.Inf(1)
	for i, r := range grid {
		a := float64(n[i])
		if a < best {
			ps = append(ps, TolPoint{ATol: n[i], RTol: r, idx: i})
			best = a
		}
	}
	return ps
}

// Knee picks the point of a Pareto set that allows the least error at
// |o| = 1, the scale of outputs of unit-scale data:
//
//	argmin atol + rtol   (ties: the smaller rtol)
//
// It trades atol against rtol one for one where outputs are of order 1,
// so it follows the kernel's own error: close to rtol = u_out when the
// error is mostly the output rounding, and toward a pure atol when it is
// not relative to |o|. ok is false for an empty set.
func Knee(ps []TolPoint) (p TolPoint, ok bool) {
	if len(ps) == 0 {
		return TolPoint{}, false
	}
	best := math.Inf(1)
	for _, q := range ps {
		if s := float64(q.ATol) + float64(q.RTol); s < best {
			best, p = s, q
		}
	}
	return p, true
}
