package cases

import (
	"fmt"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/quant"
)

// NVFP4 KV cases (nvfp4_kv: true), flashinfer's NVFP4 KV cache
// (problem.DenseNVFP4KV): the drawn K and V are quantized by
// problem.Inputs.QuantizeNVFP4KV (flashinfer's nvfp4_quantize_paged_kv_cache,
// amax-based global scale; attnvet export --quantize calls the same
// function); an edge class then rewrites some codes or block scales, and K
// and V become the dequantized T(FP32(e2m1·e4m3·g)).
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
	return in.QuantizeNVFP4KV(func(codes, block []uint8) { c.nvfp4Edge(codes, block, r) })
}

// nvfp4Edge applies the case's edge class to one cache's unpacked codes
// and block scales.
func (c Case) nvfp4Edge(codes, block []uint8, r *rng) {
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
}
