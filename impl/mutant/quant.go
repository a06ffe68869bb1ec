package mutant

import (
	"math"

	"github.com/attnvet/attnvet/impl"

	"github.com/attnvet/attnvet/internal/kvlayout"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/quant"
)

// quantBase is the correct emulation the FP8-cache mutants vary: FlashMLA
// SM90's path after dequantization (keys in blocks of 64, BF16 GEMMs with
// FP32 accumulation, P to BF16, RN output).
const quantBase = "tiled/bc64/bf16rne"

// quantSpecs are defects of reading FlashMLA's FP8 KV cache (kv_layout
// fp8_v32 / fp8_model1), each a kernel that dequantizes the same bytes
// otherwise (docs/mutants.md cites them). On a BF16 cache they compute
// what their base computes.
func quantSpecs() []spec {
	return []spec{
		{
			name: "fp8-scale-ue8m0-rz", class: classPrecision, family: problem.MLA, base: quantBase,
			doc: "V32's FP32 scales converted to UE8M0 with round-toward-zero before use (FlashMLA PR #184, the SM100 head64 path): a non-power-of-two scale shrinks by up to 2×",
			prep: fp8Prep(fp8Bug{scale: func(c *kvlayout.Cache, s, t int, tk kvlayout.Token) float64 {
				if c.Layout() != kvlayout.V32 {
					return tk.Scales[t]
				}
				return quant.UE8M0ToF64(quant.UE8M0FromF64(tk.Scales[t], quant.ScaleRZ, quant.NoSaturate))
			}}),
		},
		{
			name: "fp8-scale-wrong-block", class: classMath, family: problem.MLA, base: quantBase,
			doc: "column tile t dequantized with the scale of tile t+1 (mod the tile count): a tile-index slip in the scale load",
			prep: fp8Prep(fp8Bug{scale: func(c *kvlayout.Cache, s, t int, tk kvlayout.Token) float64 {
				return tk.Scales[(t+1)%len(tk.Scales)]
			}}),
		},
		{
			name: "fp8-scale-wrong-token", class: classMath, family: problem.MLA, base: quantBase,
			doc: "a token's tiles dequantized with the scales of the next slot (slot+1 mod the cache): a token-index slip in the scale address",
			prep: fp8Prep(fp8Bug{scale: func(c *kvlayout.Cache, s, t int, tk kvlayout.Token) float64 {
				o, err := c.Token((s + 1) % c.Slots())
				if err != nil {
					return tk.Scales[t]
				}
				return o.Scales[t]
			}}),
		},
		{
			name: "fp8-scale-twice", class: classMath, family: problem.MLA, base: quantBase,
			doc: "the scale applied twice (code·scale², dequantized in the loader and again in the GEMM epilogue)",
			prep: fp8Prep(fp8Bug{scale: func(c *kvlayout.Cache, s, t int, tk kvlayout.Token) float64 {
				return tk.Scales[t] * tk.Scales[t]
			}}),
		},
		{
			name: "fp8-scale-missing", class: classMath, family: problem.MLA, base: quantBase,
			doc:  "the scale never applied: the e4m3 codes used as the K and V values",
			prep: fp8Prep(fp8Bug{scale: func(c *kvlayout.Cache, s, t int, tk kvlayout.Token) float64 { return 1 }}),
		},
		{
			name: "fp8-448-as-nan", class: classPrecision, family: problem.MLA, base: quantBase,
			doc: "the largest e4m3fn codes (±448, 0x7e/0xfe) read as NaN, the reverse confusion (an overflow check one code too low)",
			prep: fp8Prep(fp8Bug{code: func(b uint8) float64 {
				if b&0x7f == 0x7e {
					return math.NaN()
				}
				return quant.E4M3ToF64(b)
			}}),
		},
		{
			name: "fp8-fn-as-fnuz", class: classPrecision, family: problem.MLA, base: quantBase,
			doc:  "OCP e4m3fn codes decoded as e4m3fnuz (AMD's variant: exponent bias 8, 0x80 NaN): every value halved, −0 a NaN",
			prep: fp8Prep(fp8Bug{code: quant.E4M3FNUZToF64}),
		},
		{
			name: "fp8-rope-as-fp8", class: classMath, family: problem.MLA, base: quantBase,
			doc:  "the BF16 RoPE columns read as e4m3 codes (byte j of the RoPE part, times tile 0's scale): the loader treats the whole row as quantized",
			prep: fp8Prep(fp8Bug{rope: true}),
		},
		{
			name: "fp8-model1-per-token", class: classMath, family: problem.MLA, base: quantBase,
			doc:  "MODEL1's cache read as if interleaved per token (token i at i·584: codes, RoPE, then its 7 scales) instead of per page (pbs·576 bytes of data, then pbs·8 of scales)",
			prep: model1PerToken,
		},
	}
}

