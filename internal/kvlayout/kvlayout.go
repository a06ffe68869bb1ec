// Package kvlayout reads and writes FlashMLA's FP8 KV cache layouts from the
// raw byte tensor, addressing it exactly as the sparse decode kernel does
// (deepseek-ai/FlashMLA@9241ae3e; ../shared/SPEC-flashmla.md "KV byte
// layout"; CONTRACTS.md "Quantized inputs", metadata kv_layout).
//
// fp8_v32 (DeepSeek-V3.2), 656 bytes per token, interleaved per token:
//
//	[0, 512)    512 e4m3fn NoPE codes
//	[512, 528)  4 FP32 scales (little-endian); scale i covers NoPE columns [128i, 128i+128)
//	[528, 656)  64 BF16 RoPE values (little-endian)
//	K = NoPE(512) | RoPE(64), d_qk = 576; V = the first 512 columns.
//
// fp8_model1 (DeepSeek-V4), 584 bytes per token nominally, laid out per page
// of pbs tokens:
//
//	[i·576, i·576+448)          token i's 448 e4m3fn NoPE codes
//	[i·576+448, i·576+576)      token i's 64 BF16 RoPE values
//	[pbs·576 + 8i, +7)          token i's 7 UE8M0 scales; scale j covers NoPE columns [64j, 64j+64)
//	pbs·576 + 8i + 7            padding
//	K = NoPE(448) | RoPE(64), d_qk = 512; V = all 512 columns.
//
// Slot s (FlashMLA's flat index page·pbs + offset) lives in page s/pbs at
// offset s%pbs; a page starts at page·stride, stride ≥ pbs·bytes_per_token
// (a dumped contiguous tensor has stride = pbs·bytes_per_token).
//
// Dequantization (quant.Dequant): Exact = code·scale; BF16 =
// BF16_RN(BF16(code)·BF16_RN(scale)), FlashMLA SM90's path (MODEL1's UE8M0
// scales convert exactly); FP32 = FP32_RN(code·scale). RoPE values are BF16
// and returned exactly in every mode. UNCONFIRMED: how the kernel's e8m0 →
// BF16 conversion treats scale bytes 0 (2^−127, a BF16 subnormal) and 0xFF
// (NaN); this package decodes them as 2^−127 and NaN; the reference
// quantizer never writes them (its scales are ≥ 2^−13).
package kvlayout

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/quant"
)

// Layout is a FlashMLA FP8 KV cache layout.
type Layout uint8

const (
	V32    Layout = iota + 1 // "fp8_v32"
	Model1                   // "fp8_model1"
)

type layoutInfo struct {
	name          string
	bytesPerToken int
	nope, rope    int // NoPE and RoPE columns
	tile          int // NoPE columns per scale
	dv            int
	scaleBytes    int // scale bytes the kernel reads (MODEL1's pad excluded)
}

var infos = [...]layoutInfo{
	V32:    {"fp8_v32", 656, 512, 64, 128, 512, 16},
	Model1: {"fp8_model1", 584, 448, 64, 64, 512, 7},
}

func (l Layout) valid() bool { return l == V32 || l == Model1 }

// info is the layout's geometry; zero for an invalid layout (no panic).
func (l Layout) info() layoutInfo {
	if l.valid() {
		return infos[l]
	}
	return layoutInfo{}
}

func (l Layout) String() string {
	if l.valid() {
		return infos[l].name
	}
	return fmt.Sprintf("Layout(%d)", l)
}

// ParseLayout accepts the kv_layout metadata values fp8_v32 and fp8_model1.
func ParseLayout(s string) (Layout, error) {
	switch s {
	case "fp8_v32":
		return V32, nil
	case "fp8_model1":
		return Model1, nil
	}
	return 0, fmt.Errorf("unknown FP8 kv_layout %q (want fp8_v32 or fp8_model1)", s)
}

// BytesPerToken is 656 (V32) or 584 (MODEL1).
func (l Layout) BytesPerToken() int { return l.info().bytesPerToken }

// DQK is the K row width: 576 (V32) or 512 (MODEL1).
func (l Layout) DQK() int { return l.info().nope + l.info().rope }

// DV is the V width (the first DV columns of the K row): 512.
func (l Layout) DV() int { return l.info().dv }

// NoPE is the number of e4m3 columns: 512 (V32) or 448 (MODEL1).
func (l Layout) NoPE() int { return l.info().nope }

// RoPE is the number of BF16 columns after the NoPE part: 64.
func (l Layout) RoPE() int { return l.info().rope }

// Tile is the number of NoPE columns per scale: 128 (V32) or 64 (MODEL1).
func (l Layout) Tile() int { return l.info().tile }

// Scales is the number of scales per token: 4 (V32) or 7 (MODEL1).
func (l Layout) Scales() int {
	if !l.valid() {
		return 0
	}
	return infos[l].nope / infos[l].tile
}

