package props

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/ref"
)

// Property is one fact about attention, checked on a case.
type Property struct {
	Name string
	Doc  string
	// Family restricts the drawn cases ("" = both families).
	Family problem.Family
	// Adapt makes a drawn case (and every shrink candidate) meet the
	// property's precondition; nil means none.
	Adapt func(cases.Case) cases.Case
	// Check returns nil when the property holds on c (usually a *Failure
	// otherwise).
	Check func(ch *Checker, c cases.Case) error
}

// Properties lists every property, differential first.
func Properties() []Property {
	return append([]Property{
		{Name: "differential", Doc: "every correct emulation is within the rigorous bound of the float64 reference; contract violations are reported instead",
			Check: func(ch *Checker, c cases.Case) error { return ch.Check(c) }},
		{Name: "violations", Family: problem.Sparse, Adapt: withViolation, Check: checkViolations,
			Doc: "a planted contract violation is reported (and is not judged numerically); kernels still run"},
		{Name: "key_order", Family: problem.Sparse, Adapt: Valid, Check: checkKeyOrder,
			Doc: "permuting the keys of each index row (within the window and compressed parts) changes o only within the bounds"},
		{Name: "duplicate_key", Adapt: Valid, Check: checkDuplicate,
			Doc: "a key present m times equals that key once with its score raised by ln m"},
		{Name: "sink_neg_inf", Adapt: Valid, Check: checkSinkNegInf,
			Doc: "a sink of −Inf gives exactly the output of no sink"},
		{Name: "sink_pos_inf", Adapt: Valid, Check: checkSinkPosInf,
			Doc: "a sink of +Inf gives o = 0"},
		{Name: "scale_v", Adapt: Valid, Check: checkScaleV,
			Doc: "scaling V by c (a power of two or −1; sparse: kv by c and q by 1/c) scales o by c, within the bounds"},
		{Name: "range", Adapt: Valid, Check: checkRange,
			Doc: "each output lies within the range of the values it averages (with a sink: of those and 0), within the bound"},
		{Name: "one_key", Adapt: oneKey, Check: checkOneKey,
			Doc: "one key gives o = v·sigmoid(x − σ)"},
		{Name: "tile_partition", Adapt: Valid, Check: checkTilePartition,
			Doc: "tile size and partition count change o only within the bounds"},
		{Name: "kinds_agree", Adapt: Valid, Check: checkKindsAgree,
			Doc: "stream, tiled and splitkv agree within their bounds"},
		{Name: "ref_exact", Adapt: tiny, Check: checkRefExact,
			Doc: "the float64 reference is within its own error bound of exact math/big arithmetic"},
	}, append(familyProperties(), layoutProperties()...)...)
}

// PropertyByName returns the property called name.
func PropertyByName(name string) (Property, bool) {
	for _, p := range Properties() {
		if p.Name == name {
			return p, true
		}
	}
	return Property{}, false
}

// Valid removes from c what breaks the kernel contract: violation plants,
// non-finite special values, NaN sinks, seqused_kv < S−1, a dense
// seqused_k beyond its sequence and a softmax scale beyond FP32. Metamorphic
// properties need inputs that are judged numerically.
func Valid(c cases.Case) cases.Case {
	c = clone(c)
	c.Plant = slices.DeleteFunc(c.Plant, func(p string) bool {
		return slices.Contains(ViolationPlants, p) || slices.Contains(PyptoViolationPlants, p)
	})
	if len(c.Plant) == 0 {
		c.Plant = nil
	}
	c.Specials = slices.DeleteFunc(c.Specials, func(s cases.Special) bool {
		for _, f := range []num.Format{num.BF16, num.FP16, num.FP32} {
			if v := num.Round64(f, s.Value.Resolve(f), num.RNE); math.IsNaN(v) || math.IsInf(v, 0) {
				return true
			}
		}
		return false
	})
	if len(c.Specials) == 0 {
		c.Specials = nil
	}
	if c.Sink != nil {
		if math.IsNaN(c.Sink.Value.V) {
			c.Sink.Value = cases.F(0)
		}
		for i, v := range c.Sink.Values {
			if math.IsNaN(v.V) {
				c.Sink.Values[i] = cases.F(0)
			}
		}
	}
	for b, u := range c.Seqused {
		c.Seqused[b] = max(u, max(c.S, 1)-1)
	}
	for b, u := range c.SequsedK { // dense: at most the keys the sequence holds
		if b < len(c.Sk) {
			c.SequsedK[b] = max(min(u, c.Sk[b]), 0)
		}
	}
	if sc := float64(float32(c.Scale)); math.IsNaN(sc) || math.IsInf(sc, 0) {
		c.Scale = 0 // the default D^-0.5: a scale beyond FP32 is a contract violation
	}
	return c
}

