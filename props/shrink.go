package props

import (
	"reflect"
	"slices"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
)

// Shrink returns a smaller case for which fails still holds, trying at
// most budget candidate evaluations. It is greedy: it tries the one-step
// simplifications of Candidates in order and moves to the first that still
// fails, until none does (a local minimum) or the budget is spent. Fewer
// tokens come first, then fewer keys, heads and dims, then simpler layouts
// and values; special values and plants are dropped only when the failure
// survives without them. If c itself does not fail, c is returned.
func Shrink(c cases.Case, fails func(cases.Case) bool, budget int) cases.Case {
	d, steps := shrinkAdapted(c, fails, budget, nil)
	if steps == 0 {
		return c
	}
	return d
}

// shrinkAdapted is Shrink with every candidate passed through adapt (a
// property's precondition); it also returns the number of accepted steps.
func shrinkAdapted(c cases.Case, fails func(cases.Case) bool, budget int, adapt func(cases.Case) cases.Case) (cases.Case, int) {
	steps := 0
	for budget > 0 {
		moved := false
		for _, cand := range shrinkCandidates(c, adapt) {
			if budget <= 0 {
				break
			}
			budget--
			if fails(cand) {
				c, moved = cand, true
				steps++
				break
			}
		}
		if !moved {
			break
		}
	}
	return c, steps
}

// shrinkCandidates are Candidates(c) after adapt, valid and strictly
// simpler than c (so shrinking terminates).
func shrinkCandidates(c cases.Case, adapt func(cases.Case) cases.Case) []cases.Case {
	cur := Complexity(c)
	var out []cases.Case
	seen := map[string]bool{}
	for _, d := range Candidates(c) {
		if adapt != nil {
			d = adapt(d)
		}
		if d.Validate() != nil || compareComplexity(Complexity(d), cur) >= 0 {
			continue
		}
		key := d.String()
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, d)
	}
	return out
}

// Complexity orders cases for shrinking: lexicographically by tokens,
// total attended keys, heads, KV heads, dims, value width, then layout,
// plants, specials, sink and value options. Smaller is simpler.
func Complexity(c cases.Case) []int {
	keys := 0
	for _, n := range rowKeys(c) {
		keys += n
	}
	hkv, dv := 1, c.D
	if c.Family != problem.Sparse {
		hkv = c.H
		if c.Hkv > 0 {
			hkv = c.Hkv
		}
		if c.Dv > 0 {
			dv = c.Dv
		}
	}
	useq := c.States + c.TopK + c.ExtraTopK // combine, mla: fewer states and indices first
	if c.Empty > 0 {
		useq++
	}
	for _, u := range c.Seqused {
		useq += u
	}
	b2i := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	specialPos := 0
	for _, s := range c.Specials {
		specialPos += s.Token + s.Head + s.Key + s.Dim
	}
	sink := 0
	if c.Sink != nil {
		sink = 1
		switch {
		case c.Sink.Values != nil:
			sink = 4
		case c.Sink.Kind == "random":
			sink = 3
		case c.Sink.Kind == "const":
			sink = 2
		}
	}
	window := c.Window
	if full := genOf(c.Family).fullWindow; full != nil && window == 0 {
		window = full(c)
	}
	win := func(p *int) int { // a bounded side is simpler than none: fewer keys
		if p == nil {
			return 0
		}
		return 1 + *p
	}
	return []int{
		c.Tokens(), keys, len(c.Sq), sumInts(c.Sk), c.H, hkv, c.D, dv,
		b2i(c.Softcap != 0), b2i(c.Alibi != nil), b2i(c.LSE != nil), b2i(c.Causal), win(c.WindowLeft), win(c.WindowRight),
		c.B, useq, c.Win + c.IdxTopK, c.Win, window,
		len(c.Plant), len(c.Specials), specialPos,
		b2i(c.Poison), b2i(c.Indices != ""), b2i(c.BlockTable != ""), b2i(c.BlockSize != 0),
		sink, b2i(c.Values.Dist != ""), b2i(c.Values.Scale != 0), b2i(c.Values.VScale != 0), b2i(c.Values.WideExp != 0),
		b2i(c.DType != ""), b2i(c.Scale != 0), b2i(c.Seed != 0),
	}
}

