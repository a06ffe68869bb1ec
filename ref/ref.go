// Package ref computes attention exactly enough to judge low-precision
// kernels: in float64, with the reference semantics of SPEC.md (which keys
// each token sees), and alongside each output element the magnitudes the
// tolerance model needs.
//
// For one query row with keys k_1..k_n, values v_1..v_n and sink σ:
//
//	x_i = scale·(q·k_i),   M = max(max_i x_i, σ)
//	w_i = e^{x_i−M},       w_σ = e^{σ−M},   L = Σ_i w_i + w_σ
//	p_i = w_i / L,         p_σ = w_σ / L
//	o_j = Σ_i p_i v_ij
//
// Special cases: n = 0 gives o = 0 (the sink alone carries no value);
// σ = +Inf gives o = 0; σ = −Inf is no sink.
//
// float64 is ~10^9 times more accurate than FP32; the math/big property test
// bounds its error below 1e-12·Σp|v| for moderate scores (max a_i ≤ 64),
// and in general by that plus the float64 score error, about
// 8(D+4)·2^-53·Σ_i p_i a_i |v_i − o| (the same Jacobian term the tolerance
// model uses, at float64's unit roundoff). Exp is num.Exp, identical on every
// architecture, and every product is explicitly rounded, so results are
// bit-identical on amd64 and arm64.
package ref

import (
	"math"
	"runtime"
	"sync"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

// Row holds one query row's (token t, head h) statistics. Maxima are over
// keys with nonzero weight p_i (keys whose weight underflows float64 are
// covered by the bound's absolute exp term).
type Row struct {
	N       int     // keys attended
	M       float64 // max_i x_i (−Inf when N = 0)
	Sink    float64 // σ (−Inf = none)
	PSink   float64 // p_σ
	MaxA    float64 // max_i a_i, a_i = scale·Σ_d |q_d k_id|
	MaxQK   float64 // max_i Σ_d |q_d k_id| (unscaled: what the dot product accumulates)
	MaxAbsX float64 // max_i |x_i|
	MaxDiff float64 // max_i (M_x − x_i), M_x = max_i x_i
	MaxAbsV float64 // max_i,j |v_ij| over all attended keys (zero-weight ones too)
	MaxAbsQ float64 // max_d |q_d|
	PMax    float64 // max_i p_i
	// Keys whose weight underflows float64 (p_i = 0, M − x_i > 745 with
	// M = max(M_x, σ)): max_i a_i/(M − x_i) and max_i |x_i|/(M − x_i). The
	// bound checks that no score error can lift such a key into view.
	ZeroA, ZeroX float64
}

// Result is the reference output of one problem. Element e = (t·H + h)·Dv + j.
type Result struct {
	T, H, Dv int
	O        []float64 // o_j
	AbsV     []float64 // Σ_i p_i |v_ij|
	// Σ_i p_i·c_i·|v_ij − o_j| for c_i = 1, a_i, |x_i|, (M_x − x_i): the
	// softmax Jacobian's weights of score perturbations (docs/tolerance.md).
	Dev1, DevA, DevX, DevM []float64
	Rows                   []Row
}

// Options tune Compute.
type Options struct {
	// Workers bounds the goroutines (0 = GOMAXPROCS). Results do not
	// depend on it.
	Workers int
}

// Compute evaluates the reference on in (which must pass in.Check()).
//
// The hot path allocates only the result: per-goroutine scratch comes from
// a pool. Loops over the value dimension take two or four keys per pass
// (fewer loads and stores of the accumulators) while adding in key order,
// so the bits are those of the plain one-key-at-a-time loops
// (TestOptimisedMatchesLegacy).
func Compute(in *problem.Inputs, opt Options) *Result {
	n := in.OutLen()
	buf := make([]float64, 6*n)
	r := &Result{
		T: in.T, H: in.H, Dv: in.Dv,
		O: buf[:n], AbsV: buf[n : 2*n],
		Dev1: buf[2*n : 3*n], DevA: buf[3*n : 4*n], DevX: buf[4*n : 5*n], DevM: buf[5*n:],
		Rows: make([]Row, in.T*in.H),
	}
	jobs := in.T * in.Hkv
	w := opt.Workers
	if w <= 0 {
		w = runtime.GOMAXPROCS(0)
	}
	// Small problems run inline: a goroutine costs more than it saves.
	if w <= 1 || jobs < 2 || in.T*in.H*(in.D+4*in.Dv)*estKeys(in) < 1<<18 {
		s := scratchPool.Get().(*scratch)
		for j := 0; j < jobs; j++ {
			s.group(in, r, j/in.Hkv, j%in.Hkv)
		}
		s.release()
		return r
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var panicked any // a goroutine's panic, raised again in the caller, whose recover sees it
	next := 0
	for range min(w, jobs) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					mu.Lock()
					if panicked == nil {
						panicked = p
					}
					next = jobs // the others stop
					mu.Unlock()
				}
			}()
			s := scratchPool.Get().(*scratch)
			defer s.release()
			for {
				mu.Lock()
				j := next
				next++
				mu.Unlock()
				if j >= jobs {
					return
				}
				s.group(in, r, j/in.Hkv, j%in.Hkv)
			}
		}()
	}
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
	return r
}