// withViolation plants one contract violation (chosen by the case seed
// among those that find a token to edit) on a sparse case with a key.
func withViolation(c cases.Case) cases.Case {
	c = clone(c)
	if c.Family != problem.Sparse {
		return c
	}
	s := max(c.S, 1)
	if c.Seqused[0] < s {
		c.Seqused[0] = s // the last token of entry 0 sees a key
	}
	if must, _ := ExpectedViolations(c, num.BF16); len(must) > 0 {
		return c
	}
	for i := range ViolationPlants {
		p := ViolationPlants[(c.Seed+uint64(i))%uint64(len(ViolationPlants))]
		if plantApplies(c, p) {
			c.Plant = append(c.Plant, p)
			break
		}
	}
	return c
}

// oneKey makes every query row attend exactly one key.
func oneKey(c cases.Case) cases.Case {
	c = Valid(c)
	if problem.IsPypto(c.Family) {
		return pyptoOneKey(c)
	}
	if c.Family == problem.Window {
		c.Window = 1
		return c
	}
	if c.S == 2 {
		toS1(&c)
	}
	for b := range c.Seqused {
		c.Seqused[b] = 1
	}
	fixup(&c)
	return c
}

// tiny shrinks c to what math/big evaluates quickly: H ≤ 2, D ≤ 8, at
// most 8 keys per row and 4 tokens.
func tiny(c cases.Case) cases.Case {
	c = Valid(c)
	if problem.IsPypto(c.Family) {
		return pyptoTiny(c)
	}
	c.H = min(c.H, 2)
	if c.Hkv > 0 {
		c.Hkv = gcd(c.H, c.Hkv)
	}
	c.D, c.Dv = min(c.D, 8), min(c.Dv, 8)
	if c.Family == problem.Window {
		c.T = min(c.T, 6)
	} else {
		if c.B > 2 {
			c.B, c.Seqused = 2, c.Seqused[:2]
			remapTokens(&c, func(t int) int {
				if t >= 2*max(c.S, 1) {
					return -1
				}
				return t
			})
		}
		c.Win, c.IdxTopK = min(c.Win, 6), min(c.IdxTopK, 6)
		if c.Win+c.IdxTopK == 0 {
			c.IdxTopK = 1
		}
		for b, u := range c.Seqused {
			c.Seqused[b] = min(u, 10)
		}
	}
	fixup(&c)
	return c
}

