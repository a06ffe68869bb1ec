package interop

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/kvlayout"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/quant"
)

// Metadata of quantized inputs (CONTRACTS.md "Quantized inputs").
const (
	KeyKVLayout = "kv_layout" // mla: bf16 (default) | fp8_v32 | fp8_model1
	KeyDequant  = "dequant"   // exact (default) | bf16 | fp32
)

// QuantKeys are the problem keys of quantized inputs.
var QuantKeys = []string{KeyKVLayout, KeyDequant}

// mlaLayout reads kv_layout and dequant: ok is false for the BF16 cache.
func (d *decoder) mlaLayout() (l kvlayout.Layout, dq quant.Dequant, ok bool, err error) {
	s := strings.ToLower(strings.TrimSpace(d.meta[KeyKVLayout]))
	if s == "" || s == "bf16" {
		if v, has := d.meta[KeyDequant]; has && strings.TrimSpace(v) != "" && strings.TrimSpace(v) != "exact" {
			return 0, 0, false, metaErr(KeyDequant, "%q given for a BF16 cache (kv_layout bf16): nothing is dequantized", v)
		}
		return 0, 0, false, nil
	}
	if l, err = kvlayout.ParseLayout(s); err != nil {
		return 0, 0, false, metaErr(KeyKVLayout, "%q, want bf16, fp8_v32 or fp8_model1", d.meta[KeyKVLayout])
	}
	if dq, err = quant.ParseDequant(strings.ToLower(strings.TrimSpace(d.meta[KeyDequant]))); err != nil {
		return 0, 0, false, metaErr(KeyDequant, "%q, want exact, bf16 or fp32", d.meta[KeyDequant])
	}
	return l, dq, true, nil
}

// fp8Cache reads an FP8 cache tensor [NB, pbs, 1, bytes_per_token] (or
// [NB, pbs, bytes_per_token]) of dtype U8, I8 or F8_E4M3 (the bytes decide)
// and returns its raw bytes, page size and dequantized rows; each value
// must be representable in the declared in_dtype (the GEMM operand).
func (d *decoder) fp8Cache(ct *bundle.Tensor, l kvlayout.Layout, dq quant.Dequant, dqk int, in num.Format) (raw []byte, pbs int, rows []float32, err error) {
	if ct.DType.ItemSize() != 1 {
		return nil, 0, nil, fmt.Errorf("tensor %s: dtype %s, want U8 or F8_E4M3 raw bytes for kv_layout %s", ct.Name, ct.DType, l)
	}
	bpt := l.BytesPerToken()
	if ct.Shape[len(ct.Shape)-1] != bpt || (len(ct.Shape) == 4 && ct.Shape[2] != 1) {
		return nil, 0, nil, fmt.Errorf("tensor %s: shape %v, want [NB, page_block_size, 1, %d] (kv_layout %s)", ct.Name, ct.Shape, bpt, l)
	}
	if dqk != l.DQK() {
		return nil, 0, nil, fmt.Errorf("tensor q: d_qk = %d, but kv_layout %s has d_qk %d", dqk, l, l.DQK())
	}
	pbs = ct.Shape[1]
	if pbs < 1 {
		return nil, 0, nil, fmt.Errorf("tensor %s: shape %v: pages of no token", ct.Name, ct.Shape)
	}
	if ct.Shape[0] == 0 {
		return []byte{}, pbs, []float32{}, nil // no rows: every index must be −1
	}
	q := &problem.MLAQuant{Layout: l, Dequant: dq, Raw: ct.Data, PBS: pbs}
	hint := ""
	if dq == quant.Exact {
		hint = " (scales that are not powers of two: declare dequant=bf16 for FlashMLA's SM90 path, or fp32)"
	}
	rows, _, err = q.Dequantized(nil)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("tensor %s: %v%s", ct.Name, err, hint)
	}
	if in != num.FP32 && in != num.FP64 {
		for i, x := range rows {
			if x == x && num.Round32(in, x, num.RNE) != x && !math.IsInf(float64(x), 0) {
				return nil, 0, nil, fmt.Errorf("tensor %s: slot %d column %d dequantizes (dequant=%s) to %s, not representable in the declared in_dtype %s%s",
					ct.Name, i/dqk, i%dqk, dq, strconv.FormatFloat(float64(x), 'g', -1, 32), in, hint)
			}
		}
	}
	return ct.Data, pbs, rows, nil
}

// encodeFP8 writes an FP8 scope's cache as the raw U8 tensor
// [NB, pbs, 1, bytes_per_token] and the layout keys.
func encodeFP8(f *bundle.File, q *problem.MLAQuant, extra bool) error {
	raw, pbs, name := q.Raw, q.PBS, TKCache
	if extra {
		raw, pbs, name = q.ExtraRaw, q.ExtraPBS, TExtraKCache
	}
	bpt := q.Layout.BytesPerToken()
	if pbs < 1 {
		pbs = 1
	}
	t, err := bundle.NewBytes(name, bundle.U8, []int{len(raw) / (pbs * bpt), pbs, 1, bpt}, raw)
	if err != nil {
		return err
	}
	f.Add(t)
	f.Metadata[KeyKVLayout] = q.Layout.String()
	f.Metadata[KeyDequant] = q.Dequant.String()
	return nil
}
