package problem

import "fmt"

// The pypto-lib DeepSeek-V4 decode families (SPEC-pypto-today.md,
// docs/kernels.md §8). One KV head, V = K (all D columns), a per-head FP32
// sink: o = Σ_j e^{x_j} k_j / (Σ_j e^{x_j} + e^{σ_h}).
const (
	// CSA is decode_sparse_attn.py (compress ratio 4): a window of physical
	// ori_kv rows plus the raw indexer top-k, kept iff 0 ≤ r < ⌊(p+1)/4⌋.
	CSA Family = "csa"
	// HCA is decode_sparse_attn_hca.py (ratio 128): the window plus
	// cmp_sparse_indices already masked by the caller (entry ≥ 0 kept).
	HCA Family = "hca"
	// SWA is decode_sparse_attn_swa.py: the window only, its first
	// swa_lens[t] columns valid.
	SWA Family = "swa"
)

var (
	_ = register(CSA, pyptoSpec(5))
	_ = register(HCA, pyptoSpec(6))
	_ = register(SWA, pyptoSpec(7))
)

// pyptoSpec is the semantics of csa, hca and swa (their differences are
// in the methods, by in.Family); their keys are no fixed set of tensors.
func pyptoSpec(rank int) *spec {
	return &spec{
		rank: rank,
		refKeys: func(in *Inputs, t, _ int, dst []Key) []Key {
			return in.pyptoKeys(t, dst, false)
		},
		kernelKeys: func(in *Inputs, t, _ int, dst []Key) []Key {
			return in.pyptoKeys(t, dst, true)
		},
		check:        (*Inputs).checkPypto,
		violations:   (*Inputs).pyptoViolations,
		keysPerToken: (*Inputs).EstKeys,
	}
}

// IsPypto reports whether f is csa, hca or swa.
func IsPypto(f Family) bool { return f == CSA || f == HCA || f == SWA }

// Violation names of the pypto families (besides VIndexRange,
// VBlockTable, VPadInPrefix and VNonFinite).
const (
	VNegativePosition = "negative_position"         // position_ids[t] < 0
	VSwaLens          = "swa_lens_out_of_range"     // swa_lens[t] outside 0..WIN
	VWindowRun        = "window_run_not_contiguous" // a 16-entry run the device copies as one block lists other rows
)

// GatherRun is the window gather's run length (GATHER_RUN_TILE): a run of
// 16 aligned window columns whose last entry is its first plus 15 (first
// ≥ 0) is copied as the 16 consecutive rows from the first
// (decode_sparse_attn_hca.py and _swa.py, hca_gather_kv / swa_gather_kv).
const GatherRun = 16

// CmpBound is the number of compressed slots token t may see: csa
// ⌊(p+1)/compress_ratio⌋ (p = position_ids[t]; 0 when p+1 ≤ 0).
func (in *Inputs) CmpBound(t int) int {
	p := int(in.Pos[t])
	if p+1 <= 0 {
		return 0
	}
	return (p + 1) / in.Ratio
}

// PyptoCmpCols is the number of compressed index columns read per token:
// index_topk for csa, the width of cmp_sparse_indices for hca, 0 for swa.
func (in *Inputs) PyptoCmpCols() int {
	switch in.Family {
	case CSA:
		return in.IdxTopK
	case HCA:
		return in.TopK
	}
	return 0
}

// PyptoWinCols is the number of window columns token t may read: swa
// swa_lens[t] (clamped to 0..WIN), csa/hca all WIN.
func (in *Inputs) PyptoWinCols(t int) int {
	if in.Family == SWA {
		return min(max(int(in.SwaLens[t]), 0), in.Win)
	}
	return in.Win
}

// CmpKept reports whether compressed entry r of token t is a key.
func (in *Inputs) CmpKept(t int, r int32) bool {
	if r < 0 {
		return false
	}
	return in.Family != CSA || int(r) < in.CmpBound(t)
}

// CmpRow maps logical compressed slot r of batch b through cmp_block_table
// (physical row table[b, r/CBS]·CBS + r%CBS), or nil when the slot is
// beyond the table or the row outside cmp_kv.
func (in *Inputs) CmpRow(b int, r int32) []float32 {
	if r < 0 || int(r)/in.CBS >= in.MBcmp {
		return nil
	}
	page := int(in.CmpBT[b*in.MBcmp+int(r)/in.CBS])
	row := page*in.CBS + int(r)%in.CBS
	if page < 0 || (row+1)*in.D > len(in.CmpKV) {
		return nil
	}
	return in.CmpKV[row*in.D : (row+1)*in.D]
}

// OriRow is physical row r of ori_kv, or nil outside the pool.
func (in *Inputs) OriRow(r int) []float32 {
	if r < 0 || (r+1)*in.D > len(in.OriKV) {
		return nil
	}
	return in.OriKV[r*in.D : (r+1)*in.D]
}

