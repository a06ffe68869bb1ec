package cases

import (
	"fmt"
	"math"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/vec"
)

// rng draws from PCG (a specified algorithm) with arithmetic that is exact
// or correctly rounded, so every machine draws the same values: math/rand/v2's
// PCG seeded (seed, 0x6174746e76657421), through pcg (the same outputs).
type rng struct{ src pcg }

func newRNG(seed uint64) *rng { return &rng{pcg{seed, 0x6174746e76657421}} }

// uniform is in [0, 1).
func (r *rng) uniform() float64 { return unit(r.src.Uint64()) }

// intn is in [0, n).
func (r *rng) intn(n int) int {
	if n <= 1 {
		return 0
	}
	return int(r.src.Uint64() % uint64(n)) // bias below 2^-40 for our n
}

// normal is the Irwin–Hall sum of four uniforms, standardised: mean 0,
// variance 1, support ±2√3. Portable (no log or cos).
func (r *rng) normal() float64 {
	return irwinHall(r.src.uint64x4()) // four uniform draws, in order
}

// irwinHall is normal's value of draws a, b, c, d (vec.NormalsBF16 has
// the same formula).
func irwinHall(a, b, c, d uint64) float64 {
	s := unit(a) + unit(b) + unit(c) + unit(d)
	return float64((s - 2) * 1.7320508075688772)
}

// unit is uniform's value of draw x.
func unit(x uint64) float64 { return float64(x>>11) * 0x1p-53 }

func (r *rng) perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	r.shuffle(p)
	return p
}

func (r *rng) shuffle(p []int) {
	for i := len(p) - 1; i > 0; i-- {
		j := r.intn(i + 1)
		p[i], p[j] = p[j], p[i]
	}
}

// Generate builds the inputs of c, stored in c's dtype or, if it names
// none, in kernelFormat.
func Generate(c Case, kernelFormat num.Format) (*problem.Inputs, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	f := c.Format(kernelFormat)
	r := newRNG(c.Seed)
	in := &problem.Inputs{Family: c.Family, Format: f, T: c.Tokens(), H: c.H, Hkv: c.hkv(), D: c.D, Dv: c.dv()}
	in.Scale = c.Scale
	if in.Scale == 0 {
		in.Scale = 1 / math.Sqrt(float64(c.D))
	}
	vg := valueGen{r: r, v: c.Values, f: f}
	fam := c.fam()
	if !fam.noQ {
		in.Q = vg.fill(in.T*in.H*in.D, vg.qScale(), true)
	}
	if err := fam.generate(c, in, r, &vg); err != nil {
		return nil, err
	}
	if c.Sink != nil && c.Sink.Kind != "none" {
		in.Sink = make([]float32, c.H)
		in.HasSinkTensor = true
		for h := range in.Sink {
			var v float64
			switch {
			case c.Sink.Values != nil:
				v = c.Sink.Values[h].Resolve(num.FP32)
			case c.Sink.Kind == "const":
				v = c.Sink.Value.Resolve(num.FP32)
			default:
				v = float64(r.normal()*c.Sink.Scale) + c.Sink.Offset // rounded product: no FMA on arm64
			}
			in.Sink[h] = float32(num.Round64(num.FP32, v, num.RNE))
		}
	}
	if c.LSE != nil && in.LSE == nil {
		conv, _ := c.LSE.Conv(in.Sink != nil) // checked by Validate
		in.LSE = &conv
	}
	if c.MaxLogit != nil {
		conv, _ := c.MaxLogit.Conv() // checked by Validate
		in.MaxLogit = &conv
	}
	if c.Values.Dist == "dominant" {
		dominate(in)
	}
	for _, s := range c.Specials {
		if err := plantSpecial(in, s); err != nil {
			return nil, err
		}
	}
	if c.FP8 != "" {
		c.denseFP8(in, r)
	}
	if c.Int8KV != "" {
		c.int8KV(in)
	}
	if c.NVFP4KV {
		if err := c.nvfp4KV(in, r); err != nil {
			return nil, err
		}
	}
	if c.Int4KV != "" {
		if err := c.int4KV(in); err != nil {
			return nil, err
		}
	}
	if err := in.Check(); err != nil {
		return nil, fmt.Errorf("internal: generated inputs inconsistent: %v", err)
	}
	return in, nil
}

type valueGen struct {
	r *rng
	v Values
	f num.Format
}

func orOne(x float64) float64 {
	if x == 0 {
		return 1
	}
	return x
}

func (g *valueGen) scale() float64  { return orOne(g.v.Scale) }
func (g *valueGen) vScale() float64 { return orOne(g.v.VScale) }
func (g *valueGen) qScale() float64 {
	if g.v.Dist == "zeroq" {
		return 0
	}
	return g.scale()
}

