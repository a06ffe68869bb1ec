package mutant

import (
	"math"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
)

// Bug classes.
const (
	classSeed      = "seed"      // the defects of PR #301's review (SPEC.md §1, kernel A edge cases)
	classMath      = "math"      // the attention formula itself
	classPrecision = "precision" // a stage computed less precisely than declared
)

// headTile is the device's head tile (MATMUL_ROW_PAD).
const headTile = 16

// catalog is the list of mutant specifications, in catalog order.
func catalog() []spec {
	return append([]spec{
		// --- The seed defects (SPEC.md §1, kernel A).
		{
			name: "pr301-n1-stale-state", class: classSeed, base: "stream/bf16p32",
			doc: "n == 1: the merge loop runs zero times and the final (m, l, o) are those left by the previous head tile (same lane), NaN if none",
			run: runStaleState,
		},
		{
			name: "pr301-n1-poison", class: classSeed, base: "stream/bf16",
			doc:   "n == 1: the final (m, l, o) after the zero-trip loop are uninitialised memory (NaN)",
			hooks: &impl.Hooks{State: poisonOneKey},
		},
		{
			name: "n0-stale-scratch", class: classSeed, family: problem.Sparse, base: "stream/bf16p32",
			doc:   "n == 0: the gather writes nothing, yet step 1 reads scratch row 0: the previous token's first key, NaN if none",
			hooks: &impl.Hooks{Keys: staleScratchRow},
		},

		// --- SPEC.md §3.
		{
			name: "s2-shared-length", class: "§3.1", family: problem.Sparse, base: "tiled/bc128/bf16",
			doc:   "S = 2: every token of a batch entry uses the entry's final length, so earlier tokens attend the last token's keys (a future key)",
			hooks: &impl.Hooks{Keys: sharedLength},
		},
		{
			name: "s2-stage-revert", class: "§3.2", family: problem.Sparse, base: "tiled/bc64/bf16",
			doc:   "S = 2: the gather uses the token's length, the tile loop and mask the entry's final length: lanes past the token's keys read the previous token's scratch rows",
			hooks: &impl.Hooks{Keys: stageRevert},
		},
		{
			name: "len-off-by-s", class: "§3.3", family: problem.Sparse, base: "stream/bf16p32",
			doc:   "S = 2: the token length is corrected by S−1−s twice (u_s − (S−1−s)): an earlier token's newest keys are dropped",
			hooks: &impl.Hooks{Keys: lengthOffByS},
		},
		{
			name: "p-bf16-declared-fp32", class: "§3.4", base: "stream/bf16p32",
			doc:    "P rounded to BF16 for P·V while l sums the unrounded values, in a kernel that declares FP32 P (kernel A)",
			actual: func(p *profile.Profile) { p.P = num.BF16 },
		},
		{
			name: "l-from-rounded-p", class: "§3.4", base: "tiled/bc64/bf16p32",
			doc:    "P rounded to BF16 per tile and l summed from the rounded P (the older variant), in a kernel that declares FP32 P",
			actual: func(p *profile.Profile) { p.P = num.BF16; p.LFromRoundedP = true },
		},
		{
			name: "short-set-merged-twice", class: "§3.5", base: "tiled/bc128/bf16",
			doc:   "n ≤ Bc sent through the multi-tile merge, which folds the single tile in twice: o = 2o_t/(2l_t + e^(σ−m)), visible only with a sink",
			hooks: &impl.Hooks{State: mergedTwice(128)},
		},
		{
			name: "guarded-tile-updates-l", class: "§3.6", base: "tiled/bc32/bf16",
			doc:   "tile iterations past the row's keys are guarded off but still add the fully masked tile's l_t = Bc to l: outputs many times too small",
			hooks: &impl.Hooks{State: guardedTiles(32)},
		},
		{
			name: "ring-overwrite-oldest", class: "§3.7", family: problem.Window, base: "tiled/bc16/bf16",
			doc:   "the next token's key is written into the ring before attention: from position W−1 on it replaces the oldest visible key",
			hooks: &impl.Hooks{Keys: ringOverwrite},
		},
		{
			name: "current-key-dropped", class: "§3.9", base: "tiled/bc64/bf16",
			doc:   "the block holding the current token's key is computed but never merged: that key is dropped",
			hooks: &impl.Hooks{Keys: dropCurrentKey},
		},
		{
			name: "head-tile-row0-corrupt", class: "§3.10", base: "tiled/bc16/bf16",
			doc:   "a conditional merge guard misfires for the first head row of each 16-head tile: with n > Bc that row keeps only its last tile",
			hooks: &impl.Hooks{Head: firstRowLastTile(16)},
		},
		{
			name: "score-bf16-double-round", class: "§3.12", base: "tiled/bc64/bf16",
			doc:    "scores rounded to BF16 before the softmax (double rounding) in a kernel that declares FP32 scores",
			actual: func(p *profile.Profile) { p.Score = num.BF16 },
		},
		{
			name: "maskinf-empty-row-nan", class: "§3.15", family: problem.Sparse, base: "tiled/bc32-maskinf/bf16",
			doc:   "a fully masked row (n == 0) with a −Inf mask: −Inf − (−Inf) = NaN instead of o = 0",
			hooks: &impl.Hooks{Row: emptyRowNaN},
		},
		{
			name: "cold-tail-pool-row0", class: "§3.16", family: problem.Sparse, base: "tiled/bc128/bf16",
			doc:   "a window not yet full has its tail lanes filled from pool row 0; when that row is unwritten (NaN) the NaN passes the max",
			hooks: &impl.Hooks{Row: coldTail},
		},
		{
			name: "fused-exp-bf16-chain", class: "§3.20", base: "tiled/bc64/bf16",
			doc:   "the fused exp→BF16→P·V chain computes p = exp2(bf16(bf16(s−m)·bf16(log2 e))) in BF16: errors of several percent",
			hooks: &impl.Hooks{P: bf16ExpChain},
		},

		// --- The math.
		{
			name: "scale-log2e", class: classMath, base: "tiled/bc128/bf16",
			doc:  "the exp2 trick half applied: scores are scaled by softmax_scale·log2(e) and then exponentiated with e^x",
			prep: scaleBy(math.Log2E),
		},
		{
			name: "scale-bf16", class: classMath, base: "tiled/bc64/fp16",
			doc:  "softmax_scale passed as a BF16 scalar: D^-0.5 off by up to 2^-9 relative (exact when D is a power of 4)",
			prep: scaleRounded(num.BF16),
		},
		{
			name: "sink-ignored", class: classMath, base: "tiled/bc128/bf16",
			doc:  "the attention sink never enters the denominator",
			prep: dropSink,
		},
		{
			name: "sink-sign-flipped", class: classMath, base: "stream/bf16p32",
			doc:  "the denominator adds e^(−σ−m) instead of e^(σ−m)",
			prep: negateSink,
		},
		{
			name: "sink-in-numerator", class: classMath, base: "splitkv/p2/bc32/bf16",
			doc:   "the sink term e^(σ−m) is added to the numerator too (as if the sink had a value row of ones)",
			hooks: &impl.Hooks{State: sinkInNumerator},
		},
		{
			name: "no-alpha-l", class: classMath, base: "tiled/bc16/bf16",
			doc:   "the tile merge forgets to rescale l by α = e^(m−m'): l = l + β·l_t",
			hooks: &impl.Hooks{Merge: mergeNoAlphaL},
		},
		{
			name: "no-alpha-o", class: classMath, base: "splitkv/p2/bc32/bf16",
			doc:   "the merge (of tiles and of partitions) forgets to rescale o by α: o = o + β·o_t",
			hooks: &impl.Hooks{Merge: mergeNoAlphaO},
		},
		{
			name: "beta-tile-max", class: classMath, base: "tiled/bc32/bf16p32",
			doc:   "β is computed against the tile max instead of the running max (β = 1): a tile below the running max is over-weighted",
			hooks: &impl.Hooks{Merge: mergeBetaTileMax},
		},
		{
			name: "window-start-off-by-one", class: classMath, family: problem.Window, base: "tiled/bc32/bf16",
			doc:   "the sliding window starts at t−W instead of t−W+1: one key too old is attended",
			hooks: &impl.Hooks{Keys: windowStartEarly},
		},
		{
			name: "mask-bias-small-fp16", class: classMath, base: "tiled/bc32/fp16",
			doc:   "a finite mask bias too small for FP16-range scores (−8 instead of −1e20): masked lanes of a partial tile keep weight e^(−8−m_t) in l",
			hooks: &impl.Hooks{MaskBias: -8},
		},
		{
			name: "p-fp16-before-max", class: classPrecision, base: "tiled/bc64/fp16",
			doc:    "scores cast to FP16 before the max subtraction in a kernel that declares FP32 scores (large scores overflow to Inf)",
			actual: func(p *profile.Profile) { p.Score = num.FP16 },
		},
		{
			name: "last-partial-tile-dropped", class: classMath, base: "tiled/bc16/bf16",
			doc:   "the tile loop runs max(1, ⌊n/Bc⌋) times: the keys of a last partial tile are dropped when n > Bc",
			hooks: &impl.Hooks{Keys: dropPartialTile(16)},
		},
		{
			name: "gqa-wrong-kv-head", class: classMath, family: problem.Window, base: "tiled/bc32/bf16",
			doc:   "grouped-query heads mapped with h mod Hkv (tiling) instead of h / (H/Hkv) (repeat_interleave)",
			hooks: &impl.Hooks{Head: gqaModulo},
		},
		{
			name: "stream-loop-from-zero", class: classMath, base: "stream/bf16p32",
			doc:   "the stream loop starts at j = 0 after the init from key 0: key 0 is counted twice (a 1/n weight error)",
			hooks: &impl.Hooks{Keys: duplicateFirstKey},
		},
		{
			name: "lone-key-tile-skipped", class: classMath, base: "tiled/bc32/bf16",
			doc:   "a guard skips a last tile holding a single key (n mod Bc = 1, n > Bc): one key in n is dropped",
			hooks: &impl.Hooks{Keys: dropLoneTile(32)},
		},
		{
			name: "sink-bf16", class: classPrecision, base: "splitkv/p2/bc32/bf16p32",
			doc:  "the FP32 attn_sink loaded as BF16: σ off by up to 2^-9·|σ|",
			prep: sinkRounded(num.BF16),
		},
		{
			name: "denom-bf16", class: classPrecision, base: "tiled/bc64/bf16p32",
			doc:   "l is stored to a BF16 buffer before the division: up to a BF16 half-ulp of extra error, in a kernel that declares FP32 P",
			hooks: &impl.Hooks{State: roundL(num.BF16)},
		},
		{
			name: "splitkv-empty-part-not-neutral", class: classMath, base: "splitkv/p4/bc16/bf16",
			doc:   "empty partitions carry (m, l, o) = (0, 1, 0) instead of (−huge, 0, 0): a phantom key of score 0 and value 0 per empty partition",
			hooks: &impl.Hooks{State: phantomPartitions(4)},
		},
	}, append(append(append(append(denseSpecs(), densexSpecs()...), pyptoSpecs()...), append(append(append(quantSpecs(), fa3Specs()...), int8Specs()...), append(nvfp4Specs(), int4Specs()...)...)...), outputsSpecs()...)...)
}

