// Package fuzz holds the native Go fuzz targets (go test -fuzz, see
// scripts/fuzz.sh) and Decode, which turns any fuzz input into a valid
// Case, so that the fuzzer's byte mutations explore shapes, layouts and
// values, special values included.
package fuzz

import (
	"encoding/binary"
	"math"
	"slices"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/props"
)

// Limits of decoded cases. Shapes beyond them wrap around (modulo), and a
// case whose work exceeds MaxWork has H, then D, halved: fuzzing stays fast.
const (
	MaxH       = 32
	MaxD       = 64
	MaxB       = 4
	MaxWin     = 256
	MaxIdxTopK = 1200
	MaxBlock   = 128
	MaxSeqused = 2048
	MaxT       = 256
	MaxWork    = 1 << 19
	MaxTail    = 256 // values taken from the tail
)

var (
	dists  = []string{"", "normal", "uniform", "wide", "zeroq", "dominant"}
	dtypes = []string{"", "bf16", "fp16", "fp32"}
	plants = []string{"duplicate", problem.VPadInPrefix, problem.VValidAfter, problem.VWindowSlot, problem.VBlockTable}
)

// Flag bits of the first byte.
const (
	flagWindow   = 1 << 0
	flagDType    = 3 << 1 // two bits: index into dtypes
	flagShuffled = 1 << 3
	flagPermuted = 1 << 4
	flagPoison   = 1 << 5
	flagS2       = 1 << 6
	// flagOther: a case of any family the byte layout below cannot state
	// (dense, combine, mla, csa, hca, swa; docs/kernels.md). The next byte
	// chooses how: even, the rest is the case's JSON, so the corpus seeds
	// every family exactly and mutations edit its fields; odd, the rest is
	// DecodeFamily's (the family, the generator's seed, planted q values).
	flagOther = 1 << 7
)

// fallback is the case of bytes the other-family mode cannot use.
func fallback() cases.Case { return Decode(nil) }

// decodeOther is Decode's flagOther mode.
func decodeOther(r *reader) cases.Case {
	if r.byte()%2 == 1 {
		return DecodeFamily(r.b)
	}
	c, err := cases.Parse(r.b)
	if err != nil || c.Validate() != nil || props.Work(c) > MaxWork {
		return fallback()
	}
	c.Description = ""
	return c
}

// Float kinds.
const (
	floatBits16 = iota // 2 bytes: BF16 bits (FP16 bits for dtype fp16)
	floatMax
	floatNegMax
	floatMinSub
	floatNegMinSub
	floatF64 // 8 bytes
	floatF32 // 4 bytes
	numFloatKinds
)

// Scalar kinds.
const (
	scalarZero = iota
	scalarBF16 // 2 bytes
	scalarF64  // 8 bytes
	numScalarKinds
)

type reader struct{ b []byte }

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		if n < 0 { // overflow: skip the bytes it used
			r.b = r.b[-n:]
		} else {
			r.b = nil
		}
		return v
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) intn(n int) int { return int(r.uvarint() % uint64(n)) }

func (r *reader) u16() uint16 { return uint16(r.byte()) | uint16(r.byte())<<8 }

func (r *reader) u32() uint32 { return uint32(r.u16()) | uint32(r.u16())<<16 }

func (r *reader) u64() uint64 { return uint64(r.u32()) | uint64(r.u32())<<32 }

// bits16 decodes a 16-bit pattern of BF16, or of FP16 when fp16 is set.
func bits16(h uint16, fp16 bool) float64 {
	if fp16 {
		return float64(num.FP16ToF32(h))
	}
	return float64(num.BF16ToF32(h))
}

func (r *reader) float(fp16 bool) cases.Float {
	switch r.byte() % numFloatKinds {
	case floatBits16:
		return cases.F(bits16(r.u16(), fp16))
	case floatMax:
		return cases.Float{Name: "max"}
	case floatNegMax:
		return cases.Float{Name: "-max"}
	case floatMinSub:
		return cases.Float{Name: "minsub"}
	case floatNegMinSub:
		return cases.Float{Name: "-minsub"}
	case floatF64:
		return cases.F(math.Float64frombits(r.u64()))
	default:
		return cases.F(float64(math.Float32frombits(r.u32())))
	}
}