// scratch is one goroutine's working memory, reused across calls.
type scratch struct {
	keys    []problem.Key
	x, a, p []float64
	qf      []float64 // the query row, widened once
	live    []live
}

// live is a key with nonzero weight (its index in the key list) and its
// four deviation weights p_i·c_i for c_i = 1, a_i, |x_i|, M_x − x_i.
// Pointer-free, so filling it costs no GC write barriers.
type live struct {
	i int
	c [4]float64
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// release returns s to the pool, dropping its views into the inputs so the
// pool does not keep them alive.
func (s *scratch) release() {
	clear(s.keys[:cap(s.keys)])
	scratchPool.Put(s)
}

// estKeys is a rough count of keys per token, for the parallelism decision.
func estKeys(in *problem.Inputs) int {
	if in.Family == problem.Sparse {
		return in.TopK
	}
	if in.W > 0 {
		return min(in.W, in.T)
	}
	return in.T
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}

// maxf is math.Max, inlined: +Inf if either argument is +Inf, else NaN if
// either is NaN (always the same NaN, on every architecture), +0 over −0.
func maxf(x, y float64) float64 {
	switch {
	case x > y:
		return x
	case x < y:
		return y
	case x == y:
		if x == 0 && math.Signbit(x) {
			return y
		}
		return x
	case math.IsInf(x, 1) || math.IsInf(y, 1):
		return math.Inf(1)
	}
	return math.NaN()
}

// maxAbs32 folds math.Max(acc, |v|) over vs, from acc ≥ 0, on the bits:
// |v| orders like its bit pattern; NaN loses only to +Inf (math.Max's rule).
func maxAbs32(acc float64, vs []float32) float64 {
	const inf, mask = 0x7f800000, 0x7fffffff
	var top uint32
	nan := false
	for _, v := range vs {
		b := math.Float32bits(v) & mask
		if b > inf {
			nan = true
		} else if b > top {
			top = b
		}
	}
	if len(vs) == 0 {
		return acc
	}
	if top == inf {
		return maxf(acc, math.Inf(1))
	}
	if nan {
		return maxf(acc, math.NaN())
	}
	return maxf(acc, float64(math.Float32frombits(top)))
}

// group computes token t for every query head of KV head g.
func (s *scratch) group(in *problem.Inputs, r *Result, t, g int) {
	s.keys = in.RefKeys(t, g, s.keys)
	keys := s.keys
	n := len(keys)
	s.x, s.a, s.p = grow(s.x, n), grow(s.a, n), grow(s.p, n)
	s.live = grow(s.live, n)
	maxAbsV := 0.0
	for _, k := range keys {
		maxAbsV = maxAbs32(maxAbsV, k.V)
	}
	per := in.H / in.Hkv
	for h := g * per; h < (g+1)*per; h++ {
		s.head(in, r, t, h, keys, maxAbsV)
	}
}

func (s *scratch) head(in *problem.Inputs, r *Result, t, h int, keys []problem.Key, maxAbsV float64) {
	row := &r.Rows[t*in.H+h]
	q := in.QRow(t, h)
	sigma := float64(in.SinkOf(h))
	n := len(keys)
	*row = Row{N: n, M: math.Inf(-1), Sink: sigma, MaxAbsV: maxAbsV}
	row.MaxAbsQ = maxAbs32(0, q)
	e0 := (t*in.H + h) * in.Dv
	if n == 0 {
		return // o = 0: nothing to attend
	}
	scale := in.Scale
	x, a, p := s.x[:n], s.a[:n], s.p[:n]
	m := math.Inf(-1)
	maxQK := 0.0
	qf := grow(s.qf, len(q))
	s.qf = qf
	for d, v := range q {
		qf[d] = float64(v)
	}
	for i, k := range keys {
		dot, abs := dot2(qf, k.K)
		x[i] = float64(scale * dot)
		a[i] = float64(scale * abs)
		maxQK = maxf(maxQK, abs)
		m = maxf(m, x[i])
	}
	row.MaxQK = maxQK
	row.M = m
	if math.IsInf(sigma, 1) {
		// o = 0: the sink takes all the weight. The score magnitudes still
		// matter: the device computes the unnormalised o before dividing.
		row.PSink = 1
		for i := range x {
			row.MaxA = maxf(row.MaxA, a[i])
			row.MaxAbsX = maxf(row.MaxAbsX, math.Abs(x[i]))
		}
		return
	}
	big := maxf(m, sigma)
	L := 0.0
	for i := range x {
		p[i] = num.Exp(x[i] - big)
		L += p[i]
	}
	ws := num.Exp(sigma - big) // σ = −Inf: 0
	L += ws
	row.PSink = ws / L
	lv := s.live[:0]
	var maxA, maxAbsX, maxDiff, pMax, zeroA, zeroX float64
	for i := range keys {
		pi := p[i] / L
		if pi == 0 {
			gap := big - x[i]
			zeroA = maxf(zeroA, a[i]/gap)
			zeroX = maxf(zeroX, math.Abs(x[i])/gap)
			continue
		}
		maxA = maxf(maxA, a[i])
		maxAbsX = maxf(maxAbsX, math.Abs(x[i]))
		maxDiff = maxf(maxDiff, m-x[i])
		pMax = maxf(pMax, pi)
		lv = lv[:len(lv)+1] // cap ≥ n
		e := &lv[len(lv)-1]
		e.i = i
		e.c[0], e.c[1], e.c[2], e.c[3] = pi, float64(pi*a[i]), float64(pi*math.Abs(x[i])), float64(pi*(m-x[i]))
	}
	row.MaxA, row.MaxAbsX, row.MaxDiff, row.PMax, row.ZeroA, row.ZeroX = maxA, maxAbsX, maxDiff, pMax, zeroA, zeroX
	s.live = lv
	dv := in.Dv
	o := r.O[e0 : e0+dv]
	absV := r.AbsV[e0 : e0+dv]
	i := 0
	for ; i+4 <= len(lv); i += 4 {
		axpy2x4(lv[i:i+4], keys, o, absV)
	}
	for ; i < len(lv); i++ {
		axpy2(lv[i].c[0], keys[lv[i].i].V, o, absV)
	}
	dev1, devA := r.Dev1[e0:e0+dv], r.DevA[e0:e0+dv]
	devX, devM := r.DevX[e0:e0+dv], r.DevM[e0:e0+dv]
	i = 0
	for ; i+2 <= len(lv); i += 2 {
		dev4x2(&lv[i].c, &lv[i+1].c, keys[lv[i].i].V, keys[lv[i+1].i].V, o, dev1, devA, devX, devM)
	}
	if i < len(lv) {
		dev4(&lv[i].c, keys[lv[i].i].V, o, dev1, devA, devX, devM)
	}
}

// dot2 returns Σ q_d k_d and Σ |q_d k_d| in float64 (products of float32
// values are exact in float64), in four interleaved partial sums.
func dot2(q []float64, k []float32) (dot, abs float64) {
	k = k[:len(q)]
	var d0, d1, d2, d3, a0, a1, a2, a3 float64
	i := 0
	for ; i+4 <= len(q); i += 4 {
		p0 := q[i] * float64(k[i])
		p1 := q[i+1] * float64(k[i+1])
		p2 := q[i+2] * float64(k[i+2])
		p3 := q[i+3] * float64(k[i+3])
		d0 += p0
		d1 += p1
		d2 += p2
		d3 += p3
		a0 += math.Abs(p0)
		a1 += math.Abs(p1)
		a2 += math.Abs(p2)
		a3 += math.Abs(p3)
	}
	for ; i < len(q); i++ {
		pr := q[i] * float64(k[i])
		d0 += pr
		a0 += math.Abs(pr)
	}
	return (d0 + d1) + (d2 + d3), (a0 + a1) + (a2 + a3)
}

// axpy2 adds p·v to o and p·|v| to absV.
func axpy2(p float64, v []float32, o, absV []float64) {
	v = v[:len(o)]
	absV = absV[:len(o)]
	for j, vj := range v {
		t := float64(p * float64(vj))
		o[j] += t
		absV[j] += math.Abs(t)
	}
}

// axpy2x4 is axpy2 for four keys in turn, in one pass.
func axpy2x4(lv []live, keys []problem.Key, o, absV []float64) {
	n := len(o)
	absV = absV[:n]
	lv = lv[:4]
	v0, v1, v2, v3 := keys[lv[0].i].V[:n], keys[lv[1].i].V[:n], keys[lv[2].i].V[:n], keys[lv[3].i].V[:n]
	p0, p1, p2, p3 := lv[0].c[0], lv[1].c[0], lv[2].c[0], lv[3].c[0]
	for j := range o {
		t0 := float64(p0 * float64(v0[j]))
		t1 := float64(p1 * float64(v1[j]))
		t2 := float64(p2 * float64(v2[j]))
		t3 := float64(p3 * float64(v3[j]))
		o[j] = o[j] + t0 + t1 + t2 + t3
		absV[j] = absV[j] + math.Abs(t0) + math.Abs(t1) + math.Abs(t2) + math.Abs(t3)
	}
}

// dev4 adds c·|v_j − o_j| to each accumulator for its weight c.
func dev4(c *[4]float64, v []float32, o, d1, da, dx, dm []float64) {
	n := len(o)
	v = v[:n]
	d1, da, dx, dm = d1[:n], da[:n], dx[:n], dm[:n]
	c1, ca, cx, cm := c[0], c[1], c[2], c[3]
	for j, vj := range v {
		d := math.Abs(float64(vj) - o[j])
		d1[j] += float64(c1 * d)
		da[j] += float64(ca * d)
		dx[j] += float64(cx * d)
		dm[j] += float64(cm * d)
	}
}

// dev4x2 is dev4 for two keys in turn, in one pass.
func dev4x2(c0, c1 *[4]float64, v0, v1 []float32, o, d1, da, dx, dm []float64) {
	n := len(o)
	v0, v1 = v0[:n], v1[:n]
	d1, da, dx, dm = d1[:n], da[:n], dx[:n], dm[:n]
	a1, aa, ax, am := c0[0], c0[1], c0[2], c0[3]
	b1, ba, bx, bm := c1[0], c1[1], c1[2], c1[3]
	for j, oj := range o {
		e := math.Abs(float64(v0[j]) - oj)
		f := math.Abs(float64(v1[j]) - oj)
		d1[j] = d1[j] + float64(a1*e) + float64(b1*f)
		da[j] = da[j] + float64(aa*e) + float64(ba*f)
		dx[j] = dx[j] + float64(ax*e) + float64(bx*f)
		dm[j] = dm[j] + float64(am*e) + float64(bm*f)
	}
}
