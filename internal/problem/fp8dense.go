package problem

import (
	"fmt"
	"math"
)

// DenseFP8 is a dense problem whose q, k and v are FlashAttention 3's FP8
// operands (CONTRACTS.md "Quantized inputs"): the tensors Q, K and V of the
// problem hold the e4m3 codes' values (exact in float32), and the
// dequantized inputs are q̂ = q·q_descale[b, g], k̂ = k·k_descale[b, g],
// v̂ = v·v_descale[b, g] for sequence b and KV head g (the q descale is
// indexed by the KV head its query head reads). The reference is the exact
// attention of q̂, k̂, v̂: the quantization error belongs to whoever
// quantized, not to the kernel.
type DenseFP8 struct {
	// QDescale, KDescale, VDescale are [B·Hkv] (b·Hkv + g); nil = all 1.
	QDescale, KDescale, VDescale []float32
	// PE4M3 declares P rounded to e4m3 (RN, satfinite) after FA3's max
	// offset: p = 2^8·e^{x−m} ∈ [0, 256] (metadata p_dtype=e4m3).
	PE4M3 bool
	// AccBits is the significand precision (bits, the leading one
	// included) the FP8 GEMMs keep while accumulating Q·Kᵀ and P·V
	// (metadata acc_bits; Hopper ≈ 14); 0 = full FP32.
	AccBits int
}

// FP8MaxOffset is FA3's max offset for FP8: P = e4m3(2^8·e^{x−m}).
const FP8MaxOffset = 8

// VFP8Descale: a descale that is not a positive normal FP32 number, or
// whose product with softmax_scale (the FP32 exponent scale the kernel
// folds them into) is not one: no FP32 kernel computes the stated problem.
const VFP8Descale = "fp8_descale_out_of_range"

// fp8Slot is the descale index of token t's sequence and KV head g.
func (in *Inputs) fp8Slot(t, g int) int { return in.DenseSeq(t).B*in.Hkv + g }

func descaleAt(d []float32, i int) float32 {
	if d == nil {
		return 1
	}
	return d[i]
}

// Descales are token t's q, k and v descales through KV head g (1 without
// FP8 inputs).
func (in *Inputs) Descales(t, g int) (qd, kd, vd float32) {
	f := in.FP8
	if f == nil {
		return 1, 1, 1
	}
	i := in.fp8Slot(t, g)
	return descaleAt(f.QDescale, i), descaleAt(f.KDescale, i), descaleAt(f.VDescale, i)
}

// RowScale is the exact score scale of token t, query head h:
// softmax_scale·q_descale·k_descale (softmax_scale without FP8 inputs),
// and the v descale the row's output is multiplied by.
func (in *Inputs) RowScale(t, h int) (scale, vd float64) {
	if in.FP8 == nil {
		return in.Scale, 1
	}
	qd, kd, v := in.Descales(t, in.Group(h))
	return in.Scale * float64(qd) * float64(kd), float64(v)
}

// KernelScale is the FP32 exponent scale an FP8 kernel folds the descales
// into for token t, KV head g: float32(float32(scale)·q_descale)·k_descale,
// each product rounded.
func (in *Inputs) KernelScale(t, g int) float32 {
	s := float32(in.Scale)
	if in.FP8 == nil {
		return s
	}
	qd, kd, _ := in.Descales(t, g)
	return float32(float32(s*qd) * kd)
}

// MaxDescales are the largest v descale and the largest exact score scale
// over every (sequence, KV head) (1 and softmax_scale without FP8).
func (in *Inputs) MaxDescales() (scale, vd float64) {
	scale, vd = in.Scale, 1
	f := in.FP8
	if f == nil {
		return scale, vd
	}
	vd = 0
	for i := range (len(in.CuQ) - 1) * in.Hkv {
		scale = math.Max(scale, in.Scale*float64(descaleAt(f.QDescale, i))*float64(descaleAt(f.KDescale, i)))
		vd = math.Max(vd, float64(descaleAt(f.VDescale, i)))
	}
	return scale, vd
}

// descaleNames are the descale tensors' names, in the order of all.
var descaleNames = [3]string{"q_descale", "k_descale", "v_descale"}

func (f *DenseFP8) all() [3][]float32 { return [3][]float32{f.QDescale, f.KDescale, f.VDescale} }

func (in *Inputs) checkFP8() error {
	f := in.FP8
	if f == nil {
		return nil
	}
	if in.Family != Dense {
		return fmt.Errorf("q/k/v descales and p_dtype=e4m3 are dense-family inputs (family %s)", in.Family)
	}
	if len(in.CuQ) < 2 {
		return nil // checkDense reports it
	}
	n := (len(in.CuQ) - 1) * in.Hkv
	for i, d := range f.all() {
		name := descaleNames[i]
		if d != nil {
			if err := wantLen(name, len(d), n); err != nil {
				return fmt.Errorf("%v ([B, Hkv] = [%d, %d])", err, len(in.CuQ)-1, in.Hkv)
			}
		}
	}
	if f.AccBits != 0 && (f.AccBits < 2 || f.AccBits > 24) {
		return fmt.Errorf("acc_bits %d: want 2..24 significand bits (0 or absent: full FP32)", f.AccBits)
	}
	return nil
}

// fp8Violations reports descales no FP32 kernel can use (NaN codes in q, k
// or v are NaN values: nonfinite_input reports them).
func (in *Inputs) fp8Violations(add func(string, int, string, ...any)) {
	f := in.FP8
	if f == nil || len(in.CuQ) < 2 {
		return
	}
	normal := func(x float64) bool { return x >= 0x1p-126 && x <= math.MaxFloat32 }
	for j, d := range f.all() {
		name := descaleNames[j]
		for i, x := range d {
			if !normal(float64(x)) {
				add(VFP8Descale, -1, "%s[%d, %d] = %v: want a positive normal FP32 number", name, i/in.Hkv, i%in.Hkv, x)
				return
			}
		}
	}
	s := float32(in.Scale)
	for i := range (len(in.CuQ) - 1) * in.Hkv {
		ks := float32(float32(s*descaleAt(f.QDescale, i)) * descaleAt(f.KDescale, i))
		if !normal(float64(ks)) {
			add(VFP8Descale, -1, "softmax_scale·q_descale·k_descale at [%d, %d] = %v in FP32: want a positive normal FP32 number (the kernel's exponent scale)", i/in.Hkv, i%in.Hkv, ks)
			return
		}
	}
}
