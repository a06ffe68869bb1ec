package cases

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/attnvet/attnvet/internal/kvlayout"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/quant"
)

// Quantized mla cases (CONTRACTS.md "Quantized inputs"): the case fields
// KVLayout (fp8_v32 | fp8_model1), Dequant (exact | bf16 | fp32; default
// bf16, FlashMLA SM90), FP8Scales (pow2: FlashMLA's reference quantizer,
// the default; fp32: V32 only, inv = FP32(max(amax/448, 1e−4)), not a power
// of two, the scales PR #184's UE8M0 conversion gets wrong) and FP8Edges
// (per-tile edge classes: all zeros, the 2^−13 scale floor with codes at
// the e4m3 subnormal edge, huge scales, a value at exactly ±448·scale)).

func (c Case) validateQuant() error {
	if c.KVLayout == "" {
		if c.Dequant != "" || c.FP8Scales != "" || c.FP8Edges {
			return fmt.Errorf("dequant, fp8_scales and fp8_edges need kv_layout")
		}
		return nil
	}
	if c.Family != problem.MLA {
		return fmt.Errorf("kv_layout is an mla field")
	}
	l, err := kvlayout.ParseLayout(c.KVLayout)
	if err != nil {
		return err
	}
	if c.D != l.DQK() || c.dv() > l.DV() {
		return fmt.Errorf("kv_layout %s: d must be %d and dv ≤ %d (got d=%d dv=%d)", l, l.DQK(), l.DV(), c.D, c.dv())
	}
	if c.DType != "bf16" {
		return fmt.Errorf("kv_layout %s: dtype must be bf16 (q and the RoPE part are BF16)", l)
	}
	dq, err := quant.ParseDequant(c.Dequant)
	if err != nil {
		return err
	}
	switch c.FP8Scales {
	case "", "pow2":
	case "fp32":
		if l != kvlayout.V32 {
			return fmt.Errorf("fp8_scales fp32: only fp8_v32 stores FP32 scales")
		}
		if c.Dequant == "" || dq == quant.Exact || dq == quant.FP32 {
			return fmt.Errorf("fp8_scales fp32 needs dequant bf16 (exact and fp32 products are not BF16 values)")
		}
	default:
		return fmt.Errorf("fp8_scales %q: want pow2 or fp32", c.FP8Scales)
	}
	return nil
}

func (c Case) dequantMode() quant.Dequant {
	if c.Dequant == "" {
		return quant.BF16
	}
	d, _ := quant.ParseDequant(c.Dequant)
	return d
}

// mlaQuantize turns the BF16 caches c.mla built into FP8 caches with
// problem.Inputs.QuantizeMLA (as attnvet export --quantize does), encoding
// each scope with encodeFP8: rows holding a NaN (the poisoned ones) become
// all-0xFF bytes (NaN codes, scales and RoPE); the others are quantized per
// tile; the problem's caches become the dequantized rows.
func (c Case) mlaQuantize(in *problem.Inputs, r *rng) error {
	l, _ := kvlayout.ParseLayout(c.KVLayout)
	return in.QuantizeMLA(l, c.dequantMode(), c.blockSize(), c.blockSize(), func(rows []float32, _ int) ([]byte, error) {
		return c.encodeFP8(l, rows, r)
	})
}

func (c Case) encodeFP8(l kvlayout.Layout, rows []float32, r *rng) ([]byte, error) {
	d, pbs, tile := l.DQK(), c.blockSize(), l.Tile()
	n := len(rows) / d
	k := append([]float32(nil), rows...)
	poisoned := make([]bool, n)
	for s := range n {
		row := k[s*d : (s+1)*d]
		for _, v := range row {
			if v != v {
				poisoned[s] = true
			}
		}
		if poisoned[s] {
			clear(row)
			continue
		}
		if !c.FP8Edges {
			continue
		}
		for t := range l.Scales() {
			x := row[t*tile : (t+1)*tile]
			switch r.intn(8) {
			case 0: // all zeros
				clear(x)
			case 1: // tiny: the 2^−13 scale floor, codes at the subnormal edge
				for j := range x {
					x[j] = float32(math.Ldexp(float64(r.intn(16)-8), -22))
				}
			case 2: // huge scale
				for j := range x {
					x[j] = float32(math.Ldexp(float64(x[j]), 12))
				}
			case 3: // amax at exactly 448·2^e: the code ±448
				x[r.intn(tile)] = float32(math.Copysign(448*math.Ldexp(1, r.intn(6)-8), float64(r.intn(2)*2-1)))
			}
		}
	}
	raw, err := kvlayout.Encode(l, k, n/pbs, pbs)
	if err != nil {
		return nil, err
	}
	if c.FP8Scales == "fp32" { // V32: re-quantize with the non-power-of-two scale
		for s := range n {
			if poisoned[s] {
				continue
			}
			base := s * 656
			for t := range l.Scales() {
				x := k[s*d+t*tile : s*d+(t+1)*tile]
				amax := float32(0)
				for _, v := range x {
					amax = max(amax, float32(math.Abs(float64(v))))
				}
				inv := max(amax/448, float32(1e-4))
				binary.LittleEndian.PutUint32(raw[base+512+4*t:], math.Float32bits(inv))
				for j, v := range x {
					raw[base+t*tile+j] = quant.E4M3FromF32(v/inv, quant.NoSaturate)
				}
			}
		}
	}
	for s, p := range poisoned {
		if !p {
			continue
		}
		if l == kvlayout.V32 {
			fill(raw[s*656 : (s+1)*656])
			continue
		}
		page, off := (s/pbs)*pbs*584, s%pbs
		fill(raw[page+off*576 : page+(off+1)*576])
		fill(raw[page+pbs*576+off*8 : page+pbs*576+off*8+8])
	}
	return raw, nil
}

func fill(b []byte) {
	for i := range b {
		b[i] = 0xFF
	}
}