// --- helpers

var nan32 = float32(math.NaN())

// exp32 is exp in float32 as the FP32-accumulator emulations compute it.
func exp32(x float32) float32 { return num.Exp32(x) }

// nanKey is a key whose rows are NaN (uninitialised memory).
func nanKey(in *problem.Inputs) problem.Key {
	p := in.Poison()
	return problem.Key{K: p[:in.D], V: p[:in.Dv]}
}

// sparseK is sparse_k for a token of length u.
func sparseK(in *problem.Inputs, u int) int {
	u = max(u, 0)
	wv := min(in.Win, u)
	cv := max(u-wv, 0)
	return wv + min(in.TopK-in.Win, cv)
}

// --- seed

// rowState is one row's final (m, l, o) before the sink step.
type rowState struct {
	n    int
	m, l float32
	o    []float32
}

// runStaleState runs the kernel twice: once to record each row's final
// state, then with rows of one key taking the state their lane of the head
// tile last held. Processing order: token, then head tile (16 heads), all
// lanes of a tile together; a row with n ≥ 2 writes its lane's state, a
// row with n = 1 writes nothing and reads what the lane last held.
func runStaleState(k *kernel, in *problem.Inputs) (*impl.Output, error) {
	rows := make([]rowState, in.T*in.H)
	rec := k.with(&impl.Hooks{State: func(in *problem.Inputs, t, h int, keys []problem.Key, m, l *float32, o []float32) {
		rows[t*in.H+h] = rowState{n: len(keys), m: *m, l: *l, o: append([]float32(nil), o...)}
	}})
	if _, err := rec.Run(in); err != nil {
		return nil, err
	}
	stale := make([]*rowState, len(rows))
	var lane [headTile]*rowState
	for t := 0; t < in.T; t++ {
		for h := 0; h < in.H; h++ {
			r := &rows[t*in.H+h]
			switch {
			case r.n >= 2:
				lane[h%headTile] = r
			case r.n == 1:
				stale[t*in.H+h] = lane[h%headTile]
			}
		}
	}
	return k.with(&impl.Hooks{State: func(in *problem.Inputs, t, h int, keys []problem.Key, m, l *float32, o []float32) {
		if len(keys) != 1 {
			return
		}
		s := stale[t*in.H+h]
		if s == nil {
			*m, *l = nan32, nan32
			for j := range o {
				o[j] = nan32
			}
			return
		}
		*m, *l = s.m, s.l
		copy(o, s.o)
	}}).Run(in)
}

