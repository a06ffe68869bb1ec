package ref

// A frozen copy of the reference as it was before the performance work
// (ref.go at commit cce46d7), kept to prove the optimised code gives the
// same bits: TestOptimisedMatchesLegacy. If the reference's semantics
// change on purpose, change this copy with it (or retire the test).

import (
	"math"
	"runtime"
	"sync"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

// Compute evaluates the reference on in (which must pass in.Check()).
func legacyCompute(in *problem.Inputs, opt Options) *Result {
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
	if w <= 1 || jobs < 2 || in.T*in.H*(in.D+4*in.Dv)*legacyEstKeys(in) < 1<<18 {
		s := &legacyScratch{}
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
			s := &legacyScratch{}
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

type legacyScratch struct {
	keys       []problem.Key
	x, a, p    []float64
	pa, px, pm []float64
}

// legacyEstKeys is a rough count of keys per token, for the parallelism decision.
func legacyEstKeys(in *problem.Inputs) int {
	if in.Family == problem.Sparse {
		return in.TopK
	}
	if in.W > 0 {
		return min(in.W, in.T)
	}
	return in.T
}

func legacyGrow(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}

// group computes token t for every query head of KV head g.
func (s *legacyScratch) group(in *problem.Inputs, r *Result, t, g int) {
	s.keys = in.RefKeys(t, g, s.keys)
	keys := s.keys
	n := len(keys)
	s.x, s.a, s.p = legacyGrow(s.x, n), legacyGrow(s.a, n), legacyGrow(s.p, n)
	s.pa, s.px, s.pm = legacyGrow(s.pa, n), legacyGrow(s.px, n), legacyGrow(s.pm, n)
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

func (s *legacyScratch) head(in *problem.Inputs, r *Result, t, h int, keys []problem.Key, maxAbsV float64) {
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
		dot, abs := legacyDot2(q, k.K)
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
		legacyAxpy2(pi, k.V, o, absV)
	}
	dev1, devA := r.Dev1[e0:e0+in.Dv], r.DevA[e0:e0+in.Dv]
	devX, devM := r.DevX[e0:e0+in.Dv], r.DevM[e0:e0+in.Dv]
	for i, k := range keys {
		pi := p[i]
		if pi == 0 {
			continue
		}
		legacyDev4(pi, float64(pi*a[i]), float64(pi*math.Abs(x[i])), float64(pi*(m-x[i])), k.V, o, dev1, devA, devX, devM)
	}
}

// dot2 returns Σ q_d k_d and Σ |q_d k_d| in float64 (products of float32
// values are exact in float64).
func legacyDot2(q, k []float32) (dot, abs float64) {
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
func legacyAxpy2(p float64, v []float32, o, absV []float64) {
	v = v[:len(o)]
	absV = absV[:len(o)]
	for j, vj := range v {
		t := float64(p * float64(vj))
		o[j] += t
		absV[j] += math.Abs(t)
	}
}

// dev4 adds c·|v_j − o_j| to each accumulator for its weight c.
func legacyDev4(p1, pa, px, pm float64, v []float32, o, d1, da, dx, dm []float64) {
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
