// Package impl emulates the device's attention kernels bit for bit
// (SPEC.md §1-2): kernel A "stream" (per-key online softmax), kernel B
// "tiled" (block-tiled online softmax) and kernel C "splitkv"
// (flash-decoding), each for both families and each parameterised by a
// precision profile.
//
// Arithmetic is float32 with every product wrapped in float32() so the
// compiler fuses no FMA (results are identical on amd64 and arm64); stages
// the profile declares narrower are rounded where the device rounds. exp is
// num.Exp32 (portable, correctly rounded but for rare near-ties), rounded
// to the accumulator format.
//
// The correct emulations handle n = 0 (o = 0) and n = 1 (a zero-trip merge
// loop) as the fixed kernels do.
package impl

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/internal/vec"
)

// Output is what a kernel produced.
type Output struct {
	O   []float32 // [T][H][Dv], values of the profile's output format
	Pre []float32 // the FP32 result before the output cast (emulations only; nil otherwise)
	// LSE is the log-sum-exp per row [T][H] in the problem's declared
	// convention (in.LSE), FP32; nil when the problem declares none.
	LSE []float32
	// MaxLogit is the row max of the scores per row [T][H] in the declared
	// convention (in.MaxLogit), FP32; nil when the problem declares none.
	MaxLogit []float32
}

// Kernel is anything that computes attention: an emulation, a mutant, an
// external worker.
type Kernel interface {
	Name() string
	Profile() profile.Profile
	Run(in *problem.Inputs) (*Output, error)
}

// Kind is the kernel's loop structure.
type Kind string

const (
	Stream  Kind = "stream"  // kernel A
	Tiled   Kind = "tiled"   // kernel B
	SplitKV Kind = "splitkv" // kernel C
)

// MaskBias is the additive bias of masked lanes in the tiled kernels.
const MaskBias = -1e20

// Config describes one emulation.
type Config struct {
	Kind    Kind
	Bc      int  // keys per tile (tiled, splitkv)
	Parts   int  // partitions (splitkv)
	MaskInf bool // mask with −Inf instead of −1e20
	Profile profile.Profile
	fa3     *FA3Bugs // FA3 kind: a mutant's defects (fa3fp8.go); nil = correct
	// Hooks let a mutant alter one step; nil for the correct kernel.
	Hooks *Hooks
	name  string
}

// Emulation is a Kernel computed in Go.
type Emulation struct{ Config }

// New returns the emulation for c; an unknown Kind is a caller's mistake
// and panics here, not deep inside a run.
func New(c Config) *Emulation {
	switch c.Kind {
	case Stream, Tiled, SplitKV, Pypto, FA3, Exp2, Lazy:
	default:
		panic(fmt.Sprintf("impl: unknown kernel kind %q", c.Kind))
	}
	return &Emulation{c}
}

// Name is the registry name, e.g. tiled/bc128/bf16.
func (e *Emulation) Name() string {
	if e.name != "" {
		return e.name
	}
	return ConfigName(e.Config)
}

// Profile is the kernel's declared precision.
func (e *Emulation) Profile() profile.Profile { return e.Config.Profile }

// WithName renames (for mutants).
func (e *Emulation) WithName(n string) *Emulation { e.name = n; return e }

// ConfigName spells a configuration's registry name.
func ConfigName(c Config) string {
	switch c.Kind {
	case Stream:
		return fmt.Sprintf("stream/%s", c.Profile.Name)
	case Tiled:
		if c.MaskInf {
			return fmt.Sprintf("tiled/bc%d-maskinf/%s", c.Bc, c.Profile.Name)
		}
		return fmt.Sprintf("tiled/bc%d/%s", c.Bc, c.Profile.Name)
	case SplitKV:
		return fmt.Sprintf("splitkv/p%d/bc%d/%s", c.Parts, c.Bc, c.Profile.Name)
	case Pypto:
		return fmt.Sprintf("pypto/%s", c.Profile.Name)
	case FA3:
		return fmt.Sprintf("fa3/bc%d/%s", c.Bc, c.Profile.Name)
	case Exp2:
		return fmt.Sprintf("exp2/bc%d/%s", c.Bc, c.Profile.Name)
	case Lazy:
		return fmt.Sprintf("lazy/bc%d/%s", c.Bc, c.Profile.Name)
	}
	panic(fmt.Sprintf("impl: unknown kernel kind %q", c.Kind))
}

