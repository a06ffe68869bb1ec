package props

import (
	"math/rand/v2"
	"slices"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
)

// The sparse family's generator: index geometry around one token's key
// count, S = 2, plants, poisoned pools.
var _ = registerGen(&genFamily{
	draw:    keyedDraw(drawSparse, nil),
	classes: sparseClasses,
	rowKeys: func(c cases.Case) []int {
		in := lensOnly(c)
		ns := make([]int, in.T)
		for t := range ns {
			ns[t] = in.TokenLens(t).SparseK
		}
		return ns
	},
	candidates: func(c cases.Case, add func(func(*cases.Case)), smaller func(int) []int) {
		if c.B > 1 {
			for b := range c.B { // keep one batch entry
				add(func(d *cases.Case) { keepBatch(d, b, c.S) })
			}
			for b := range c.B { // drop one
				add(func(d *cases.Case) { dropBatch(d, b, c.S) })
			}
		}
		if c.S == 2 {
			add(func(d *cases.Case) { toS1(d) })
		}
		for b, u := range c.Seqused {
			for _, v := range smaller(u) {
				add(func(d *cases.Case) { d.Seqused[b] = v })
			}
		}
		for _, v := range smaller(c.IdxTopK) {
			add(func(d *cases.Case) { d.IdxTopK = v })
		}
		for _, v := range smaller(c.Win) {
			add(func(d *cases.Case) { d.Win = v })
		}
	},
}, problem.Sparse)

// drawSparse builds the index geometry so that one token sees n keys (or,
// in some cases, sits at a WIN boundary or fills its whole index row).
func drawSparse(r *rand.Rand, c *cases.Case, n int, lim limits) {
	c.B = []int{1, 1, 1, 2, 2, 3}[r.IntN(6)]
	if r.IntN(5) == 0 {
		c.S = 2
	}
	var win, idx, u int
	switch p := r.IntN(100); {
	case p < 15: // token lengths at WIN−1, WIN, WIN+1
		win = []int{2, 3, 4, 8, 16, 32, 64, 128}[r.IntN(8)]
		idx = []int{0, 1, 4, 16, 64}[r.IntN(5)]
		u = win + r.IntN(3) - 1
	case p < 27: // a full index row: n = WIN + IDX_TOPK
		win = []int{0, 1, 4, 16, 32, 128}[r.IntN(6)]
		idx = []int{1, 2, 8, 16, 64, 512}[r.IntN(6)]
		if win+idx > lim.maxRow {
			idx = 16
		}
		u = win + idx + r.IntN(win+idx+1)
	default:
		win = []int{0, 1, 4, 16, 64, 128, n, n / 2}[r.IntN(8)]
		if n <= win {
			u = n
			idx = []int{0, 1, 2, 8, 32}[r.IntN(5)]
		} else {
			extra := 0
			if r.IntN(5) != 0 {
				extra = r.IntN(n + 1)
			}
			idx = n - win + extra
			u = n
			if extra == 0 { // the row is full: more compressed slots than fit
				u = n + r.IntN(n+1)
			}
		}
	}
	if win+idx < 1 {
		idx = 1
	}
	c.Win, c.IdxTopK = win, idx
	if c.S == 2 && u == 0 && r.IntN(10) != 0 {
		u = 1 // the earlier token sees 0 keys; u = 0 would break the contract
	}
	target := r.IntN(c.B)
	c.Seqused = make([]int, c.B)
	for b := range c.Seqused {
		if b == target {
			c.Seqused[b] = u
		} else {
			c.Seqused[b] = r.IntN(min(u, 300) + 4)
			if c.S == 2 && c.Seqused[b] == 0 {
				c.Seqused[b] = 1
			}
		}
	}
	if c.S == 2 && r.IntN(12) == 0 {
		c.Seqused[r.IntN(c.B)] = 0 // seqused_kv < S−1: a contract violation
	}
	c.BlockSize = []int{0, 0, 1, 2, 4, 8, 16, 32, 64, 128}[r.IntN(10)]
	if r.IntN(4) == 0 {
		c.Indices = "shuffled"
	}
	if r.IntN(4) == 0 {
		c.BlockTable = "permuted"
	}
	if r.IntN(7) == 0 {
		c.Poison = true
	}
	for _, pl := range []struct {
		name     string
		perMille int
	}{
		{"duplicate", 100},
		{problem.VPadInPrefix, 30},
		{problem.VValidAfter, 20},
		{problem.VWindowSlot, 20},
		{problem.VBlockTable, 25},
	} {
		if r.IntN(1000) < pl.perMille {
			c.Plant = append(c.Plant, pl.name)
		}
	}
}

// lensOnly is a problem.Inputs with just the fields TokenLens reads.
func lensOnly(c cases.Case) *problem.Inputs {
	s := max(c.S, 1)
	in := &problem.Inputs{B: c.B, S: s, T: c.B * s, Win: c.Win, TopK: c.Win + c.IdxTopK}
	in.Seqused = make([]int32, len(c.Seqused))
	for b, u := range c.Seqused {
		in.Seqused[b] = int32(u)
	}
	return in
}

// sparseClasses marks the sparse edge classes.
func sparseClasses(c cases.Case, in *problem.Inputs, hit map[string]bool) {
	hit[ClassS2] = in.S == 2
	for t := 0; t < in.T; t++ {
		l := in.TokenLens(t)
		row := in.Idx[t*in.TopK : (t+1)*in.TopK]
		if c.IdxTopK > 0 && l.SparseK == in.TopK {
			hit[ClassTopK] = true
		}
		if in.Win >= 1 {
			hit[ClassWinMinus1] = hit[ClassWinMinus1] || l.U == in.Win-1
			hit[ClassWin] = hit[ClassWin] || l.U == in.Win
			hit[ClassWinPlus1] = hit[ClassWinPlus1] || l.U == in.Win+1
		}
		if slices.Contains(row[l.SparseK:], -1) {
			hit[ClassPadAfter] = true
		}
		prefix := row[:l.SparseK]
		for i, r := range prefix {
			if r >= 0 && slices.Contains(prefix[i+1:], r) {
				hit[ClassDuplicate] = true
			}
		}
		if c.Indices == "shuffled" && l.SparseK >= 2 {
			hit[ClassShuffled] = true
		}
	}
	for i, b := range in.OriBT {
		hit[ClassPermuted] = hit[ClassPermuted] || int(b) != i
	}
	for i, b := range in.CmpBT {
		hit[ClassPermuted] = hit[ClassPermuted] || int(b) != i
	}
	if c.BlockTable != "permuted" {
		hit[ClassPermuted] = false // an out-of-range plant edits the table too
	}
	if c.Poison {
		for _, x := range slices.Concat(in.OriKV, in.CmpKV) {
			if x != x {
				hit[ClassPoison] = true
				break
			}
		}
	}
}

// specialClasses classifies the special values that were planted.

func keepBatch(d *cases.Case, b, s int) {
	d.Seqused = []int{d.Seqused[b]}
	d.B = 1
	remapTokens(d, func(t int) int {
		if t/max(s, 1) != b {
			return -1
		}
		return t % max(s, 1)
	})
}

func dropBatch(d *cases.Case, b, s int) {
	d.Seqused = slices.Delete(d.Seqused, b, b+1)
	d.B--
	s = max(s, 1)
	remapTokens(d, func(t int) int {
		switch {
		case t/s == b:
			return -1
		case t/s > b:
			return t - s
		}
		return t
	})
}
