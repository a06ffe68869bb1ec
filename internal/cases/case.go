// Package cases defines a Case, the small JSON value that fully and
// deterministically determines the inputs of one attention problem, and
// generates those inputs. The same Case gives bit-identical tensors on every
// machine: the PRNG is PCG (math/rand/v2, a specified algorithm), normal
// variates are built from uniforms with basic arithmetic only, and nothing
// iterates a map.
package cases

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/attnvet/attnvet/internal/jsonout"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/safeio"
)

// Version is the Case format version written to files.
const Version = 1

// Case determines one problem.
type Case struct {
	Version     int    `json:"version"`
	Description string `json:"description,omitempty"`
	// Target and Criterion are what a saved failure failed and under which
	// criterion (a campaign writes them; replay defaults to them). They
	// do not change the problem.
	Target    string         `json:"target,omitempty"`
	Criterion string         `json:"criterion,omitempty"`
	Family    problem.Family `json:"family"`
	// DType is the storage format of q, k, v: bf16, fp16 or fp32; empty
	// means the format of the kernel under test.
	DType string `json:"dtype,omitempty"`
	Seed  uint64 `json:"seed"`

	H   int `json:"h"`
	Hkv int `json:"hkv,omitempty"` // window: KV heads (default H); sparse: 1
	D   int `json:"d"`
	Dv  int `json:"dv,omitempty"` // window: value width (default D)

	// Family sparse.
	B         int    `json:"b,omitempty"`
	S         int    `json:"s,omitempty"`          // tokens per batch entry (default 1)
	Win       int    `json:"win,omitempty"`        // window slots WIN
	IdxTopK   int    `json:"idx_topk,omitempty"`   // compressed slots per index row
	BlockSize int    `json:"block_size,omitempty"` // BS (default 16)
	Seqused   []int  `json:"seqused,omitempty"`    // per batch entry
	Indices   string `json:"indices,omitempty"`    // index-row order: sorted (default) or shuffled
	// BlockTable is identity (default) or permuted.
	BlockTable string `json:"block_table,omitempty"`
	// Plant are index-layout edits: duplicate (valid) and the contract
	// violations pad_in_prefix, valid_slot_after_prefix,
	// window_slot_invalid, block_table_out_of_range.
	Plant []string `json:"plant,omitempty"`
	// Poison fills pool rows no valid slot refers to with NaN, so stray
	// reads show.
	Poison bool `json:"poison,omitempty"`

	// Family window.
	T      int `json:"t,omitempty"`
	Window int `json:"window,omitempty"` // W; 0 = full causal

	// Family dense (FlashAttention's conventions, docs/kernels.md §4):
	// sequence b has Sq[b] queries and Sk[b] keys (the batch layout is
	// equal lengths). Windows default to −1 (unbounded); causal sets the
	// right window to 0.
	Sq          []int    `json:"sq,omitempty"`
	Sk          []int    `json:"sk,omitempty"`
	Causal      bool     `json:"causal,omitempty"`
	WindowLeft  *int     `json:"window_left,omitempty"`
	WindowRight *int     `json:"window_right,omitempty"`
	Softcap     float64  `json:"softcap,omitempty"`
	Alibi       *Alibi   `json:"alibi,omitempty"`
	LSE         *LSESpec `json:"lse,omitempty"` // the kernel returns lse in this convention
	// MaxLogit: the kernel returns max_logit (every family but combine;
	// maxlogit.go).
	MaxLogit *MaxLogitSpec `json:"max_logit,omitempty"`
	// Page > 0 puts the keys in a paged cache k_cache/v_cache of that page
	// size with a block_table (block_table: identity or permuted) and
	// cache_seqlens = sk; poison fills unreferenced pages and the rows
	// past each sequence's last key with NaN (densepaged.go). SequsedK
	// gives seqused_k (varlen or paged).
	Page     int   `json:"page,omitempty"`
	SequsedK []int `json:"seqused_k,omitempty"`

	// Family combine: t rows of h heads merging States partial states of
	// width d (docs/kernels.md §6); Empty is the fraction of states set to
	// lse_empty; values.scale spreads their lse.
	States int     `json:"states,omitempty"`
	Empty  float64 `json:"empty,omitempty"`

	// Family mla (FlashMLA sparse decode, docs/kernels.md §7): b batches of
	// s query tokens, topk indices per token into a cache of block_size-row
	// pages, a fraction Invalid of them −1; optional per-batch topk_length
	// and an extra scope; dv is d_v (default d); poison fills unreferenced
	// cache rows with NaN.
	TopK            int     `json:"topk,omitempty"`
	TopkLength      []int   `json:"topk_length,omitempty"`
	ExtraTopK       int     `json:"extra_topk,omitempty"`
	ExtraTopkLength []int   `json:"extra_topk_length,omitempty"`
	Invalid         float64 `json:"invalid,omitempty"`
	// Quantized mla caches (quant.go): kv_layout fp8_v32 | fp8_model1.
	KVLayout  string `json:"kv_layout,omitempty"`
	Dequant   string `json:"dequant,omitempty"`
	FP8Scales string `json:"fp8_scales,omitempty"`
	FP8Edges  bool   `json:"fp8_edges,omitempty"`

	// Families csa, hca, swa (pypto-lib's DeepSeek-V4 decode,
	// internal/cases/pypto.go): b batch entries of s tokens, win window
	// columns of physical ori_kv rows (pages of block_size rows),
	// idx_topk compressed columns (csa: idx_topk read of idx_width; hca:
	// cmp_sparse_indices) into cmp pages of cmp_block_size rows. Positions
	// are per token (default drawn); invalid, block_table, plant and poison
	// as above (plants: internal/cases/pypto.go).
	Positions    []int `json:"positions,omitempty"`
	IdxWidth     int   `json:"idx_width,omitempty"`
	Ratio        int   `json:"compress_ratio,omitempty"`
	CmpBlockSize int   `json:"cmp_block_size,omitempty"`

	// Dense FP8 (FlashAttention 3, fp8dense.go): fp8 e4m3 turns q, k, v
	// into e4m3 codes with [B, Hkv] descales; fp8_p is P's declared
	// rounding (e4m3, the default, or fp32); acc_bits the FP8 GEMMs'
	// accumulator bits (0: FP32); fp8_edge an edge class.
	FP8     string `json:"fp8,omitempty"`
	FP8P    string `json:"fp8_p,omitempty"`
	AccBits int    `json:"acc_bits,omitempty"`
	FP8Edge string `json:"fp8_edge,omitempty"`
	// Int8KV (int8kv.go): per_tensor or per_channel INT8 K/V codes with
	// FP32 scales, ONNX Runtime's GroupQueryAttention convention.
	Int8KV string `json:"int8_kv,omitempty"`
	// Int4KV (int4kv.go): per_tensor or per_channel INT4 K/V codes (two a
	// byte, +8 bias) with FP32 scales, ORT's kv_cache_bit_width 4.
	Int4KV string `json:"int4_kv,omitempty"`
	// NVFP4KV (nvfp4kv.go): NVFP4 K/V (packed e2m1 codes, an e4m3 scale per
	// 16 values, an FP32 global scale), flashinfer's NVFP4 KV cache;
	// NVFP4Edge picks an edge class (zero_blocks, block_max, scale_extremes).
	NVFP4KV   bool   `json:"nvfp4_kv,omitempty"`
	NVFP4Edge string `json:"nvfp4_edge,omitempty"`

	Values   Values    `json:"values"`
	Sink     *Sink     `json:"sink,omitempty"`
	Scale    float64   `json:"softmax_scale,omitempty"` // 0: D^-0.5
	Specials []Special `json:"specials,omitempty"`
}

