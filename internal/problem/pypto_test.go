package problem

import (
	"slices"
	"testing"
)

// pyptoInputs is a hand-built csa problem: D = 1 (a row's value is its
// identity), B = 1, T = 1 at position p, ori_kv rows 0..15 holding
// 100+r, a compressed pool of 2 pages of CBS = 2 rows holding 200+r,
// the table mapping slot r to page 1−r/2 (permuted).
func pyptoInputs(fam Family, p int32, win, idx []int32) *Inputs {
	in := &Inputs{Family: fam, T: 1, H: 1, Hkv: 1, D: 1, Dv: 1, Scale: 1, Q: []float32{1},
		B: 1, S: 1, Win: len(win), WinIdx: win, Pos: []int32{p}, Ratio: 4, CBS: 2,
		MBcmp: 2, CmpBT: []int32{1, 0}, Idx: idx, TopK: len(idx), IdxTopK: len(idx)}
	for r := range 16 {
		in.OriKV = append(in.OriKV, float32(100+r))
	}
	for r := range 4 {
		in.CmpKV = append(in.CmpKV, float32(200+r))
	}
	if fam == SWA {
		in.Idx, in.TopK, in.IdxTopK, in.Pos = []int32{}, 0, 0, nil
		in.SwaLens = []int32{int32(len(win))}
	}
	return in
}

func values(keys []Key) []float32 {
	var v []float32
	for _, k := range keys {
		v = append(v, k.K[0])
	}
	return v
}

func TestPyptoKeys(t *testing.T) {
	// csa at p = 7: bound ⌊8/4⌋ = 2, so slots 0 and 1 are kept (each entry
	// once: slot 1 listed twice counts twice); 2 (the bound), −1 and −3 are
	// not. Slot r reads physical row table[r/2]·2 + r%2: slot 0 → row 2
	// (202), slot 1 → row 3 (203).
	in := pyptoInputs(CSA, 7, []int32{5, 6, 7, -1}, []int32{1, 2, -1, -3, 0, 1})
	if err := in.Check(); err != nil {
		t.Fatal(err)
	}
	want := []float32{105, 106, 107, 203, 202, 203}
	if got := values(in.RefKeys(0, 0, nil)); !slices.Equal(got, want) {
		t.Errorf("csa keys %v, want %v", got, want)
	}
	if got := values(in.KernelKeys(0, 0, nil)); !slices.Equal(got, want) {
		t.Errorf("csa kernel keys %v, want %v", got, want)
	}
	if vs := in.Violations(); len(vs) > 0 {
		t.Errorf("violations %v", vs)
	}
	// p = 6: ⌊7/4⌋ = 1, slot 1 drops out; index_topk 4 reads only the first 4 columns.
	in.Pos[0], in.IdxTopK = 6, 4
	if got := values(in.RefKeys(0, 0, nil)); !slices.Equal(got, []float32{105, 106, 107}) {
		t.Errorf("csa p = 6, index_topk 4: keys %v", got)
	}
	// hca: every entry ≥ 0 is kept, through the same table.
	h := pyptoInputs(HCA, 0, []int32{-1, 9}, []int32{3, -1, 0})
	if got := values(h.RefKeys(0, 0, nil)); !slices.Equal(got, []float32{109, 201, 202}) {
		t.Errorf("hca keys %v", got)
	}
}

func TestPyptoSwaLens(t *testing.T) {
	in := pyptoInputs(SWA, 0, []int32{4, -1, 6, 7}, nil)
	in.SwaLens[0] = 3
	// The reference skips the −1 inside swa_lens, the device attends a zero row: a violation.
	if got := values(in.RefKeys(0, 0, nil)); !slices.Equal(got, []float32{104, 106}) {
		t.Errorf("swa ref keys %v", got)
	}
	if got := values(in.KernelKeys(0, 0, nil)); !slices.Equal(got, []float32{104, 0, 106}) {
		t.Errorf("swa kernel keys %v", got)
	}
	names := func() []string {
		var n []string
		for _, v := range in.Violations() {
			n = append(n, v.Name)
		}
		return n
	}
	if got := names(); !slices.Equal(got, []string{VPadInPrefix}) {
		t.Errorf("violations %v, want [%s]", got, VPadInPrefix)
	}
	in.WinIdx[1], in.SwaLens[0] = 5, 5
	if got := names(); !slices.Equal(got, []string{VSwaLens}) {
		t.Errorf("swa_lens 5 of WIN 4: violations %v", got)
	}
	in.SwaLens[0], in.WinIdx[3] = 4, 16 // past the pool
	if got := names(); !slices.Equal(got, []string{VIndexRange}) {
		t.Errorf("row 16 of 16: violations %v", got)
	}
}

