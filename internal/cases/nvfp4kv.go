package cases

import (
	"fmt"
	"math"

	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/quant"
)

// NVFP4 KV cases (nvfp4_kv: true), flashinfer's NVFP4 KV cache
// (problem.DenseNVFP4KV): the drawn K and V are quantized as
// flashinfer's nvfp4_quantize_paged_kv_cache does, with the global scale
// g = FP32(1/FP32(448/amax)) over the whole cache (so block scales lie in
// [0, 448/6]) and quant.QuantizeNVFP4 per 16 values of a head; an edge
// class then rewrites some codes or block scales, and K and V become the
// dequantized T(FP32(e2m1·e4m3·g)).
const (
	// NVFP4EdgeZero: about one block in three all zero codes with a zero
	// block scale.
	NVFP4EdgeZero = "zero_blocks"
	// NVFP4EdgeMax: one value per block at the block max, code ±6 (6·scale).
	NVFP4EdgeMax = "block_max"
	// NVFP4EdgeScale: about one block in three gets e4m3's smallest
	// subnormal scale 2^−9 and one in three its largest, 448.
	NVFP4EdgeScale = "scale_extremes"
)

func (c Case) validateNVFP4KV() error {
	if !c.NVFP4KV {
		if c.NVFP4Edge != "" {
			return fmt.Errorf("nvfp4_edge without nvfp4_kv")
		}
		return nil
	}
	if c.Family != problem.Dense || c.FP8 != "" || c.Int8KV != "" {
		return fmt.Errorf("nvfp4_kv is a dense field, not with fp8 or int8_kv")
	}
	if c.Poison || len(c.Specials) > 0 {
		return fmt.Errorf("nvfp4_kv: poison and specials are not supported (the cache holds e2m1 codes)")
	}
	if c.D%quant.NVBlock != 0 || c.dv()%quant.NVBlock != 0 {
		return fmt.Errorf("nvfp4_kv needs d and dv multiples of %d (got d=%d, dv=%d)", quant.NVBlock, c.D, c.dv())
	}
	switch c.NVFP4Edge {
	case "", NVFP4EdgeZero, NVFP4EdgeMax, NVFP4EdgeScale:
	default:
		return fmt.Errorf("nvfp4_edge %q: want %s, %s or %s", c.NVFP4Edge, NVFP4EdgeZero, NVFP4EdgeMax, NVFP4EdgeScale)
	}
	return nil
}

func (c Case) nvfp4KV(in *problem.Inputs, r *rng) error {
	q := &problem.DenseNVFP4KV{}
	var err error
	if q.KCodes, q.KBlock, q.KGlobal, err = c.quantizeNVFP4(in.K, r); err != nil {
		return err
	}
	if q.VCodes, q.VBlock, q.VGlobal, err = c.quantizeNVFP4(in.V, r); err != nil {
		return err
	}
	if err := problem.DequantNVFP4KV(in.K, q.KCodes, q.KBlock, q.KGlobal, in.Format); err != nil {
		return err
	}
	if err := problem.DequantNVFP4KV(in.V, q.VCodes, q.VBlock, q.VGlobal, in.Format); err != nil {
		return err
	}
	in.NVFP4KV = q
	return nil
}

// quantizeNVFP4 quantizes x (a whole number of 16-value blocks) into
// packed codes, block scales and the global scale, then applies the edge.
func (c Case) quantizeNVFP4(x []float32, r *rng) (packed, block []uint8, g float32, err error) {
	var amax float64
	for _, v := range x {
		amax = math.Max(amax, math.Abs(float64(v)))
	}
	gsf := float32(448 / math.Max(amax, 1e-12)) // flashinfer: torch.tensor([448 / max(amax, 1e-12)], float32)
	g = 1 / gsf                                 // (1.0 / k_global_sf), an FP32 division
	codes := make([]uint8, len(x))
	block = make([]uint8, len(x)/quant.NVBlock)
	if err = quant.QuantizeNVFP4(codes, block, x, g); err != nil {
		return nil, nil, 0, err
	}
	for b := range block {
		cs := codes[b*quant.NVBlock : (b+1)*quant.NVBlock]
		switch c.NVFP4Edge {
		case NVFP4EdgeZero:
			if r.intn(3) == 0 {
				block[b] = 0
				clear(cs)
			}
		case NVFP4EdgeMax:
			cs[r.intn(quant.NVBlock)] = uint8(0x7 | 0x8*r.intn(2)) // ±6
		case NVFP4EdgeScale:
			switch r.intn(3) {
			case 0:
				block[b] = 0x01 // 2^−9, e4m3's smallest subnormal
			case 1:
				block[b] = 0x7e // 448, e4m3's largest
			}
		}
	}
	packed = make([]uint8, len(x)/2)
	if err = quant.PackE2M1(packed, codes); err != nil {
		return nil, nil, 0, err
	}
	return packed, block, g, nil
}