// Values is the distribution of q, k and v entries.
type Values struct {
	// Dist: normal (default), uniform (in [-1,1)), wide (random sign,
	// log-uniform magnitude over 2^±WideExp), zeroq (q = 0: all scores
	// equal), dominant (each token's first key aligned with q head 0).
	Dist    string  `json:"dist,omitempty"`
	Scale   float64 `json:"scale,omitempty"`    // multiplies q and k (default 1)
	VScale  float64 `json:"v_scale,omitempty"`  // multiplies v (default 1)
	WideExp int     `json:"wide_exp,omitempty"` // default 20
}

// Sink is the per-head sink. Kind none (default: no sink tensor), random
// (normal·Scale + Offset), or const (Value for every head). Values, when
// present, give each head's sink explicitly (length H).
type Sink struct {
	Kind   string  `json:"kind"`
	Scale  float64 `json:"scale,omitempty"`
	Offset float64 `json:"offset,omitempty"`
	Value  Float   `json:"value,omitempty"`
	Values []Float `json:"values,omitempty"`
}

// Alibi gives the ALiBi slopes: geometric (the standard 2^(−8(h+1)/H)) or
// const (Value for every head), times Scale (default 1); Values, when
// present, give each head's slope. Form is problem.AlibiForm ("" = abs).
type Alibi struct {
	Kind   string  `json:"kind"`
	Scale  float64 `json:"scale,omitempty"`
	Value  float64 `json:"value,omitempty"`
	Values []Float `json:"values,omitempty"`
	Form   string  `json:"form,omitempty"`
}

