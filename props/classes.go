package props

import (
	"math"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

// The edge classes (DESIGN.md, "Edge cases are the product"). A case hits a
// class when its generated inputs show the edge, not merely when the case
// asks for it: a planted duplicate that found no token, or a special value
// aimed past a token's keys, does not count.
const (
	ClassN0          = "n0"             // a query row attends no key (sparse: u_s = 0)
	ClassN1          = "n1"             // a row attends exactly one key (PR #301's zero-trip loop)
	ClassN2          = "n2"             // a row attends two keys
	ClassTileMinus1  = "n_tile_minus1"  // a row attends Bc−1 keys, Bc ∈ {16, 32, 64, 128}
	ClassTile        = "n_tile"         // a row attends exactly Bc keys
	ClassTilePlus1   = "n_tile_plus1"   // a row attends Bc+1 keys (a one-key last tile)
	ClassTopK        = "n_topk"         // sparse: a full index row, n = WIN + IDX_TOPK (IDX_TOPK > 0)
	ClassLarge       = "n_large"        // a row attends ≥ 1024 keys
	ClassWinMinus1   = "len_win_minus1" // sparse: a token of length u_s = WIN−1
	ClassWin         = "len_win"        // sparse: u_s = WIN
	ClassWinPlus1    = "len_win_plus1"  // sparse: u_s = WIN+1 (the first compressed key)
	ClassS2          = "s2"             // sparse: two tokens per batch entry
	ClassHeads       = "heads_not_mult16"
	ClassD1          = "d1"
	ClassPadIn       = "pad_in_prefix"    // violation: −1 inside the first sparse_k entries
	ClassPadAfter    = "pad_after_prefix" // −1 pads after the prefix (a short row)
	ClassDuplicate   = "duplicate_index"  // one slot twice in a token's prefix
	ClassPermuted    = "permuted_block_table"
	ClassInvalidBT   = "invalid_block_table"     // violation: a block-table entry outside the pool
	ClassValidAfter  = "valid_slot_after_prefix" // violation: the device skips a slot the reference attends
	ClassWindowSlot  = "window_slot_invalid"     // violation: a window-prefix entry past window_valid
	ClassNegSeqused  = "negative_seqused"        // violation: seqused_kv < S−1
	ClassShuffled    = "shuffled_indices"
	ClassSignedZero  = "signed_zero"         // a planted −0
	ClassSubnormal   = "subnormal"           // a planted subnormal of the input format
	ClassMaxFinite   = "max_finite"          // a planted ±largest finite value
	ClassNonfinite   = "nonfinite_input"     // violation: NaN or ±Inf in q or an attended key/value
	ClassExpOverflow = "exp_overflow_scores" // a score above ln(FLT_MAX): exp overflows without the max subtraction
	ClassEqual       = "equal_scores"        // q = 0: every score equal (n ≥ 2)
	ClassDominant    = "dominant_key"        // one key's score 20 above the rest (n ≥ 2)
	ClassSinkPosInf  = "sink_pos_inf"
	ClassSinkNegInf  = "sink_neg_inf"
	ClassSinkHuge    = "sink_huge" // finite σ ≥ 100: e^σ overflows FP32, the sink outweighs the keys
	ClassSinkTiny    = "sink_tiny" // finite σ ≤ −100: the sink's weight underflows but is not −Inf
	ClassPoison      = "poison_nan"
	ClassGQA         = "gqa"             // window: Hkv < H
	ClassWinBoundary = "window_boundary" // window: T > W > 0, early keys leave the window
	ClassFP16        = "dtype_fp16"
	// The dense family.
	ClassCausalEmpty  = "causal_rows_without_keys" // causal with sq > sk: the first rows see no key
	ClassWinLeftEdge  = "window_left_edge"         // window_left cuts keys off the left of some row
	ClassWinRightEdge = "window_right_edge"        // window_right (not causal) cuts keys off the right
	ClassSoftcapSat   = "softcap_saturation"       // softcap small against the scores: tanh saturates
	ClassAlibiLarge   = "alibi_large"              // |slope·distance| ≥ 16 for some key
	ClassZeroLenSeq   = "zero_length_sequence"     // a sequence with no queries or no keys
	ClassLSE          = "lse_output"               // the kernel returns lse
	ClassLSESink      = "lse_sink_included"        // the lse holds the sink
	ClassEmptyStates  = "empty_states"             // combine: partial states equal to lse_empty
	ClassExtraScope   = "extra_scope"              // mla: an extra index scope
	ClassTopkLength   = "topk_length"              // mla: topk_length cuts the read entries
	ClassAllInvalid   = "all_indices_invalid"      // mla: a token's read entries are all −1
)

// ClassNames lists every edge class, in the order Classes reports them.
func ClassNames() []string {
	return append([]string{
		ClassN0, ClassN1, ClassN2, ClassTileMinus1, ClassTile, ClassTilePlus1, ClassTopK, ClassLarge,
		ClassWinMinus1, ClassWin, ClassWinPlus1, ClassS2, ClassHeads, ClassD1,
		ClassPadIn, ClassPadAfter, ClassDuplicate, ClassPermuted, ClassInvalidBT, ClassValidAfter,
		ClassWindowSlot, ClassNegSeqused, ClassShuffled,
		ClassSignedZero, ClassSubnormal, ClassMaxFinite, ClassNonfinite, ClassExpOverflow, ClassEqual, ClassDominant,
		ClassSinkPosInf, ClassSinkNegInf, ClassSinkHuge, ClassSinkTiny, ClassPoison, ClassGQA, ClassWinBoundary, ClassFP16,
		ClassCausalEmpty, ClassWinLeftEdge, ClassWinRightEdge, ClassSoftcapSat, ClassAlibiLarge, ClassZeroLenSeq, ClassLSE, ClassLSESink,
		ClassEmptyStates, ClassExtraScope, ClassTopkLength, ClassAllInvalid,
	}, pyptoClassNames()...)
}

// TileSizes are the key-tile widths Bc the tile classes refer to.
var TileSizes = []int{16, 32, 64, 128}

// maxClassWork bounds the score scan of exp_overflow_scores.
const maxClassWork = 1 << 26

// Classes names the edge classes case c hits (see ClassNames), so
// campaigns can count coverage. It generates c's inputs (in c's dtype, or
// BF16, the production input format) to see what was actually planted.
// An invalid case hits nothing.
func Classes(c cases.Case) []string {
	in, err := cases.Generate(c, c.Format(num.BF16))
	if err != nil {
		return nil
	}
	return ClassesOf(c, in, in.Violations())
}

// ClassesOf is Classes for inputs already generated from c (in any input
// format) with their contract violations vs: a campaign that has built
// them saves generating them again.
func ClassesOf(c cases.Case, in *problem.Inputs, vs []problem.Violation) []string {
	hit := map[string]bool{}
	g := genOf(c.Family)
	var ns []int
	if g.inputKeys != nil {
		ns = g.inputKeys(in)
	} else {
		ns = g.rowKeys(c)
	}
	// Per-row facts folded in locals, then into hit once: a window case
	// has thousands of rows, and map writes per row were most of the cost.
	var n0, n1, n2, tileM1, tile, tileP1, large, two bool
	for _, n := range ns {
		n0, n1, n2 = n0 || n == 0, n1 || n == 1, n2 || n == 2
		for _, bc := range TileSizes {
			tileM1, tile, tileP1 = tileM1 || n == bc-1, tile || n == bc, tileP1 || n == bc+1
		}
		large, two = large || n >= 1024, two || n >= 2
	}
	for name, on := range map[string]bool{ClassN0: n0, ClassN1: n1, ClassN2: n2, ClassTileMinus1: tileM1,
		ClassTile: tile, ClassTilePlus1: tileP1, ClassLarge: large,
		ClassEqual: two && c.Values.Dist == "zeroq", ClassDominant: two && c.Values.Dist == "dominant"} {
		if on {
			hit[name] = true
		}
	}
	hit[ClassHeads] = c.H%16 != 0
	hit[ClassD1] = c.D == 1
	hit[ClassFP16] = c.DType == "fp16"
	g.classes(c, in, hit)
	for _, v := range vs {
		switch v.Name {
		case problem.VPadInPrefix:
			hit[ClassPadIn] = true
		case problem.VBlockTable:
			hit[ClassInvalidBT] = true
		case problem.VValidAfter:
			hit[ClassValidAfter] = true
		case problem.VWindowSlot:
			hit[ClassWindowSlot] = true
		case problem.VNegativeSeqused:
			hit[ClassNegSeqused] = true
		case problem.VNonFinite:
			hit[ClassNonfinite] = true
		}
	}
	specialClasses(c, in, ns, hit)
	for _, s := range in.Sink {
		x := float64(s)
		switch {
		case math.IsInf(x, 1):
			hit[ClassSinkPosInf] = true
		case math.IsInf(x, -1):
			hit[ClassSinkNegInf] = true
		case x >= 100:
			hit[ClassSinkHuge] = true
		case x <= -100:
			hit[ClassSinkTiny] = true
		}
	}
	hit[ClassExpOverflow] = expOverflows(in)
	var out []string
	for _, name := range ClassNames() {
		if hit[name] {
			out = append(out, name)
		}
	}
	return out
}

func specialClasses(c cases.Case, in *problem.Inputs, ns []int, hit map[string]bool) {
	f := in.Format
	minNormal := num.MinSubnormal(f) / num.UnitRoundoff(f) / 2
	for _, s := range c.Specials {
		if s.Tensor == "kv" && s.Key >= ns[s.Token] {
			continue // past the token's keys: not planted
		}
		v := num.Round64(f, s.Value.Resolve(f), num.RNE)
		switch {
		case v == 0 && math.Signbit(v):
			hit[ClassSignedZero] = true
		case v != 0 && math.Abs(v) < minNormal:
			hit[ClassSubnormal] = true
		case math.Abs(v) == num.MaxFinite(f):
			hit[ClassMaxFinite] = true
		}
	}
}

// expOverflows reports whether some attended score exceeds ln(FLT_MAX), so
// that exp would overflow FP32 without the max subtraction.
func expOverflows(in *problem.Inputs) bool {
	return expOverflowsScan(in, true)
}

// expOverflowsScan is expOverflows; with shortcut it skips the scan
// where scoreBelow shows that no score can exceed the limit (for the
// whole problem, or one query row), counting the skipped work against
// the budget as the scan would (classes_speed.go).
func expOverflowsScan(in *problem.Inputs, shortcut bool) bool {
	limit := math.Log(math.MaxFloat32)
	kmax, known := keyMaxAbs(in)
	known = known && shortcut
	if known && scoreBelow(in.Scale, maxRowAbs(in), kmax, limit) {
		return false
	}
	var keys []problem.Key
	budget := maxClassWork
	for t := 0; t < in.T; t++ {
		for g := 0; g < in.Hkv; g++ {
			keys = in.RefKeys(t, g, keys)
			per := in.H / in.Hkv
			for h := g * per; h < (g+1)*per; h++ {
				q := in.QRow(t, h)
				if known && scoreBelow(in.Scale, sumAbs(q), kmax, limit) {
					if budget -= len(q) * len(keys); budget < 0 {
						return false
					}
					continue
				}
				i := 0
				// Four keys a pass while the budget covers them (four
				// independent sums, each in d order: the same scores).
				for ; i+4 <= len(keys) && budget >= 4*len(q); i += 4 {
					budget -= 4 * len(q)
					s0, s1, s2, s3 := dot64x4(q, keys[i].K, keys[i+1].K, keys[i+2].K, keys[i+3].K)
					if in.Scale*s0 > limit || in.Scale*s1 > limit || in.Scale*s2 > limit || in.Scale*s3 > limit {
						return true
					}
				}
				for _, k := range keys[i:] {
					if budget -= len(q); budget < 0 {
						return false
					}
					if in.Scale*dot64(q, k.K) > limit {
						return true
					}
				}
			}
		}
	}
	return false
}

// dot64 is Σ q_d k_d in float64 (each product exact).
func dot64(q, k []float32) float64 {
	s := 0.0
	for d, x := range q {
		s += float64(float64(x) * float64(k[d]))
	}
	return s
}

// dot64x4 is dot64 of q with four keys at once.
func dot64x4(q, k0, k1, k2, k3 []float32) (s0, s1, s2, s3 float64) {
	k0, k1, k2, k3 = k0[:len(q)], k1[:len(q)], k2[:len(q)], k3[:len(q)]
	for d, x := range q {
		xf := float64(x)
		s0 += float64(xf * float64(k0[d]))
		s1 += float64(xf * float64(k1[d]))
		s2 += float64(xf * float64(k2[d]))
		s3 += float64(xf * float64(k3[d]))
	}
	return
}

func denseClasses(c cases.Case, in *problem.Inputs, hit map[string]bool) {
	for b := range c.Sq {
		hit[ClassZeroLenSeq] = hit[ClassZeroLenSeq] || c.Sq[b] == 0 || c.Sk[b] == 0
	}
	maxDist := 0
	for t := 0; t < in.T; t++ {
		s := in.DenseSeq(t)
		lo, hi := in.DenseRange(s)
		delta := s.Sk - s.Sq
		hit[ClassCausalEmpty] = hit[ClassCausalEmpty] || (c.Causal && s.I+delta < 0)
		hit[ClassWinLeftEdge] = hit[ClassWinLeftEdge] || (in.WinLeft >= 0 && lo > 0 && lo <= hi)
		hit[ClassWinRightEdge] = hit[ClassWinRightEdge] || (!c.Causal && in.WinRight >= 0 && hi < s.Sk-1 && lo <= hi)
		if lo <= hi {
			maxDist = max(maxDist, s.I+delta-lo, hi-(s.I+delta), hi)
		}
	}
	hit[ClassSoftcapSat] = c.Softcap > 0 && (c.Softcap <= 1 || c.Values.Scale >= 3)
	for _, sl := range in.Alibi {
		hit[ClassAlibiLarge] = hit[ClassAlibiLarge] || math.Abs(float64(sl))*float64(maxDist) >= 16
	}
	hit[ClassLSE] = in.LSE != nil
	hit[ClassLSESink] = in.LSE != nil && in.LSE.SinkIncluded && in.Sink != nil
}
