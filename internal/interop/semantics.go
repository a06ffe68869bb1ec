package interop

import (
	"fmt"
	"strings"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/num"
)

// Unstated names the first semantics-defining choice a bundle leaves to a
// default attnvet cannot infer from its tensors, with the key and its
// choices; nil when every such choice is stated (or inferable). `check`
// refuses such a bundle (exit 2) unless the user passes --assume-defaults:
// a correct kernel must never fail because attnvet guessed.
//
//   - window (window family): W keys per query, 0 = full causal;
//   - causal (dense): true or false;
//   - d_v (mla) unless d_qk is FlashMLA's 512 or 576;
//   - in_dtype (or a profile) when q is stored wider than its values: an
//     F32 tensor of BF16 (or FP16) values is a BF16 kernel's dump as often
//     as an FP32 one's, and the two are judged very differently.
func Unstated(f *bundle.File, override map[string]string) error {
	meta := mergedMeta(f, override)
	d := &decoder{f: f, meta: meta, used: map[string]bool{}}
	fam, err := d.family()
	if err != nil {
		return nil // Decode reports it
	}
	has := func(k string) bool { _, ok := meta[k]; return ok }
	c, err := codecOf(fam)
	if err != nil {
		return nil // Decode reports it
	}
	if c.unstated != nil {
		if err := c.unstated(f, has); err != nil {
			return err
		}
	}
	if !has(KeyProfile) && !has(KeyInDType) {
		for _, name := range []string{TQ, TV} {
			t := f.Tensors[name]
			if t == nil || (t.DType != bundle.F32 && t.DType != bundle.F64) {
				continue
			}
			if fmtName := narrowestHolding(t); fmtName != "" {
				return fmt.Errorf("tensor %s is %s but every value is a %s value: declare in_dtype (%s if the kernel's inputs were %s, fp32 if it computes on fp32 inputs) or a profile, or pass --assume-defaults for fp32",
					name, t.DType, fmtName, fmtName, fmtName)
			}
		}
	}
	return nil
}

// narrowestHolding is "bf16" or "fp16" when every value of t is one (and
// t is not all zeros or tiny), else "".
func narrowestHolding(t *bundle.Tensor) string {
	v, err := t.Float32s()
	if err != nil || len(v) == 0 {
		return ""
	}
	for _, f := range []num.Format{num.BF16, num.FP16} {
		all, nonzero := true, 0
		for _, x := range v {
			if x != x {
				continue
			}
			if num.Round32(f, x, num.RNE) != x {
				all = false
				break
			}
			if x != 0 {
				nonzero++
			}
		}
		if all && nonzero > 0 {
			return strings.ToLower(f.String())
		}
	}
	return ""
}