// Compatible reports whether inputs stored in format f can be fed to a
// kernel of profile p unchanged.
func Compatible(f num.Format, p profile.Profile) bool {
	return f == p.In || p.In == num.FP32 || p.In == num.FP64
}

// Run computes the kernel on in.
func (e *Emulation) Run(in *problem.Inputs) (*Output, error) {
	if err := in.Check(); err != nil {
		return nil, err
	}
	if !Compatible(in.Format, e.Config.Profile) {
		return nil, fmt.Errorf("%s: inputs are %s, the kernel takes %s", e.Name(), in.Format, e.Config.Profile.In)
	}
	out := &Output{O: make([]float32, in.OutLen()), Pre: make([]float32, in.OutLen())}
	if in.LSE != nil {
		out.LSE = make([]float32, in.T*in.H)
	}
	if in.MaxLogit != nil {
		out.MaxLogit = make([]float32, in.T*in.H)
	}
	defer func() {
		if h := e.Hooks; h != nil && h.Out != nil {
			h.Out(in, out)
		}
	}()
	jobs := in.T * in.Hkv
	w := runtime.GOMAXPROCS(0)
	if w <= 1 || jobs < 2 || in.T*in.H*(in.D+in.Dv)*max(in.TopK, in.T) < 1<<18 {
		s := e.newState(in)
		for j := 0; j < jobs; j++ {
			s.group(out, j/in.Hkv, j%in.Hkv)
		}
		return out, nil
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
			s := e.newState(in)
			for {
				mu.Lock()
				j := next
				next++
				mu.Unlock()
				if j >= jobs {
					return
				}
				s.group(out, j/in.Hkv, j%in.Hkv)
			}
		}()
	}
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
	return out, nil
}

// arith rounds results to the formats of the profile's stages.
type arith struct {
	acc, score, p          num.Format
	accRaw, scoreRaw, pRaw bool // the stage is FP32: no rounding
	lRounded               bool
}

func newArith(p profile.Profile) arith {
	wide := func(f num.Format) bool { return f == num.FP32 || f == num.FP64 }
	return arith{acc: p.Acc, score: p.Score, p: p.P,
		accRaw: wide(p.Acc), scoreRaw: wide(p.Score), pRaw: wide(p.P), lRounded: p.LFromRoundedP}
}

func (a *arith) ra(x float32) float32 {
	if a.accRaw {
		return x
	}
	return num.Round32(a.acc, x, num.RNE)
}

func (a *arith) rs(x float32) float32 {
	if a.scoreRaw {
		return x
	}
	return num.Round32(a.score, x, num.RNE)
}

func (a *arith) rp(x float32) float32 {
	if a.pRaw {
		return x
	}
	return num.Round32(a.p, x, num.RNE)
}

func (a *arith) exp(x float32) float32 { return a.ra(num.Exp32(x)) }

// state is one goroutine's scratch.
type state struct {
	e     *Emulation
	in    *problem.Inputs
	ar    arith
	scale float32
	// Score modifiers of the current head (dense): softcap c (0 = off) and
	// the ALiBi slope.
	softcap, slope float32
	keys           []problem.Key
	spans          [][]problem.Key // per KV head: problem.SpanKeys, gathered on first use
	q              []float32
	s, p           []float32 // scores and probabilities of a tile / of all keys
	ex             []float32 // a tile's exponents x − m_t
	o, ot          []float32 // running and per-tile output accumulators
	op             []float32 // partition accumulator (splitkv)
	rowMax         float32   // the last row's final running max m (−Inf: no key), for max_logit
	lazyTop        float32   // the Lazy kind's true row max (its m is stale)
}

func (e *Emulation) newState(in *problem.Inputs) *state {
	return &state{e: e, in: in, ar: newArith(e.Config.Profile), scale: float32(in.Scale), softcap: float32(in.Softcap),
		q: make([]float32, in.D), o: make([]float32, in.Dv), ot: make([]float32, in.Dv), op: make([]float32, in.Dv)}
}