// model1PerToken reads a MODEL1 cache with a per-token stride of 584
// bytes; slots whose misread bytes fall outside the page read as NaN.
func model1PerToken(in *problem.Inputs) *problem.Inputs {
	q := in.MLAQuant
	if q == nil || q.Layout != kvlayout.Model1 {
		return in
	}
	read := func(raw []byte, pbs int) []float32 {
		if raw == nil {
			return nil
		}
		d := q.Layout.DQK()
		out := make([]float32, len(raw)/584*d)
		for s := range len(raw) / 584 {
			t := (s/pbs)*pbs*584 + (s%pbs)*584
			row := out[s*d : (s+1)*d]
			for j := range 448 {
				sc := quant.UE8M0ToF64(raw[t+576+j/64])
				row[j] = float32(quant.Dequantize(q.Dequant, quant.E4M3ToF64(raw[t+j]), sc))
			}
			for j := range 64 {
				row[448+j] = num.BF16ToF32(uint16(raw[t+448+2*j]) | uint16(raw[t+449+2*j])<<8)
			}
		}
		return out
	}
	return in.WithCaches(read(q.Raw, q.PBS), read(q.ExtraRaw, q.ExtraPBS))
}

// fp8Bug is a kernel's misreading of an FP8 cache: a code decoder (nil:
// e4m3fn), a scale lookup (nil: the token's tile scale) and whether RoPE
// is read as e4m3 codes.
type fp8Bug struct {
	code  func(uint8) float64
	scale func(c *kvlayout.Cache, s, t int, tk kvlayout.Token) float64
	rope  bool
}

func (b fp8Bug) row(dq quant.Dequant) problem.RowFunc {
	return func(dst []float32, c *kvlayout.Cache, s int) error {
		tk, err := c.Token(s)
		if err != nil {
			return err
		}
		l := c.Layout()
		tile := l.Tile()
		for t := range l.Scales() {
			sc := tk.Scales[t]
			if b.scale != nil {
				sc = b.scale(c, s, t, tk)
			}
			for j := t * tile; j < (t+1)*tile; j++ {
				code := quant.E4M3ToF64(tk.NoPE[j])
				if b.code != nil {
					code = b.code(tk.NoPE[j])
				}
				dst[j] = float32(quant.Dequantize(dq, code, sc))
			}
		}
		for j, h := range tk.RoPE {
			v := float64(num.BF16ToF32(h))
			if b.rope {
				byt := uint8(tk.RoPE[j/2] >> (8 * (j % 2)))
				v = quant.Dequantize(dq, quant.E4M3ToF64(byt), tk.Scales[0])
			}
			dst[l.NoPE()+j] = float32(v)
		}
		return nil
	}
}

// fp8Prep rewrites an FP8 mla problem's caches as the buggy kernel
// dequantizes them; other problems pass unchanged.
func fp8Prep(b fp8Bug) func(in *problem.Inputs) *problem.Inputs {
	return func(in *problem.Inputs) *problem.Inputs {
		q := in.MLAQuant
		if q == nil {
			return in
		}
		main, extra, err := q.Dequantized(b.row(q.Dequant))
		if err != nil {
			return in
		}
		return in.WithCaches(main, extra)
	}
}

// fa3Base is the correct FA3 FP8 emulation the dense FP8 mutants vary.
const fa3Base = "fa3/bc128/fp8bf16"

