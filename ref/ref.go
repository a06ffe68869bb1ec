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
	"unsafe"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/vec"
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
	// PeakScore is max_i max(a_i before the modifiers, x_i) over every
	// attended key, zero weights included: how far toward +∞ a score
	// register may go. A key the sink or a far larger score outweighs
	// still has its score computed, and one that overflows turns the row
	// into Inf − Inf = NaN.
	PeakScore float64
	PMax      float64 // max_i p_i
	// Keys whose weight underflows float64 (p_i = 0, M − x_i > 745 with
	// M = max(M_x, σ)): max_i a_i/(M − x_i) and max_i |x_i|/(M − x_i). The
	// bound checks that no score error can lift such a key into view.
	ZeroA, ZeroX float64
	// LSE is ln Σ_i e^{x_i} over the keys alone (−Inf when N = 0), computed
	// only when the problem declares an lse output (else 0).
	LSE float64
	// AllA and AllAbsX are max_i a_i and max_i |x_i| over every attended
	// key, zero weights included: the magnitudes of the max_logit bound.
	// Computed only when the problem declares a max_logit output (else 0).
	AllA, AllAbsX float64
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
	buf                    []float64 // O … DevM, for ComputeInto
	lazy                   *lazyDev  // LazyDev: the rows' sums not yet computed
}

// Options tune Compute.
type Options struct {
	// Workers bounds the goroutines (0 = GOMAXPROCS). Results do not
	// depend on it.
	Workers int
	// LazyDev leaves Dev1 … DevM nil: they are computed, a KV head's
	// rows at a time, when EnsureDev asks for a row (a judgement that
	// needs them only where a cheaper bound cannot decide). Every other
	// field is as without it.
	LazyDev bool
}

// lazyDev is what EnsureDev needs to compute a lazy result's deviation
// sums.
type lazyDev struct {
	in   *problem.Inputs
	done []bool // per (token, KV head): its rows' sums are in
}

// Lazy reports whether r was computed with LazyDev and may lack some
// rows' deviation sums.
func (r *Result) Lazy() bool { return r.lazy != nil }

// EnsureDev computes the deviation sums of row ri (t·H + h) and the other
// rows of its KV head, if r is lazy and they are not in yet: the same bits
// as Compute without LazyDev (TestLazyDevMatches).
func (r *Result) EnsureDev(ri int) {
	lz := r.lazy
	if lz == nil {
		return
	}
	in := lz.in
	t, h := ri/in.H, ri%in.H
	g := in.Group(h)
	j := t*in.Hkv + g
	if lz.done[j] {
		return
	}
	n := len(r.O)
	if r.Dev1 == nil {
		// The sums' memory: the rest of a reused buffer where it is large
		// enough (a rows' range is cleared below before its sums are
		// computed, and no row's sums are read before EnsureDev), else new.
		var d []float64
		if cap(r.buf) >= 6*n {
			d = r.buf[2*n : 6*n]
		} else {
			d = make([]float64, 4*n)
		}
		r.Dev1, r.DevA, r.DevX, r.DevM = d[:n], d[n:2*n], d[2*n:3*n], d[3*n:4*n]
	}
	per := in.H / in.Hkv
	e0, e1 := (t*in.H+g*per)*in.Dv, (t*in.H+(g+1)*per)*in.Dv
	for _, f := range [][]float64{r.O, r.AbsV, r.Dev1, r.DevA, r.DevX, r.DevM} {
		clear(f[e0:e1]) // recomputed (the same values): the kernels accumulate from 0
	}
	s := scratchPool.Get().(*scratch)
	s.group(in, r, t, g)
	s.release()
	lz.done[j] = true
}

// HasDev reports whether row ri's deviation sums are in.
func (r *Result) HasDev(ri int) bool {
	lz := r.lazy
	if lz == nil {
		return true
	}
	in := lz.in
	return lz.done[(ri/in.H)*in.Hkv+in.Group(ri%in.H)]
}

// EnsureAllDev computes every missing deviation sum of a lazy r.
func (r *Result) EnsureAllDev() {
	if r.lazy == nil {
		return
	}
	for ri := range r.Rows {
		r.EnsureDev(ri)
	}
	r.lazy = nil
}