// Pick returns the configs of one precision profile, chosen by the case
// seed among the profiles whose kernels take c's inputs. Metamorphic
// properties run one profile per case (every profile over a campaign).
func (ch *Checker) Pick(c cases.Case) []impl.Config {
	var names []string
	for _, cfg := range ch.configs() {
		f := c.Format(cfg.Profile.In)
		if impl.Compatible(f, cfg.Profile) && !slices.Contains(names, cfg.Profile.Name) {
			names = append(names, cfg.Profile.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	p := names[c.Seed%uint64(len(names))]
	var out []impl.Config
	for _, cfg := range ch.configs() {
		if cfg.Profile.Name == p {
			out = append(out, cfg)
		}
	}
	return out
}

// judged is one kernel's output on one input, with its bounds.
type judged struct {
	name    string
	in      *problem.Inputs
	r       *ref.Result
	out     *impl.Output
	allowed []float64
	skip    []bool
}

func (ch *Checker) judge(cfg impl.Config, in *problem.Inputs, r *ref.Result) (*judged, error) {
	out, err := ch.run(cfg, in)
	if err != nil {
		return nil, err
	}
	x := &tolerance.Input{In: in, Ref: r, Out: out.O, OutLSE: out.LSE, Profile: cfg.Profile, Shape: tolerance.ShapeOf(cfg)}
	allowed, _, skip := tolerance.Bounds(x, tolerance.Rigorous)
	return &judged{name: impl.ConfigName(cfg), in: in, r: r, out: out, allowed: allowed, skip: skip}, nil
}

// generate builds c's inputs for format f; they must follow the contract.
func generate(c cases.Case, f num.Format) (*problem.Inputs, error) {
	in, err := cases.Generate(c, f)
	if err != nil {
		return nil, fmt.Errorf("generate (%s): %v", f, err)
	}
	if vs := in.Violations(); len(vs) > 0 {
		return nil, fmt.Errorf("inputs meant to be valid report %v", vs[0])
	}
	return in, nil
}

// eachFormat calls f for every input format of the picked configs.
func (ch *Checker) eachFormat(c cases.Case, cfgs []impl.Config, f func(in *problem.Inputs, cfgs []impl.Config) error) error {
	fs, by := formats(c, cfgs)
	for _, ft := range fs {
		in, err := generate(c, ft)
		if err != nil {
			return err
		}
		if err := f(in, by[ft]); err != nil {
			return err
		}
	}
	return nil
}

// bothFinite reports whether a and b are finite; if not, same says whether
// they are the same non-finite value (both NaN, or equal infinities).
func bothFinite(a, b float64) (finite, same bool) {
	an, bn := math.IsNaN(a), math.IsNaN(b)
	if an || bn || math.IsInf(a, 0) || math.IsInf(b, 0) {
		return false, (an && bn) || a == b
	}
	return true, false
}

// agree checks |a − c·b| ≤ A_a + |c|·A_b elementwise, skipping elements
// outside either bound's domain: two outputs whose exact values are related
// by o_a = c·o_b.
func agree(prop string, a, b *judged, c float64) error {
	for e, x := range a.out.O {
		if a.skip[e] || b.skip[e] {
			continue
		}
		ga, gb := float64(x), c*float64(b.out.O[e])
		allowed := a.allowed[e] + math.Abs(c)*b.allowed[e]
		if fin, same := bothFinite(ga, gb); !fin {
			if !same {
				return newFailure(prop, a.name+" vs "+b.name, a.in, e, ga, gb, allowed, "non-finite mismatch")
			}
			continue
		}
		if math.Abs(ga-gb) > allowed {
			detail := b.name
			if c != 1 {
				detail = fmt.Sprintf("%v × %s", c, b.name)
			}
			return newFailure(prop, a.name, a.in, e, ga, gb, allowed, "want "+detail+", within the sum of both bounds")
		}
	}
	return nil
}

// refSlack bounds the float64 reference's own error in element e,
// generously (4x a first-order count): score, subtraction and exp
// roundings of float64 weighted by the softmax Jacobian, plus n + 8
// roundings of every accumulated term.
func refSlack(in *problem.Inputs, r *ref.Result, e int) float64 {
	const u = 0x1p-53
	row := r.Rows[e/in.Dv]
	if row.N == 0 || math.IsInf(row.Sink, 1) {
		return 0
	}
	dx := u*float64(in.D+4)*row.MaxA + 4*u*(row.MaxAbsX+row.MaxDiff) + 8*u
	if !math.IsInf(row.Sink, 0) {
		dx += 4 * u * (math.Abs(row.Sink) + math.Abs(row.M))
	}
	o := math.Abs(r.O[e])
	return 4*(dx*(r.Dev1[e]+o)+float64(row.N+8)*u*(r.AbsV[e]+o)) + 0x1p-1070
}

func checkViolations(ch *Checker, c cases.Case) error {
	cfgs := ch.Pick(c)
	fs, by := formats(c, cfgs)
	for _, f := range fs {
		in, err := cases.Generate(c, f)
		if err != nil {
			return err
		}
		vs := in.Violations()
		if err := CheckViolations(c, in, vs); err != nil {
			return err
		}
		ref.Compute(in, ref.Options{}) // must not panic on violating inputs
		for _, cfg := range by[f] {
			if _, err := ch.run(cfg, in); err != nil {
				return err
			}
		}
	}
	return nil
}

// permuteKeys shuffles each token's prefix within its window part and its
// compressed part (the kernel contract fixes which part comes first).
func permuteKeys(in *problem.Inputs, seed uint64) *problem.Inputs {
	out := *in
	out.Idx = slices.Clone(in.Idx)
	r := rand.New(rand.NewPCG(seed, 0x6b65795f6f72646))
	for t := 0; t < in.T; t++ {
		l := in.TokenLens(t)
		row := out.Idx[t*in.TopK : (t+1)*in.TopK]
		for _, part := range [][]int32{row[:l.WindowValid], row[l.WindowValid:l.SparseK]} {
			r.Shuffle(len(part), func(i, j int) { part[i], part[j] = part[j], part[i] })
		}
	}
	return &out
}

func checkKeyOrder(ch *Checker, c cases.Case) error {
	return ch.eachFormat(c, ch.Pick(c), func(in *problem.Inputs, cfgs []impl.Config) error {
		return orderAgrees("key_order", ch, in, permuteKeys(in, c.Seed), cfgs)
	})
}

// duplicateKey makes one key appear twice: sparse, one prefix entry copies
// another of the same part; window, position j+1 copies position j's keys
// and values in every KV head. ok is false when no row has two keys.
func duplicateKey(in *problem.Inputs, seed uint64) (*problem.Inputs, bool) {
	if problem.IsPypto(in.Family) { // duplicates are planted there (cases.PlantDuplicate)
		return nil, false
	}
	out := *in
	r := rand.New(rand.NewPCG(seed, 0x647570))
	if in.Family == problem.Window {
		if in.T < 2 {
			return nil, false
		}
		j := r.IntN(in.T - 1)
		out.K, out.V = slices.Clone(in.K), slices.Clone(in.V)
		kw, vw := in.Hkv*in.D, in.Hkv*in.Dv
		copy(out.K[(j+1)*kw:(j+2)*kw], in.K[j*kw:(j+1)*kw])
		copy(out.V[(j+1)*vw:(j+2)*vw], in.V[j*vw:(j+1)*vw])
		return &out, true
	}
	var toks []int
	for t := 0; t < in.T; t++ {
		if l := in.TokenLens(t); l.WindowValid >= 2 || l.CmpTop >= 2 {
			toks = append(toks, t)
		}
	}
	if len(toks) == 0 {
		return nil, false
	}
	t := toks[r.IntN(len(toks))]
	l := in.TokenLens(t)
	out.Idx = slices.Clone(in.Idx)
	row := out.Idx[t*in.TopK : (t+1)*in.TopK]
	part := row[:l.WindowValid]
	if len(part) < 2 || (l.CmpTop >= 2 && r.IntN(2) == 0) {
		part = row[l.WindowValid:l.SparseK]
	}
	i := r.IntN(len(part))
	j := (i + 1 + r.IntN(len(part)-1)) % len(part)
	part[i] = part[j]
	return &out, true
}

// groupedRef is the float64 output of in with identical keys merged: a key
// present m times enters once with score x + ln m.
func groupedRef(in *problem.Inputs) []float64 {
	out := make([]float64, in.OutLen())
	var keys []problem.Key
	for t := 0; t < in.T; t++ {
		for g := 0; g < in.Hkv; g++ {
			keys = in.RefKeys(t, g, keys)
			var uniq []problem.Key
			var mult []float64
			for _, k := range keys {
				i := slices.IndexFunc(uniq, func(u problem.Key) bool {
					return slices.Equal(u.K, k.K) && slices.Equal(u.V, k.V) && signsEqual(u, k)
				})
				if i < 0 {
					uniq, mult = append(uniq, k), append(mult, 1)
				} else {
					mult[i]++
				}
			}
			per := in.H / in.Hkv
			for h := g * per; h < (g+1)*per; h++ {
				e0 := (t*in.H + h) * in.Dv
				softmaxRow(in, t, h, uniq, mult, out[e0:e0+in.Dv])
			}
		}
	}
	return out
}

func signsEqual(a, b problem.Key) bool {
	for i := range a.K {
		if math.Signbit(float64(a.K[i])) != math.Signbit(float64(b.K[i])) {
			return false
		}
	}
	for i := range a.V {
		if math.Signbit(float64(a.V[i])) != math.Signbit(float64(b.V[i])) {
			return false
		}
	}
	return true
}

// softmaxRow computes row (t, h) in float64 over keys with multiplicities:
// o = Σ m_i e^{x_i−M} v_i / (Σ m_i e^{x_i−M} + e^{σ−M}).
func softmaxRow(in *problem.Inputs, t, h int, keys []problem.Key, mult []float64, o []float64) {
	clear(o)
	sigma := float64(in.SinkOf(h))
	if len(keys) == 0 || math.IsInf(sigma, 1) {
		return
	}
	q := in.QRow(t, h)
	xs := make([]float64, len(keys))
	m := sigma
	for i, k := range keys {
		xs[i] = float64(in.Scale*dot64(q, k.K)) + math.Log(mult[i])
		m = math.Max(m, xs[i])
	}
	l := math.Exp(sigma - m)
	for i, k := range keys {
		w := math.Exp(xs[i] - m)
		l += w
		for j, v := range k.V {
			o[j] += float64(w * float64(v))
		}
	}
	for j := range o {
		o[j] /= l
	}
}

func checkDuplicate(ch *Checker, c cases.Case) error {
	return ch.eachFormat(c, ch.Pick(c), func(in *problem.Inputs, cfgs []impl.Config) error {
		din, ok := duplicateKey(in, c.Seed)
		if !ok {
			return nil // no row with two keys: nothing to duplicate
		}
		want := groupedRef(din)
		r := ref.Compute(din, ref.Options{})
		for e, w := range want {
			if s := 2 * refSlack(din, r, e); math.Abs(r.O[e]-w) > s {
				return newFailure("duplicate_key", "ref", din, e, r.O[e], w, s, "the reference disagrees with the merged-key formula")
			}
		}
		for _, cfg := range cfgs {
			j, err := ch.judge(cfg, din, r)
			if err != nil {
				return err
			}
			for e, w := range want {
				if j.skip[e] {
					continue
				}
				got := float64(j.out.O[e])
				allowed := j.allowed[e] + 2*refSlack(din, r, e)
				if !(math.Abs(got-w) <= allowed) {
					return newFailure("duplicate_key", j.name, din, e, got, w, allowed, "want the key once with its score raised by ln m")
				}
			}
		}
		return nil
	})
}

func withSink(in *problem.Inputs, sigma float64) *problem.Inputs {
	out := *in
	out.Sink = make([]float32, in.H)
	for h := range out.Sink {
		out.Sink[h] = float32(sigma)
	}
	out.HasSinkTensor = true
	return &out
}

func withoutSink(in *problem.Inputs) *problem.Inputs {
	out := *in
	out.Sink, out.HasSinkTensor = nil, false
	return &out
}

func checkSinkNegInf(ch *Checker, c cases.Case) error {
	return ch.eachFormat(c, ch.Pick(c), func(in *problem.Inputs, cfgs []impl.Config) error {
		return sameAnswers(ch, "sink_neg_inf", withoutSink(in), withSink(in, math.Inf(-1)), cfgs, "a −Inf sink must give exactly the answer of no sink")
	})
}

func checkSinkPosInf(ch *Checker, c cases.Case) error {
	return ch.eachFormat(c, ch.Pick(c), func(in *problem.Inputs, cfgs []impl.Config) error {
		pos := withSink(in, math.Inf(1))
		r := ref.Compute(pos, ref.Options{})
		for e, v := range r.O {
			if v != 0 {
				return newFailure("sink_pos_inf", "ref", pos, e, v, 0, 0, "a +Inf sink takes all the weight")
			}
		}
		for _, cfg := range cfgs {
			j, err := ch.judge(cfg, pos, r)
			if err != nil {
				return err
			}
			for e, v := range j.out.O {
				if !j.skip[e] && v != 0 {
					return newFailure("sink_pos_inf", j.name, pos, e, float64(v), 0, 0, "a +Inf sink takes all the weight")
				}
			}
		}
		return nil
	})
}

// scaleFactors are the factors scale_v tries, exact in every format as
// long as no value leaves the normal range.
var scaleFactors = []float64{2, 0.5, 4, 0.25, -2, 1024, 0x1p-10}

// scaleV returns in with V scaled by c (sparse: the pools by c and q by
// 1/c, so scores stay the same), or false if some value would round.
func scaleV(in *problem.Inputs, c float64) (*problem.Inputs, bool) {
	out := *in
	exact := true
	scale := func(xs []float32, c float64) []float32 {
		ys := make([]float32, len(xs))
		for i, x := range xs {
			y := float64(x) * c
			if num.Round64(in.Format, y, num.RNE) != y {
				exact = false
			}
			ys[i] = float32(y)
		}
		return ys
	}
	if in.Family == problem.Window {
		out.V = scale(in.V, c)
	} else {
		out.OriKV, out.CmpKV = scale(in.OriKV, c), scale(in.CmpKV, c)
		out.Q = scale(in.Q, 1/c)
	}
	return &out, exact
}

func checkScaleV(ch *Checker, c cases.Case) error {
	return ch.eachFormat(c, ch.Pick(c), func(in *problem.Inputs, cfgs []impl.Config) error {
		f := scaleFactors[c.Seed%uint64(len(scaleFactors))]
		sin, ok := scaleV(in, f)
		if !ok {
			f = -1 // always exact
			sin, _ = scaleV(in, f)
		}
		r, sr := ref.Compute(in, ref.Options{}), ref.Compute(sin, ref.Options{})
		for _, cfg := range cfgs {
			a, err := ch.judge(cfg, sin, sr)
			if err != nil {
				return err
			}
			b, err := ch.judge(cfg, in, r)
			if err != nil {
				return err
			}
			if err := agree("scale_v", a, b, f); err != nil {
				return err
			}
		}
		return nil
	})
}

func checkRange(ch *Checker, c cases.Case) error {
	return ch.eachFormat(c, ch.Pick(c), func(in *problem.Inputs, cfgs []impl.Config) error {
		r := ref.Compute(in, ref.Options{})
		lo, hi := make([]float64, in.OutLen()), make([]float64, in.OutLen())
		var keys []problem.Key
		for t := 0; t < in.T; t++ {
			for g := 0; g < in.Hkv; g++ {
				keys = in.RefKeys(t, g, keys)
				per := in.H / in.Hkv
				for h := g * per; h < (g+1)*per; h++ {
					e0 := (t*in.H + h) * in.Dv
					for j := range in.Dv {
						l, u := math.Inf(1), math.Inf(-1)
						if in.Sink != nil && !math.IsInf(float64(in.Sink[h]), -1) || len(keys) == 0 {
							l, u = 0, 0 // the sink's weight averages in a zero
						}
						for _, k := range keys {
							l, u = math.Min(l, float64(k.V[j])), math.Max(u, float64(k.V[j]))
						}
						lo[e0+j], hi[e0+j] = l, u
					}
				}
			}
		}
		for e, v := range r.O {
			if s := refSlack(in, r, e); v < lo[e]-s || v > hi[e]+s {
				return newFailure("range", "ref", in, e, v, math.Max(lo[e], math.Min(v, hi[e])), s, fmt.Sprintf("outside [%v, %v]", lo[e], hi[e]))
			}
		}
		for _, cfg := range cfgs {
			j, err := ch.judge(cfg, in, r)
			if err != nil {
				return err
			}
			for e, v := range j.out.O {
				x := float64(v)
				if j.skip[e] {
					continue
				}
				if !(x >= lo[e]-j.allowed[e] && x <= hi[e]+j.allowed[e]) {
					return newFailure("range", j.name, in, e, x, math.Max(lo[e], math.Min(x, hi[e])), j.allowed[e],
						fmt.Sprintf("outside [%v, %v] by more than the bound", lo[e], hi[e]))
				}
			}
		}
		return nil
	})
}

func checkOneKey(ch *Checker, c cases.Case) error {
	return ch.eachFormat(c, ch.Pick(c), func(in *problem.Inputs, cfgs []impl.Config) error {
		want := make([]float64, in.OutLen())
		var keys []problem.Key
		for t := 0; t < in.T; t++ {
			for g := 0; g < in.Hkv; g++ {
				keys = in.RefKeys(t, g, keys)
				if len(keys) != 1 {
					return fmt.Errorf("one_key: token %d attends %d keys, want 1", t, len(keys))
				}
				per := in.H / in.Hkv
				for h := g * per; h < (g+1)*per; h++ {
					x := float64(in.Scale * dot64(in.QRow(t, h), keys[0].K))
					sig := sigmoid(x - float64(in.SinkOf(h)))
					for j, v := range keys[0].V {
						want[(t*in.H+h)*in.Dv+j] = float64(v) * sig
					}
				}
			}
		}
		r := ref.Compute(in, ref.Options{})
		for e, w := range want {
			if s := 2 * refSlack(in, r, e); math.Abs(r.O[e]-w) > s {
				return newFailure("one_key", "ref", in, e, r.O[e], w, s, "want v·sigmoid(x − σ)")
			}
		}
		for _, cfg := range cfgs {
			j, err := ch.judge(cfg, in, r)
			if err != nil {
				return err
			}
			for e, w := range want {
				got := float64(j.out.O[e])
				allowed := j.allowed[e] + 2*refSlack(in, r, e)
				if !j.skip[e] && !(math.Abs(got-w) <= allowed) {
					return newFailure("one_key", j.name, in, e, got, w, allowed, "want v·sigmoid(x − σ)")
				}
			}
		}
		return nil
	})
}

// pairwise runs cfgs on the same inputs and checks every pair agrees.
func (ch *Checker) pairwise(prop string, c cases.Case, cfgs []impl.Config, cross func(a, b impl.Config) bool) error {
	return ch.eachFormat(c, cfgs, func(in *problem.Inputs, cfgs []impl.Config) error {
		r := ref.Compute(in, ref.Options{})
		js := make([]*judged, len(cfgs))
		for i, cfg := range cfgs {
			var err error
			if js[i], err = ch.judge(cfg, in, r); err != nil {
				return err
			}
		}
		for i := range js {
			for k := i + 1; k < len(js); k++ {
				if !cross(cfgs[i], cfgs[k]) {
					continue
				}
				if err := agree(prop, js[i], js[k], 1); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func checkTilePartition(ch *Checker, c cases.Case) error {
	var cfgs []impl.Config
	for _, cfg := range ch.Pick(c) {
		if cfg.Kind != impl.Stream {
			cfgs = append(cfgs, cfg)
		}
	}
	return ch.pairwise("tile_partition", c, cfgs, func(a, b impl.Config) bool { return a.Kind == b.Kind })
}

func checkKindsAgree(ch *Checker, c cases.Case) error {
	return ch.pairwise("kinds_agree", c, ch.Pick(c), func(a, b impl.Config) bool { return a.Kind != b.Kind })
}

func checkRefExact(ch *Checker, c cases.Case) error {
	fs := []num.Format{c.Format(num.BF16)}
	if c.DType == "" {
		fs = append(fs, num.FP16, num.FP32)
	}
	for _, f := range fs {
		in, err := generate(c, f)
		if err != nil {
			return err
		}
		r := ref.Compute(in, ref.Options{})
		var keys []problem.Key
		for t := 0; t < in.T; t++ {
			for h := 0; h < in.H; h++ {
				keys = in.RefKeys(t, in.Group(h), keys)
				want := ExactRow(in, t, h, keys)
				for j, w := range want {
					e := (t*in.H+h)*in.Dv + j
					if s := refSlack(in, r, e); !(math.Abs(r.O[e]-w) <= s) {
						return newFailure("ref_exact", "ref", in, e, r.O[e], w, s, "the float64 reference against math/big")
					}
				}
			}
		}
	}
	return nil
}

// sigmoid is 1/(1 + e^{−z}), without overflow: e^z/(1 + e^z) for z < 0.
func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}
