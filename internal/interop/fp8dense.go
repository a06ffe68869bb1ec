package interop

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/quant"
)

// Tensors and metadata of dense FP8 inputs (FlashAttention 3;
// CONTRACTS.md "Quantized inputs"): q, k, v (or k_cache, v_cache) in
// F8_E4M3 (or any float dtype holding e4m3 values with in_dtype=e4m3),
// q_descale, k_descale, v_descale F32 [B, Hkv] (absent = 1; the q descale
// is indexed by KV head), p_dtype=e4m3 (P rounded to e4m3 after the +8
// max offset) and acc_bits (the FP8 GEMMs' accumulator significand bits).
const (
	TQDescale  = "q_descale"
	TKDescale  = "k_descale"
	TVDescale  = "v_descale"
	KeyAccBits = "acc_bits"
	// DTypeE4M3 is the in_dtype / p_dtype value of e4m3 operands.
	DTypeE4M3 = "e4m3"
)

// FP8DenseKeys are the dense FP8 problem keys.
var FP8DenseKeys = []string{KeyAccBits}

func isE4M3(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "e4m3", "e4m3fn", "float8_e4m3fn", "torch.float8_e4m3fn", "f8_e4m3":
		return true
	}
	return false
}

// profileMeta is the metadata ResolveProfile reads: in_dtype=e4m3 and
// p_dtype=e4m3 name the FP8 operands and P of a dense FP8 problem, which
// the profile sees as FP32 (e4m3 values are FP32 values); denseFP8 reads
// them into problem.DenseFP8.
func (d *decoder) profileMeta() map[string]string {
	if !isE4M3(d.meta[KeyInDType]) && !isE4M3(d.meta[KeyPDType]) {
		return d.meta
	}
	m := make(map[string]string, len(d.meta))
	for k, v := range d.meta {
		m[k] = v
	}
	for _, k := range []string{KeyInDType, KeyPDType} {
		if isE4M3(m[k]) {
			m[k] = "fp32"
		}
	}
	return m
}

// denseFP8 reads a dense problem's FP8 declaration: FP8 when q is
// F8_E4M3, in_dtype is e4m3 or a descale tensor is present.
func (d *decoder) denseFP8(in *problem.Inputs, qt *bundle.Tensor) error {
	var ds [3]*bundle.Tensor
	any := false
	for i, name := range []string{TQDescale, TKDescale, TVDescale} {
		t, err := d.tensor(name, false, "[B, Hkv] fp32", 2)
		if err != nil {
			return err
		}
		ds[i] = t
		any = any || t != nil
	}
	fp8 := qt.DType == bundle.F8E4M3 || isE4M3(d.meta[KeyInDType]) || any
	_, hasAcc := d.meta[KeyAccBits]
	if !fp8 {
		if isE4M3(d.meta[KeyPDType]) || hasAcc {
			return fmt.Errorf("metadata p_dtype=e4m3 and acc_bits declare FP8 GEMMs: q, k, v must be FP8 (F8_E4M3, or in_dtype=e4m3)")
		}
		return nil
	}
	f := &problem.DenseFP8{PE4M3: isE4M3(d.meta[KeyPDType])}
	bits, _, err := d.intMeta(KeyAccBits, 0, 0)
	if err != nil {
		return err
	}
	if bits != 0 && (bits < 2 || bits > 24) {
		return metaErr(KeyAccBits, "%d, want 2..24 significand bits (absent: full FP32)", bits)
	}
	f.AccBits = bits
	nb := len(in.CuQ) - 1
	for i, t := range ds {
		if t == nil {
			continue
		}
		if t.Shape[0] != nb || t.Shape[1] != in.Hkv {
			return fmt.Errorf("tensor %s: shape %v, want [B, Hkv] = [%d, %d] (FA3 indexes every descale by KV head)", t.Name, t.Shape, nb, in.Hkv)
		}
		v, err := d.floats(t, num.FP32, "descales are fp32")
		if err != nil {
			return err
		}
		switch i {
		case 0:
			f.QDescale = v
		case 1:
			f.KDescale = v
		default:
			f.VDescale = v
		}
	}
	for _, x := range []struct {
		name string
		v    []float32
	}{{TQ, in.Q}, {TK, in.K}, {TV, in.V}} {
		for i, v := range x.v {
			if v == v && quant.E4M3ToF32(quant.E4M3FromF32(v, quant.NoSaturate)) != v {
				return fmt.Errorf("tensor %s: value %s at flat index %d is not an e4m3 value (FP8 inputs: q, k, v hold e4m3fn codes)",
					x.name, strconv.FormatFloat(float64(v), 'g', -1, 32), i)
			}
		}
	}
	in.FP8 = f
	return nil
}

// encodeFP8Dense rewrites an FP8 problem's q, k, v (or k_cache, v_cache)
// as F8_E4M3 tensors and adds the descales and declarations.
func encodeFP8Dense(f *bundle.File, in *problem.Inputs) error {
	fp := in.FP8
	if fp == nil {
		return nil
	}
	for _, name := range []string{TQ, TK, TV, TKCache, TVCache} {
		t := f.Tensors[name]
		if t == nil {
			continue
		}
		v, err := t.Float32s()
		if err != nil {
			return err
		}
		nt, err := bundle.NewFloat32(name, bundle.F8E4M3, t.Shape, v)
		if err != nil {
			return err
		}
		f.Add(nt)
	}
	nb := len(in.CuQ) - 1
	for i, d := range [][]float32{fp.QDescale, fp.KDescale, fp.VDescale} {
		if d == nil {
			continue
		}
		t, err := bundle.NewFloat32([]string{TQDescale, TKDescale, TVDescale}[i], bundle.F32, []int{nb, in.Hkv}, d)
		if err != nil {
			return err
		}
		f.Add(t)
	}
	m := f.Metadata
	delete(m, KeyProfile)
	m[KeyInDType] = DTypeE4M3
	if fp.PE4M3 {
		m[KeyPDType] = DTypeE4M3
	}
	if fp.AccBits > 0 {
		m[KeyAccBits] = strconv.Itoa(fp.AccBits)
	}
	return nil
}