// LSESpec is an lse convention, in the metadata's words (problem.ParseLSEConv).
type LSESpec struct {
	Base  string `json:"base"`
	Empty string `json:"empty"`
	Sink  string `json:"sink,omitempty"`
}

// Conv parses the convention.
func (l *LSESpec) Conv(hasSink bool) (problem.LSEConv, error) {
	return problem.ParseLSEConv(l.Base, l.Empty, l.Sink, hasSink)
}

// Special plants one value. Tensor q: (Token, Head, Dim). Tensor kv
// (sparse): the key at position Key of Token's index row. Tensors k and v
// (window): key position Key, KV head Head. Value is rounded to the dtype.
type Special struct {
	Tensor string `json:"tensor"`
	Token  int    `json:"token,omitempty"`
	Head   int    `json:"head,omitempty"`
	Key    int    `json:"key,omitempty"`
	Dim    int    `json:"dim,omitempty"`
	Value  Float  `json:"value"`
}

// Float is a float64 that JSON carries as a number or, for values JSON
// cannot hold, as a string: "+inf", "-inf", "nan", "-0", "max" / "-max"
// (largest finite of the dtype), "minsub" (smallest subnormal), or a hex
// float ("0x1.8p-3").
type Float struct {
	V    float64
	Name string // symbolic value, resolved per dtype
}

func (f Float) MarshalJSON() ([]byte, error) {
	switch {
	case f.Name != "":
		return json.Marshal(f.Name)
	case math.IsInf(f.V, 1):
		return []byte(`"+inf"`), nil
	case math.IsInf(f.V, -1):
		return []byte(`"-inf"`), nil
	case math.IsNaN(f.V):
		return []byte(`"nan"`), nil
	case f.V == 0 && math.Signbit(f.V):
		return []byte(`"-0"`), nil
	}
	return []byte(strconv.FormatFloat(f.V, 'g', -1, 64)), nil
}

func (f *Float) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		switch strings.ToLower(s) {
		case "+inf", "inf":
			*f = Float{V: math.Inf(1)}
		case "-inf":
			*f = Float{V: math.Inf(-1)}
		case "nan":
			*f = Float{V: math.NaN()}
		case "-0":
			*f = Float{V: math.Copysign(0, -1)}
		case "max", "-max", "minsub", "-minsub":
			*f = Float{Name: strings.ToLower(s)}
		default:
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return fmt.Errorf("bad float %q (want a number, +inf, -inf, nan, -0, max, -max, minsub)", s)
			}
			*f = Float{V: v}
		}
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("bad float %s", b)
	}
	*f = Float{V: v}
	return nil
}

// Resolve gives the value in format ft.
func (f Float) Resolve(ft num.Format) float64 {
	switch f.Name {
	case "max":
		return num.MaxFinite(ft)
	case "-max":
		return -num.MaxFinite(ft)
	case "minsub":
		return num.MinSubnormal(ft)
	case "-minsub":
		return -num.MinSubnormal(ft)
	}
	return f.V
}

// F is a Float holding v.
func F(v float64) Float { return Float{V: v} }

// Load reads a Case from a JSON file, within safeio.DefaultLimit bytes of
// memory (LoadLimit).
func Load(path string) (Case, error) { return LoadLimit(path, safeio.DefaultLimit) }

// LoadLimit reads a Case from a JSON file (a regular file: safeio.Open),
// refusing a file or a case that needs more than limit bytes of memory
// (MemoryNeed) with a *safeio.LimitError.
func LoadLimit(path string, limit int64) (Case, error) {
	b, err := safeio.ReadJSON(path, limit)
	if err != nil {
		return Case{}, err
	}
	c, err := ParseLimit(b, limit)
	if err != nil {
		return Case{}, fmt.Errorf("%s: %w", safeio.Printable(path), err)
	}
	return c, nil
}

// Parse decodes and validates a Case, within safeio.DefaultLimit bytes of
// memory (ParseLimit); unknown fields are errors.
func Parse(b []byte) (Case, error) { return ParseLimit(b, safeio.DefaultLimit) }

