// Package problem holds the inputs of one attention problem in their
// storage values (SPEC.md's tensors), and the two readings of which keys
// each query token sees: the reference semantics (what is correct) and the
// kernel semantics (what the device reads positionally, trusting the
// contract). Reference and emulations both start here.
package problem

import (
	"fmt"
	"math"
	"strings"

	"github.com/attnvet/attnvet/internal/num"
)

// Family is the attention variant.
type Family string

// ParseFamily checks a family name.
func ParseFamily(s string) (Family, error) {
	for _, f := range Families() {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown family %q (want %s)", s, FamilyNames())
}

// FamilyNames lists the families for messages: "a, b or c".
func FamilyNames() string {
	fs := Families()
	var b strings.Builder
	for i, f := range fs {
		switch {
		case i == len(fs)-1 && i > 0:
			b.WriteString(" or ")
		case i > 0:
			b.WriteString(", ")
		}
		b.WriteString(string(f))
	}
	return b.String()
}

// Inputs are the tensors of one problem. Float tensors hold values exactly
// representable in the storage format (bf16 or fp16 values widen to float32
// exactly). Layouts are row-major as in SPEC.md.
type Inputs struct {
	Family        Family
	Format        num.Format // what the float tensors are stored in (bf16, fp16, fp32)
	T, H, Hkv     int        // tokens, query heads, KV heads (sparse: Hkv = 1)
	D, Dv         int        // key and value widths (sparse: Dv = D, one row is key and value)
	Scale         float64    // softmax scale, exact; kernels use float32(Scale)
	Q             []float32
	Sink          []float32 // [H]; nil = no sink
	HasSinkTensor bool      // the sink tensor exists (a bundle may hold one of all -Inf)

	// sparse
	B, S          int // batch entries, tokens per entry (T = B·S)
	Win, TopK, BS int // window, index row width (WIN + IDX_TOPK), block size
	OriKV, CmpKV  []float32
	OriBT, CmpBT  []int32 // [B][MBori], [B][MBcmp]
	MBori, MBcmp  int
	Idx           []int32 // [T][TopK]
	Seqused       []int32 // [B]
	NoCmp         bool    // no compressed pool

	// window
	W    int       // window size; 0 = full causal
	K, V []float32 // [T][Hkv][D], [T][Hkv][Dv] (dense: [total_k][Hkv][D], [total_k][Hkv][Dv])

	// dense: sequences b = 0..B-1 hold queries CuQ[b]..CuQ[b+1]-1 and keys
	// CuK[b]..CuK[b+1]-1 (the batch layout [B, S, H, D] is the varlen one
	// with uniform lengths). Query i of a sequence with sq queries and sk
	// keys attends key j iff max(0, i+δ−WinLeft) ≤ j ≤ min(sk−1, i+δ+WinRight),
	// δ = sk − sq (bottom-right alignment); a window side of −1 is unbounded.
	CuQ, CuK          []int32
	WinLeft, WinRight int

	// dense paged KV (densepaged.go; Page > 0): K and V are the pools
	// k_cache/v_cache [NB][Page][Hkv][D|Dv]; key j of sequence b is pool row
	// BlockTable[b·MaxBlocks + j/Page]·Page + j%Page, and CuK are the prefix
	// sums of the key counts (PagedLens). SequsedK [B] (varlen or paged):
	// sequence b uses its first SequsedK[b] keys; nil = all.
	Page, MaxBlocks          int
	BlockTable, CacheSeqlens []int32
	SequsedK                 []int32

	// Score modifiers (dense), in this order after the scale: softcap
	// c·tanh(s/c) (0 = off), then the ALiBi bias slope_h·dist(i, j).
	Softcap   float64
	Alibi     []float32 // [H] slopes; nil = none
	AlibiForm AlibiForm

	// LSE is the convention of the kernel's lse output; nil = o only.
	LSE *LSEConv
	// MaxLogit is the convention of the kernel's max_logit output
	// (maxlogit.go); nil = none.
	MaxLogit *MaxLogitConv

	// combine: row t (of n) and head h merge K partial states, values
	// CombV [n][K][H][Dv] and lse CombS [n][K][H] in the convention LSE
	// (which the merged lse shares). T = n, Hkv = H, D = 0 (no query).
	States       int
	CombV, CombS []float32

	// mla: T = B·S query tokens; token t of batch t/S reads the main scope
	// (Idx [T][TopK] into Cache, rows of width D; the first TopkLen[b]
	// entries where TopkLen is given) and the extra scope (ExtraIdx
	// [T][ExtraTopK] into ExtraCache, ExtraTopkLen likewise). −1 is invalid.
	Cache, ExtraCache     []float32
	ExtraIdx              []int32
	ExtraTopK             int
	TopkLen, ExtraTopkLen []int32
	// MLAQuant is the FP8 cache as stored (kv_layout fp8_*); nil = BF16
	// cache. Cache and ExtraCache then hold its dequantized rows (quant.go).
	MLAQuant *MLAQuant

	// csa, hca, swa (pypto-lib's DeepSeek-V4 decode, internal/problem/pypto.go):
	// T = B·S tokens; OriKV holds ori_kv's physical rows (width D); WinIdx
	// [T][Win] the window_swa_indices / swa_indices; SwaLens [T] (swa); Pos
	// [T] the position_ids (csa); Idx [T][TopK] the idx_topk (csa, IdxTopK
	// leading columns read) or cmp_sparse_indices (hca), logical slots
	// mapped through CmpBT [B][MBcmp] into CmpKV pages of CBS rows; Ratio
	// the compress_ratio.
	WinIdx, SwaLens, Pos []int32
	IdxTopK, CBS, Ratio  int

	// FP8 holds a dense problem's FP8 descales and P/accumulator
	// declarations (fp8dense.go); nil = not FP8.
	FP8 *DenseFP8
	// Int8KV holds a dense problem's INT8 K/V codes and scales (int8kv.go);
	// K and V are their dequantized values. nil = not quantized.
	Int8KV *DenseInt8KV
	// NVFP4KV holds a dense problem's NVFP4 K/V codes and scales
	// (nvfp4kv.go); K and V are their dequantized values. nil = not NVFP4.
	NVFP4KV *DenseNVFP4KV
	// Int4KV holds a dense problem's packed INT4 K/V codes and scales
	// (int4kv.go); K and V are their dequantized values. nil = not INT4.
	Int4KV *DenseInt4KV

	poison []float32 // NaN row returned for unreadable kernel reads
}

// Key is one key/value pair a query attends: views into the input tensors.
// Dist is the ALiBi distance term of the key for its query (the bias is
// slope_h·Dist), 0 without ALiBi. Bias is an additive score term of the
// key itself (combine: a partial state's lse in natural units; its score
// is the bias alone, K being empty).
type Key struct {
	K, V []float32
	Dist float32
	Bias float64
}

// Lens are the per-token lengths of the sparse family (SPEC.md §1).
type Lens struct {
	B, S, U                       int // batch entry, token within entry, token length u_s
	WindowValid, CmpValid, CmpTop int
	SparseK                       int
}

// TokenLens computes the lengths of sparse token t.
func (in *Inputs) TokenLens(t int) Lens {
	b, s := t/in.S, t%in.S
	u := int(in.Seqused[b]) - in.S + 1 + s
	if u < 0 {
		u = 0
	}
	wv := min(in.Win, u)
	cv := max(u-wv, 0)
	ct := min(in.TopK-in.Win, cv)
	return Lens{B: b, S: s, U: u, WindowValid: wv, CmpValid: cv, CmpTop: ct, SparseK: wv + ct}
}

// Group is the KV head read by query head h (repeat_interleave convention).
func (in *Inputs) Group(h int) int { return h / (in.H / in.Hkv) }

// QRow is the query of token t, head h.
func (in *Inputs) QRow(t, h int) []float32 {
	o := (t*in.H + h) * in.D
	return in.Q[o : o+in.D]
}

// SinkOf is head h's sink, -Inf when there is none.
func (in *Inputs) SinkOf(h int) float32 {
	if in.Sink == nil {
		return float32(math.Inf(-1))
	}
	return in.Sink[h]
}

// slotRow maps an index-row entry to a pool row, or nil when the block table
// points outside the pool (or the slot is outside the table).
func (in *Inputs) slotRow(b int, r int32) []float32 {
	if r < 0 {
		return nil
	}
	pool, bt, mb, c := in.OriKV, in.OriBT, in.MBori, int(r)
	if c >= in.Win {
		pool, bt, mb, c = in.CmpKV, in.CmpBT, in.MBcmp, c-in.Win
	}
	blk := c / in.BS
	if blk >= mb {
		return nil
	}
	base := int(bt[b*mb+blk])
	row := base*in.BS + c%in.BS
	if base < 0 || (row+1)*in.D > len(pool) {
		return nil
	}
	return pool[row*in.D : (row+1)*in.D]
}

// RefKeys appends to dst the keys token t sees through KV head g under the
// reference semantics: scan the whole index row, skip -1, skip window slots
// beyond window_valid and compressed slots beyond cmp_valid. Unreadable
// rows are skipped too (Violations reports them).
func (in *Inputs) RefKeys(t, g int, dst []Key) []Key {
	return in.spec().refKeys(in, t, g, dst[:0])
}

// KernelKeys appends the keys the device gathers: the first window_valid
// entries as window slots, the next cmp_topk_valid as compressed slots, read
// positionally. An entry the device would read out of bounds yields a NaN
// row (garbage, made visible). For inputs that follow the contract, the set
// equals RefKeys (possibly in another order).
func (in *Inputs) KernelKeys(t, g int, dst []Key) []Key {
	return in.spec().kernelKeys(in, t, g, dst[:0])
}

// Poison is a NaN row of width max(D, Dv).
func (in *Inputs) Poison() []float32 {
	w := max(in.D, in.Dv)
	if len(in.poison) != w {
		p := make([]float32, w)
		for i := range p {
			p[i] = float32(math.NaN())
		}
		in.poison = p
	}
	return in.poison
}

// OutLen is the number of output elements, T·H·Dv.
func (in *Inputs) OutLen() int { return in.T * in.H * in.Dv }

// Check verifies that tensor sizes agree with the shape. Its errors mean
// the inputs cannot be interpreted at all (exit 2); contract violations of
// well-formed inputs are Violations.
func (in *Inputs) Check() error {
	if err := in.checkMaxLogit(); err != nil {
		return err
	}
	fs := specs[in.Family]
	if fs != nil && fs.checkAll != nil {
		return fs.checkAll(in)
	}
	if in.T < 0 || in.H < 1 || in.Hkv < 1 || in.D < 1 || in.Dv < 1 {
		return fmt.Errorf("bad shape: T=%d H=%d Hkv=%d D=%d Dv=%d", in.T, in.H, in.Hkv, in.D, in.Dv)
	}
	if in.H%in.Hkv != 0 {
		return fmt.Errorf("H=%d is not a multiple of Hkv=%d", in.H, in.Hkv)
	}
	if !(in.Scale > 0) || math.IsInf(in.Scale, 0) {
		return fmt.Errorf("softmax_scale %v is not a positive finite number", in.Scale)
	}
	if err := wantLen("q", len(in.Q), in.T*in.H*in.D); err != nil {
		return err
	}
	if in.Sink != nil {
		if err := wantLen("attn_sink", len(in.Sink), in.H); err != nil {
			return err
		}
	}
	if err := in.checkMods(); err != nil {
		return err
	}
	if err := in.checkFP8(); err != nil {
		return err
	}
	if in.NVFP4KV != nil && in.Family != Dense {
		return in.checkNVFP4()
	}
	if in.Int4KV != nil && in.Family != Dense {
		return in.checkInt4()
	}
	if fs == nil {
		return fmt.Errorf("unknown family %q (want %s)", in.Family, FamilyNames())
	}
	return fs.check(in)
}

func wantLen(name string, got, want int) error {
	if got != want {
		return fmt.Errorf("tensor %s: %d values, shape needs %d", name, got, want)
	}
	return nil
}