func (g *valueGen) one() float64 {
	switch g.v.Dist {
	case "uniform":
		return 2*g.r.uniform() - 1
	case "wide":
		e := g.v.WideExp
		if e == 0 {
			e = 20
		}
		m := 1 + g.r.uniform()
		x := math.Ldexp(m, g.r.intn(2*e+1)-e)
		if g.r.uniform() < 0.5 {
			x = -x
		}
		return x
	}
	return g.r.normal()
}

func (g *valueGen) fill(n int, scale float64, isQ bool) []float32 {
	out := make([]float32, n)
	zero := isQ && g.v.Dist == "zeroq"
	normal := g.v.Dist != "uniform" && g.v.Dist != "wide" // one's default
	if normal && !zero && g.f == num.BF16 && fastNormals {
		g.fillNormalBF16(out, scale)
		return out
	}
	for i := range out {
		var x float64 // always drawn, so q = 0 leaves later draws unchanged
		if normal {
			x = g.r.normal()
		} else {
			x = g.one()
		}
		if zero {
			continue
		}
		out[i] = g.value(x, scale)
	}
	return out
}

// value is a draw x stored: x·scale rounded to the format, an overflow
// saturated (an overflowing draw is not an Inf input).
func (g *valueGen) value(x, scale float64) float32 {
	if g.f == num.BF16 {
		if y, ok := roundBF16(float64(x * scale)); ok { // in range: the usual draw
			return float32(y)
		}
	}
	y := round(g.f, float64(x*scale))
	if math.IsInf(y, 0) {
		y = math.Copysign(num.MaxFinite(g.f), y)
	}
	return float32(y)
}

// fastNormals: fill's BF16 normal draws go through vec.NormalsBF16 (the
// same values; TestFastNormalsMatchScalar turns it off to compare).
var fastNormals = vec.Accelerated()

// fillNormalBF16 is fill's loop for BF16 normal draws, 64 values at a
// time: their draws in order (the generator's stream is unchanged), laid
// out for vec.NormalsBF16, which rounds whole groups of four; a group it
// leaves (a value outside BF16's normal range) and the last n mod 4 take
// value.
func (g *valueGen) fillNormalBF16(out []float32, scale float64) {
	const batch = 64
	var draws [4 * batch]uint64
	slow := func(dst []float32, j int) { // value j of the batch
		o := j/4*16 + j%4
		dst[j] = g.value(irwinHall(draws[o], draws[o+4], draws[o+8], draws[o+12]), scale)
	}
	for i := 0; i < len(out); i += batch {
		seg := out[i:min(i+batch, len(out))]
		for j := range seg {
			o := j/4*16 + j%4
			draws[o], draws[o+4], draws[o+8], draws[o+12] = g.r.src.uint64x4()
		}
		full := len(seg) / 4
		for gi := 0; gi < full; gi++ {
			gi += vec.NormalsBF16(seg[4*gi:4*full], draws[16*gi:16*full], scale)
			if gi < full {
				for l := range 4 {
					slow(seg, 4*gi+l)
				}
			}
		}
		for j := 4 * full; j < len(seg); j++ {
			slow(seg, j)
		}
	}
}

// dominate aligns each token's first attended key with q of head 0, so that
// its score is 20 and dominates.
func dominate(in *problem.Inputs) {
	var keys []problem.Key
	for t := 0; t < in.T; t++ {
		keys = in.KernelKeys(t, 0, keys)
		if len(keys) == 0 {
			continue
		}
		q := in.QRow(t, 0)
		qq := 0.0
		for _, v := range q {
			qq += float64(v) * float64(v)
		}
		if qq == 0 {
			continue
		}
		c := 20 / (in.Scale * qq)
		k := keys[0].K
		if math.IsNaN(float64(k[0])) {
			continue // a poisoned (unreadable) row
		}
		for d := range k {
			y := num.Round64(in.Format, float64(c*float64(q[d])), num.RNE)
			if math.IsInf(y, 0) { // saturate, as fill does: a tiny q is not an Inf key
				y = math.Copysign(num.MaxFinite(in.Format), y)
			}
			k[d] = float32(y)
		}
	}
}

func plantSpecial(in *problem.Inputs, s Special) error {
	v := float32(num.Round64(in.Format, s.Value.Resolve(in.Format), num.RNE))
	switch s.Tensor {
	case "q":
		in.Q[(s.Token*in.H+s.Head)*in.D+s.Dim] = v
	case "kv":
		keys := in.KernelKeys(s.Token, 0, nil)
		if s.Key >= len(keys) || &keys[s.Key].K[0] == &in.Poison()[0] {
			return nil // the token attends fewer keys: nothing to plant
		}
		keys[s.Key].K[s.Dim] = v
	case "k":
		in.K[(s.Key*in.Hkv+s.Head)*in.D+s.Dim] = v
	case "v":
		in.V[(s.Key*in.Hkv+s.Head)*in.Dv+s.Dim] = v
	}
	return nil
}
