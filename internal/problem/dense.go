package problem

import (
	"fmt"
	"math"
)

// Dense is FlashAttention's conventions: batch or varlen, causal,
// windows, softcap, ALiBi (docs/kernels.md §5), paged and quantized K/V.
const Dense Family = "dense"

var _ = register(Dense, &spec{
	rank: 2,
	refKeys: func(in *Inputs, t, g int, dst []Key) []Key {
		return in.denseKeys(t, g, dst, false)
	},
	kernelKeys: func(in *Inputs, t, g int, dst []Key) []Key {
		return in.denseKeys(t, g, dst, true)
	},
	check: func(in *Inputs) error {
		if err := in.checkDense(); err != nil {
			return err
		}
		if err := in.checkInt4(); err != nil {
			return err
		}
		return in.checkNVFP4()
	},
	violations: func(in *Inputs, add func(string, int, string, ...any)) {
		in.pagedViolations(add)
		in.fp8Violations(add)
		in.nvfp4Violations(add)
	},
	keySources:   kvSources,
	keysPerToken: positionalKeys,
	distinctKeys: true,
})

// AlibiForm is which ALiBi bias a kernel adds (CONTRACTS.md, `alibi_form`).
// Query i of a sequence with sq queries and sk keys, key j, δ = sk − sq.
type AlibiForm string

const (
	AlibiAbs        AlibiForm = "abs"        // −slope·|i + δ − j| (FlashAttention's documented bias; the default)
	AlibiFA2Causal  AlibiForm = "fa2_causal" // +slope·j (FA2's causal kernel: same o, lse shifted by a row constant)
	AlibiFlashinfer AlibiForm = "flashinfer" // slope·(j − i) (flashinfer, i the query's index in its chunk)
)

// ParseAlibiForm checks an alibi_form value ("" is abs).
func ParseAlibiForm(s string) (AlibiForm, error) {
	switch AlibiForm(s) {
	case "", AlibiAbs:
		return AlibiAbs, nil
	case AlibiFA2Causal, AlibiFlashinfer:
		return AlibiForm(s), nil
	}
	return "", fmt.Errorf("alibi_form %q: want abs, fa2_causal or flashinfer", s)
}

// Dist is the ALiBi distance term of key j for query i, δ the alignment.
func (f AlibiForm) Dist(i, j, delta int) float32 {
	switch f {
	case AlibiFA2Causal:
		return float32(j)
	case AlibiFlashinfer:
		return float32(j - i)
	}
	d := i + delta - j
	if d < 0 {
		d = -d
	}
	return float32(-d)
}

// LSEConv is the declared convention of a kernel's log-sum-exp output
// (metadata `lse_base`, `lse_empty`, `lse_sink`): never guessed.
type LSEConv struct {
	Base2        bool // lse_base=2: log2 Σ e^x; else natural
	EmptyPosInf  bool // lse_empty=+inf: the value of a row with no key; else −inf
	SinkIncluded bool // lse_sink=included: ln(Σ e^x + e^σ); else the keys alone
}

// Empty is the lse of a row with no key (and no sink inside the lse).
func (c LSEConv) Empty() float64 {
	if c.EmptyPosInf {
		return math.Inf(1)
	}
	return math.Inf(-1)
}

// String spells the convention as its metadata values.
func (c LSEConv) String() string {
	base, empty, sink := "e", "-inf", "excluded"
	if c.Base2 {
		base = "2"
	}
	if c.EmptyPosInf {
		empty = "+inf"
	}
	if c.SinkIncluded {
		sink = "included"
	}
	return fmt.Sprintf("lse_base=%s lse_empty=%s lse_sink=%s", base, empty, sink)
}

// ParseLSEConv reads the three metadata values; each must be given (a
// missing one is an error naming it and its choices). sink may be "" when
// the problem has no sink.
func ParseLSEConv(base, empty, sink string, hasSink bool) (LSEConv, error) {
	var c LSEConv
	switch base {
	case "e":
	case "2":
		c.Base2 = true
	case "":
		return c, fmt.Errorf("lse_base is required with an lse output: e (natural) or 2")
	default:
		return c, fmt.Errorf("lse_base %q: want e or 2", base)
	}
	switch empty {
	case "+inf", "inf":
		c.EmptyPosInf = true
	case "-inf":
	case "":
		return c, fmt.Errorf("lse_empty is required with an lse output: the lse of a row with no key, +inf or -inf")
	default:
		return c, fmt.Errorf("lse_empty %q: want +inf or -inf", empty)
	}
	switch sink {
	case "included":
		c.SinkIncluded = true
	case "excluded":
	case "":
		if hasSink {
			return c, fmt.Errorf("lse_sink is required with an lse output and a sink: included or excluded")
		}
	default:
		return c, fmt.Errorf("lse_sink %q: want included or excluded", sink)
	}
	return c, nil
}

// Seq locates dense token t: its sequence b, its index i among the
// sequence's sq queries, and the sequence's sk keys from key row k0.
type Seq struct{ B, I, Sq, Sk, K0 int }