func poisonOneKey(in *problem.Inputs, t, h int, keys []problem.Key, m, l *float32, o []float32) {
	if len(keys) != 1 {
		return
	}
	*m, *l = nan32, nan32
	for j := range o {
		o[j] = nan32
	}
}

// staleScratchRow: a token with no keys reads scratch row 0 as its key 0:
// the first key the most recent earlier token gathered, NaN if none did.
func staleScratchRow(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
	if len(keys) > 0 || in.Family != problem.Sparse {
		return keys
	}
	for p := t - 1; p >= 0; p-- {
		if prev := in.KernelKeys(p, g, nil); len(prev) > 0 {
			return prev[:1]
		}
	}
	return []problem.Key{nanKey(in)}
}

// --- §3

// lastOfEntry is the last token of token t's batch entry.
func lastOfEntry(in *problem.Inputs, t int) int { return (t/in.S)*in.S + in.S - 1 }

func sharedLength(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
	if in.Family != problem.Sparse || in.S < 2 || t == lastOfEntry(in, t) {
		return keys
	}
	return in.KernelKeys(lastOfEntry(in, t), g, nil)
}

func stageRevert(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
	if in.Family != problem.Sparse || in.S < 2 || t == lastOfEntry(in, t) {
		return keys
	}
	want := in.TokenLens(lastOfEntry(in, t)).SparseK
	if want <= len(keys) {
		return keys
	}
	var prev []problem.Key
	if t > 0 {
		prev = in.KernelKeys(t-1, g, nil)
	}
	out := append([]problem.Key(nil), keys...)
	for i := len(keys); i < want; i++ {
		if i < len(prev) {
			out = append(out, prev[i])
		} else {
			out = append(out, nanKey(in))
		}
	}
	return out
}