// Compute evaluates the reference on in (which must pass in.Check()).
//
// The hot path allocates only the result: per-goroutine scratch comes from
// a pool. The inner kernels (internal/vec, AVX2 on amd64) take four keys per
// pass (scores) or all keys per pass (P·V, deviations) while adding in key
// order, so the bits are those of the plain one-key-at-a-time loops
// (TestOptimisedMatchesLegacy).
func Compute(in *problem.Inputs, opt Options) *Result { return ComputeInto(in, opt, nil) }

// ComputeInto is Compute writing into reuse's memory where it is large
// enough: reuse must be a result of Compute or ComputeInto that nothing
// reads any more (nil: allocate, as Compute). A loop that computes one
// reference per case saves the allocation, the page faults and the
// collection of a result per case (TestComputeIntoReuses: the same bits
// as Compute).
func ComputeInto(in *problem.Inputs, opt Options, reuse *Result) *Result {
	n := in.OutLen()
	lazy := opt.LazyDev && in.FP8 == nil // FP8: the later sums would miss v_descale's row scaling
	size := 6 * n
	if lazy {
		size = 2 * n // O and AbsV; EnsureDev adds the sums' memory when first asked
	}
	var buf []float64
	var rows []Row
	if reuse != nil && cap(reuse.buf) >= size && cap(reuse.Rows) >= in.T*in.H {
		buf, rows = reuse.buf[:size], reuse.Rows[:in.T*in.H]
		clear(buf) // rows without keys, and +Inf sinks, leave o at 0
	} else {
		// A lazy result's capacity holds the sums EnsureDev may add.
		buf, rows = make([]float64, size, 6*n), make([]Row, in.T*in.H)
	}
	r := reuse
	if r == nil {
		r = new(Result)
	}
	*r = Result{T: in.T, H: in.H, Dv: in.Dv, O: buf[:n], AbsV: buf[n : 2*n], Rows: rows, buf: buf}
	if lazy {
		r.lazy = &lazyDev{in: in, done: make([]bool, in.T*in.Hkv)}
	} else {
		r.Dev1, r.DevA, r.DevX, r.DevM = buf[2*n:3*n], buf[3*n:4*n], buf[4*n:5*n], buf[5*n:]
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
	g       []float64 // the exponents x_i − max(M, σ)
	qf      []float64 // the query row, widened once
	// The keys with nonzero weight, in key order: their four deviation
	// weights p_i·c_i for c_i = 1, a_i, |x_i|, M_x − x_i, and their values.
	lc [][4]float64
	lv [][]float32
	// The window family's keys, gathered once per KV head for the whole
	// Compute (problem.KeySpan): spanIn is the problem they belong to.
	spanIn *problem.Inputs
	spans  []keySpan
	// The longest keys and lv used since the pool gave s out: release
	// clears that much (the rest is zero already), not their capacity,
	// which a large case leaves at millions of entries.
	keysHi, lvHi int
}

// keySpan is one KV head's SpanKeys with each row's max|v| (maxAbs32 from
// 0) and their running maxima from row 0: maxAbsV of a run starting at
// row 0 is then one lookup.
type keySpan struct {
	ready       bool
	keys        []problem.Key
	rowMax, pre []float64
}

// span returns KV head g's keySpan of in, gathering it on first use.
func (s *scratch) span(in *problem.Inputs, g int) *keySpan {
	if s.spanIn != in {
		s.spanIn = in
		s.spans = grow(s.spans, in.Hkv)
		for i := range s.spans {
			s.spans[i].ready = false
		}
	}
	sp := &s.spans[g]
	if !sp.ready {
		sp.keys = in.SpanKeys(g, sp.keys)
		n := len(sp.keys)
		sp.rowMax, sp.pre = grow(sp.rowMax, n), grow(sp.pre, n)
		acc := 0.0
		for j, k := range sp.keys {
			sp.rowMax[j] = maxAbs32(0, k.V)
			acc = maxf(acc, sp.rowMax[j])
			sp.pre[j] = acc
		}
		sp.ready = true
	}
	return sp
}

// maxAbsV is max|v| over the run [lo, hi), the fold of maxAbs32 over its
// keys from 0: maxAbs32(acc, v) = maxf(acc, maxAbs32(0, v)) (+Inf over NaN
// over the largest magnitude, one NaN), a fold in key order whatever the
// grouping.
func (sp *keySpan) maxAbsV(lo, hi int) float64 {
	if hi <= lo {
		return 0
	}
	if lo == 0 {
		return sp.pre[hi-1]
	}
	acc := 0.0
	for _, m := range sp.rowMax[lo:hi] {
		acc = maxf(acc, m)
	}
	return acc
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// release returns s to the pool, dropping its views into the inputs so the
// pool does not keep them alive.
func (s *scratch) release() {
	clear(s.keys[:s.keysHi])
	clear(s.lv[:s.lvHi])
	s.keysHi, s.lvHi = 0, 0
	for i := range s.spans {
		clear(s.spans[i].keys) // its one gathering since the pool gave s out
		s.spans[i].ready = false
	}
	s.spanIn = nil
	scratchPool.Put(s)
}

// estKeys is a rough count of keys per token, for the parallelism decision.
func estKeys(in *problem.Inputs) int {
	return in.KeysPerToken()
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
	if x > y {
		return x
	}
	if x < y {
		return y
	}
	return maxfTie(x, y)
}

// maxfTie is maxf where neither argument is the larger: equal, or NaN.
func maxfTie(x, y float64) float64 {
	switch {
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
	if len(vs) == 0 {
		return acc
	}
	// The largest magnitude's bits, NaNs included (theirs are larger than
	// +Inf's): an integer maximum, eight lanes at a time on AVX2.
	top := vec.MaxAbsBits32(vs)
	nan := false
	if top > inf { // a NaN: the largest non-NaN magnitude decides between +Inf and NaN
		nan, top = true, 0
		for _, v := range vs {
			if b := math.Float32bits(v) & mask; b <= inf && b > top {
				top = b
			}
		}
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
	var keys []problem.Key
	maxAbsV := 0.0
	if lo, hi, ok := in.KeySpan(t); ok {
		sp := s.span(in, g)
		keys, maxAbsV = sp.keys[lo:hi], sp.maxAbsV(lo, hi)
	} else {
		s.keys = in.RefKeys(t, g, s.keys)
		keys = s.keys
		s.keysHi = max(s.keysHi, len(keys))
		for _, k := range keys {
			maxAbsV = maxAbs32(maxAbsV, k.V)
		}
	}
	n := len(keys)
	s.x, s.a, s.p, s.g = grow(s.x, n), grow(s.a, n), grow(s.p, n), grow(s.g, n)
	s.lc, s.lv = grow(s.lc, n), grow(s.lv, n)
	s.lvHi = max(s.lvHi, n)
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
	scale, vd := in.RowScale(t, h) // FP8: scale·q_descale·k_descale, and v_descale (fp8.go)
	*row = Row{N: n, M: math.Inf(-1), Sink: sigma, MaxAbsV: maxAbsV * vd}
	row.MaxAbsQ = maxAbs32(0, q)
	e0 := (t*in.H + h) * in.Dv
	if n == 0 {
		if in.LSE != nil {
			row.LSE = math.Inf(-1)
		}
		return // o = 0: nothing to attend
	}
	x, a, p := s.x[:n], s.a[:n], s.p[:n]
	m := math.Inf(-1)
	maxQK, peak := 0.0, 0.0
	qf := grow(s.qf, len(q))
	s.qf = qf
	for d, v := range q {
		qf[d] = float64(v)
	}
	d := len(qf)
	if d > 0 && vec.Accelerated() {
		for i := range keys {
			_ = keys[i].K[:d] // DotRows reads d elements of every row
		}
	}
	switch {
	case vec.DotRows(qf, unsafe.Pointer(&keys[0].K), unsafe.Sizeof(keys[0]), x, a):
		// All keys in one call (no slices gathered), the same sums as
		// Dot2x4's below; then the same scaling and maxima in key order.
		for i := range x {
			maxQK = maxf(maxQK, a[i])
			x[i] = float64(scale * x[i])
			a[i] = float64(scale * a[i])
			peak = maxf(peak, a[i])
			m = maxf(m, x[i])
		}
	case d < 4:
		// vec.Dot2x4's path for D < 4 (its pure-Go loop, one key at a
		// time), without the call per key.
		var z float64
		for i := range keys {
			k := keys[i].K[:d]
			var d0, a0 float64
			for j, kj := range k {
				pr := qf[j] * float64(kj)
				d0 += pr
				a0 += math.Abs(pr)
			}
			dot, abs := (d0+z)+(z+z), (a0+z)+(z+z)
			x[i] = float64(scale * dot)
			a[i] = float64(scale * abs)
			maxQK = maxf(maxQK, abs)
			peak = maxf(peak, a[i])
			m = maxf(m, x[i])
		}
	default:
		// Four keys at a time (a last group of 1-3 repeats its last key),
		// folded into the maxima in key order.
		var ks [4][]float32
		var dots, abss [4]float64
		for i := 0; i < n; i += 4 {
			for l := range ks {
				ks[l] = keys[min(i+l, n-1)].K
			}
			vec.Dot2x4(qf, &ks, &dots, &abss)
			for l := range min(4, n-i) {
				x[i+l] = float64(scale * dots[l])
				a[i+l] = float64(scale * abss[l])
				maxQK = maxf(maxQK, abss[l])
				peak = maxf(peak, a[i+l])
				m = maxf(m, x[i+l])
			}
		}
	}
	if in.HasMods() {
		m = modify(in, h, keys, x, a)
		peak = maxf(peak, m)
	}
	row.MaxQK, row.PeakScore = maxQK, peak
	row.M = m
	if in.MaxLogit != nil {
		row.AllA, row.AllAbsX = allMags(a, x)
	}
	if in.LSE != nil {
		row.LSE = lse(x, m)
	}
	if math.IsInf(sigma, 1) {
		// o = 0: the sink takes all the weight. The score magnitudes still
		// matter: the device computes the unnormalised o before dividing.
		row.PSink = 1
		for i := range x {
			row.MaxA = maxf(row.MaxA, a[i])
			row.MaxAbsX = maxf(row.MaxAbsX, math.Abs(x[i]))
		}
		if in.LSE != nil {
			// The lse of the keys alone is still judged: the spread of the
			// scores the sink-free softmax would weigh.
			for i := range x {
				if gap := m - x[i]; num.Exp(-gap) == 0 {
					row.ZeroA = maxf(row.ZeroA, a[i]/gap)
					row.ZeroX = maxf(row.ZeroX, math.Abs(x[i])/gap)
				} else {
					row.MaxDiff = maxf(row.MaxDiff, gap)
				}
			}
		}
		return
	}
	big := maxf(m, sigma)
	gaps := s.g[:n]
	for i := range x {
		gaps[i] = x[i] - big
	}
	vec.Exp(p, gaps) // num.Exp on each, four at a time
	L := 0.0
	for _, pi := range p {
		L += pi
	}
	ws := num.Exp(sigma - big) // σ = −Inf: 0
	L += ws
	row.PSink = ws / L
	var maxA, maxAbsX, maxDiff, pMax, zeroA, zeroX float64
	dv := in.Dv
	weighed := 0 // keys with p_i > 0 (p_i = 0 keys add nothing to o)
	for i := range keys {
		pi := p[i] / L
		p[i] = pi
		if pi == 0 {
			gap := big - x[i]
			zeroA = maxf(zeroA, a[i]/gap)
			zeroX = maxf(zeroX, math.Abs(x[i])/gap)
			continue
		}
		weighed++
		_ = keys[i].V[:dv] // AxpyRows reads dv elements of every row
		maxA = maxf(maxA, a[i])
		maxAbsX = maxf(maxAbsX, math.Abs(x[i]))
		maxDiff = maxf(maxDiff, m-x[i])
		pMax = maxf(pMax, pi)
	}
	row.MaxA, row.MaxAbsX, row.MaxDiff, row.PMax, row.ZeroA, row.ZeroX = maxA, maxAbsX, maxDiff, pMax, zeroA, zeroX
	o := r.O[e0 : e0+dv]
	if r.Dev1 == nil && weighed == n && vec.AxpyRows(p, unsafe.Pointer(&keys[0].V), unsafe.Sizeof(keys[0]), o, r.AbsV[e0:e0+dv]) {
		// Lazy, every key weighed: P·V straight from the keys, the same
		// sums as AxpyN over the compacted keys below.
		if vd != 1 {
			r.descaleV(e0, dv, vd)
		}
		return
	}
	lc, lv := s.lc[:0], s.lv[:0]
	for i := range keys {
		pi := p[i]
		if pi == 0 {
			continue
		}
		// Stored element by element: an append of a [4]float64 literal
		// builds it on the stack and copies it in 16-byte moves that miss
		// store forwarding (10 ns a key, the row's costliest line).
		lc = lc[:len(lc)+1] // cap ≥ n
		c := &lc[len(lc)-1]
		c[0] = pi
		if r.Dev1 != nil {
			c[1], c[2], c[3] = float64(pi*a[i]), float64(pi*math.Abs(x[i])), float64(pi*(m-x[i]))
		} else { // lazy: P·V needs only p_i
			c[1], c[2], c[3] = 0, 0, 0
		}
		lv = append(lv, keys[i].V)
	}
	vec.AxpyN(lc, lv, o, r.AbsV[e0:e0+dv])
	if r.Dev1 != nil {
		vec.DevN(lc, lv, o, r.Dev1[e0:e0+dv], r.DevA[e0:e0+dv], r.DevX[e0:e0+dv], r.DevM[e0:e0+dv])
	}
	if vd != 1 {
		r.descaleV(e0, dv, vd)
	}
}

// modify applies the score modifiers in their order after the scale:
// softcap x ← c·tanh(x/c), then the ALiBi bias x ← x + slope_h·dist, then
// the key's own bias. a_i, the magnitude the score error is proportional
// to, becomes scale·Σ|q k| + |slope_h·dist| + |bias| (|c·tanh(s/c)| ≤ |s| ≤
// scale·Σ|q k|). It returns the new max.
func modify(in *problem.Inputs, h int, keys []problem.Key, x, a []float64) float64 {
	c := in.Softcap
	slope := float64(in.AlibiSlope(h))
	m := math.Inf(-1)
	for i := range x {
		if c > 0 {
			x[i] = float64(c * num.Tanh(x[i]/c))
		}
		if slope != 0 {
			b := float64(slope * float64(keys[i].Dist))
			x[i] += b
			a[i] += math.Abs(b)
		}
		if b := keys[i].Bias; b != 0 {
			x[i] += b
			a[i] += math.Abs(b)
		}
		m = maxf(m, x[i])
	}
	return m
}

// lse is ln Σ_i e^{x_i} = m + ln Σ_i e^{x_i − m}.
//
// LSEOf gives it in a declared convention; this is the keys-only natural
// value.
func lse(x []float64, m float64) float64 {
	if len(x) == 0 || math.IsInf(m, -1) {
		return math.Inf(-1)
	}
	if math.IsInf(m, 1) || math.IsNaN(m) {
		return m
	}
	s := 0.0
	for _, xi := range x {
		s += num.Exp(xi - m)
	}
	return m + num.Log(s)
}

// LSEOf is row r's exact lse in convention c: ln Σ e^{x_i}, with e^σ
// inside where the sink is included, times log2 e in base 2. A row with no
// key has the declared empty value, or σ where the sink is included.
func LSEOf(r *Row, c problem.LSEConv) float64 {
	v := r.LSE
	switch {
	case c.SinkIncluded && !math.IsInf(r.Sink, -1):
		if r.N == 0 {
			v = r.Sink
		} else {
			hi, lo := maxf(v, r.Sink), math.Min(v, r.Sink)
			if math.IsInf(hi, 1) {
				v = hi
			} else {
				v = hi + num.Log(1+num.Exp(lo-hi))
			}
		}
	case r.N == 0:
		return c.Empty()
	}
	if c.Base2 {
		v *= math.Log2E
	}
	return v
}
