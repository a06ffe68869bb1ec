// Package props holds the case generators (biased toward the edge classes
// where attention kernels break), the Case shrinker, and the properties
// that state what must hold: differential (every correct emulation agrees
// with the float64 reference under the rigorous bound) and metamorphic
// (facts of the mathematics that need no reference value: key order,
// duplicated keys, sinks of ±Inf, scaling V, the range of o, one key,
// tiling and partitioning, the reference against exact math/big).
//
// The generators are plain functions of a *rand.Rand (PCG), so a campaign
// shard can draw case i without drawing cases 0..i−1 (CaseAt), and the
// gopter properties in props_test.go wrap them with the shrinker of
// shrink.go. Every failure prints its seed, the shrunk Case as JSON and the
// command that replays it.
package props

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
)

// CaseAt is the i-th case of the campaign with seed seed, for family fam
// ("" draws the family too). It depends only on (seed, i, fam), so any
// subset of indices (a shard) can be generated independently.
func CaseAt(seed uint64, i int, fam problem.Family) cases.Case {
	r := rand.New(rand.NewPCG(seed, uint64(i)*0x9e3779b97f4a7c15+1))
	return Gen{Family: fam, Size: Campaign}.Draw(r)
}

// Size bounds how much work the cases of a generator take.
type Size int

const (
	// Campaign cases: H ≤ 16 (rarely up to 32), D ≤ 64, n ≤ 256 keys
	// mostly, n ≥ 1024 in about 1.5% of cases; total work (rows × keys ×
	// width) at most 2^21.
	Campaign Size = iota
	// Small cases, for property tests that run every emulation on
	// hundreds of cases: n ≤ 129, work at most 2^16.
	Small
)

func (s Size) String() string {
	if s == Small {
		return "props.Small"
	}
	return "props.Campaign"
}

type limits struct {
	work     int // cap on Σ_rows n·(D+Dv) (sparse: Dv = D)
	maxD     int
	largeN   int // per mille of cases with n ≥ 1024
	mediumN  int // upper end of the "medium" n range
	maxRow   int // largest full index row (WIN + IDX_TOPK) drawn
	wideHead bool
}

func (s Size) limits() limits {
	if s == Small {
		return limits{work: 1 << 16, maxD: 32, largeN: 0, mediumN: 100, maxRow: 140}
	}
	return limits{work: 1 << 21, maxD: 64, largeN: 15, mediumN: 256, maxRow: 1100, wideHead: true}
}

// Gen draws Cases of one family ("" = either) biased toward the edge
// classes of ClassNames. It prints itself as the expression that builds it.
type Gen struct {
	Family problem.Family
	Size   Size
}

func (g Gen) String() string {
	return fmt.Sprintf("props.Gen{Family: %q, Size: %s}", g.Family, g.Size)
}

// Draw returns one valid case.
func (g Gen) Draw(r *rand.Rand) cases.Case {
	fam := g.Family
	if fam == "" {
		fam = []problem.Family{problem.Sparse, problem.Window}[r.IntN(2)]
	}
	return genOf(fam).draw(r, fam, g.Size.limits())
}

// drawDType pins the storage format in some cases (else the kernel's).
func drawDType(r *rand.Rand, c *cases.Case) {
	switch p := r.IntN(100); {
	case p < 8:
		c.DType = "fp16"
	case p < 12:
		c.DType = "bf16"
	case p < 15:
		c.DType = "fp32"
	}
}

// drawN is the key count the case is built around.
func drawN(r *rand.Rand, lim limits) int {
	p := r.IntN(1000)
	switch {
	case p < 80:
		return 0
	case p < 200:
		return 1
	case p < 280:
		return 2
	case p < 520:
		return []int{16, 32, 64, 128}[r.IntN(4)] + r.IntN(3) - 1
	case p < 520+lim.largeN:
		return 1024 + r.IntN(77)
	case p < 880:
		return 3 + r.IntN(38)
	}
	return 41 + r.IntN(lim.mediumN-40)
}

func drawH(r *rand.Rand, lim limits) int {
	switch p := r.IntN(100); {
	case p < 20:
		return 1
	case p < 55:
		return 2 + r.IntN(7)
	case p < 70:
		return 9 + r.IntN(7)
	case p < 85:
		return 16
	case p < 93 && lim.wideHead:
		return 17 + r.IntN(16)
	}
	return 1 + r.IntN(16)
}

func drawD(r *rand.Rand, lim limits) int {
	switch p := r.IntN(100); {
	case p < 12:
		return 1
	case p < 50:
		return 2 + r.IntN(15)
	case p < 75:
		return min([]int{16, 32, 64}[r.IntN(3)], lim.maxD)
	}
	return 1 + r.IntN(lim.maxD)
}