// ParseLimit decodes and validates a Case, and refuses one whose check
// would need more than limit bytes of memory (MemoryNeed) with a
// *safeio.LimitError.
func ParseLimit(b []byte, limit int64) (Case, error) {
	c, err := parse(b)
	if err != nil {
		return Case{}, err
	}
	if err := safeio.Check(c.sizeString(), c.MemoryNeed(), limit); err != nil {
		return Case{}, err
	}
	return c, nil
}

func parse(b []byte) (Case, error) {
	var c Case
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Case{}, fmt.Errorf("bad case JSON: %v", err)
	}
	if dec.More() {
		return Case{}, fmt.Errorf("bad case JSON: trailing data after the case")
	}
	if err := c.Validate(); err != nil {
		return Case{}, err
	}
	return c, nil
}

// Marshal encodes c as indented JSON with a version.
func (c Case) Marshal() []byte {
	c.Version = Version
	b, err := jsonout.MarshalIndent(c, "", "  ")
	if err != nil {
		// Only non-finite plain float fields fail, and Validate rejects
		// those: a case reaching here unvalidated is a programming error.
		panic("cases: " + err.Error())
	}
	return append(b, '\n')
}

// String is the compact JSON of c.
func (c Case) String() string {
	c.Version = Version
	b, _ := jsonout.Marshal(c)
	return string(b)
}

// Limits keep a hand-written or fuzzed case from exhausting memory. They
// bound the arithmetic; what a case may take is MemoryNeed against the
// memory limit (ParseLimit).
const (
	maxDim    = 1 << 12
	maxElems  = 1 << 26
	maxTokens = 1 << 12
)

// Bytes of peak memory per element, measured with /usr/bin/time -v on
// replay of window cases (docs/interop.md, "Hostile input"), with headroom: an
// input element is generated (4 bytes), may be copied for the kernel
// or encoded for a worker, and summed; an output element has six float64
// reference values (48 bytes), the kernel's output and pre-rounding values,
// a worker's reply, and the judging's allowance, output-term and skip
// arrays; a row (token, head) has its reference summary (120 bytes).
const (
	memBase   = 48 << 20
	memPerIn  = 16
	memPerOut = 112
	memPerRow = 160
)

// MemoryNeed estimates, in bytes, the peak memory of checking a valid case
// (generating, the reference, the kernel or its worker, judging and the
// replay printout).
func (c Case) MemoryNeed() int64 {
	t, h := int64(c.Tokens()), int64(c.H)
	out, rows := t*h*int64(c.dv()), t*h
	return memBase + int64(c.elements())*memPerIn + out*memPerOut + rows*memPerRow
}

// elements counts the input tensors' elements (q, the pools or k and v,
// the index rows), as Validate bounds them.
func (c Case) elements() int { return c.fam().elements(c) }

// sizeString describes the case's size for a memory-limit error.
func (c Case) sizeString() string {
	return fmt.Sprintf("the case (%s t=%d h=%d d=%d dv=%d: %d input and %d output elements)",
		c.Family, c.Tokens(), c.H, c.D, c.dv(), c.elements(), c.Tokens()*c.H*c.dv())
}

// Validate checks that c describes a problem that can be generated.
func (c Case) Validate() error {
	if c.Version > Version {
		return fmt.Errorf("case version %d is newer than this attnvet (%d)", c.Version, Version)
	}
	if c.DType != "" {
		f, err := num.ParseFormat(c.DType)
		if err != nil || f == num.FP64 {
			return fmt.Errorf("dtype %q: want bf16, fp16 or fp32", c.DType)
		}
	}
	if c.H < 1 || c.D < 1 || c.H > maxDim || c.D > maxDim {
		return fmt.Errorf("bad shape: h=%d d=%d (each in 1..%d)", c.H, c.D, maxDim)
	}
	if err := c.validateQuant(); err != nil {
		return err
	}
	if err := c.validateFP8Dense(); err != nil {
		return err
	}
	if err := c.validateInt8KV(); err != nil {
		return err
	}
	if err := c.validateNVFP4KV(); err != nil {
		return err
	}
	if err := c.validateInt4KV(); err != nil {
		return err
	}
	if c.Scale < 0 || math.IsNaN(c.Scale) || math.IsInf(c.Scale, 0) {
		return fmt.Errorf("softmax_scale %v: want a positive finite number, or 0 for d^-0.5", c.Scale)
	}
	if err := c.Values.validate(); err != nil {
		return err
	}
	if c.Sink != nil {
		if err := c.Sink.validate(c.H); err != nil {
			return err
		}
	}
	f, err := lookup(c.Family)
	if err != nil {
		return err
	}
	err = f.validate(c)
	if err != nil {
		return err
	}
	if err := c.validateMaxLogit(); err != nil {
		return err
	}
	for i, s := range c.Specials {
		if err := c.validateSpecial(s); err != nil {
			return fmt.Errorf("specials[%d]: %v", i, err)
		}
	}
	return nil
}