// Cache is a read-only view of a raw FP8 KV cache tensor [NB, pbs, 1, bpt].
type Cache struct {
	layout      Layout
	data        []byte
	nb, pbs     int
	stride      int // bytes from one page to the next
	scaleOffset int // MODEL1: pbs·576
}

// NewCache checks the geometry and returns a view of data as nb pages of
// pbs tokens in layout l, pages pageStride bytes apart (0 means contiguous,
// pbs·BytesPerToken). data must hold every page: (nb−1)·stride +
// pbs·BytesPerToken ≤ len(data) ≤ nb·stride. Sizes are overflow-checked.
func NewCache(l Layout, data []byte, nb, pbs, pageStride int) (*Cache, error) {
	if !l.valid() {
		return nil, fmt.Errorf("kvlayout: invalid layout %d", l)
	}
	if nb < 1 || pbs < 1 {
		return nil, fmt.Errorf("kvlayout: %s cache needs ≥ 1 page of ≥ 1 token, got %d pages of %d", l, nb, pbs)
	}
	page, ok := mulInt(pbs, l.BytesPerToken())
	if !ok {
		return nil, fmt.Errorf("kvlayout: %s page of %d tokens overflows", l, pbs)
	}
	stride := pageStride
	if stride == 0 {
		stride = page
	}
	if stride < page {
		return nil, fmt.Errorf("kvlayout: %s page stride %d < %d tokens × %d bytes", l, stride, pbs, l.BytesPerToken())
	}
	full, ok1 := mulInt(nb, stride)
	lastStart, ok2 := mulInt(nb-1, stride)
	need, ok3 := addInt(lastStart, page)
	if !ok1 || !ok2 || !ok3 {
		return nil, fmt.Errorf("kvlayout: %s cache of %d pages × %d bytes overflows", l, nb, stride)
	}
	if len(data) < need || len(data) > full {
		if stride == page {
			return nil, fmt.Errorf("kvlayout: %s cache of %d pages × %d tokens needs %d bytes, got %d", l, nb, pbs, full, len(data))
		}
		return nil, fmt.Errorf("kvlayout: %s cache of %d pages (stride %d, %d tokens) needs %d to %d bytes, got %d", l, nb, stride, pbs, need, full, len(data))
	}
	if _, ok := mulInt(nb, pbs); !ok {
		return nil, fmt.Errorf("kvlayout: %d × %d slots overflow", nb, pbs)
	}
	return &Cache{layout: l, data: data, nb: nb, pbs: pbs, stride: stride, scaleOffset: pbs * 576}, nil
}

func mulInt(a, b int) (int, bool) {
	if a < 0 || b < 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt {
		return 0, false
	}
	return int(lo), true
}

func addInt(a, b int) (int, bool) {
	s := a + b
	return s, s >= a
}

// Layout, Pages, PageSize and Slots describe the view.
func (c *Cache) Layout() Layout { return c.layout }
func (c *Cache) Pages() int     { return c.nb }
func (c *Cache) PageSize() int  { return c.pbs }
func (c *Cache) Slots() int     { return c.nb * c.pbs }

// Token is one token's raw fields, as the kernel reads them.
type Token struct {
	NoPE   []uint8   // e4m3fn codes (aliases the cache)
	Scales []float64 // decoded scales, one per Tile columns (FP32 for V32, UE8M0 for MODEL1)
	Raw    []byte    // the scale bytes as stored (16 for V32, 7 for MODEL1; aliases the cache)
	RoPE   []uint16  // BF16 bit patterns
}

// ErrSlot is returned (wrapped) for a slot outside [0, Slots()).
var ErrSlot = errors.New("kvlayout: slot out of range")

// offsets returns the byte offsets of slot s's NoPE codes, scales and RoPE.
func (c *Cache) offsets(s int) (nope, scales, rope int, err error) {
	if s < 0 || s >= c.nb*c.pbs {
		return 0, 0, 0, fmt.Errorf("%w: %d not in [0, %d)", ErrSlot, s, c.nb*c.pbs)
	}
	base := (s / c.pbs) * c.stride // < len(data): checked by NewCache
	off := s % c.pbs
	if c.layout == V32 {
		t := base + off*656
		return t, t + 512, t + 528, nil
	}
	t := base + off*576
	return t, base + c.scaleOffset + off*8, t + 448, nil
}

// Token returns slot s's raw fields.
func (c *Cache) Token(s int) (Token, error) {
	n, sc, r, err := c.offsets(s)
	if err != nil {
		return Token{}, err
	}
	l := c.layout
	tk := Token{NoPE: c.data[n : n+l.NoPE()], Scales: make([]float64, l.Scales()), RoPE: make([]uint16, l.RoPE())}
	tk.Raw = c.data[sc : sc+infos[l].scaleBytes]
	for i := range tk.Scales {
		tk.Scales[i] = c.scale(sc, i)
	}
	for i := range tk.RoPE {
		tk.RoPE[i] = binary.LittleEndian.Uint16(c.data[r+2*i:])
	}
	return tk, nil
}