// DenseSeq returns token t's sequence (CuQ is nondecreasing: Check).
func (in *Inputs) DenseSeq(t int) Seq {
	lo, hi := 0, len(in.CuQ)-2 // the last b with CuQ[b] ≤ t
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if int(in.CuQ[mid]) <= t {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	b := lo
	q0, q1 := int(in.CuQ[b]), int(in.CuQ[b+1])
	k0, k1 := int(in.CuK[b]), int(in.CuK[b+1])
	sk := k1 - k0
	if in.SequsedK != nil && in.Page == 0 { // varlen: the first seqused_k keys (paged: CuK holds them)
		sk = min(sk, max(int(in.SequsedK[b]), 0))
	}
	return Seq{B: b, I: t - q0, Sq: q1 - q0, Sk: sk, K0: k0}
}

// DenseRange is the key interval [lo, hi] (in the sequence's key indices)
// query i attends; empty when lo > hi.
func (in *Inputs) DenseRange(s Seq) (lo, hi int) { return in.DenseRangeAt(s, s.Sk-s.Sq) }

// DenseRangeAt is DenseRange with the diagonal aligned by delta instead of
// bottom-right (a mutant's top-left alignment is delta 0).
func (in *Inputs) DenseRangeAt(s Seq, delta int) (lo, hi int) {
	lo, hi = 0, s.Sk-1
	if in.WinLeft >= 0 {
		lo = max(lo, s.I+delta-in.WinLeft)
	}
	if in.WinRight >= 0 {
		hi = min(hi, s.I+delta+in.WinRight)
	}
	return lo, hi
}

func (in *Inputs) denseKeys(t, g int, dst []Key, kernel bool) []Key {
	s := in.DenseSeq(t)
	lo, hi := in.DenseRange(s)
	for j := lo; j <= hi; j++ {
		if k, ok := in.DenseKey(s, j, g, kernel); ok {
			dst = append(dst, k)
		}
	}
	return dst
}

// DenseKey is key j of sequence s through KV head g, with its ALiBi
// distance. A key the paged table cannot reach (a contract violation) is
// skipped by the reference (ok false) and read as a NaN row by the kernel.
func (in *Inputs) DenseKey(s Seq, j, g int, kernel bool) (k Key, ok bool) {
	r := in.DenseRow(s, j)
	if r < 0 {
		if !kernel {
			return Key{}, false
		}
		p := in.Poison()
		k = Key{K: p[:in.D], V: p[:in.Dv]}
	} else {
		kr := r*in.Hkv + g
		k = Key{K: in.K[kr*in.D : (kr+1)*in.D], V: in.V[kr*in.Dv : (kr+1)*in.Dv]}
	}
	if in.Alibi != nil {
		k.Dist = in.AlibiForm.Dist(s.I, j, s.Sk-s.Sq)
	}
	return k, true
}

// AlibiSlope is head h's ALiBi slope, 0 without ALiBi.
func (in *Inputs) AlibiSlope(h int) float32 {
	if in.Alibi == nil {
		return 0
	}
	return in.Alibi[h]
}

// HasMods reports whether scores carry a modifier after the scale.
func (in *Inputs) HasMods() bool { return in.Softcap > 0 || in.Alibi != nil || in.Biased() }

func (in *Inputs) checkMods() error {
	if in.Softcap < 0 || math.IsNaN(in.Softcap) || math.IsInf(in.Softcap, 0) {
		return fmt.Errorf("softcap %v: want a finite number ≥ 0 (0 = off)", in.Softcap)
	}
	if in.Alibi != nil {
		if err := wantLen("alibi_slopes", len(in.Alibi), in.H); err != nil {
			return err
		}
		for h, s := range in.Alibi {
			if math.IsNaN(float64(s)) || math.IsInf(float64(s), 0) {
				return fmt.Errorf("alibi_slopes[%d] = %v: want a finite slope", h, s)
			}
		}
	}
	if in.Family != Dense && (in.Softcap > 0 || in.Alibi != nil) {
		return fmt.Errorf("softcap and alibi_slopes are dense-family modifiers (family %s)", in.Family)
	}
	return nil
}

// maxSeq bounds the dense sequence lengths the checks accept, so no sum of
// them can overflow.
const maxSeq = 1 << 30

func (in *Inputs) checkDense() error {
	if len(in.CuQ) < 2 || len(in.CuK) != len(in.CuQ) {
		return fmt.Errorf("cu_seqlens_q and cu_seqlens_k need B+1 ≥ 2 entries each (got %d and %d)", len(in.CuQ), len(in.CuK))
	}
	for name, cu := range map[string][]int32{"cu_seqlens_q": in.CuQ, "cu_seqlens_k": in.CuK} {
		if cu[0] != 0 {
			return fmt.Errorf("%s[0] = %d, want 0", name, cu[0])
		}
		for b := 1; b < len(cu); b++ {
			if cu[b] < cu[b-1] || cu[b] > maxSeq {
				return fmt.Errorf("%s is not a nondecreasing prefix sum at %d (%d after %d)", name, b, cu[b], cu[b-1])
			}
		}
	}
	if int(in.CuQ[len(in.CuQ)-1]) != in.T {
		return fmt.Errorf("cu_seqlens_q ends at %d, but q holds %d tokens", in.CuQ[len(in.CuQ)-1], in.T)
	}
	if in.WinLeft < -1 || in.WinRight < -1 {
		return fmt.Errorf("window_left %d / window_right %d: want ≥ 0, or −1 for unbounded", in.WinLeft, in.WinRight)
	}
	if in.Page > 0 || in.BlockTable != nil || in.SequsedK != nil {
		return in.checkPaged()
	}
	tk := int(in.CuK[len(in.CuK)-1])
	if err := wantLen("k", len(in.K), tk*in.Hkv*in.D); err != nil {
		return err
	}
	if err := wantLen("v", len(in.V), tk*in.Hkv*in.Dv); err != nil {
		return err
	}
	return nil
}
