package problem

import (
	"fmt"

	"github.com/attnvet/attnvet/internal/kvlayout"
	"github.com/attnvet/attnvet/internal/quant"
)

// MLAQuant is an mla problem's FP8 KV cache as stored (CONTRACTS.md
// "Quantized inputs"): the raw bytes of k_cache (and extra_k_cache) in a
// FlashMLA layout, pages of PBS tokens, contiguous (page stride PBS ·
// bytes per token), and the kernel's declared dequantization.
//
// The problem's Cache and ExtraCache are these bytes dequantized in mode
// Dequant, row by row as the kernel addresses them (kvlayout). The
// reference is the exact attention of those dequantized values: the
// quantization error (x − code·scale) belongs to the model that quantized,
// not to the kernel; and the declared dequantization is a deterministic
// function of the stored bytes, so its rounding (FlashMLA SM90's
// BF16_RN(BF16(code)·BF16_RN(scale))) is part of the inputs, not a
// tolerance term (docs/tolerance.md "Quantized inputs"). A kernel that
// dequantizes otherwise (PR #184's round-toward-zero e8m0 scales) computes
// another problem and fails.
type MLAQuant struct {
	Layout        kvlayout.Layout
	Dequant       quant.Dequant
	Raw, ExtraRaw []byte // empty: a scope without cache rows (or no extra scope)
	PBS, ExtraPBS int
}

// Caches returns the raw caches of both scopes as kvlayout views.
func (q *MLAQuant) Caches() (main, extra *kvlayout.Cache, err error) {
	view := func(raw []byte, pbs int) (*kvlayout.Cache, error) {
		if len(raw) == 0 {
			return nil, nil // a scope without cache rows
		}
		page := pbs * q.Layout.BytesPerToken()
		if pbs < 1 || len(raw)%page != 0 {
			return nil, fmt.Errorf("%s cache of %d bytes is not whole pages of %d tokens", q.Layout, len(raw), pbs)
		}
		return kvlayout.NewCache(q.Layout, raw, len(raw)/page, pbs, 0)
	}
	if main, err = view(q.Raw, q.PBS); err != nil {
		return nil, nil, err
	}
	extra, err = view(q.ExtraRaw, q.ExtraPBS)
	return main, extra, err
}

// RowFunc writes slot s's K row (d_qk values) of cache c.
type RowFunc func(dst []float32, c *kvlayout.Cache, s int) error

// DequantRows dequantizes every slot of c with row (nil c: nil).
func DequantRows(c *kvlayout.Cache, row RowFunc) ([]float32, error) {
	if c == nil {
		return nil, nil
	}
	d := c.Layout().DQK()
	out := make([]float32, c.Slots()*d)
	for s := range c.Slots() {
		if err := row(out[s*d:(s+1)*d], c, s); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Dequantized returns both scopes' caches dequantized with row (the
// declared mode when row is nil).
func (q *MLAQuant) Dequantized(row RowFunc) (main, extra []float32, err error) {
	if row == nil {
		row = func(dst []float32, c *kvlayout.Cache, s int) error { return c.RowF32(dst, s, q.Dequant) }
	}
	mc, ec, err := q.Caches()
	if err != nil {
		return nil, nil, err
	}
	if main, err = DequantRows(mc, row); err != nil {
		return nil, nil, err
	}
	if extra, err = DequantRows(ec, row); err != nil {
		return nil, nil, err
	}
	return main, extra, nil
}

// WithCaches is a copy of in whose caches are replaced (a kernel's own
// dequantization of the same bytes).
func (in *Inputs) WithCaches(main, extra []float32) *Inputs {
	c := *in
	c.Cache, c.ExtraCache = main, extra
	if extra == nil {
		c.ExtraCache = in.ExtraCache
	}
	return &c
}

// QuantizeMLA replaces in's BF16 mla caches by FP8 caches in layout l with
// the declared dequantization dq, pages of pbs (extra scope: extraPBS)
// tokens; the case field kv_layout and attnvet export --quantize call this
// one function. encode turns one scope's rows into its raw bytes; nil is
// FlashMLA's reference quantizer, kvlayout.Encode (power-of-two per-tile
// scales from each tile's amax: deterministic); the generator passes its
// own, which adds edge classes and poisoned rows around the same call. The
// problem's caches become the dequantized rows.
func (in *Inputs) QuantizeMLA(l kvlayout.Layout, dq quant.Dequant, pbs, extraPBS int, encode func(rows []float32, pbs int) ([]byte, error)) error {
	if encode == nil {
		encode = func(rows []float32, pbs int) ([]byte, error) {
			return kvlayout.Encode(l, rows, len(rows)/l.DQK()/pbs, pbs)
		}
	}
	q := &MLAQuant{Layout: l, Dequant: dq, PBS: pbs, ExtraPBS: extraPBS}
	var err error
	if len(in.Cache) > 0 {
		if q.Raw, err = encode(in.Cache, pbs); err != nil {
			return err
		}
	}
	if len(in.ExtraCache) > 0 {
		if q.ExtraRaw, err = encode(in.ExtraCache, extraPBS); err != nil {
			return err
		}
	}
	in.MLAQuant = q
	main, extra, err := q.Dequantized(nil)
	if err != nil {
		return err
	}
	in.Cache = main
	if extra != nil {
		in.ExtraCache = extra
	}
	return nil
}