// windowRunStart returns, for window column k of token t, the first entry
// of its run when the device copies the run as one block (hca, swa), and
// ok = false otherwise.
func (in *Inputs) windowRunStart(win []int32, k int) (first int32, ok bool) {
	if in.Family == CSA {
		return 0, false
	}
	r0 := k / GatherRun * GatherRun
	if r0+GatherRun > len(win) {
		return 0, false
	}
	f, l := win[r0], win[r0+GatherRun-1]
	return f, f >= 0 && l-f == GatherRun-1
}

// pyptoKeys gathers token t's keys: the valid window entries, then the kept
// compressed entries, each once per entry. The reference skips rows outside
// their pool and a −1 inside swa_lens (Violations reports both); the kernel
// reads the former as a NaN row, the latter as the zero row the device's
// gather writes, and a contiguous-looking window run as the device copies
// it.
func (in *Inputs) pyptoKeys(t int, dst []Key, kernel bool) []Key {
	win := in.WinIdx[t*in.Win : (t+1)*in.Win]
	for k, r := range win[:in.PyptoWinCols(t)] {
		if r < 0 && in.Family != SWA {
			continue // csa/hca: a negative entry is an invalid lane
		}
		if kernel {
			if f, ok := in.windowRunStart(win, k); ok {
				r = f + int32(k%GatherRun)
			}
		}
		row := in.OriRow(int(r))
		switch {
		case row != nil:
		case !kernel:
			continue
		case r < 0:
			row = in.zeroRow()
		default:
			row = in.Poison()[:in.D]
		}
		dst = append(dst, Key{K: row, V: row})
	}
	b := t / in.S
	nc := in.PyptoCmpCols()
	for _, r := range in.Idx[t*in.TopK : t*in.TopK+nc] {
		if !in.CmpKept(t, r) {
			continue
		}
		row := in.CmpRow(b, r)
		if row == nil {
			if !kernel {
				continue
			}
			row = in.Poison()[:in.D]
		}
		dst = append(dst, Key{K: row, V: row})
	}
	return dst
}

// zeroRow is a row of D zeros (not shared with any input).
func (in *Inputs) zeroRow() []float32 { return make([]float32, in.D) }

func (in *Inputs) checkPypto() error {
	if in.Hkv != 1 || in.Dv != in.D {
		return fmt.Errorf("%s family: one KV head with V = K (got Hkv=%d, Dv=%d, D=%d)", in.Family, in.Hkv, in.Dv, in.D)
	}
	if in.B < 1 || in.S < 1 || in.T != in.B*in.S {
		return fmt.Errorf("T=%d is not B·S with B=%d, tokens_per_batch=%d", in.T, in.B, in.S)
	}
	if in.Win < 0 {
		return fmt.Errorf("window width %d is negative", in.Win)
	}
	if len(in.OriKV)%in.D != 0 {
		return fmt.Errorf("tensor ori_kv: %d values is not a whole number of rows of width %d", len(in.OriKV), in.D)
	}
	name := "window_swa_indices"
	if in.Family == SWA {
		name = "swa_indices"
	}
	if err := wantLen(name, len(in.WinIdx), in.T*in.Win); err != nil {
		return err
	}
	switch in.Family {
	case SWA:
		return wantLen("swa_lens", len(in.SwaLens), in.T)
	case CSA:
		if err := wantLen("position_ids", len(in.Pos), in.T); err != nil {
			return err
		}
		if in.Ratio < 1 {
			return fmt.Errorf("compress_ratio %d: want ≥ 1", in.Ratio)
		}
		if in.IdxTopK < 0 || in.IdxTopK > in.TopK {
			return fmt.Errorf("index_topk %d: want 0..%d (the width of idx_topk)", in.IdxTopK, in.TopK)
		}
	}
	name = "idx_topk"
	if in.Family == HCA {
		name = "cmp_sparse_indices"
	}
	if err := wantLen(name, len(in.Idx), in.T*in.TopK); err != nil {
		return err
	}
	if in.CBS < 1 || len(in.CmpKV)%(in.CBS*in.D) != 0 {
		return fmt.Errorf("tensor cmp_kv: %d values is not a whole number of %d-row pages of width %d", len(in.CmpKV), in.CBS, in.D)
	}
	return wantLen("cmp_block_table", len(in.CmpBT), in.B*in.MBcmp)
}