func lengthOffByS(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
	if in.Family != problem.Sparse || in.S < 2 {
		return keys
	}
	l := in.TokenLens(t)
	n := sparseK(in, l.U-(in.S-1-l.S))
	return keys[:min(n, len(keys))]
}

func mergedTwice(bc int) func(*problem.Inputs, int, int, []problem.Key, *float32, *float32, []float32) {
	return func(in *problem.Inputs, t, h int, keys []problem.Key, m, l *float32, o []float32) {
		if len(keys) > bc {
			return
		}
		// merge(m, l, o, m, l, o): α = β = e^0 = 1.
		*l = *l + *l
		for j := range o {
			o[j] = o[j] + o[j]
		}
	}
}

// maxKeys is the longest key list of any row: the tile loop's trip count.
func maxKeys(in *problem.Inputs) int {
	switch in.Family {
	case problem.Sparse:
		return in.TopK
	case problem.Dense:
		n := 0
		for b := 0; b+1 < len(in.CuK); b++ {
			n = max(n, int(in.CuK[b+1]-in.CuK[b]))
		}
		return n
	}
	return in.T
}

func guardedTiles(bc int) func(*problem.Inputs, int, int, []problem.Key, *float32, *float32, []float32) {
	return func(in *problem.Inputs, t, h int, keys []problem.Key, m, l *float32, o []float32) {
		tiles := (len(keys) + bc - 1) / bc
		all := (maxKeys(in) + bc - 1) / bc
		for range all - tiles {
			*l = *l + float32(bc) // a fully masked tile: bc uniform weights, merged unscaled
		}
	}
}