// group computes token t for the query heads of KV head g.
func (s *state) group(out *Output, t, g int) {
	in := s.in
	var keys []problem.Key
	if lo, hi, ok := in.KeySpan(t); ok && s.e.Hooks == nil {
		// The window family: a run of the KV head's keys, gathered once
		// (a mutant's hooks get the per-token gather they may alter).
		if s.spans == nil {
			s.spans = make([][]problem.Key, in.Hkv)
		}
		if s.spans[g] == nil {
			s.spans[g] = in.SpanKeys(g, nil)
		}
		keys = s.spans[g][lo:hi]
	} else {
		s.keys = in.KernelKeys(t, g, s.keys)
		keys = s.keys
	}
	if h := s.e.Hooks; h != nil && h.Keys != nil {
		keys = h.Keys(in, t, g, keys)
	}
	per := in.H / in.Hkv
	s.scale = in.KernelScale(t, g) // float32(Scale), or FP8's folded descales (fp8dense.go)
	for h := g * per; h < (g+1)*per; h++ {
		keys := keys
		if hk := s.e.Hooks; hk != nil && hk.Head != nil {
			keys = hk.Head(in, t, h, keys)
		}
		e0 := (t*in.H + h) * in.Dv
		pre := out.Pre[e0 : e0+in.Dv]
		lse := s.head(t, h, keys, pre)
		if in.FP8 != nil && s.e.Kind != FA3 {
			s.fp8Out(t, g, pre)
		}
		if out.LSE != nil {
			out.LSE[t*in.H+h] = lse
		}
		if out.MaxLogit != nil {
			out.MaxLogit[t*in.H+h] = s.maxLogit()
		}
		if hk := s.e.Hooks; hk != nil && hk.Row != nil {
			hk.Row(in, t, h, keys, pre)
		}
		o := out.O[e0 : e0+in.Dv]
		pf := s.e.Config.Profile
		for j, v := range pre {
			o[j] = num.Round32(pf.Out, v, pf.OutRound)
		}
	}
}

// head computes one query row into dst (FP32, before the output cast) and
// returns its lse in the declared convention (0 if none is declared).
func (s *state) head(t, h int, keys []problem.Key, dst []float32) float32 {
	in := s.in
	copy(s.q, in.QRow(t, h))
	s.slope = in.AlibiSlope(h)
	if len(keys) == 0 {
		// The fix for the stale scratch read: no keys, o = 0.
		clear(dst)
		s.rowMax = float32(math.Inf(-1))
		return s.emptyLSE(in.SinkOf(h))
	}
	var m, l float32
	switch s.e.Config.Kind {
	case Stream:
		m, l = s.stream(keys, s.o)
	case Tiled:
		m, l = s.tiled(keys, s.o)
	case Pypto:
		m, l = s.pypto(t, keys, s.o)
	case FA3:
		if in.FP8 != nil {
			return s.fa3Head(t, h, keys, dst) // FP8 dense: its own finish (fa3fp8.go)
		}
		m, l = s.tiled(keys, s.o)
	case SplitKV:
		m, l = s.splitkv(keys, s.o)
	case Exp2:
		m, l = s.exp2Row(keys, s.o)
	case Lazy:
		m, l = s.lazyRow(keys, s.o)
	default:
		panic(fmt.Sprintf("impl: unknown kernel kind %q", s.e.Config.Kind)) // New refuses it; no silent fallback
	}
	if hk := s.e.Hooks; hk != nil && hk.State != nil {
		hk.State(in, t, h, keys, &m, &l, s.o)
	}
	s.rowMax = m
	if s.e.Config.Kind == Lazy {
		s.rowMax = s.lazyTop // the running max is stale: max_logit is the tracked true max
	}
	return s.finish(m, l, in.SinkOf(h), s.o, dst)
}