func (r *reader) scalar() float64 {
	switch r.byte() % numScalarKinds {
	case scalarBF16:
		return float64(num.BF16ToF32(r.u16()))
	case scalarF64:
		return math.Float64frombits(r.u64())
	}
	return 0
}

func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

// Decode turns any bytes into a valid Case. The layout (integers are
// uvarints reduced modulo their range; reading past the end gives zeros):
//
//	flags     1 byte: bit 0 family (sparse, window), bits 1-2 dtype ("",
//	          bf16, fp16, fp32), bit 3 shuffled indices, bit 4 permuted block
//	          table, bit 5 poison, bit 6 S = 2, bit 7 another family
//	          (flagOther: the rest is that mode's, below)
//	seed      uvarint
//	H, D      1..MaxH, 1..MaxD
//	sparse    B (1..MaxB), WIN, IDX_TOPK, block size (0 = 16), seqused × B
//	window    T (1..MaxT), W, Hkv (a divisor of H; 0 = H), Dv (0 = D)
//	values    dist byte, scale, v_scale (scalars), wide_exp
//	scale     softmax scale (scalar; 0 = D^-0.5)
//	sink      kind byte: nil, none, random (scale, offset scalars), const
//	          (one Float), per head (H Floats)
//	plants    count byte (0..5), one byte each
//	specials  count byte (0..8); each: tensor byte, token, head, key, dim,
//	          Float
//	tail      2-byte bit patterns (BF16; FP16 for dtype fp16) planted in
//	          order into q, then the keys (sparse: kv by token and index
//	          position; window: k, then v), at most MaxTail
//
// A scalar is a kind byte (0, BF16 bits, float64 bits) and its bytes; a
// Float is a kind byte (16-bit pattern, max, -max, minsub, -minsub, float64
// bits, float32 bits) and its bytes. Encode is the inverse for cases within
// these limits, and writes a case of another family as its JSON
// (flagOther).
func Decode(b []byte) cases.Case {
	r := &reader{b: b}
	flags := r.byte()
	if flags&flagOther != 0 {
		return decodeOther(r)
	}
	c := cases.Case{Family: problem.Sparse, DType: dtypes[(flags&flagDType)>>1]}
	if flags&flagWindow != 0 {
		c.Family = problem.Window
	}
	fp16 := c.DType == "fp16"
	c.Seed = r.uvarint()
	c.H, c.D = 1+r.intn(MaxH), 1+r.intn(MaxD)
	if c.Family == problem.Sparse {
		c.B = 1 + r.intn(MaxB)
		if flags&flagS2 != 0 {
			c.S = 2
		}
		c.Win, c.IdxTopK, c.BlockSize = r.intn(MaxWin+1), r.intn(MaxIdxTopK+1), r.intn(MaxBlock+1)
		if c.Win+c.IdxTopK == 0 {
			c.IdxTopK = 1
		}
		c.Seqused = make([]int, c.B)
		for i := range c.Seqused {
			c.Seqused[i] = r.intn(MaxSeqused + 1)
		}
		if flags&flagShuffled != 0 {
			c.Indices = "shuffled"
		}
		if flags&flagPermuted != 0 {
			c.BlockTable = "permuted"
		}
		c.Poison = flags&flagPoison != 0
	} else {
		c.T, c.Window = 1+r.intn(MaxT), r.intn(MaxT+1)
		if c.Hkv = r.intn(MaxH + 1); c.Hkv > 0 {
			c.Hkv = gcd(c.H, c.Hkv)
		}
		c.Dv = r.intn(MaxD + 1)
	}
	for props.Work(c) > MaxWork {
		switch {
		case c.H > 1:
			c.H = (c.H + 1) / 2
			if c.Hkv > 0 {
				c.Hkv = gcd(c.H, c.Hkv)
			}
		case c.D > 1:
			c.D = (c.D + 1) / 2
		case c.Dv > 1:
			c.Dv = (c.Dv + 1) / 2
		}
		if c.H == 1 && c.D == 1 && c.Dv <= 1 {
			break
		}
	}
	c.Values.Dist = dists[r.byte()%byte(len(dists))]
	c.Values.Scale = math.Abs(finite(r.scalar()))
	c.Values.VScale = math.Abs(finite(r.scalar()))
	c.Values.WideExp = int(r.byte()) % 121
	c.Scale = math.Abs(finite(r.scalar()))
	switch r.byte() % 5 {
	case 1:
		c.Sink = &cases.Sink{Kind: "none"}
	case 2:
		c.Sink = &cases.Sink{Kind: "random", Scale: finite(r.scalar()), Offset: finite(r.scalar())}
	case 3:
		c.Sink = &cases.Sink{Kind: "const", Value: r.float(false)}
	case 4:
		c.Sink = &cases.Sink{Kind: "const", Values: make([]cases.Float, c.H)}
		for h := range c.Sink.Values {
			c.Sink.Values[h] = r.float(false)
		}
	}
	for range r.byte() % 6 {
		if c.Family == problem.Sparse {
			c.Plant = append(c.Plant, plants[r.byte()%byte(len(plants))])
		} else {
			r.byte()
		}
	}
	t := c.Tokens()
	hkv, dv := 1, c.D
	if c.Family == problem.Window {
		hkv = c.H
		if c.Hkv > 0 {
			hkv = c.Hkv
		}
		if c.Dv > 0 {
			dv = c.Dv
		}
	}
	for range r.byte() % 9 {
		s := cases.Special{}
		tensor := r.byte()
		tok, head, key, dim := r.uvarint(), r.uvarint(), r.uvarint(), r.uvarint()
		mod := func(x uint64, n int) int { return int(x % uint64(max(n, 1))) }
		if tensor%2 == 0 {
			s.Tensor, s.Token, s.Head, s.Dim = "q", mod(tok, t), mod(head, c.H), mod(dim, c.D)
		} else if c.Family == problem.Sparse {
			s.Tensor, s.Token, s.Key, s.Dim = "kv", mod(tok, t), mod(key, c.Win+c.IdxTopK), mod(dim, c.D)
		} else {
			s.Tensor, s.Key, s.Head, s.Dim = "k", mod(key, t), mod(head, hkv), mod(dim, c.D)
			if tensor%4 == 3 {
				s.Tensor, s.Dim = "v", mod(dim, dv)
			}
		}
		s.Value = r.float(fp16)
		c.Specials = append(c.Specials, s)
	}
	c.Specials = append(c.Specials, tail(c, r, hkv, dv, fp16)...)
	return c
}

