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
// bounds its error below 1e-12·Σp|v|. Exp is num.Exp, identical on every
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
		s := &scratch{}
		for j := 0; j < jobs; j++ {
			s.group(in, r, j/in.Hkv, j%in.Hkv)
		}
		return r
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &scratch{}
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
	return r
}

type scratch struct {
	keys       []problem.Key
	x, a, p    []float64
	pa, px, pm []float64
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

func grow(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}

// group computes token t for every query head of KV head g.
func (s *scratch) group(in *problem.Inputs, r *Result, t, g int) {
	s.keys = in.RefKeys(t, g, s.keys)
	keys := s.keys
	n := len(keys)
	s.x, s.a, s.p = grow(s.x, n), grow(s.a, n), grow(s.p, n)
	s.pa, s.px, s.pm = grow(s.pa, n), grow(s.px, n), grow(s.pm, n)
	maxAbsV := 0.0
	for _, k := range keys {
		for _, v := range k.V {
			maxAbsV = math.Max(maxAbsV, math.Abs(float64(v)))
		}
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
	for _, v := range q {
		row.MaxAbsQ = math.Max(row.MaxAbsQ, math.Abs(float64(v)))
	}
	e0 := (t*in.H + h) * in.Dv
	if n == 0 {
		return // o = 0: nothing to attend
	}
	scale := in.Scale
	x, a, p := s.x[:n], s.a[:n], s.p[:n]
	m := math.Inf(-1)
	for i, k := range keys {
		dot, abs := dot2(q, k.K)
		x[i] = float64(scale * dot)
		a[i] = float64(scale * abs)
		row.MaxQK = math.Max(row.MaxQK, abs)
		m = math.Max(m, x[i])
	}
	row.M = m
	if math.IsInf(sigma, 1) {
		// o = 0: the sink takes all the weight. The score magnitudes still
		// matter: the device computes the unnormalised o before dividing.
		row.PSink = 1
		for i := range x {
			row.MaxA = math.Max(row.MaxA, a[i])
			row.MaxAbsX = math.Max(row.MaxAbsX, math.Abs(x[i]))
		}
		return
	}
	big := math.Max(m, sigma)
	L := 0.0
	for i := range x {
		p[i] = num.Exp(x[i] - big)
		L += p[i]
	}
	ws := num.Exp(sigma - big) // σ = −Inf: 0
	L += ws
	row.PSink = ws / L
	o := r.O[e0 : e0+in.Dv]
	absV := r.AbsV[e0 : e0+in.Dv]
	for i, k := range keys {
		pi := p[i] / L
		p[i] = pi
		if pi == 0 {
			gap := big - x[i]
			row.ZeroA = math.Max(row.ZeroA, a[i]/gap)
			row.ZeroX = math.Max(row.ZeroX, math.Abs(x[i])/gap)
			continue
		}
		row.MaxA = math.Max(row.MaxA, a[i])
		row.MaxAbsX = math.Max(row.MaxAbsX, math.Abs(x[i]))
		row.MaxDiff = math.Max(row.MaxDiff, m-x[i])
		row.PMax = math.Max(row.PMax, pi)
		axpy2(pi, k.V, o, absV)
	}
	dev1, devA := r.Dev1[e0:e0+in.Dv], r.DevA[e0:e0+in.Dv]
	devX, devM := r.DevX[e0:e0+in.Dv], r.DevM[e0:e0+in.Dv]
	for i, k := range keys {
		pi := p[i]
		if pi == 0 {
			continue
		}
		dev4(pi, float64(pi*a[i]), float64(pi*math.Abs(x[i])), float64(pi*(m-x[i])), k.V, o, dev1, devA, devX, devM)
	}
}

// dot2 returns Σ q_d k_d and Σ |q_d k_d| in float64 (products of float32
// values are exact in float64).
func dot2(q, k []float32) (dot, abs float64) {
	k = k[:len(q)]
	var d0, d1, d2, d3, a0, a1, a2, a3 float64
	i := 0
	for ; i+4 <= len(q); i += 4 {
		p0 := float64(q[i]) * float64(k[i])
		p1 := float64(q[i+1]) * float64(k[i+1])
		p2 := float64(q[i+2]) * float64(k[i+2])
		p3 := float64(q[i+3]) * float64(k[i+3])
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
		pr := float64(q[i]) * float64(k[i])
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

// dev4 adds c·|v_j − o_j| to each accumulator for its weight c.
func dev4(p1, pa, px, pm float64, v []float32, o, d1, da, dx, dm []float64) {
	v = v[:len(o)]
	d1, da, dx, dm = d1[:len(o)], da[:len(o)], dx[:len(o)], dm[:len(o)]
	for j, vj := range v {
		d := math.Abs(float64(vj) - o[j])
		d1[j] += float64(p1 * d)
		da[j] += float64(pa * d)
		dx[j] += float64(px * d)
		dm[j] += float64(pm * d)
	}
}
