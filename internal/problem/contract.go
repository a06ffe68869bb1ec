package problem

import (
	"fmt"
	"math"
)

// Violation is a breach of the kernel's input contract (SPEC.md §1): where
// the device and the reference would read different keys, or where there is
// no meaningful exact answer. A verifier reports these separately from
// numerical mismatches.
type Violation struct {
	Name   string `json:"name"`
	Token  int    `json:"token"` // -1 when not tied to a token
	Detail string `json:"detail"`
}

func (v Violation) String() string {
	if v.Token < 0 {
		return fmt.Sprintf("%s: %s", v.Name, v.Detail)
	}
	return fmt.Sprintf("%s (token %d): %s", v.Name, v.Token, v.Detail)
}

// Violation names.
const (
	VNegativeSeqused = "negative_seqused"    // seqused_kv[b] < tokens_per_batch - 1
	VPadInPrefix     = "pad_in_prefix"       // -1 among the first sparse_k entries
	VWindowSlot      = "window_slot_invalid" // a window-prefix entry that is not a valid window slot
	VCmpSlot         = "cmp_slot_invalid"    // a compressed-prefix entry that is not a valid compressed slot
	VBlockTable      = "block_table_out_of_range"
	VValidAfter      = "valid_slot_after_prefix" // the reference attends it, the device does not read it
	VNonFinite       = "nonfinite_input"         // NaN or ±Inf in q or an attended key/value, NaN sink
	// VScale: softmax_scale is NaN or overflows FP32, the format kernels
	// take it in (FlashAttention's float softmax_scale; our emulations use
	// float32(Scale)), so no kernel can compute the problem as stated.
	VScale = "softmax_scale_out_of_range"
)

// Violations lists every contract violation, in a deterministic order.
func (in *Inputs) Violations() []Violation { return in.violations(false) }

// violations is Violations; fullScan gathers every query row's keys to
// look for non-finite ones even where the key tensors are all finite
// (the tests compare both paths).
func (in *Inputs) violations(fullScan bool) []Violation {
	var vs []Violation
	add := func(name string, t int, f string, a ...any) {
		vs = append(vs, Violation{name, t, fmt.Sprintf(f, a...)})
	}
	if s := float64(float32(in.Scale)); math.IsNaN(s) || math.IsInf(s, 0) {
		add(VScale, -1, "softmax_scale = %g is beyond FP32 (max %g), the format kernels take it in", in.Scale, math.MaxFloat32)
	}
	for i, s := range in.Sink {
		if math.IsNaN(float64(s)) {
			add(VNonFinite, -1, "attn_sink[%d] is NaN", i)
		}
	}
	for i, x := range in.Q {
		if isNonFinite(x) {
			add(VNonFinite, i/(in.H*in.D), "q[%d] = %v", i, x)
			break
		}
	}
	if fs := specs[in.Family]; fs != nil {
		fs.violations(in, add)
	}
	// Every attended key is finite when the key tensors are: then the
	// per-row scan below cannot find one (it is most of this function's
	// time on long window cases).
	scan := fullScan || !in.keysFinite()
	var keys []Key
	for t := 0; t < in.T && scan; t++ {
		for g := 0; g < in.Hkv; g++ {
			keys = in.RefKeys(t, g, keys)
			if j := nonFiniteKey(keys); j >= 0 {
				add(VNonFinite, t, "attended key/value %d (KV head %d) holds NaN or ±Inf", j, g)
			}
		}
	}
	return vs
}

func nonFiniteKey(keys []Key) int {
	for j, k := range keys {
		for _, x := range k.K {
			if isNonFinite(x) {
				return j
			}
		}
		for _, x := range k.V {
			if isNonFinite(x) {
				return j
			}
		}
	}
	return -1
}

func isNonFinite(x float32) bool { return math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) }