func divisors(h int) []int {
	var ds []int
	for d := 1; d <= h; d++ {
		if h%d == 0 {
			ds = append(ds, d)
		}
	}
	return ds
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// rowKeys returns the number of keys each query row attends (per token;
// every head of a token sees the same count).
func rowKeys(c cases.Case) []int { return genOf(c.Family).rowKeys(c) }

// Work is Σ n·(D+Dv) over every query row (token × head), n the keys the
// row attends: what one kernel run on c costs, roughly, in multiply-adds.
func Work(c cases.Case) int { return work(c) }

func work(c cases.Case) int {
	dv := c.D
	if c.Family != problem.Sparse && c.Dv > 0 {
		dv = c.Dv
	}
	keys := 0
	for _, n := range rowKeys(c) {
		keys += n
	}
	return keys * c.H * (c.D + dv)
}

// fitWork halves the widest of H, D and Dv until the case costs at most w
// (the key counts, which carry the edge classes, stay).
func fitWork(c *cases.Case, w int) {
	for work(*c) > w {
		dv := c.Dv
		switch {
		case c.H > 1 && c.H >= c.D && c.H >= dv:
			c.H = (c.H + 1) / 2
			if c.Hkv > 0 {
				c.Hkv = gcd(c.H, c.Hkv)
			}
		case c.D > 1 && c.D >= dv:
			c.D = (c.D + 1) / 2
		case dv > 1:
			c.Dv = (dv + 1) / 2
		default:
			return
		}
	}
}

func drawValues(r *rand.Rand, c *cases.Case) {
	switch p := r.IntN(100); {
	case p < 50:
	case p < 62:
		c.Values.Dist = "uniform"
	case p < 70:
		c.Values.Dist = "wide"
		c.Values.WideExp = []int{0, 2, 4, 8}[r.IntN(4)]
	case p < 82:
		c.Values.Dist = "zeroq"
	default:
		c.Values.Dist = "dominant"
	}
	switch p := r.IntN(100); {
	case p < 9: // scores far beyond exp's range: needs the max subtraction
		c.Values.Scale = []float64{10, 12, 16, 30}[r.IntN(4)]
	case p < 14:
		c.Values.Scale = []float64{0.01, 1e-3}[r.IntN(2)]
	case p < 17:
		c.Values.Scale = 3
	}
	if r.IntN(10) == 0 {
		c.Values.VScale = []float64{1e-3, 100, 1e4, 0x1p-20}[r.IntN(4)]
	}
}

// Sink values by class.
var (
	sinkHuge   = []cases.Float{cases.F(200), cases.F(1e4), cases.F(1e30), {Name: "max"}}
	sinkTiny   = []cases.Float{cases.F(-200), cases.F(-1e4), cases.F(-1e30), {Name: "-max"}}
	sinkPlain  = []cases.Float{cases.F(0), cases.F(-1), cases.F(2.5), cases.F(-0.375), {Name: "minsub"}}
	sinkPosInf = cases.F(math.Inf(1))
	sinkNegInf = cases.F(math.Inf(-1))
)

func drawSinkValue(r *rand.Rand) cases.Float {
	switch p := r.IntN(100); {
	case p < 16:
		return sinkPosInf
	case p < 32:
		return sinkNegInf
	case p < 48:
		return sinkHuge[r.IntN(len(sinkHuge))]
	case p < 64:
		return sinkTiny[r.IntN(len(sinkTiny))]
	}
	return sinkPlain[r.IntN(len(sinkPlain))]
}

func drawSink(r *rand.Rand, c *cases.Case) {
	switch p := r.IntN(100); {
	case p < 25:
	case p < 30:
		c.Sink = &cases.Sink{Kind: "none"}
	case p < 62:
		c.Sink = &cases.Sink{Kind: "random", Scale: []float64{1, 2, 4}[r.IntN(3)], Offset: float64(r.IntN(9) - 4)}
	case p < 94:
		c.Sink = &cases.Sink{Kind: "const", Value: drawSinkValue(r)}
	default: // a different sink per head
		c.Sink = &cases.Sink{Kind: "const", Values: make([]cases.Float, c.H)}
		for h := range c.Sink.Values {
			c.Sink.Values[h] = drawSinkValue(r)
		}
	}
}

// Special values by class.
var specialValues = []cases.Float{
	{Name: "max"}, {Name: "-max"}, {Name: "minsub"}, {Name: "-minsub"},
	cases.F(math.Copysign(0, -1)), cases.F(0), cases.F(0x1p-130), cases.F(-3e4),
}

var nonfiniteValues = []cases.Float{cases.F(math.Inf(1)), cases.F(math.Inf(-1)), cases.F(math.NaN())}

func drawSpecials(r *rand.Rand, c *cases.Case) {
	if r.IntN(100) >= 22 {
		return
	}
	ns := rowKeys(*c)
	for range 1 + r.IntN(3) {
		s := cases.Special{Value: specialValues[r.IntN(len(specialValues))]}
		if r.IntN(25) == 0 {
			s.Value = nonfiniteValues[r.IntN(len(nonfiniteValues))]
		}
		t := r.IntN(len(ns))
		switch {
		case r.IntN(5) < 2:
			s.Tensor, s.Token, s.Head, s.Dim = "q", t, r.IntN(c.H), r.IntN(c.D)
		case c.Family == problem.Sparse:
			s.Tensor, s.Token, s.Dim = "kv", t, r.IntN(c.D)
			s.Key = r.IntN(c.Win + c.IdxTopK)
			if ns[t] > 0 {
				s.Key = r.IntN(ns[t]) // a key the token attends
			}
		default:
			hkv := c.Hkv
			if hkv == 0 {
				hkv = c.H
			}
			nk := c.T
			if c.Family == problem.Dense {
				if nk = sumInts(c.Sk); nk == 0 {
					continue
				}
			}
			s.Tensor, s.Key, s.Head = "k", r.IntN(nk), r.IntN(hkv)
			s.Dim = r.IntN(c.D)
			if r.IntN(2) == 0 {
				s.Tensor = "v"
				dv := c.D
				if c.Dv > 0 {
					dv = c.Dv
				}
				s.Dim = r.IntN(dv)
			}
		}
		c.Specials = append(c.Specials, s)
	}
}