func ringOverwrite(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
	if in.Family != problem.Window || in.W == 0 || t < in.W-1 || t+1 >= in.T || len(keys) == 0 {
		return keys
	}
	out := append([]problem.Key(nil), keys...)
	r := (t+1)*in.Hkv + g
	out[0] = problem.Key{K: in.K[r*in.D : (r+1)*in.D], V: in.V[r*in.Dv : (r+1)*in.Dv]}
	return out
}

// dropCurrentKey drops the current token's key: in the window and dense
// families the last of the list; in the sparse family the window slot of position
// u−1, ring slot (u−1) mod WIN.
func dropCurrentKey(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
	if len(keys) == 0 {
		return keys
	}
	if in.Family != problem.Sparse { // keys in position order: the newest is last
		return keys[:len(keys)-1]
	}
	l := in.TokenLens(t)
	if in.Win == 0 || l.U == 0 {
		return keys
	}
	slot := int32((l.U - 1) % in.Win)
	row := in.Idx[t*in.TopK : (t+1)*in.TopK]
	for i := 0; i < l.WindowValid && i < len(keys); i++ {
		if row[i] == slot {
			out := append([]problem.Key(nil), keys[:i]...)
			return append(out, keys[i+1:]...)
		}
	}
	return keys
}

func firstRowLastTile(bc int) func(*problem.Inputs, int, int, []problem.Key) []problem.Key {
	return func(in *problem.Inputs, t, h int, keys []problem.Key) []problem.Key {
		if h%headTile != 0 || len(keys) <= bc {
			return keys
		}
		return keys[(len(keys)-1)/bc*bc:]
	}
}

func emptyRowNaN(in *problem.Inputs, t, h int, keys []problem.Key, pre []float32) {
	if len(keys) == 0 {
		for j := range pre {
			pre[j] = nan32
		}
	}
}

func coldTail(in *problem.Inputs, t, h int, keys []problem.Key, pre []float32) {
	if in.Family != problem.Sparse || in.TokenLens(t).WindowValid >= in.Win || len(in.OriKV) < in.D {
		return
	}
	for _, x := range in.OriKV[:in.D] {
		if math.IsNaN(float64(x)) {
			for j := range pre {
				pre[j] = nan32
			}
			return
		}
	}
}

var bf16Log2E = num.Round32(num.BF16, float32(math.Log2E), num.RNE)

func bf16(x float32) float32 { return num.Round32(num.BF16, x, num.RNE) }

func bf16ExpChain(s, mt float32) float32 {
	y := bf16(float32(bf16(s-mt) * bf16Log2E))
	return bf16(float32(num.Exp(float64(float64(y) * math.Ln2))))
}

// --- math

// withScale returns a copy of in with softmax scale sc.
func withScale(in *problem.Inputs, sc float64) *problem.Inputs {
	c := *in
	c.Scale = sc
	return &c
}

func scaleBy(f float64) func(*problem.Inputs) *problem.Inputs {
	return func(in *problem.Inputs) *problem.Inputs { return withScale(in, float64(in.Scale*f)) }
}

func scaleRounded(f num.Format) func(*problem.Inputs) *problem.Inputs {
	return func(in *problem.Inputs) *problem.Inputs { return withScale(in, num.Round64(f, in.Scale, num.RNE)) }
}

func dropSink(in *problem.Inputs) *problem.Inputs {
	c := *in
	c.Sink, c.HasSinkTensor = nil, false
	return &c
}

func negateSink(in *problem.Inputs) *problem.Inputs {
	if in.Sink == nil {
		return in
	}
	c := *in
	c.Sink = make([]float32, len(in.Sink))
	for h, s := range in.Sink {
		c.Sink[h] = -s
	}
	return &c
}

func sinkInNumerator(in *problem.Inputs, t, h int, keys []problem.Key, m, l *float32, o []float32) {
	e := exp32(in.SinkOf(h) - *m)
	for j := range o {
		o[j] = o[j] + e
	}
}