// fa3Specs are defects of FlashAttention 3's FP8 forward on dense FP8
// inputs (problem.DenseFP8; docs/mutants.md). On other inputs they compute
// what their base computes (tiled/bc128 arithmetic), bit for bit.
func fa3Specs() []spec {
	return []spec{
		{
			name: "fa3-qdescale-by-qhead", class: classMath, family: problem.Dense, base: fa3Base,
			doc: "q_descale read at [b, h] with the query head instead of [b, kv head] (FA3 indexes it by KV head): GQA rows take another head's (or the next sequence's, or past the tensor: NaN) descale",
			run: fa3Run(impl.FA3Bugs{QDescaleByQHead: true}),
		},
		{
			name: "fa3-p-no-offset", class: classPrecision, family: problem.Dense, base: fa3Base,
			doc: "P cast to e4m3 without FA3's +8 max offset: p = e^(x−m) ≤ 1 itself, so weights below 2^−10 round to 0 and those below 2^−6 lose bits in e4m3's subnormals",
			run: fa3Run(impl.FA3Bugs{NoOffset: true}),
		},
		{
			name: "fa3-lse-no-offset-undo", class: classMath, family: problem.Dense, base: fa3Base,
			doc: "the lse computed from l without the 2^−8 that undoes the max offset (o is unaffected): lse too large by 8·ln 2",
			run: fa3Run(impl.FA3Bugs{NoLScale: true}),
		},
		{
			name: "fa3-vdescale-twice", class: classMath, family: problem.Dense, base: fa3Base,
			doc: "v_descale applied twice in the finish (o = O·(1/l)·v_descale²)",
			run: fa3Run(impl.FA3Bugs{VDescale: 2}),
		},
		{
			name: "fa3-vdescale-missing", class: classMath, family: problem.Dense, base: fa3Base,
			doc: "v_descale never applied: o is the attention of the v codes",
			run: fa3Run(impl.FA3Bugs{VDescale: -1}),
		},
		{
			name: "fa3-p-vfold-satfinite", class: classPrecision, family: problem.Dense, base: fa3Base,
			doc: "v_descale folded into P before a saturating e4m3 cast (P = e4m3_sat(p·v_descale)): with v_descale > 1.75 the top weights clip at 448 instead of overflowing, and small descales push weights into e4m3's subnormals",
			run: fa3Run(impl.FA3Bugs{PFoldV: true, Overflow: quant.Saturate}),
		},
		{
			name: "fa3-p-vfold-overflow-nan", class: classPrecision, family: problem.Dense, base: fa3Base,
			doc: "v_descale folded into P before the non-saturating OCP e4m3 cast: p·v_descale > 464 (448 plus half an ulp) is e4m3fn's NaN, where the satfinite P cast FA3 uses could never overflow",
			run: fa3Run(impl.FA3Bugs{PFoldV: true, Overflow: quant.NoSaturate}),
		},
	}
}

// fa3Run runs the FA3 emulation of k's configuration with defects b.
func fa3Run(b impl.FA3Bugs) func(k *kernel, in *problem.Inputs) (*impl.Output, error) {
	return func(k *kernel, in *problem.Inputs) (*impl.Output, error) {
		return impl.NewFA3Mutant(k.cfg, b).WithName(k.name).Run(in)
	}
}

// int8Base is the correct emulation the INT8-KV mutants vary: ONNX
// Runtime's GQA dequantizes the cache into the attention dtype and runs a
// BF16 flash kernel on it.
const int8Base = "tiled/bc128/bf16rne"

// int8Specs are defects of dequantizing ONNX Runtime's INT8 KV cache
// (problem.DenseInt8KV; docs/mutants.md): the same codes dequantized
// otherwise. Without INT8 K/V they compute what their base computes.
func int8Specs() []spec {
	return []spec{
		{
			name: "int8-channel-scale-no-head", class: classMath, family: problem.Dense, base: int8Base,
			doc: "PER_CHANNEL scales read at [column] instead of [kv_head·D + column]: every KV head dequantized with head 0's channel scales",
			prep: int8Prep(func(s []float32, i, hkv, w int) float32 {
				if len(s) == 1 {
					return s[0]
				}
				return s[i%w]
			}, false),
		},
		{
			name: "int8-codes-as-uint8", class: classPrecision, family: problem.Dense, base: int8Base,
			doc:  "the int8 codes read as uint8 (a negative code c becomes c + 256): every negative cache value turns large and positive",
			prep: int8Prep(problem.Int8Scale, true),
		},
	}
}