// finish applies the sink and divides: o / (l + e^{σ−m}); it returns the
// row's lse, m + ln(l) in FP32 (l the denominator with the sink included),
// times log2 e in base 2.
func (s *state) finish(m, l, sigma float32, o, dst []float32) float32 {
	ar := &s.ar
	denom := ar.ra(l + ar.exp(ar.ra(sigma-m)))
	for j, v := range o {
		dst[j] = ar.ra(v / denom)
	}
	c := s.in.LSE
	if c == nil {
		return 0
	}
	if c.SinkIncluded {
		l = denom
	}
	return s.lseBase(m + num.Log32(l))
}

// emptyLSE is the lse of a row with no key: the sink's σ where the sink is
// inside the lse, else the declared empty value.
func (s *state) emptyLSE(sigma float32) float32 {
	c := s.in.LSE
	switch {
	case c == nil:
		return 0
	case c.SinkIncluded && !math.IsInf(float64(sigma), -1):
		return s.lseBase(sigma)
	}
	return float32(c.Empty())
}

// lseBase converts a natural lse to the declared base. The lse is an FP32
// output: its few operations run in FP32 whatever the accumulator.
func (s *state) lseBase(x float32) float32 {
	if s.in.LSE.Base2 {
		return float32(x * float32(math.Log2E))
	}
	return x
}

// keyScore is a key's score with the modifiers of the current head:
// softcap c·tanh(x/c), then the ALiBi bias slope·dist, each op rounded to
// the accumulator, then the storage rounding of scores.
func (s *state) keyScore(k problem.Key) float32 {
	if s.softcap == 0 && s.slope == 0 && k.Bias == 0 {
		return s.score(k.K)
	}
	ar := &s.ar
	x := s.scaled(k.K)
	if hk := s.e.Hooks; hk != nil && hk.Score != nil {
		return ar.rs(hk.Score(x, s.softcap, s.slope, k))
	}
	if c := s.softcap; c > 0 {
		x = ar.ra(float32(c * ar.ra(num.Tanh32(ar.ra(x/c)))))
	}
	if s.slope != 0 {
		x = ar.ra(x + ar.ra(float32(s.slope*k.Dist)))
	}
	if k.Bias != 0 {
		x = ar.ra(x + ar.ra(float32(k.Bias)))
	}
	return ar.rs(x)
}

// scores sets sc[c] = keyScore(keys[c]) and returns their max32 (−Inf for
// no key). Keys without a modifier in an FP32 accumulator take scaled's
// loop four keys at a time: four independent sums, each the one key's sum
// in d order (the same bits, four times the throughput of one dependent
// chain). max32 is associative and commutative (NaN wins, +0 over −0), so
// folding four at a time gives the sequential scan's value.
func (s *state) scores(keys []problem.Key, sc []float32) (mx float32) {
	ar := &s.ar
	mx = float32(math.Inf(-1))
	c := 0
	if ar.accRaw && s.softcap == 0 && s.slope == 0 {
		q := s.q
		d := len(q)
		for ; c+4 <= len(keys); c += 4 {
			ks := keys[c : c+4]
			if ks[0].Bias != 0 || ks[1].Bias != 0 || ks[2].Bias != 0 || ks[3].Bias != 0 {
				for i := range ks {
					sc[c+i] = s.keyScore(ks[i])
					mx = max32(mx, sc[c+i])
				}
				continue
			}
			k0, k1, k2, k3 := ks[0].K[:d], ks[1].K[:d], ks[2].K[:d], ks[3].K[:d]
			var a0, a1, a2, a3 float32
			for j, qj := range q {
				a0 += float32(qj * k0[j])
				a1 += float32(qj * k1[j])
				a2 += float32(qj * k2[j])
				a3 += float32(qj * k3[j])
			}
			s0, s1 := ar.rs(float32(a0*s.scale)), ar.rs(float32(a1*s.scale))
			s2, s3 := ar.rs(float32(a2*s.scale)), ar.rs(float32(a3*s.scale))
			sc[c], sc[c+1], sc[c+2], sc[c+3] = s0, s1, s2, s3
			mx = max32(mx, max32(max32(s0, s1), max32(s2, s3)))
		}
	}
	for ; c < len(keys); c++ {
		sc[c] = s.keyScore(keys[c])
		mx = max32(mx, sc[c])
	}
	return mx
}