// The merges below are impl's merge for an FP32 accumulator (every base
// profile using them has one), each with one defect.

func mergeNoAlphaL(m, l float32, o []float32, mt, lt float32, ot []float32) (float32, float32) {
	mn := max(m, mt)
	alpha, beta := exp32(m-mn), exp32(mt-mn)
	l = l + float32(beta*lt)
	for j := range o {
		o[j] = float32(alpha*o[j]) + float32(beta*ot[j])
	}
	return mn, l
}

func mergeNoAlphaO(m, l float32, o []float32, mt, lt float32, ot []float32) (float32, float32) {
	mn := max(m, mt)
	alpha, beta := exp32(m-mn), exp32(mt-mn)
	l = float32(alpha*l) + float32(beta*lt)
	for j := range o {
		o[j] = o[j] + float32(beta*ot[j])
	}
	return mn, l
}

func mergeBetaTileMax(m, l float32, o []float32, mt, lt float32, ot []float32) (float32, float32) {
	mn := max(m, mt)
	alpha, beta := exp32(m-mn), exp32(mt-mt)
	l = float32(alpha*l) + float32(beta*lt)
	for j := range o {
		o[j] = float32(alpha*o[j]) + float32(beta*ot[j])
	}
	return mn, l
}

func windowStartEarly(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
	if in.Family != problem.Window || in.W == 0 || t-in.W < 0 {
		return keys
	}
	r := (t-in.W)*in.Hkv + g
	out := []problem.Key{{K: in.K[r*in.D : (r+1)*in.D], V: in.V[r*in.Dv : (r+1)*in.Dv]}}
	return append(out, keys...)
}

func dropPartialTile(bc int) func(*problem.Inputs, int, int, []problem.Key) []problem.Key {
	return func(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
		if len(keys) <= bc {
			return keys
		}
		return keys[:len(keys)/bc*bc]
	}
}

func dropLoneTile(bc int) func(*problem.Inputs, int, int, []problem.Key) []problem.Key {
	return func(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
		if len(keys) <= bc || len(keys)%bc != 1 {
			return keys
		}
		return keys[:len(keys)-1]
	}
}

func sinkRounded(f num.Format) func(*problem.Inputs) *problem.Inputs {
	return func(in *problem.Inputs) *problem.Inputs {
		if in.Sink == nil {
			return in
		}
		c := *in
		c.Sink = make([]float32, len(in.Sink))
		for h, s := range in.Sink {
			c.Sink[h] = num.Round32(f, s, num.RNE)
		}
		return &c
	}
}

func gqaModulo(in *problem.Inputs, t, h int, keys []problem.Key) []problem.Key {
	if in.Family == problem.Sparse {
		return keys
	}
	g := h % in.Hkv
	if g == in.Group(h) {
		return keys
	}
	return in.KernelKeys(t, g, nil)
}

func duplicateFirstKey(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key {
	if len(keys) == 0 {
		return keys
	}
	return append([]problem.Key{keys[0]}, keys...)
}

func roundL(f num.Format) func(*problem.Inputs, int, int, []problem.Key, *float32, *float32, []float32) {
	return func(in *problem.Inputs, t, h int, keys []problem.Key, m, l *float32, o []float32) {
		*l = num.Round32(f, *l, num.RNE)
	}
}

// phantomPartitions merges, after the kernel's own partitions, one
// (0, 1, 0) state per empty partition (empty partitions are the trailing
// ones: partition p covers keys [p·⌈n/P⌉, (p+1)·⌈n/P⌉)).
func phantomPartitions(parts int) func(*problem.Inputs, int, int, []problem.Key, *float32, *float32, []float32) {
	return func(in *problem.Inputs, t, h int, keys []problem.Key, m, l *float32, o []float32) {
		n := len(keys)
		per := (n + parts - 1) / parts
		for p := 0; p < parts; p++ {
			if p*per < n {
				continue
			}
			mn := max(*m, 0)
			alpha, beta := exp32(*m-mn), exp32(0-mn)
			lv := *l
			*l = float32(alpha*lv) + beta
			for j := range o {
				o[j] = float32(alpha * o[j])
			}
			*m = mn
		}
	}
}