// pyptoViolations reports what the device would read differently from the
// reference: rows outside their pool (window or compressed, through the
// table), a −1 inside swa_lens, swa_lens outside 0..WIN, negative
// positions, and window runs the device copies as one block although they
// list other valid rows.
func (in *Inputs) pyptoViolations(add func(string, int, string, ...any)) {
	rows := len(in.OriKV) / in.D
	for t := 0; t < in.T; t++ {
		if in.Family == CSA && in.Pos[t] < 0 {
			add(VNegativePosition, t, "position_ids[%d] = %d", t, in.Pos[t])
		}
		n := in.Win
		if in.Family == SWA {
			if l := in.SwaLens[t]; l < 0 || int(l) > in.Win {
				add(VSwaLens, t, "swa_lens[%d] = %d, want 0..%d", t, l, in.Win)
			}
			n = in.PyptoWinCols(t)
		}
		win := in.WinIdx[t*in.Win : (t+1)*in.Win]
		for k, r := range win {
			switch {
			case int(r) >= rows:
				// Past swa_lens too: the gather still reads every entry ≥ 0.
				add(VIndexRange, t, "window entry %d = %d: ori_kv has %d rows", k, r, rows)
			case r < 0 && k < n && in.Family == SWA:
				add(VPadInPrefix, t, "swa_indices entry %d = %d inside the first swa_lens = %d columns (the device attends a zero row)", k, r, n)
			}
			if f, ok := in.windowRunStart(win, k); ok && r >= 0 && r != f+int32(k%GatherRun) {
				add(VWindowRun, t, "window entries %d..%d run from %d to %d, so the device copies rows %d..%d, but entry %d is %d",
					k/GatherRun*GatherRun, k/GatherRun*GatherRun+GatherRun-1, f, f+GatherRun-1, f, f+GatherRun-1, k, r)
			}
		}
		b := t / in.S
		for c, r := range in.Idx[t*in.TopK : t*in.TopK+in.PyptoCmpCols()] {
			if in.CmpKept(t, r) && in.CmpRow(b, r) == nil {
				add(VBlockTable, t, "compressed entry %d = %d maps outside cmp_kv through cmp_block_table (%d pages of %d rows in the table row)", c, r, in.MBcmp, in.CBS)
			}
		}
	}
}

// PyptoDefaultRatio is compress_ratio's default: 4 for csa, 128 for hca
// (0 for swa, which has no compressed pool).
func PyptoDefaultRatio(f Family) int {
	switch f {
	case CSA:
		return 4
	case HCA:
		return 128
	}
	return 0
}

// EstKeys is a rough count of keys per token of the pypto families (0 for
// others).
func (in *Inputs) EstKeys() int {
	if !IsPypto(in.Family) {
		return 0
	}
	return in.Win + in.PyptoCmpCols()
}

// PyptoBlocks is the device's SPARSE_BLOCKS: ⌈TOPK/128⌉ blocks of
// 128 columns (at least 2 for csa and hca, 1 for swa), TOPK = WIN + the
// compressed columns.
func (in *Inputs) PyptoBlocks() int {
	n := (in.Win + in.PyptoCmpCols() + 127) / 128
	if in.Family == SWA {
		return max(n, 1)
	}
	return max(n, 2)
}

// PyptoBlockValid counts the valid lanes of token t in device block sb
// (columns [128·sb, 128·sb+128) of the window-then-compressed list).
func (in *Inputs) PyptoBlockValid(t, sb int) int {
	n := 0
	nc := in.PyptoCmpCols()
	for col := sb * 128; col < (sb+1)*128 && col < in.Win+nc; col++ {
		if col < in.Win {
			if col < in.PyptoWinCols(t) && (in.Family == SWA || in.WinIdx[t*in.Win+col] >= 0) {
				n++
			}
		} else if in.CmpKept(t, in.Idx[t*in.TopK+col-in.Win]) {
			n++
		}
	}
	return n
}

// PyptoLane is column col of token t's padded list as the device gathers
// it: col < WIN is window entry col, WIN ≤ col < WIN + the compressed
// columns is compressed entry col − WIN, the rest padding. valid is the
// lane's bias being 0 (−1e20 otherwise); row is the gathered row of a
// valid lane (a window run copied as one block, a zero row for swa's −1
// inside swa_lens, the NaN row for a row outside its pool).
func (in *Inputs) PyptoLane(t, col int) (row []float32, valid bool) {
	if col < in.Win {
		win := in.WinIdx[t*in.Win : (t+1)*in.Win]
		r := win[col]
		if col >= in.PyptoWinCols(t) || (r < 0 && in.Family != SWA) {
			return nil, false
		}
		if f, ok := in.windowRunStart(win, col); ok {
			r = f + int32(col%GatherRun)
		}
		switch row = in.OriRow(int(r)); {
		case row != nil:
		case r < 0:
			row = in.zeroRow()
		default:
			row = in.Poison()[:in.D]
		}
		return row, true
	}
	c := col - in.Win
	if c >= in.PyptoCmpCols() {
		return nil, false
	}
	r := in.Idx[t*in.TopK+c]
	if !in.CmpKept(t, r) {
		return nil, false
	}
	if row = in.CmpRow(t/in.S, r); row == nil {
		row = in.Poison()[:in.D]
	}
	return row, true
}
