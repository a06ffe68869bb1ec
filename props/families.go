package props

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/ref"
)

// Metamorphic properties of the families beyond sparse and window: a
// relation between two problems whose answers the mathematics ties
// together, checked on the reference and on every correct emulation.

// layoutProperties are appended to Properties.
func layoutProperties() []Property {
	return []Property{
		{Name: "dense_layout", Family: problem.Dense, Adapt: Valid, Check: checkDenseLayout,
			Doc: "the same dense problem stored contiguously (batch, varlen) and in a paged cache (any page size, permuted table, NaN in unreferenced slots) has bit-identical reference and emulation outputs"},
		{Name: "combine_state_order", Family: problem.Combine, Adapt: Valid, Check: checkCombineOrder,
			Doc: "permuting the partial states of a merge changes v_merged and s_merged only within the bounds"},
	}
}

// checkDenseLayout moves the keys of a contiguous dense problem into a
// paged cache, or those of a paged one into varlen rows, and requires the
// same bits: every row reads the same keys in the same order either way.
func checkDenseLayout(ch *Checker, c cases.Case) error {
	return ch.eachFormat(c, ch.Pick(c), func(in *problem.Inputs, cfgs []impl.Config) error {
		other := repage(in, c.Seed)
		if err := other.Check(); err != nil {
			return fmt.Errorf("dense_layout: the relaid problem is malformed: %v", err)
		}
		if vs := other.Violations(); len(vs) > 0 {
			return fmt.Errorf("dense_layout: the relaid problem reports %v", vs[0])
		}
		return sameAnswers(ch, "dense_layout", in, other, cfgs, fmt.Sprintf("the KV layout changed (paged %v vs %v)", other.Paged(), in.Paged()))
	})
}

// repage returns in with its keys in the other layout: contiguous → a
// paged pool of 1..5-row pages (permuted, one spare page, NaN wherever no
// table entry or length reaches); paged → varlen rows. Each sequence keeps
// exactly the keys it uses (seqused_k folded into the lengths).
func repage(in *problem.Inputs, seed uint64) *problem.Inputs {
	r := rand.New(rand.NewPCG(seed, 0x70616765))
	nb := len(in.CuQ) - 1
	seqs := make([]problem.Seq, nb)
	for b := range nb {
		s := problem.Seq{B: b}
		if q0, q1 := int(in.CuQ[b]), int(in.CuQ[b+1]); q1 > q0 {
			s = in.DenseSeq(q0)
		} else { // no query: only its length matters
			s.Sk = int(in.CuK[b+1] - in.CuK[b])
			if in.SequsedK != nil && in.Page == 0 {
				s.Sk = min(s.Sk, max(int(in.SequsedK[b]), 0))
			}
			s.K0 = int(in.CuK[b])
		}
		seqs[b] = s
	}
	kw, vw := in.Hkv*in.D, in.Hkv*in.Dv
	row := func(s problem.Seq, j int) (k, v []float32) {
		p := in.DenseRow(s, j)
		return in.K[p*kw : (p+1)*kw], in.V[p*vw : (p+1)*vw]
	}
	out := *in
	out.SequsedK = nil
	// An NVFP4 cache's codes are not relaid: K and V are its dequantized
	// values, which is all the reference and the emulations read.
	out.NVFP4KV = nil
	out.Int4KV = nil // likewise INT4's packed codes
	if in.Paged() {
		out.Page, out.MaxBlocks, out.BlockTable, out.CacheSeqlens = 0, 0, nil, nil
		out.K, out.V, out.CuK = nil, nil, make([]int32, nb+1)
		for b, s := range seqs {
			for j := range s.Sk {
				k, v := row(s, j)
				out.K, out.V = append(out.K, k...), append(out.V, v...)
			}
			out.CuK[b+1] = out.CuK[b] + int32(s.Sk)
		}
		return &out
	}
	page := 1 + r.IntN(5)
	maxBlocks := 1
	for _, s := range seqs {
		maxBlocks = max(maxBlocks, (s.Sk+page-1)/page)
	}
	pages := nb*maxBlocks + 1
	perm := r.Perm(pages)
	nan := float32(math.NaN())
	out.K, out.V = make([]float32, pages*page*kw), make([]float32, pages*page*vw)
	for i := range out.K {
		out.K[i] = nan
	}
	for i := range out.V {
		out.V[i] = nan
	}
	out.Page, out.MaxBlocks = page, maxBlocks
	out.BlockTable, out.CacheSeqlens = make([]int32, nb*maxBlocks), make([]int32, nb)
	next := 0
	for b, s := range seqs {
		out.CacheSeqlens[b] = int32(s.Sk)
		for blk := range maxBlocks {
			p := perm[next]
			next++
			out.BlockTable[b*maxBlocks+blk] = int32(p)
			for o := range page {
				if j := blk*page + o; j < s.Sk {
					k, v := row(s, j)
					dst := p*page + o
					copy(out.K[dst*kw:(dst+1)*kw], k)
					copy(out.V[dst*vw:(dst+1)*vw], v)
				}
			}
		}
	}
	out.CuK = out.PagedLens()
	return &out
}