func compareComplexity(a, b []int) int { return slices.Compare(a, b) }

// Candidates lists the one-step simplifications of c, most aggressive
// first. They are not necessarily valid or simpler: Shrink filters them.
func Candidates(c cases.Case) []cases.Case {
	var out []cases.Case
	add := func(f func(d *cases.Case)) {
		d := clone(c)
		f(&d)
		fixup(&d)
		out = append(out, d)
	}
	smaller := func(x int) []int { // x → 0, 1, x/2, x−1 (distinct, < x)
		var vs []int
		for _, v := range []int{0, 1, x / 2, x - 1} {
			if v < x && !slices.Contains(vs, v) {
				vs = append(vs, v)
			}
		}
		return vs
	}
	genOf(c.Family).candidates(c, add, smaller)
	for _, v := range smaller(c.H) {
		add(func(d *cases.Case) {
			d.H = v
			if d.Hkv > 0 {
				d.Hkv = gcd(d.H, d.Hkv)
			}
		})
	}
	ownKV := genOf(c.Family).ownKV
	if ownKV {
		for _, v := range smaller(c.Hkv) {
			if v > 0 {
				add(func(d *cases.Case) { d.Hkv = gcd(c.H, v) })
			}
		}
		if c.Hkv == 0 && c.H > 1 {
			add(func(d *cases.Case) { d.Hkv = 1 })
		}
	}
	for _, v := range smaller(c.D) {
		add(func(d *cases.Case) { d.D = v })
	}
	if ownKV {
		dv := c.Dv
		if dv == 0 {
			dv = c.D
		}
		for _, v := range smaller(dv) {
			if v > 0 {
				add(func(d *cases.Case) { d.Dv = v })
			}
		}
	}
	for i := range c.Plant {
		add(func(d *cases.Case) { d.Plant = slices.Delete(d.Plant, i, i+1) })
	}
	for i := range c.Specials {
		add(func(d *cases.Case) { d.Specials = slices.Delete(d.Specials, i, i+1) })
	}
	for i, s := range c.Specials { // move a special to position 0
		if s.Token+s.Head+s.Key+s.Dim > 0 {
			add(func(d *cases.Case) { d.Specials[i] = cases.Special{Tensor: s.Tensor, Value: s.Value} })
		}
	}
	add(func(d *cases.Case) { d.Poison = false })
	add(func(d *cases.Case) { d.Indices = "" })
	add(func(d *cases.Case) { d.BlockTable = "" })
	add(func(d *cases.Case) { d.BlockSize = 0 })
	if c.Sink != nil {
		add(func(d *cases.Case) { d.Sink = nil })
		if c.Sink.Values != nil {
			for _, v := range c.Sink.Values { // one sink value for every head
				add(func(d *cases.Case) { d.Sink = &cases.Sink{Kind: "const", Value: v} })
			}
		}
		if c.Sink.Kind == "random" {
			add(func(d *cases.Case) { d.Sink = &cases.Sink{Kind: "const", Value: cases.F(c.Sink.Offset)} })
		}
	}
	add(func(d *cases.Case) { d.Values = cases.Values{} })
	add(func(d *cases.Case) { d.Values.Dist = "" })
	add(func(d *cases.Case) { d.Values.Scale = 0 })
	add(func(d *cases.Case) { d.Values.VScale = 0 })
	add(func(d *cases.Case) { d.Values.WideExp = 0 })
	add(func(d *cases.Case) { d.DType = "" })
	add(func(d *cases.Case) { d.Scale = 0 })
	for _, s := range []uint64{0, 1, 2} { // simpler values: another draw
		add(func(d *cases.Case) { d.Seed = s })
	}
	return out
}

// clone is a deep copy of c: every slice and pointer field, found by
// reflection (the hand-written list this replaces missed seqused_k, and
// Valid's clamp then edited a failing case in place before it was
// reported).
func clone(c cases.Case) cases.Case {
	deepCopy(reflect.ValueOf(&c).Elem())
	return c
}

