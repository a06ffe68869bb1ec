package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"sort"
	"strconv"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// legendWidth is the strip right of a plot that holds its legend.
const legendWidth = vg.Length(78)

// svgOf renders p, with leg (if any entries) in a strip on its right, as
// an SVG element for inlining in HTML (no XML prolog).
func svgOf(p *plot.Plot, leg *plot.Legend, w, h vg.Length) ([]byte, error) {
	logRange(&p.X)
	logRange(&p.Y)
	c := vgsvg.New(w, h)
	dc := draw.New(c)
	if leg == nil {
		p.Draw(dc)
	} else {
		p.Draw(draw.Crop(dc, 0, -legendWidth, 0, 0))
		lc := draw.Crop(dc, w-legendWidth+vg.Points(8), 0, 0, -vg.Points(24))
		leg.Top, leg.Left = true, true
		leg.Padding = vg.Points(2.5)
		leg.Draw(lc)
	}
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	if i := bytes.Index(b, []byte("<svg")); i > 0 {
		b = b[i:]
	}
	return b, nil
}

// sans sets every text of p (and of leg) in Liberation Sans, the family
// the HTML around it uses, at the sizes gonum chose.
func sans(p *plot.Plot, leg *plot.Legend) {
	set := func(f *font.Font) { f.Typeface, f.Variant = "Liberation", "Sans" }
	set(&p.Title.TextStyle.Font)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		set(&a.Label.TextStyle.Font)
		set(&a.Tick.Label.Font)
		a.Tick.Label.Font.Size = vg.Points(9)
		a.Label.TextStyle.Font.Size = vg.Points(10.5)
	}
	if leg != nil {
		set(&leg.TextStyle.Font)
		leg.TextStyle.Font.Size = vg.Points(10)
	}
}

// decadeTicks labels the powers of ten of a log axis (every k-th when
// there are more than ten) and marks 2..9 between them.
type decadeTicks struct{}

func (decadeTicks) Ticks(min, max float64) []plot.Tick {
	lo := decade(math.Floor(math.Log10(min)))
	hi := decade(math.Ceil(math.Log10(max)))
	if hi < lo {
		hi = lo
	}
	step := 1
	for (hi-lo)/step > 10 {
		step++
	}
	var ts []plot.Tick
	for k := lo; k <= hi; k++ {
		// 10^k correctly rounded (math.Pow10 is not, for k < −22).
		v, _ := strconv.ParseFloat("1e"+strconv.Itoa(k), 64)
		t := plot.Tick{Value: v}
		if (k-lo)%step == 0 {
			t.Label = "1e" + strconv.Itoa(k)
			if k >= -3 && k <= 4 {
				t.Label = strconv.FormatFloat(v, 'f', -1, 64)
			}
		}
		ts = append(ts, t)
		if step == 1 && k < hi {
			for i := 2; i < 10; i++ {
				ts = append(ts, plot.Tick{Value: float64(i) * v})
			}
		}
	}
	return ts
}

// logRange keeps a log axis positive: plot widens an axis whose data
// have one value v to [v−1, v+1], which from v = 1 starts at 0 (a panic
// of the log scale; a report of 4 cases with one key count did that).
func logRange(a *plot.Axis) {
	if _, ok := a.Scale.(plot.LogScale); !ok || a.Min > 0 && a.Max > a.Min {
		return
	}
	v := a.Max
	if !(v > 0) || math.IsInf(v, 0) {
		v = 1
	}
	if a.Min < v && a.Min > 0 {
		return
	}
	a.Min, a.Max = v/10, v*10
}

// decade is a tick exponent within float64's decades: an axis from 0
// (log −Inf) or to +Inf once made the tick loop run from the smallest int.
func decade(e float64) int {
	switch {
	case math.IsNaN(e):
		return 0
	case e < -324:
		return -324
	case e > 308:
		return 308
	}
	return int(e)
}

// swatch is a legend thumbnail: a filled box.
type swatch struct{ c color.Color }

func (s swatch) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(s.c, []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y}})
}

// palette is Tableau 10: distinct, colour-blind-friendlier hues.
var palette = [...]color.RGBA{
	{0x4e, 0x79, 0xa7, 0xff}, {0xf2, 0x8e, 0x2b, 0xff}, {0xe1, 0x57, 0x59, 0xff}, {0x76, 0xb7, 0xb2, 0xff},
	{0x59, 0xa1, 0x4f, 0xff}, {0xed, 0xc9, 0x48, 0xff}, {0xb0, 0x7a, 0xa1, 0xff}, {0xff, 0x9d, 0xa7, 0xff},
	{0x9c, 0x75, 0x5f, 0xff}, {0xba, 0xb0, 0xac, 0xff},
}

// profileColor gives each profile a fixed color, by its rank in the
// sorted names.
func profileColor(names []string, p string) color.Color {
	i := sort.SearchStrings(names, p)
	return palette[i%len(palette)]
}

// qrow is one kernel's err/bound distribution.
type qrow struct {
	p50, p99, p999, max float64
	color               color.Color
}