// checkCombineOrder shuffles the K partial states of every (row, head).
func checkCombineOrder(ch *Checker, c cases.Case) error {
	return ch.eachFormat(c, ch.Pick(c), func(in *problem.Inputs, cfgs []impl.Config) error {
		out := *in
		out.CombV, out.CombS = slices.Clone(in.CombV), slices.Clone(in.CombS)
		r := rand.New(rand.NewPCG(c.Seed, 0x636f6d62))
		K, H, D := in.States, in.H, in.Dv
		for n := range in.T {
			for h := range H {
				perm := r.Perm(K)
				for k, pk := range perm {
					out.CombS[(n*K+k)*H+h] = in.CombS[(n*K+pk)*H+h]
					copy(out.CombV[((n*K+k)*H+h)*D:][:D], in.CombV[((n*K+pk)*H+h)*D:][:D])
				}
			}
		}
		return orderAgrees("combine_state_order", ch, in, &out, cfgs)
	})
}

// orderAgrees: the references of in and its reordering pin (the same key
// multiset) agree within their own error, and every emulation's outputs
// on the two agree within the sum of their bounds.
func orderAgrees(prop string, ch *Checker, in, pin *problem.Inputs, cfgs []impl.Config) error {
	r, pr := ref.Compute(in, ref.Options{}), ref.Compute(pin, ref.Options{})
	for e := range r.O {
		if d := math.Abs(r.O[e] - pr.O[e]); d > refSlack(in, r, e)+refSlack(pin, pr, e) {
			return newFailure(prop, "ref", in, e, pr.O[e], r.O[e], refSlack(in, r, e)+refSlack(pin, pr, e), "the reference changed with the key order")
		}
	}
	for _, cfg := range cfgs {
		a, err := ch.judge(cfg, pin, pr)
		if err != nil {
			return err
		}
		b, err := ch.judge(cfg, in, r)
		if err != nil {
			return err
		}
		if err := agree(prop, a, b, 1); err != nil {
			return err
		}
	}
	return nil
}

// firstDiff is the first index where a and b differ in bits; −1 if none.
func firstDiff(a, b []float64) int {
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) && !(a[i] != a[i] && b[i] != b[i]) {
			return i
		}
	}
	return -1
}

// sameAnswers checks a property that says problems a and b have the same
// exact answer: their references agree bit for bit, and so do every
// correct configuration's o and lse (NaNs of any payload alike). why says
// what differs between a and b.
func sameAnswers(ch *Checker, prop string, a, b *problem.Inputs, cfgs []impl.Config, why string) error {
	ra, rb := ref.Compute(a, ref.Options{}), ref.Compute(b, ref.Options{})
	if e := firstDiff(ra.O, rb.O); e >= 0 {
		return newFailure(prop, "ref", a, e, rb.O[e], ra.O[e], 0, "the reference changed: "+why)
	}
	for _, cfg := range cfgs {
		oa, err := ch.run(cfg, a)
		if err != nil {
			return err
		}
		ob, err := ch.run(cfg, b)
		if err != nil {
			return err
		}
		if e := firstDiff32(oa.O, ob.O); e >= 0 {
			return newFailure(prop, impl.ConfigName(cfg), a, e, float64(ob.O[e]), float64(oa.O[e]), 0, why+": not the same bits")
		}
		if len(oa.LSE) != len(ob.LSE) {
			return fmt.Errorf("%s: %s: %d lse values vs %d: %s", prop, impl.ConfigName(cfg), len(ob.LSE), len(oa.LSE), why)
		}
		if e := firstDiff32(oa.LSE, ob.LSE); e >= 0 {
			return fmt.Errorf("%s: %s: lse[%d] %v vs %v: %s", prop, impl.ConfigName(cfg), e, ob.LSE[e], oa.LSE[e], why)
		}
	}
	return nil
}

// firstDiff32 is the first index where a and b (of one length) differ in
// bits, NaNs of any payload alike; −1 if none.
func firstDiff32(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) && !(a[i] != a[i] && b[i] != b[i]) {
			return i
		}
	}
	return -1
}