// int8Prep rewrites an INT8-KV problem's K and V as a kernel that reads
// the scales with scale and the codes as unsigned (when unsigned)
// dequantizes them: T(code·scale) in the problem's format.
func int8Prep(scale func(s []float32, i, hkv, w int) float32, unsigned bool) func(in *problem.Inputs) *problem.Inputs {
	return func(in *problem.Inputs) *problem.Inputs {
		q := in.Int8KV
		if q == nil {
			return in
		}
		deq := func(codes []int8, s []float32, w int) []float32 {
			out := make([]float32, len(codes))
			for i, c := range codes {
				v := float64(c)
				if unsigned {
					v = float64(uint8(c))
				}
				out[i] = num.Round32(in.Format, float32(v)*scale(s, i, in.Hkv, w), num.RNE)
			}
			return out
		}
		c := *in
		c.K, c.V = deq(q.KCodes, q.KScale, in.D), deq(q.VCodes, q.VScale, in.Dv)
		return &c
	}
}

// nvfp4Base is the correct emulation the NVFP4-KV mutants vary:
// flashinfer dequantizes the NVFP4 cache into BF16 (nvfp4_kv_dequantize)
// for a BF16 attention kernel.
const nvfp4Base = "tiled/bc128/bf16rne"

// nvfp4Specs are defects of dequantizing flashinfer's NVFP4 KV cache
// (problem.DenseNVFP4KV; docs/mutants.md): the same bytes dequantized
// otherwise. Without NVFP4 K/V they compute what their base computes.
func nvfp4Specs() []spec {
	return []spec{
		{
			name: "nvfp4-next-block-scale", class: classMath, family: problem.Dense, base: nvfp4Base,
			doc:  "every value scaled by the e4m3 scale of the next 16-value block (block index off by one; the last block wraps to the first)",
			prep: nvfp4Prep(func(b, n int) int { return (b + 1) % n }, false, false),
		},
		{
			name: "nvfp4-no-global-scale", class: classMath, family: problem.Dense, base: nvfp4Base,
			doc:  "the FP32 global (tensor) scale not applied: x̂ = T(e2m1·e4m3), off by the factor 1/global ≈ 448/amax",
			prep: nvfp4Prep(func(b, n int) int { return b }, true, false),
		},
		{
			name: "nvfp4-nibble-swap", class: classPrecision, family: problem.Dense, base: nvfp4Base,
			doc:  "the two e2m1 codes of a byte read high nibble first: elements 2i and 2i+1 of every pair trade places",
			prep: nvfp4Prep(func(b, n int) int { return b }, false, true),
		},
	}
}

// nvfp4Prep rewrites an NVFP4-KV problem's K and V as a kernel that reads
// block scale blk(b, nblocks) for block b, ignores the global scale (when
// noGlobal) and swaps the nibbles of each byte (when swap) dequantizes them.
func nvfp4Prep(blk func(b, n int) int, noGlobal, swap bool) func(in *problem.Inputs) *problem.Inputs {
	return func(in *problem.Inputs) *problem.Inputs {
		q := in.NVFP4KV
		if q == nil {
			return in
		}
		deq := func(codes, block []uint8, g float32) []float32 {
			c := append([]uint8(nil), codes...)
			if swap {
				for i, b := range c {
					c[i] = b<<4 | b>>4
				}
			}
			s := make([]uint8, len(block))
			for b := range s {
				s[b] = block[blk(b, len(block))]
			}
			if noGlobal {
				g = 1
			}
			out := make([]float32, 2*len(codes))
			if err := problem.DequantNVFP4KV(out, c, s, g, in.Format); err != nil {
				panic("mutant: " + err.Error()) // sizes checked by Inputs.Check
			}
			return out
		}
		c := *in
		c.K, c.V = deq(q.KCodes, q.KBlock, q.KGlobal), deq(q.VCodes, q.VBlock, q.VGlobal)
		return &c
	}
}