func TestPyptoViolations(t *testing.T) {
	in := pyptoInputs(CSA, -1, []int32{0}, []int32{0})
	if vs := in.Violations(); len(vs) != 1 || vs[0].Name != VNegativePosition {
		t.Errorf("p = −1: %v", vs)
	}
	in = pyptoInputs(CSA, 30, []int32{0}, []int32{5}) // slot 5: page 2 of a 2-page table row
	if vs := in.Violations(); len(vs) != 1 || vs[0].Name != VBlockTable {
		t.Errorf("slot beyond the table: %v", vs)
	}
	in = pyptoInputs(CSA, 30, []int32{0}, []int32{9}) // slot 9 ≥ the bound: not read, not a violation
	in.IdxTopK = 1
	in.Idx[0] = 40
	if vs := in.Violations(); len(vs) != 0 {
		t.Errorf("an unread slot: %v", vs)
	}
}

// TestPyptoWindowRun: hca/swa copy an aligned 16-column run whose last
// entry is its first plus 15 as 16 consecutive rows; a list that is not
// contiguous inside such a run is a violation, and the kernel reading
// shows what the device gathers.
func TestPyptoWindowRun(t *testing.T) {
	win := make([]int32, 16)
	for k := range win {
		win[k] = int32(k)
	}
	in := pyptoInputs(HCA, 0, win, []int32{-1})
	if vs := in.Violations(); len(vs) != 0 {
		t.Fatalf("a contiguous run: %v", vs)
	}
	win[3] = 9 // still first 0, last 15
	vs := in.Violations()
	if len(vs) != 1 || vs[0].Name != VWindowRun {
		t.Fatalf("a broken run: %v", vs)
	}
	if ref, ker := values(in.RefKeys(0, 0, nil)), values(in.KernelKeys(0, 0, nil)); ref[3] != 109 || ker[3] != 103 {
		t.Errorf("entry 3: reference reads %v, kernel %v; want 109 and 103", ref[3], ker[3])
	}
	c := pyptoInputs(CSA, 20, win, []int32{-1}) // csa's gather reads entry by entry
	if vs := c.Violations(); len(vs) != 0 {
		t.Errorf("csa: %v", vs)
	}
}

// TestPyptoLane: the device's columns: window, then the compressed
// entries, then padding; blocks of 128 (at least 2 for csa and hca).
func TestPyptoLane(t *testing.T) {
	in := pyptoInputs(CSA, 7, []int32{5, -1}, []int32{1, 9})
	for col, want := range []struct {
		v     float32
		valid bool
	}{{105, true}, {0, false}, {203, true}, {0, false}, {0, false}} {
		row, ok := in.PyptoLane(0, col)
		if ok != want.valid || (ok && row[0] != want.v) {
			t.Errorf("column %d: %v %v, want %v %v", col, row, ok, want.v, want.valid)
		}
	}
	if n := in.PyptoBlocks(); n != 2 {
		t.Errorf("csa blocks %d, want 2", n)
	}
	if n, m := in.PyptoBlockValid(0, 0), in.PyptoBlockValid(0, 1); n != 2 || m != 0 {
		t.Errorf("valid lanes per block %d, %d; want 2, 0", n, m)
	}
	s := pyptoInputs(SWA, 0, make([]int32, 130), nil)
	if n := s.PyptoBlocks(); n != 2 {
		t.Errorf("swa with WIN 130: %d blocks, want 2", n)
	}
}