// deepCopy replaces every slice and pointer reachable from the struct v
// by a copy of its own.
func deepCopy(v reflect.Value) {
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if !f.CanSet() {
			continue
		}
		switch f.Kind() {
		case reflect.Slice:
			if f.IsNil() {
				continue
			}
			cp := reflect.MakeSlice(f.Type(), f.Len(), f.Len())
			reflect.Copy(cp, f)
			if cp.Type().Elem().Kind() == reflect.Struct {
				for j := 0; j < cp.Len(); j++ {
					deepCopy(cp.Index(j))
				}
			}
			f.Set(cp)
		case reflect.Pointer:
			if f.IsNil() {
				continue
			}
			cp := reflect.New(f.Elem().Type())
			cp.Elem().Set(f.Elem())
			if cp.Elem().Kind() == reflect.Struct {
				deepCopy(cp.Elem())
			}
			f.Set(cp)
		case reflect.Struct:
			deepCopy(f)
		}
	}
}

// toS1 keeps the last token of each batch entry (it keeps its length u).
func toS1(d *cases.Case) {
	d.S = 0
	remapTokens(d, func(t int) int {
		if t%2 == 0 {
			return -1
		}
		return t / 2
	})
}

// remapTokens renumbers the tokens specials refer to; −1 drops the special.
func remapTokens(d *cases.Case, f func(int) int) {
	var out []cases.Special
	for _, s := range d.Specials {
		if s.Tensor == "q" || s.Tensor == "kv" {
			if s.Token = f(s.Token); s.Token < 0 {
				continue
			}
		}
		out = append(out, s)
	}
	d.Specials = out
}

// fixup brings the parts of d that depend on its shape back in range after
// a shrink step: specials outside the shape move inside it, per-head sink
// values follow H.
func fixup(d *cases.Case) {
	clamp := func(x, n int) int { return max(0, min(x, n-1)) }
	t := max(d.Tokens(), 1)
	hkv, dv := 1, d.D
	g := genOf(d.Family)
	nk := t
	if g.kvRows != nil {
		nk = max(g.kvRows(*d), 1)
	}
	if d.Family != problem.Sparse {
		hkv = d.H
		if d.Hkv > 0 {
			hkv = d.Hkv
		}
		if d.Dv > 0 {
			dv = d.Dv
		}
	}
	for i := range d.Specials {
		s := &d.Specials[i]
		s.Token = clamp(s.Token, t)
		switch s.Tensor {
		case "q":
			s.Head, s.Dim = clamp(s.Head, d.H), clamp(s.Dim, d.D)
		case "kv":
			s.Key, s.Dim = clamp(s.Key, max(d.Win+d.IdxTopK, 1)), clamp(s.Dim, d.D)
		case "k":
			s.Key, s.Head, s.Dim = clamp(s.Key, nk), clamp(s.Head, hkv), clamp(s.Dim, d.D)
		case "v":
			s.Key, s.Head, s.Dim = clamp(s.Key, nk), clamp(s.Head, hkv), clamp(s.Dim, dv)
		}
	}
	if g.ownKV && d.Hkv == d.H {
		d.Hkv = 0 // the default: one KV head per query head
	}
	if g.ownKV && d.Dv == d.D {
		d.Dv = 0
	}
	if d.Alibi != nil && d.Alibi.Values != nil && len(d.Alibi.Values) != d.H {
		vs := make([]cases.Float, d.H)
		for h := range vs {
			vs[h] = d.Alibi.Values[min(h, len(d.Alibi.Values)-1)]
		}
		d.Alibi.Values = vs
	}
	if d.LSE != nil && (d.Sink == nil || d.Sink.Kind == "none") {
		d.LSE.Sink = ""
	} else if d.LSE != nil && d.LSE.Sink == "" {
		d.LSE.Sink = "excluded"
	}
	if d.Sink != nil && d.Sink.Values != nil && len(d.Sink.Values) != d.H {
		vs := make([]cases.Float, d.H)
		for h := range vs {
			vs[h] = d.Sink.Values[min(h, len(d.Sink.Values)-1)]
		}
		d.Sink.Values = vs
	}
}
