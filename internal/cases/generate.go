package cases

import (
	"fmt"
	"math"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
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
	a, b, c, d := r.src.uint64x4() // four uniform draws, in order
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

type geometry struct {
	mbOri, mbCmp         int
	oriBlocks, cmpBlocks int
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func (c Case) geometry() geometry {
	bs := c.blockSize()
	maxU := 0
	for _, u := range c.Seqused {
		maxU = max(maxU, u)
	}
	g := geometry{mbOri: ceilDiv(c.Win, bs), mbCmp: ceilDiv(max(maxU-c.Win, 0), bs)}
	g.oriBlocks, g.cmpBlocks = c.B*g.mbOri, c.B*g.mbCmp
	return g
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
	if c.Family != problem.Combine {
		in.Q = vg.fill(in.T*in.H*in.D, vg.qScale(), true)
	}
	switch c.Family {
	case problem.Sparse:
		c.sparse(in, r, &vg)
	case problem.Dense:
		c.dense(in, r, &vg)
	case problem.Combine:
		c.combine(in, r, &vg)
	case problem.MLA:
		c.mla(in, r, &vg)
		if c.KVLayout != "" {
			if err := c.mlaQuantize(in, r); err != nil {
				return nil, err
			}
		}
	case problem.CSA, problem.HCA, problem.SWA:
		c.pypto(in, r, &vg)
	default:
		in.W = c.Window
		in.K = vg.fill(in.T*in.Hkv*in.D, vg.scale(), false)
		in.V = vg.fill(in.T*in.Hkv*in.Dv, vg.vScale(), false)
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
		y := round(g.f, float64(x*scale))
		if math.IsInf(y, 0) { // saturate: an overflowing draw is not an Inf input
			y = math.Copysign(num.MaxFinite(g.f), y)
		}
		out[i] = float32(y)
	}
	return out
}

// sparse builds pools, block tables and index rows.
func (c Case) sparse(in *problem.Inputs, r *rng, vg *valueGen) {
	bs := c.blockSize()
	g := c.geometry()
	in.B, in.S, in.Win, in.TopK, in.BS = c.B, c.tokensPerBatch(), c.Win, c.Win+c.IdxTopK, bs
	in.MBori, in.MBcmp = g.mbOri, g.mbCmp
	in.OriKV = vg.fill(g.oriBlocks*bs*c.D, vg.scale(), false)
	in.CmpKV = vg.fill(g.cmpBlocks*bs*c.D, vg.scale(), false)
	in.OriBT = blockTable(r, c.B, g.mbOri, c.BlockTable == "permuted")
	in.CmpBT = blockTable(r, c.B, g.mbCmp, c.BlockTable == "permuted")
	in.Seqused = make([]int32, c.B)
	for b, u := range c.Seqused {
		in.Seqused[b] = int32(u)
	}
	in.Idx = make([]int32, in.T*in.TopK)
	for t := 0; t < in.T; t++ {
		indexRow(r, in, t, c.Indices == "shuffled")
	}
	for _, p := range c.Plant {
		plant(r, in, p)
	}
	if c.Poison {
		poison(in)
	}
}

func blockTable(r *rng, b, mb int, permuted bool) []int32 {
	bt := make([]int32, b*mb)
	var p []int
	if permuted {
		p = r.perm(b * mb)
	}
	for i := range bt {
		bt[i] = int32(i)
		if permuted {
			bt[i] = int32(p[i])
		}
	}
	return bt
}

// indexRow writes token t's row following the contract: window slots
// 0..window_valid−1, then cmp_topk_valid distinct compressed slots from
// [0, cmp_valid), then −1.
func indexRow(r *rng, in *problem.Inputs, t int, shuffled bool) {
	l := in.TokenLens(t)
	row := in.Idx[t*in.TopK : (t+1)*in.TopK]
	for i := range row {
		row[i] = -1
	}
	w := make([]int, l.WindowValid)
	for i := range w {
		w[i] = i
	}
	var cm []int
	if l.CmpTop == l.CmpValid {
		cm = make([]int, l.CmpValid)
		for i := range cm {
			cm[i] = i
		}
	} else {
		cm = r.perm(l.CmpValid)[:l.CmpTop]
		sortInts(cm)
	}
	if shuffled {
		r.shuffle(w)
		r.shuffle(cm)
	}
	for i, s := range w {
		row[i] = int32(s)
	}
	for i, s := range cm {
		row[l.WindowValid+i] = int32(in.Win + s)
	}
}

func sortInts(a []int) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// PlantFits reports whether plant what can edit a token with lengths l and
// an index row of topK entries.
func PlantFits(what string, l problem.Lens, topK int) bool {
	switch what {
	case "duplicate":
		return l.SparseK >= 2
	case problem.VPadInPrefix, problem.VBlockTable:
		return l.SparseK >= 1
	case problem.VValidAfter:
		return l.SparseK >= 1 && l.SparseK < topK
	case problem.VWindowSlot:
		return l.WindowValid >= 1
	}
	return false
}

// plant edits the index layout of a random token that can hold the edit.
func plant(r *rng, in *problem.Inputs, what string) {
	var cands []int
	for t := 0; t < in.T; t++ {
		if PlantFits(what, in.TokenLens(t), in.TopK) {
			cands = append(cands, t)
		}
	}
	if len(cands) == 0 {
		return
	}
	t := cands[r.intn(len(cands))]
	l := in.TokenLens(t)
	row := in.Idx[t*in.TopK : (t+1)*in.TopK]
	switch what {
	case "duplicate":
		i, j := r.intn(l.SparseK), r.intn(l.SparseK)
		if i == j {
			j = (i + 1) % l.SparseK
		}
		// Copy only within the same kind of slot: the copy stays valid.
		if (i < l.WindowValid) == (j < l.WindowValid) {
			row[i] = row[j]
		}
	case problem.VPadInPrefix:
		row[r.intn(l.SparseK)] = -1
	case problem.VValidAfter:
		row[l.SparseK+r.intn(in.TopK-l.SparseK)] = row[r.intn(l.SparseK)]
	case problem.VWindowSlot:
		row[r.intn(l.WindowValid)] = int32(l.WindowValid) // one past the valid window (or a compressed slot id)
	case problem.VBlockTable:
		s := int(row[r.intn(l.SparseK)])
		if s < 0 {
			return
		}
		// An earlier plant may have made s an invalid slot: only a slot
		// inside its block table can have its block pointed out of range.
		if s < in.Win {
			if blk := s / in.BS; blk < in.MBori {
				in.OriBT[l.B*in.MBori+blk] = int32(len(in.OriKV) / (in.BS * in.D))
			}
		} else if blk := (s - in.Win) / in.BS; blk < in.MBcmp {
			in.CmpBT[l.B*in.MBcmp+blk] = int32(len(in.CmpKV) / (in.BS * in.D))
		}
	}
}

// poison sets to NaN every pool row that no reference-valid slot maps to.
func poison(in *problem.Inputs) {
	used := func(pool []float32, bt []int32, mb, b, nslots int, mark []bool) {
		for c := 0; c < nslots; c++ {
			blk := c / in.BS
			if blk >= mb {
				break
			}
			base := int(bt[b*mb+blk])
			row := base*in.BS + c%in.BS
			if base >= 0 && row < len(mark) {
				mark[row] = true
			}
		}
	}
	oriUsed := make([]bool, len(in.OriKV)/in.D)
	cmpUsed := make([]bool, len(in.CmpKV)/in.D)
	for t := 0; t < in.T; t++ {
		l := in.TokenLens(t)
		used(in.OriKV, in.OriBT, in.MBori, l.B, l.WindowValid, oriUsed)
		used(in.CmpKV, in.CmpBT, in.MBcmp, l.B, l.CmpValid, cmpUsed)
	}
	nan := float32(math.NaN())
	for _, p := range []struct {
		pool []float32
		mark []bool
	}{{in.OriKV, oriUsed}, {in.CmpKV, cmpUsed}} {
		for row, u := range p.mark {
			if !u {
				for d := 0; d < in.D; d++ {
					p.pool[row*in.D+d] = nan
				}
			}
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