// quantRows draws per kernel (row i at y = i) a box from p50 to p99, a
// whisker from p99 to the max, and a tick at p99.9. Values below floor
// are drawn at floor.
type quantRows struct {
	rows       []qrow
	floor, top float64
}

func (q quantRows) clamp(x float64) float64 {
	if math.IsNaN(x) {
		return q.floor
	}
	return math.Min(math.Max(x, q.floor), q.top)
}

func (q quantRows) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for i, r := range q.rows {
		if math.IsNaN(r.max) {
			continue
		}
		y := trY(float64(i))
		hh := (trY(float64(i)+0.32) - y)
		x50, x99, x999, xm := trX(q.clamp(r.p50)), trX(q.clamp(r.p99)), trX(q.clamp(r.p999)), trX(q.clamp(r.max))
		whisker := draw.LineStyle{Color: color.Gray{Y: 70}, Width: vg.Points(1)}
		c.StrokeLine2(whisker, x99, y, xm, y)
		c.StrokeLine2(whisker, xm, y-hh, xm, y+hh)
		if x99-x50 < vg.Points(1.5) {
			x99 = x50 + vg.Points(1.5)
		}
		c.FillPolygon(r.color, []vg.Point{{X: x50, Y: y - hh}, {X: x99, Y: y - hh}, {X: x99, Y: y + hh}, {X: x50, Y: y + hh}})
		c.DrawGlyph(draw.GlyphStyle{Color: color.Black, Radius: vg.Points(2.2), Shape: draw.PyramidGlyph{}}, vg.Point{X: x999, Y: y})
	}
}

func (q quantRows) DataRange() (xmin, xmax, ymin, ymax float64) {
	return q.floor, q.top, -0.6, float64(len(q.rows)) - 0.4
}

// Plot sizes in points (1 pt = 4/3 CSS px): a wide plot spans the 1368 px
// page, a narrow one half of it.
const (
	wideWidth   = vg.Length(1020)
	narrowWidth = vg.Length(500)
)

// headroomPlot is the err/bound distribution per profile of one family,
// over the profile's kernels.
func headroomPlot(fam string, es []*Entry, profiles []string) ([]byte, error) {
	if len(es) == 0 {
		return nil, nil
	}
	type prow struct {
		name string
		s    Stat
	}
	var prs []prow
	for _, pn := range profiles {
		pr := prow{name: pn}
		seen := false
		for _, e := range es {
			if e.Profile == pn {
				pr.s.Merge(&e.Ratio)
				seen = true
			}
		}
		if seen {
			prs = append(prs, pr)
		}
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: error / bound per element (1 = at the bound)", fam)
	p.X.Label.Text = "|a − o| / bound"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = decadeTicks{}
	var p50s []float64
	for _, pr := range prs {
		if pr.s.N() > 0 {
			p50s = append(p50s, pr.s.Quantile(0.5))
		}
	}
	q := quantRows{floor: math.Max(logFloor(p50s, 1e-4), 1e-8), top: 1}
	names := make([]string, len(prs))
	for i := range prs {
		pr := prs[len(prs)-1-i] // first profile on top
		names[i] = pr.name
		r := qrow{p50: pr.s.Quantile(0.5), p99: pr.s.Quantile(0.99), p999: pr.s.Quantile(0.999),
			max: float64(pr.s.Max), color: profileColor(profiles, pr.name)}
		if pr.s.N() == 0 {
			r = qrow{p50: math.NaN(), p99: math.NaN(), p999: math.NaN(), max: math.NaN()}
		}
		if !math.IsInf(r.max, 1) && r.max > q.top {
			q.top = r.max
		}
		q.rows = append(q.rows, r)
	}
	if q.top <= 1 {
		q.top = 2 // within the bound: the axis ends just past the line at 1
	} else {
		q.top = math.Pow(10, math.Ceil(math.Log10(q.top)+1e-9)) // Inf clamps here
	}
	p.Add(plotter.NewGrid())
	p.Add(q)
	one, err := plotter.NewLine(plotter.XYs{{X: 1, Y: -0.6}, {X: 1, Y: float64(len(prs)) - 0.4}})
	if err != nil {
		return nil, err
	}
	one.LineStyle.Color = color.RGBA{R: 200, A: 255}
	one.LineStyle.Width = vg.Points(1.5)
	one.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(one)
	sans(p, nil)
	p.NominalY(names...)
	h := vg.Points(float64(22*len(prs) + 80))
	return svgOf(p, nil, wideWidth, h)
}

// scatterPoint is one case of one profile.
type scatterPoint struct{ x, y float64 }

// profilePoints gathers, per profile, per case, the point of the kernel
// with the largest norm error; x is chosen by xOf.
func profilePoints(es []*Entry, xOf func(Point) float64) map[string][]scatterPoint {
	type key struct {
		prof string
		c    int
	}
	best := map[key]Point{}
	for _, e := range es {
		for _, pt := range e.Points {
			k := key{e.Profile, pt.Case}
			if b, ok := best[k]; !ok || pt.Norm > b.Norm {
				best[k] = pt
			}
		}
	}
	out := map[string][]scatterPoint{}
	for k, pt := range best {
		out[k.prof] = append(out[k.prof], scatterPoint{xOf(pt), float64(pt.Norm)})
	}
	for _, ps := range out {
		sort.Slice(ps, func(i, j int) bool {
			if ps[i].x != ps[j].x {
				return ps[i].x < ps[j].x
			}
			return ps[i].y < ps[j].y
		})
	}
	return out
}

// logFloor is a power of ten at or below half the smallest positive
// finite value, or def if there is none.
func logFloor(vals []float64, def float64) float64 {
	m := math.Inf(1)
	for _, v := range vals {
		if v > 0 && !math.IsInf(v, 0) {
			m = math.Min(m, v)
		}
	}
	if math.IsInf(m, 1) {
		return def
	}
	return math.Pow(10, math.Floor(math.Log10(m/2)))
}

// glyphs tell the profiles apart beside their colors.
var glyphs = [...]draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.RingGlyph{},
	draw.PyramidGlyph{}, draw.BoxGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{},
}