// Row writes slot s's dequantized K row (DQK values: NoPE then RoPE) to dst
// in precision d. V is dst[:DV()].
func (c *Cache) Row(dst []float64, s int, d quant.Dequant) error {
	if len(dst) != c.layout.DQK() {
		return fmt.Errorf("kvlayout: %s row needs %d values, got %d", c.layout, c.layout.DQK(), len(dst))
	}
	if d > quant.FP32 {
		return fmt.Errorf("kvlayout: invalid dequant %v", d)
	}
	n, sc, r, err := c.offsets(s)
	if err != nil {
		return err
	}
	l := c.layout
	tile := l.Tile()
	for t := range l.Scales() {
		scale := c.scale(sc, t)
		for j := t * tile; j < (t+1)*tile; j++ {
			dst[j] = quant.Dequantize(d, quant.E4M3ToF64(c.data[n+j]), scale)
		}
	}
	for j := range l.RoPE() {
		dst[l.NoPE()+j] = float64(num.BF16ToF32(binary.LittleEndian.Uint16(c.data[r+2*j:])))
	}
	return nil
}

// scale decodes scale t of the token whose scales start at byte sc.
func (c *Cache) scale(sc, t int) float64 {
	if c.layout == V32 {
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(c.data[sc+4*t:])))
	}
	return quant.UE8M0ToF64(c.data[sc+t])
}

// RowF32 is Row into float32. The BF16 and FP32 modes always fit; Exact
// fails if a product (an FP32 scale × an e4m3 code, possibly 28 bits) is
// not a float32, rather than rounding silently.
func (c *Cache) RowF32(dst []float32, s int, d quant.Dequant) error {
	if len(dst) != c.layout.DQK() {
		return fmt.Errorf("kvlayout: %s row needs %d values, got %d", c.layout, c.layout.DQK(), len(dst))
	}
	row := make([]float64, len(dst))
	if err := c.Row(row, s, d); err != nil {
		return err
	}
	for j, v := range row {
		f := float32(v)
		if float64(f) != v && !math.IsNaN(v) {
			return fmt.Errorf("kvlayout: slot %d column %d: exact value %v is not a float32", s, j, v)
		}
		dst[j] = f
	}
	return nil
}

// Encode quantizes K rows into a contiguous cache of nb pages of pbs tokens
// with FlashMLA's reference quantizer (quant.QuantizeTileFlashMLA per token
// and tile; V32 stores inv as FP32, MODEL1 as its UE8M0 byte; RoPE is
// rounded to BF16, RNE, as torch's copy into the BF16 view does). k holds
// nb·pbs rows of DQK float32 values, row-major. MODEL1 padding bytes are 0.
// Non-finite values are an error.
func Encode(l Layout, k []float32, nb, pbs int) ([]byte, error) {
	if !l.valid() {
		return nil, fmt.Errorf("kvlayout: invalid layout %d", l)
	}
	if nb < 1 || pbs < 1 {
		return nil, fmt.Errorf("kvlayout: %s cache needs ≥ 1 page of ≥ 1 token, got %d pages of %d", l, nb, pbs)
	}
	slots, ok1 := mulInt(nb, pbs)
	vals, ok2 := mulInt(slots, l.DQK())
	size, ok3 := mulInt(slots, l.BytesPerToken())
	if !ok1 || !ok2 || !ok3 {
		return nil, fmt.Errorf("kvlayout: %s cache of %d pages × %d tokens overflows", l, nb, pbs)
	}
	if len(k) != vals {
		return nil, fmt.Errorf("kvlayout: %s cache of %d × %d tokens needs %d K values, got %d", l, nb, pbs, vals, len(k))
	}
	data := make([]byte, size)
	c, err := NewCache(l, data, nb, pbs, 0)
	if err != nil {
		return nil, err
	}
	tile, nope := l.Tile(), l.NoPE()
	for s := range slots {
		row := k[s*l.DQK() : (s+1)*l.DQK()]
		n, sc, r, _ := c.offsets(s)
		for t := range l.Scales() {
			inv, err := quant.QuantizeTileFlashMLA(data[n+t*tile:n+(t+1)*tile], row[t*tile:(t+1)*tile])
			if err != nil {
				return nil, fmt.Errorf("kvlayout: slot %d tile %d: %w", s, t, err)
			}
			if l == V32 {
				binary.LittleEndian.PutUint32(data[sc+4*t:], math.Float32bits(inv))
			} else {
				data[sc+t] = quant.UE8M0FromF64(float64(inv), quant.ScaleRU, quant.NoSaturate) // exact: a power of two
			}
		}
		for j, v := range row[nope:] {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("kvlayout: slot %d RoPE column %d: non-finite value %v", s, j, v)
			}
			binary.LittleEndian.PutUint16(data[r+2*j:], num.BF16FromF32(v, num.RNE))
		}
	}
	return data, nil
}
