package interop

import (
	"fmt"
	"math"
	"strings"

	"github.com/attnvet/attnvet/internal/kvlayout"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/quant"
)

// Quantization schemes of attnvet export --quantize: each is the
// generator's case field of the same source (int8_kv, nvfp4_kv, int4_kv, mla
// kv_layout), applied to float inputs.
const (
	QuantInt8PerTensor  = "int8_per_tensor"  // dense: ORT per-tensor INT8 K/V
	QuantInt8PerChannel = "int8_per_channel" // dense: ORT per-channel INT8 K/V
	QuantNVFP4          = "nvfp4"            // dense: flashinfer NVFP4 K/V
	QuantInt4PerTensor  = "int4_per_tensor"  // dense: ORT per-tensor INT4 K/V
	QuantInt4PerChannel = "int4_per_channel" // dense: ORT per-channel INT4 K/V
	QuantFP8V32         = "fp8_v32"          // mla: FlashMLA V32 FP8 cache
	QuantFP8Model1      = "fp8_model1"       // mla: FlashMLA MODEL1 FP8 cache
)

// QuantSchemes lists the schemes in help order (the INT4 ones, added
// last, are dense); DenseQuantSchemes and MLAQuantSchemes by family.
var (
	QuantSchemes      = []string{QuantInt8PerTensor, QuantInt8PerChannel, QuantNVFP4, QuantFP8V32, QuantFP8Model1, QuantInt4PerTensor, QuantInt4PerChannel}
	DenseQuantSchemes = []string{QuantInt8PerTensor, QuantInt8PerChannel, QuantNVFP4, QuantInt4PerTensor, QuantInt4PerChannel}
	MLAQuantSchemes   = []string{QuantFP8V32, QuantFP8Model1}
)

// QuantDequant is the dequantization an mla scheme declares: FlashMLA
// SM90's BF16 path, the default of the generator's kv_layout cases.
const QuantDequant = quant.BF16

// Quantize quantizes a float problem's K and V (dense) or KV caches (mla)
// in place with the source's reference quantizer, the function the
// generator's case field calls (problem.Inputs.QuantizeInt8KV,
// QuantizeNVFP4KV, QuantizeInt4KV, QuantizeMLA with FlashMLA's power-of-two per-tile
// scales): every scale is amax-based, nothing is drawn. The problem's K/V
// become the dequantized values, so the reference is the exact attention
// of those; the quantization error is the model's, not the kernel's. pbs
// and extraPBS are the mla caches' page sizes (tokens per page). The
// error names the scheme, the tensor or the row at fault.
func Quantize(in *problem.Inputs, scheme string, pbs, extraPBS int) error {
	mla := false
	switch scheme {
	case QuantInt8PerTensor, QuantInt8PerChannel, QuantNVFP4, QuantInt4PerTensor, QuantInt4PerChannel:
	case QuantFP8V32, QuantFP8Model1:
		mla = true
	default:
		return fmt.Errorf("--quantize %q: want %s", scheme, strings.Join(QuantSchemes, ", "))
	}
	if q := quantizedAs(in); q != "" {
		return fmt.Errorf("--quantize %s: the inputs are already quantized (%s); it takes float K/V", scheme, q)
	}
	if want := map[bool]problem.Family{false: problem.Dense, true: problem.MLA}[mla]; in.Family != want {
		return fmt.Errorf("--quantize %s is a %s scheme, and this is a %s problem (dense: %s; mla: %s)",
			scheme, want, in.Family, strings.Join(DenseQuantSchemes, ", "), strings.Join(MLAQuantSchemes, ", "))
	}
	if mla {
		return quantizeMLA(in, scheme, pbs, extraPBS)
	}
	if scheme == QuantNVFP4 && (in.D%quant.NVBlock != 0 || in.Dv%quant.NVBlock != 0) {
		return fmt.Errorf("--quantize nvfp4: D=%d and Dv=%d must be multiples of the block size %d (one e4m3 scale per 16 values of a head)", in.D, in.Dv, quant.NVBlock)
	}
	if (scheme == QuantInt4PerTensor || scheme == QuantInt4PerChannel) && (in.D%2 != 0 || in.Dv%2 != 0) {
		return fmt.Errorf("--quantize %s: D=%d and Dv=%d must be even (two INT4 codes a byte; ORT's GroupQueryAttention wants head_size %% 8 == 0)", scheme, in.D, in.Dv)
	}
	kn, vn := TK, TV
	if in.Paged() {
		kn, vn = TKCache, TVCache
	}
	if err := finiteRows(kn, in.K, in.Hkv, in.D, "key row"); err != nil {
		return err
	}
	if err := finiteRows(vn, in.V, in.Hkv, in.Dv, "key row"); err != nil {
		return err
	}
	if scheme == QuantNVFP4 {
		return in.QuantizeNVFP4KV(nil)
	}
	if scheme == QuantInt4PerTensor || scheme == QuantInt4PerChannel {
		return in.QuantizeInt4KV(scheme == QuantInt4PerChannel)
	}
	in.QuantizeInt8KV(scheme == QuantInt8PerChannel)
	return nil
}

// quantizedAs names the quantization in already has, "" for none.
func quantizedAs(in *problem.Inputs) string {
	switch {
	case in.FP8 != nil:
		return "FP8 dense inputs"
	case in.Int8KV != nil:
		return "INT8 K/V"
	case in.NVFP4KV != nil:
		return "NVFP4 K/V"
	case in.Int4KV != nil:
		return "INT4 K/V"
	case in.MLAQuant != nil:
		return "kv_layout " + in.MLAQuant.Layout.String()
	}
	return ""
}

func quantizeMLA(in *problem.Inputs, scheme string, pbs, extraPBS int) error {
	l, err := kvlayout.ParseLayout(scheme)
	if err != nil {
		return err
	}
	if in.D != l.DQK() || in.Dv > l.DV() {
		return fmt.Errorf("--quantize %s: d_qk must be %d and d_v ≤ %d (got d_qk=%d, d_v=%d)", scheme, l.DQK(), l.DV(), in.D, in.Dv)
	}
	if in.Format != num.BF16 {
		return fmt.Errorf("--quantize %s: in_dtype must be bf16 (q and the cache's RoPE part are BF16), got %s", scheme, in.Format)
	}
	for _, c := range []struct {
		name  string
		cache []float32
		pbs   int
	}{{TKCache, in.Cache, pbs}, {TExtraKCache, in.ExtraCache, extraPBS}} {
		if len(c.cache) == 0 {
			continue
		}
		if rows := len(c.cache) / in.D; c.pbs < 1 || rows%c.pbs != 0 {
			return fmt.Errorf("--quantize %s: tensor %s: %d rows are not whole pages of %d tokens", scheme, c.name, rows, c.pbs)
		}
		if err := finiteRows(c.name, c.cache, 1, in.D, "row"); err != nil {
			return err
		}
	}
	return in.QuantizeMLA(l, QuantDequant, pbs, extraPBS, nil)
}

// finiteRows reports the first NaN or Inf of x ([rows][heads][w]).
func finiteRows(name string, x []float32, heads, w int, row string) error {
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			where := fmt.Sprintf("%s %d, column %d", row, i/(heads*w), i%w)
			if heads > 1 {
				where = fmt.Sprintf("%s %d, kv head %d, column %d", row, i/(heads*w), i/w%heads, i%w)
			}
			return fmt.Errorf("tensor %s: %v at %s: the values to quantize must be finite", name, v, where)
		}
	}
	return nil
}