// xCap is where a scatter's x axis ends: the decade above the 90th
// percentile of xs when the outliers lie more than two decades beyond it
// (scores of 1e37 from values at the format's maximum would otherwise
// squeeze every other case into the left edge), else +Inf (no clipping).
func xCap(xs []float64) float64 {
	var fin []float64
	for _, x := range xs {
		if x > 0 && !math.IsInf(x, 0) && !math.IsNaN(x) {
			fin = append(fin, x)
		}
	}
	if len(fin) < 20 {
		return math.Inf(1)
	}
	sort.Float64s(fin)
	p90 := stat.Quantile(0.9, stat.Empirical, fin, nil)
	capX := math.Pow(10, math.Ceil(math.Log10(p90)+1e-9))
	if fin[len(fin)-1] <= 100*capX {
		return math.Inf(1)
	}
	return capX
}

// scatterPlot is a log-log scatter of the norm error per case against x,
// one series per profile. Errors of 0 are drawn on the lower edge, x below
// xFloor on the left edge, x beyond xCap on the right edge (note says how
// many); points whose x is NaN are left out.
func scatterPlot(title, xlabel string, es []*Entry, profiles []string, xFloor float64, xOf func(Point) float64) (svg []byte, note string, err error) {
	pts := profilePoints(es, xOf)
	if len(pts) == 0 {
		return nil, "", nil
	}
	var xs []float64
	for _, ps := range pts {
		for _, q := range ps {
			xs = append(xs, q.x)
		}
	}
	xc := xCap(xs)
	clipped := 0
	for _, x := range xs {
		if x > xc {
			clipped++
		}
	}
	if clipped > 0 {
		note = fmt.Sprintf(" %d of %d cases lie beyond %s (up to %s, from values near the format's largest): drawn on the right edge.", clipped, len(xs), g(xc), g(floats.Max(xs)))
	}
	var ys []float64
	for _, ps := range pts {
		for _, q := range ps {
			ys = append(ys, q.y)
		}
	}
	xf, yf := xFloor, logFloor(ys, 1e-12)
	ymax := 0.0
	for _, y := range ys {
		if !math.IsInf(y, 1) {
			ymax = math.Max(ymax, y)
		}
	}
	ytop := math.Max(ymax*4, yf*10)
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = "|a − o| / Σp|v|"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = decadeTicks{}, decadeTicks{}
	p.Add(plotter.NewGrid())
	leg := plot.NewLegend()
	for i, prof := range profiles {
		ps, ok := pts[prof]
		if !ok {
			continue
		}
		var xy plotter.XYs
		for _, q := range ps {
			if !math.IsNaN(q.x) {
				xy = append(xy, plotter.XY{X: math.Min(math.Max(q.x, xf), xc), Y: math.Min(math.Max(q.y, yf), ytop)})
			}
		}
		if len(xy) == 0 {
			continue
		}
		s, err := plotter.NewScatter(xy)
		if err != nil {
			return nil, "", err
		}
		s.GlyphStyle.Color = profileColor(profiles, prof)
		s.GlyphStyle.Shape = glyphs[i%len(glyphs)]
		s.GlyphStyle.Radius = vg.Points(2.5)
		p.Add(s)
		leg.Add(prof, s)
	}
	sans(p, &leg)
	svg, err = svgOf(p, &leg, narrowWidth, vg.Points(330))
	return svg, note, err
}

// familyScatters are the two scatters of one family, with the notes of
// their captions (clipped outliers).
func familyScatters(fam string, es []*Entry, profiles []string) (vsN, vsX []byte, notes [2]string, err error) {
	if vsN, notes[0], err = scatterPlot(fam+": error against the key count n",
		"n, keys of the row", es, profiles, 1,
		func(p Point) float64 {
			if p.N < 1 {
				return math.NaN() // no key: o = 0, nothing to plot
			}
			return float64(p.N)
		}); err != nil {
		return
	}
	vsX, notes[1], err = scatterPlot(fam+": error against the score range",
		"largest |score| of the row", es, profiles, 1e-3,
		func(p Point) float64 { return float64(p.MaxAbsX) })
	return
}