// tail plants the remaining 16-bit patterns in order: q (token, head,
// dim), then the keys each token attends (sparse: kv by token, index
// position and dim; window: k, then v, by position, KV head and dim).
func tail(c cases.Case, r *reader, hkv, dv int, fp16 bool) []cases.Special {
	var pos []cases.Special
	t := c.Tokens()
	add := func(s cases.Special) bool {
		if len(pos) >= MaxTail || len(pos) >= len(r.b)/2 {
			return false
		}
		pos = append(pos, s)
		return true
	}
	for p := 0; p < t*c.H*c.D && add(cases.Special{Tensor: "q", Token: p / (c.H * c.D), Head: p / c.D % c.H, Dim: p % c.D}); p++ {
	}
	if c.Family == problem.Sparse {
		in := &problem.Inputs{B: c.B, S: max(c.S, 1), T: t, Win: c.Win, TopK: c.Win + c.IdxTopK, Seqused: make([]int32, c.B)}
		for b, u := range c.Seqused {
			in.Seqused[b] = int32(u)
		}
	sparse:
		for tok := range t {
			for k := range in.TokenLens(tok).SparseK {
				for d := range c.D {
					if !add(cases.Special{Tensor: "kv", Token: tok, Key: k, Dim: d}) {
						break sparse
					}
				}
			}
		}
	} else {
		for p := 0; p < t*hkv*c.D && add(cases.Special{Tensor: "k", Key: p / (hkv * c.D), Head: p / c.D % hkv, Dim: p % c.D}); p++ {
		}
		for p := 0; p < t*hkv*dv && add(cases.Special{Tensor: "v", Key: p / (hkv * dv), Head: p / dv % hkv, Dim: p % dv}); p++ {
		}
	}
	var out []cases.Special
	for _, s := range pos {
		if len(r.b) < 2 {
			break
		}
		s.Value = cases.F(bits16(r.u16(), fp16))
		out = append(out, s)
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

type writer struct{ b []byte }

func (w *writer) byte(c byte)      { w.b = append(w.b, c) }
func (w *writer) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *writer) u16(v uint16)     { w.b = binary.LittleEndian.AppendUint16(w.b, v) }
func (w *writer) u64(v uint64)     { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *writer) intv(v int)       { w.uvarint(uint64(v)) }
func (w *writer) scalar(x float64) {
	if x == 0 && !math.Signbit(x) {
		w.byte(scalarZero)
		return
	}
	w.byte(scalarF64)
	w.u64(math.Float64bits(x))
}

func (w *writer) float(f cases.Float) {
	switch f.Name {
	case "max":
		w.byte(floatMax)
	case "-max":
		w.byte(floatNegMax)
	case "minsub":
		w.byte(floatMinSub)
	case "-minsub":
		w.byte(floatNegMinSub)
	default:
		w.byte(floatF64)
		w.u64(math.Float64bits(f.V))
	}
}

// Encode writes c in Decode's layout, so corpus cases can seed the fuzzer:
// Decode(Encode(c)) is c (without its description) for any valid case
// within the limits. Specials are written explicitly (no tail).
func Encode(c cases.Case) []byte {
	if c.Family != problem.Sparse && c.Family != problem.Window {
		return append([]byte{flagOther, 0}, c.Marshal()...)
	}
	w := &writer{}
	var flags byte
	if c.Family == problem.Window {
		flags |= flagWindow
	}
	flags |= byte(max(slices.Index(dtypes, c.DType), 0)) << 1
	if c.Indices == "shuffled" {
		flags |= flagShuffled
	}
	if c.BlockTable == "permuted" {
		flags |= flagPermuted
	}
	if c.Poison {
		flags |= flagPoison
	}
	if c.S == 2 {
		flags |= flagS2
	}
	w.byte(flags)
	w.uvarint(c.Seed)
	w.intv(c.H - 1)
	w.intv(c.D - 1)
	if c.Family == problem.Sparse {
		w.intv(c.B - 1)
		w.intv(c.Win)
		w.intv(c.IdxTopK)
		w.intv(c.BlockSize)
		for _, u := range c.Seqused {
			w.intv(u)
		}
	} else {
		w.intv(c.T - 1)
		w.intv(c.Window)
		w.intv(c.Hkv)
		w.intv(c.Dv)
	}
	w.byte(byte(max(slices.Index(dists, c.Values.Dist), 0)))
	w.scalar(c.Values.Scale)
	w.scalar(c.Values.VScale)
	w.byte(byte(c.Values.WideExp))
	w.scalar(c.Scale)
	switch {
	case c.Sink == nil:
		w.byte(0)
	case c.Sink.Values != nil:
		w.byte(4)
		for _, v := range c.Sink.Values {
			w.float(v)
		}
	case c.Sink.Kind == "none":
		w.byte(1)
	case c.Sink.Kind == "random":
		w.byte(2)
		w.scalar(c.Sink.Scale)
		w.scalar(c.Sink.Offset)
	default:
		w.byte(3)
		w.float(c.Sink.Value)
	}
	w.byte(byte(len(c.Plant)))
	for _, p := range c.Plant {
		w.byte(byte(slices.Index(plants, p)))
	}
	w.byte(byte(len(c.Specials)))
	for _, s := range c.Specials {
		var tensor byte
		switch s.Tensor {
		case "kv", "k":
			tensor = 1
		case "v":
			tensor = 3
		}
		w.byte(tensor)
		w.intv(s.Token)
		w.intv(s.Head)
		w.intv(s.Key)
		w.intv(s.Dim)
		w.float(s.Value)
	}
	return w.b
}