// score is scale·(q·k): an elementwise product and a sequential row sum
// in the accumulator format, then the scale multiply, then the storage
// rounding of scores.
func (s *state) score(k []float32) float32 { return s.ar.rs(s.scaled(k)) }

// scaled is score before the storage rounding.
func (s *state) scaled(k []float32) float32 {
	ar := &s.ar
	q := s.q
	k = k[:len(q)]
	var acc float32
	if ar.accRaw {
		for d, qd := range q {
			acc += float32(qd * k[d])
		}
	} else {
		for d, qd := range q {
			acc = ar.ra(acc + ar.ra(float32(qd*k[d])))
		}
	}
	return ar.ra(float32(acc * s.scale))
}

// stream is kernel A: state from key 0, then one key at a time.
func (s *state) stream(keys []problem.Key, o []float32) (m, l float32) {
	ar := &s.ar
	m = s.keyScore(keys[0])
	l = 1 // exp(m − m)
	for j, v := range keys[0].V {
		o[j] = ar.ra(v)
	}
	for _, k := range keys[1:] {
		x := s.keyScore(k)
		mn := max(m, x)
		alpha := ar.exp(ar.ra(m - mn))
		beta := ar.exp(ar.ra(x - mn))
		bp := ar.rp(beta)
		bl := beta
		if ar.lRounded {
			bl = bp
		}
		l = ar.ra(ar.ra(float32(alpha*l)) + bl)
		for j, v := range k.V {
			o[j] = ar.ra(ar.ra(float32(alpha*o[j])) + ar.ra(float32(bp*v)))
		}
		m = mn
	}
	return m, l
}

// tiled is kernel B over keys: tiles of Bc lanes, masked lanes biased.
func (s *state) tiled(keys []problem.Key, o []float32) (m, l float32) {
	bc := s.e.Config.Bc
	first := true
	for t0 := 0; t0 < len(keys); t0 += bc {
		m, l = s.tileInto(keys[t0:min(t0+bc, len(keys))], o, m, l, &first)
	}
	return m, l
}

// tileInto computes one tile and merges it into the running (m, l, o); the
// first tile becomes the running state as it is.
func (s *state) tileInto(keys []problem.Key, o []float32, m, l float32, first *bool) (float32, float32) {
	mt, lt := s.tile(keys, s.ot)
	if *first {
		copy(o, s.ot)
		*first = false
		return mt, lt
	}
	return s.merge(m, l, o, mt, lt, s.ot)
}