func (v Values) validate() error {
	switch v.Dist {
	case "", "normal", "uniform", "wide", "zeroq", "dominant":
	default:
		return fmt.Errorf("values.dist %q: want normal, uniform, wide, zeroq or dominant", v.Dist)
	}
	for _, s := range []float64{v.Scale, v.VScale} {
		if s < 0 || math.IsNaN(s) || math.IsInf(s, 0) {
			return fmt.Errorf("values scale %v: want a finite non-negative number", s)
		}
	}
	if v.WideExp < 0 || v.WideExp > 120 {
		return fmt.Errorf("values.wide_exp %d: want 0..120", v.WideExp)
	}
	return nil
}

func (s *Sink) validate(h int) error {
	switch s.Kind {
	case "none", "random", "const":
	default:
		return fmt.Errorf("sink.kind %q: want none, random or const", s.Kind)
	}
	if s.Values != nil && len(s.Values) != h {
		return fmt.Errorf("sink.values has %d entries, want h=%d", len(s.Values), h)
	}
	if math.IsNaN(s.Scale) || math.IsInf(s.Scale, 0) || math.IsNaN(s.Offset) || math.IsInf(s.Offset, 0) {
		return fmt.Errorf("sink scale and offset must be finite")
	}
	return nil
}

func (c Case) validateSpecial(s Special) error {
	t := c.Tokens()
	switch s.Tensor {
	case "q":
		if s.Token < 0 || s.Token >= t || s.Head < 0 || s.Head >= c.H || s.Dim < 0 || s.Dim >= c.D {
			return fmt.Errorf("q[%d,%d,%d] outside [%d,%d,%d]", s.Token, s.Head, s.Dim, t, c.H, c.D)
		}
	case "kv":
		if !c.fam().kvSpecial {
			return fmt.Errorf("tensor kv is for the sparse family (use k or v)")
		}
		if s.Token < 0 || s.Token >= t || s.Key < 0 || s.Key >= c.Win+c.IdxTopK || s.Dim < 0 || s.Dim >= c.D {
			return fmt.Errorf("kv token %d key %d dim %d outside [%d,%d,%d]", s.Token, s.Key, s.Dim, t, c.Win+c.IdxTopK, c.D)
		}
	case "k", "v":
		if c.fam().kvSpecial {
			return fmt.Errorf("tensor %s is for the window family and the dense family (use kv)", s.Tensor)
		}
		w := c.D
		if s.Tensor == "v" {
			w = c.dv()
		}
		nk := c.fam().specialKeys(c)
		if s.Key < 0 || s.Key >= nk || s.Head < 0 || s.Head >= c.hkv() || s.Dim < 0 || s.Dim >= w {
			return fmt.Errorf("%s[%d,%d,%d] outside [%d,%d,%d]", s.Tensor, s.Key, s.Head, s.Dim, t, c.hkv(), w)
		}
	default:
		return fmt.Errorf("tensor %q: want q, kv, k or v", s.Tensor)
	}
	return nil
}

// Tokens is T.
func (c Case) Tokens() int { return c.fam().tokens(c) }

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

func (c Case) tokensPerBatch() int {
	if c.S == 0 {
		return 1
	}
	return c.S
}

// PageSize is the case's effective block_size (mla: tokens per cache
// page), 16 when unset.
func (c Case) PageSize() int { return c.blockSize() }

func (c Case) blockSize() int {
	if c.BlockSize == 0 {
		return 16
	}
	return c.BlockSize
}

func (c Case) hkv() int { return c.fam().hkv(c) }

func (c Case) dv() int { return c.fam().dv(c) }

// Format is the storage format of the case's inputs, given the kernel's.
func (c Case) Format(kernel num.Format) num.Format {
	if c.DType == "" {
		return kernel
	}
	f, _ := num.ParseFormat(c.DType)
	return f
}
