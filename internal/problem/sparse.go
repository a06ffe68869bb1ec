package problem

import "fmt"

// Sparse is sparse decode attention with sink (SPEC.md §1).
const Sparse Family = "sparse"

// The sparse family (SPEC.md §1): per-token index rows into paged window
// and compressed pools, one KV head, V = K.
var _ = register(Sparse, &spec{
	rank:       0,
	refKeys:    (*Inputs).sparseRefKeys,
	kernelKeys: (*Inputs).sparseKernelKeys,
	check:      (*Inputs).checkSparse,
	violations: (*Inputs).sparseViolations,
	keySources: func(in *Inputs) (ks, vs [][]float32) {
		p := [][]float32{in.OriKV, in.CmpKV}
		return p, p
	},
	sharedKV:     true,
	keysPerToken: func(in *Inputs) int { return in.TopK },
})

// sparseRefKeys scans the whole index row: skip -1, skip window slots
// beyond window_valid and compressed slots beyond cmp_valid, and
// unreadable rows.
func (in *Inputs) sparseRefKeys(t, _ int, dst []Key) []Key {
	l := in.TokenLens(t)
	for _, r := range in.Idx[t*in.TopK : (t+1)*in.TopK] {
		if r < 0 {
			continue
		}
		if int(r) < in.Win {
			if int(r) >= l.WindowValid {
				continue
			}
		} else if int(r)-in.Win >= l.CmpValid {
			continue
		}
		if row := in.slotRow(l.B, r); row != nil {
			dst = append(dst, Key{K: row, V: row})
		}
	}
	return dst
}

// sparseKernelKeys reads the first window_valid entries as window slots,
// the next cmp_topk_valid as compressed slots, positionally; an entry out
// of bounds yields a NaN row.
func (in *Inputs) sparseKernelKeys(t, _ int, dst []Key) []Key {
	l := in.TokenLens(t)
	row := in.Idx[t*in.TopK : (t+1)*in.TopK]
	for i := 0; i < l.SparseK && i < len(row); i++ {
		r := in.slotRow(l.B, row[i])
		if r == nil {
			r = in.Poison()
		}
		dst = append(dst, Key{K: r, V: r})
	}
	return dst
}

func (in *Inputs) checkSparse() error {
	if in.Hkv != 1 || in.Dv != in.D {
		return fmt.Errorf("sparse family needs one KV head with Dv = D (got Hkv=%d, Dv=%d, D=%d)", in.Hkv, in.Dv, in.D)
	}
	if in.B < 1 || in.S < 1 || in.T != in.B*in.S {
		return fmt.Errorf("T=%d is not B·S with B=%d, S=%d", in.T, in.B, in.S)
	}
	if in.BS < 1 || in.Win < 0 || in.TopK < in.Win {
		return fmt.Errorf("bad sparse geometry: block size %d, window %d, index row width %d", in.BS, in.Win, in.TopK)
	}
	if len(in.OriKV)%(in.BS*in.D) != 0 {
		return fmt.Errorf("tensor ori_kv: %d values is not a whole number of %d-row blocks of width %d", len(in.OriKV), in.BS, in.D)
	}
	if len(in.CmpKV)%(in.BS*in.D) != 0 {
		return fmt.Errorf("tensor cmp_kv: %d values is not a whole number of %d-row blocks of width %d", len(in.CmpKV), in.BS, in.D)
	}
	if err := wantLen("ori_block_table", len(in.OriBT), in.B*in.MBori); err != nil {
		return err
	}
	if err := wantLen("cmp_block_table", len(in.CmpBT), in.B*in.MBcmp); err != nil {
		return err
	}
	if err := wantLen("cmp_sparse_indices", len(in.Idx), in.T*in.TopK); err != nil {
		return err
	}
	return wantLen("seqused_kv", len(in.Seqused), in.B)
}

func (in *Inputs) sparseViolations(add func(string, int, string, ...any)) {
	for b, u := range in.Seqused {
		if int(u) < in.S-1 {
			add(VNegativeSeqused, -1, "seqused_kv[%d] = %d < tokens_per_batch-1 = %d", b, u, in.S-1)
		}
	}
	for t := 0; t < in.T; t++ {
		in.tokenViolations(t, add)
	}
}

func (in *Inputs) tokenViolations(t int, add func(string, int, string, ...any)) {
	l := in.TokenLens(t)
	row := in.Idx[t*in.TopK : (t+1)*in.TopK]
	for i, r := range row {
		switch {
		case i < l.SparseK && r < 0:
			add(VPadInPrefix, t, "entry %d is -1 inside the first sparse_k=%d entries", i, l.SparseK)
		case i < l.WindowValid && int(r) >= l.WindowValid:
			add(VWindowSlot, t, "entry %d = %d, window slots valid are [0,%d)", i, r, l.WindowValid)
		case i >= l.WindowValid && i < l.SparseK && (int(r) < in.Win || int(r)-in.Win >= l.CmpValid):
			add(VCmpSlot, t, "entry %d = %d, compressed slots valid are [%d,%d)", i, r, in.Win, in.Win+l.CmpValid)
		case i >= l.SparseK && r >= 0 && in.refAccepts(l, r):
			add(VValidAfter, t, "entry %d = %d after the first sparse_k=%d entries is a valid slot", i, r, l.SparseK)
		default:
			if (i < l.SparseK || (r >= 0 && in.refAccepts(l, r))) && in.slotRow(l.B, r) == nil {
				add(VBlockTable, t, "entry %d = %d maps outside its pool", i, r)
			}
		}
	}
}

func (in *Inputs) refAccepts(l Lens, r int32) bool {
	if int(r) < in.Win {
		return int(r) < l.WindowValid
	}
	return int(r)-in.Win < l.CmpValid
}