// tile computes one tile's (m_t, l_t, o_t). Lanes beyond len(keys) are
// masked: score bias, zero value row.
func (s *state) tile(keys []problem.Key, ot []float32) (mt, lt float32) {
	ar := &s.ar
	bc := s.e.Config.Bc
	if cap(s.s) < bc {
		s.s, s.p, s.ex = make([]float32, bc), make([]float32, bc), make([]float32, bc)
	}
	sc, p := s.s[:bc], s.p[:bc]
	bias := float32(MaskBias)
	if s.e.Config.MaskInf {
		bias = float32(math.Inf(-1))
	}
	if hk := s.e.Hooks; hk != nil && hk.MaskBias != 0 {
		bias = hk.MaskBias
	}
	nk := len(keys)
	masked := ar.rs(ar.ra(0 + bias)) // every masked lane's score
	mt = float32(math.Inf(-1))
	if nk < bc {
		mt = masked
	}
	mt = max32(mt, s.scores(keys, sc))
	pHook := s.e.Hooks != nil && s.e.Hooks.P != nil
	lane := func(x float32) (pl, pr float32) { // a lane's contribution to l, and its P
		pc := ar.exp(ar.ra(x - mt))
		if pHook {
			pc = s.e.Hooks.P(x, mt)
		}
		pr = ar.rp(pc)
		if ar.lRounded {
			pc = pr
		}
		return pc, pr
	}
	lt = 0
	if pHook {
		for c := 0; c < nk; c++ {
			var pl float32
			pl, p[c] = lane(sc[c])
			lt = ar.ra(lt + pl)
		}
	} else {
		// lane's operations with the exps four at a time (vec.Exp32 is
		// num.Exp32 bit for bit).
		ex := s.ex[:nk]
		for c := range ex {
			ex[c] = ar.ra(sc[c] - mt)
		}
		vec.Exp32(p[:nk], ex)
		for c := range ex {
			pc := ar.ra(p[c])
			pr := ar.rp(pc)
			if ar.lRounded {
				pc = pr
			}
			p[c] = pr
			lt = ar.ra(lt + pc)
		}
	}
	// Masked lanes all add the same value, usually an exact zero (skipped:
	// lt + 0 = lt); it is nonzero only when the whole tile is masked.
	if nk < bc {
		if pl, _ := lane(masked); pl != 0 {
			for c := nk; c < bc; c++ {
				lt = ar.ra(lt + pl)
			}
		}
	}
	clear(ot)
	if ar.accRaw && len(ot) >= 8 && nk > 0 && rowsOf(keys, len(ot)) {
		// FP32 accumulation (ra is the identity): eight elements at a
		// time over the keys in order, the same sums; the last Dv mod 8
		// one at a time.
		done := vec.AxpyRows32(p[:nk], unsafe.Pointer(&keys[0].V), unsafe.Sizeof(keys[0]), ot)
		for j := done; j < len(ot); j++ {
			acc := ot[j]
			for c, k := range keys {
				acc += float32(p[c] * k.V[j])
			}
			ot[j] = acc
		}
		return mt, lt
	}
	if ar.accRaw { // the loop below without its identity roundings
		for c, k := range keys {
			pc := p[c]
			for j, v := range k.V {
				ot[j] += float32(pc * v) // the conversion keeps the product rounded: no FMA
			}
		}
		return mt, lt
	}
	for c, k := range keys { // masked lanes: zero rows add exact zeros
		pc := p[c]
		for j, v := range k.V {
			ot[j] = ar.ra(ot[j] + ar.ra(float32(pc*v)))
		}
	}
	return mt, lt
}

// rowsOf reports whether every key's value row is n long (what the P·V
// loop reads; vec.AxpyRows32 relies on it).
func rowsOf(keys []problem.Key, n int) bool {
	for i := range keys {
		if len(keys[i].V) != n {
			return false
		}
	}
	return true
}

// max32 is the builtin max of two float32 (NaN if either is, +0 over −0),
// its ordered cases inline.
func max32(x, y float32) float32 {
	if x > y {
		return x
	}
	if x < y {
		return y
	}
	return max(x, y)
}

// merge folds (mt, lt, ot) into the running (m, l, o) and returns the new
// (m, l); o is updated in place.
func (s *state) merge(m, l float32, o []float32, mt, lt float32, ot []float32) (float32, float32) {
	if hk := s.e.Hooks; hk != nil && hk.Merge != nil {
		return hk.Merge(m, l, o, mt, lt, ot)
	}
	ar := &s.ar
	mn := max(m, mt)
	alpha := ar.exp(ar.ra(m - mn))
	beta := ar.exp(ar.ra(mt - mn))
	l = ar.ra(ar.ra(float32(alpha*l)) + ar.ra(float32(beta*lt)))
	for j := range o {
		o[j] = ar.ra(ar.ra(float32(alpha*o[j])) + ar.ra(float32(beta*ot[j])))
	}
	return mn, l
}

// splitkv is kernel C: P contiguous partitions, each computed as kernel B,
// merged at the end. Empty partitions carry (−FLT_MAX, 0, 0).
func (s *state) splitkv(keys []problem.Key, o []float32) (m, l float32) {
	parts := s.e.Config.Parts
	per := (len(keys) + parts - 1) / parts
	for p := 0; p < parts; p++ {
		lo, hi := min(p*per, len(keys)), min((p+1)*per, len(keys))
		mp, lp := float32(-math.MaxFloat32), float32(0)
		clear(s.op)
		if lo < hi {
			mp, lp = s.tiled(keys[lo:hi], s.op)
		}
		if p == 0 {
			m, l = mp, lp
			copy(o, s.op)
			continue
		}
		m, l = s.merge(m, l, o, mp, lp, s.op)
	}
	return m, l
}
