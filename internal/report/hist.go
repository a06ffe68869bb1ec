package report

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/attnvet/attnvet/internal/jsonfloat"
)

// SubBins is the number of histogram bins per octave. A value x > 0 with
// x = f·2^e, f in [1, 2), falls in bin
//
//	e·SubBins + ⌊(f − 1)·SubBins⌋
//
// whose edges, (1 + k/SubBins)·2^e, are exact binary numbers (for
// e ≥ −1070, which covers every error a low-precision kernel makes). The bin is
// found with math.Frexp and one exact multiply, so the same value lands in
// the same bin on every machine, and a percentile read off the histogram
// (the bin's upper edge) is at most 1/SubBins (6.25%) above the exact one.
const SubBins = 16

// Hist counts non-negative values in fixed log-spaced bins (see SubBins),
// plus one bin for exact zeros and one for +Inf. Two histograms of the
// same quantity add without loss, so shard results merge exactly.
//
// JSON holds the non-empty bins run-length coded: {"zero": z, "inf": i,
// "bins": [b₀, n₀, Δ₁, n₁, Δ₂, n₂, …]}: bin b₀ holds n₀ values, bin
// b₀+Δ₁ holds n₁, bin b₀+Δ₁+Δ₂ holds n₂, and so on.
type Hist struct {
	Zero   int64   // values == 0
	Inf    int64   // values == +Inf
	Lo     int     // bin index of Counts[0]
	Counts []int64 // Counts[i] is bin Lo+i
}

type histJSON struct {
	Zero int64   `json:"zero,omitempty"`
	Inf  int64   `json:"inf,omitempty"`
	Bins []int64 `json:"bins"`
}

func (h Hist) MarshalJSON() ([]byte, error) {
	j := histJSON{Zero: h.Zero, Inf: h.Inf, Bins: []int64{}}
	prev := 0
	for i, n := range h.Counts {
		if n == 0 {
			continue
		}
		b := h.Lo + i
		if len(j.Bins) == 0 {
			j.Bins = append(j.Bins, int64(b), n)
		} else {
			j.Bins = append(j.Bins, int64(b-prev), n)
		}
		prev = b
	}
	return json.Marshal(j)
}

func (h *Hist) UnmarshalJSON(b []byte) error {
	var j histJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if len(j.Bins)%2 != 0 {
		return fmt.Errorf("histogram bins: want pairs, got %d numbers", len(j.Bins))
	}
	if j.Zero < 0 || j.Inf < 0 {
		return fmt.Errorf("histogram: negative count")
	}
	*h = Hist{Zero: j.Zero, Inf: j.Inf}
	b0 := int64(0)
	for i := 0; i < len(j.Bins); i += 2 {
		d, n := j.Bins[i], j.Bins[i+1]
		if i > 0 && d <= 0 {
			return fmt.Errorf("histogram bins: step %d, want > 0", d)
		}
		b0 += d
		if n <= 0 || b0 < -1<<20 || b0 > 1<<20 {
			return fmt.Errorf("histogram bins: bin %d count %d out of range", b0, n)
		}
		h.addBin(int(b0), n)
	}
	return nil
}

// binOf is the bin of a finite x > 0.
func binOf(x float64) int {
	f, e := math.Frexp(x) // x = f·2^e, f in [0.5, 1)
	k := int((2*f - 1) * SubBins)
	return (e-1)*SubBins + k
}

// binUpper is the upper edge of bin b.
func binUpper(b int) float64 {
	e := b / SubBins
	k := b % SubBins
	if k < 0 {
		k += SubBins
		e--
	}
	return math.Ldexp(1+float64(k+1)/SubBins, e)
}

// Add counts x, which must be ≥ 0 (a caller mistake panics).
func (h *Hist) Add(x float64) {
	switch {
	case math.IsNaN(x) || x < 0:
		panic(fmt.Sprintf("report: Hist.Add(%v): want a value ≥ 0", x))
	case x == 0:
		h.Zero++
		return
	case math.IsInf(x, 1):
		h.Inf++
		return
	}
	h.addBin(binOf(x), 1)
}

func (h *Hist) addBin(b int, n int64) {
	if len(h.Counts) == 0 {
		h.Lo, h.Counts = b, []int64{n}
		return
	}
	if b < h.Lo {
		grown := make([]int64, len(h.Counts)+h.Lo-b)
		copy(grown[h.Lo-b:], h.Counts)
		h.Lo, h.Counts = b, grown
	}
	if i := b - h.Lo; i >= len(h.Counts) {
		h.Counts = append(h.Counts, make([]int64, i+1-len(h.Counts))...)
	}
	h.Counts[b-h.Lo] += n
}

// Merge adds o's counts to h.
func (h *Hist) Merge(o *Hist) {
	h.Zero += o.Zero
	h.Inf += o.Inf
	for i, n := range o.Counts {
		if n != 0 {
			h.addBin(o.Lo+i, n)
		}
	}
}

// Total is the number of values counted.
func (h *Hist) Total() int64 {
	t := h.Zero + h.Inf
	for _, n := range h.Counts {
		t += n
	}
	return t
}

// Quantile is an upper estimate of the p-quantile (p in [0, 1]): the upper
// edge of the bin holding the ⌈p·total⌉-th smallest value (0 for the zero
// bin, +Inf for the infinite one). It is NaN for an empty histogram.
func (h *Hist) Quantile(p float64) float64 {
	total := h.Total()
	if total == 0 {
		return math.NaN()
	}
	rank := int64(math.Ceil(p*float64(total) - 1e-9))
	rank = min(max(rank, 1), total)
	if rank <= h.Zero {
		return 0
	}
	seen := h.Zero
	for i, n := range h.Counts {
		seen += n
		if rank <= seen {
			return binUpper(h.Lo + i)
		}
	}
	return math.Inf(1)
}

// Bins calls f for each non-empty finite bin with its edges and count.
func (h *Hist) Bins(f func(lo, hi float64, n int64)) {
	for i, n := range h.Counts {
		if n != 0 {
			b := h.Lo + i
			f(binUpper(b-1), binUpper(b), n)
		}
	}
}

// Stat is the distribution of one error measure: a histogram and the exact
// maximum.
type Stat struct {
	Max  Float `json:"max"`
	Hist Hist  `json:"hist"`
}

// Add records x ≥ 0.
func (s *Stat) Add(x float64) {
	s.Hist.Add(x)
	if x > float64(s.Max) {
		s.Max = Float(x)
	}
}

// Merge adds o to s.
func (s *Stat) Merge(o *Stat) {
	s.Hist.Merge(&o.Hist)
	s.Max = Float(math.Max(float64(s.Max), float64(o.Max)))
}

// N is the number of values recorded.
func (s *Stat) N() int64 { return s.Hist.Total() }

// Quantile is Hist.Quantile capped at the exact maximum.
func (s *Stat) Quantile(p float64) float64 {
	return math.Min(s.Hist.Quantile(p), float64(s.Max))
}

// Float is a float64 that JSON carries exactly: a number (Go's shortest
// round-tripping form) or, for values JSON cannot hold, "+inf", "-inf" or
// "nan".
type Float float64

func (f Float) MarshalJSON() ([]byte, error) { return jsonfloat.Marshal(float64(f)), nil }

func (f *Float) UnmarshalJSON(b []byte) error {
	x, err := jsonfloat.Unmarshal(b)
	*f = Float(x)
	return err
}
