// Package show prints a checked case for people: the verdict, the worst
// elements with their allowance term by term, and the keys of the worst
// row (what `attnvet replay` and a failing `attnvet check` print).
package show

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/safeio"
	"github.com/attnvet/attnvet/internal/tolerance"
)

// CaseShape is a one-line description of a case's shape, with the number
// of keys its rows attend.
func CaseShape(c *cases.Case) string { return CaseShapeOf(c, nil) }

// CaseShapeOf is CaseShape counting keys in in, the case's inputs when
// they are at hand (not nil), rather than in another copy.
func CaseShapeOf(c *cases.Case, in *problem.Inputs) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", c.Family)
	b.WriteString(cases.ShapeFields(*c))
	fmt.Fprintf(&b, " h=%d d=%d", c.H, c.D)
	if c.Sink != nil && c.Sink.Kind != "none" {
		fmt.Fprintf(&b, " sink=%s", c.Sink.Kind)
	}
	if in == nil {
		in, _ = cases.Generate(*c, num.FP32)
	}
	if in != nil {
		lo, hi := math.MaxInt, 0
		var keys []problem.Key
		for t := 0; t < in.T; t++ {
			for g := 0; g < in.Hkv; g++ {
				keys = in.RefKeys(t, g, keys)
				lo, hi = min(lo, len(keys)), max(hi, len(keys))
			}
		}
		if lo == hi {
			fmt.Fprintf(&b, ", n=%d keys per row", lo)
		} else {
			fmt.Fprintf(&b, ", n=%d..%d keys per row", lo, hi)
		}
	}
	return b.String()
}

// Replay prints what `attnvet replay` shows for one checked case.
func Replay(w io.Writer, file string, d *campaign.Detail, top int) {
	c := &d.Case
	fmt.Fprintf(w, "attnvet replay %s\n", safeio.ShellQuote(file))
	if c.Description != "" {
		fmt.Fprintf(w, "  description %s\n", safeio.Printable(c.Description))
	}
	fmt.Fprintf(w, "  case        %s\n", CaseShapeOf(c, d.Inputs))
	p := d.Target.Kernel.Profile()
	fmt.Fprintf(w, "  kernel      %s (profile %s: %s)\n", safeio.Printable(d.Target.Name), p.Name, p.Describe())
	fmt.Fprintf(w, "  criterion   %s\n", d.Criterion.Name())
	switch d.Status {
	case campaign.Incompatible, campaign.Skipped: // Skipped: the worker's hello excludes the case (exit 0)
		fmt.Fprintf(w, "SKIP: %s\n", safeio.OneLine(d.Err.Error()))
		return
	case campaign.Contract:
		fmt.Fprintf(w, "  contract    the inputs break the kernel's contract; not judged:\n")
		for _, v := range d.Violations {
			fmt.Fprintf(w, "                %s\n", safeio.OneLine(v.String()))
		}
		fmt.Fprintf(w, "CONTRACT: reported, not judged (exit 0)\n")
		return
	}
	in := d.Inputs
	fmt.Fprintf(w, "  inputs      %s, T=%d H=%d Hkv=%d D=%d Dv=%d, softmax_scale %.6g\n", in.Format, in.T, in.H, in.Hkv, in.D, in.Dv, in.Scale)
	if d.Err != nil {
		fmt.Fprintf(w, "FAIL: %s\n", safeio.OneLine(d.Err.Error()))
		return
	}
	v := d.Verdict
	fmt.Fprintf(w, "  verdict     %d of %d elements beyond the allowance, worst err/allowed %s", v.Failed, v.Checked, campaign.Ratio(v.Worst))
	if v.Skipped > 0 {
		fmt.Fprintf(w, ", %d not judged", v.Skipped)
	}
	fmt.Fprintln(w)
	if v.Detail != "" {
		fmt.Fprintf(w, "  detail      %s\n", safeio.OneLine(v.Detail))
	}
	WorstElements(w, d, top)
	if d.Status == campaign.Fail {
		fmt.Fprintf(w, "FAIL: %s does not meet %s on this case\n", safeio.Printable(d.Target.Name), d.Criterion.Name())
	} else {
		fmt.Fprintf(w, "PASS: %s meets %s on this case\n", safeio.Printable(d.Target.Name), d.Criterion.Name())
	}
}

// TopK keeps the k items with the largest key, the first on ties, in
// order: what a stable sort of all of them, cut to k, gives, in O(k)
// memory (one entry per output element took 48 bytes each, more than the
// reference itself).
type TopK[T any] struct {
	K     int
	Key   func(T) float64
	Items []T
}

// Add offers x.
func (t *TopK[T]) Add(x T) {
	kx := t.Key(x)
	n := len(t.Items)
	if t.K <= 0 || n == t.K && !(kx > t.Key(t.Items[n-1])) {
		return
	}
	i := sort.Search(n, func(i int) bool { return t.Key(t.Items[i]) < kx }) // after the ties
	if n < t.K {
		t.Items = append(t.Items, x)
	}
	copy(t.Items[i+1:], t.Items[i:len(t.Items)-1])
	t.Items[i] = x
}

type elemErr struct {
	e            int
	ref, got     float64
	err, allowed float64
	ratio        float64
}

// WorstElements lists the elements with the largest err/bound, the
// bound's terms, and for the worst row the keys that carry its weight.
func WorstElements(w io.Writer, d *campaign.Detail, top int) {
	in, r, out := d.Inputs, d.Ref, d.Out.O
	mode := tolerance.Rigorous
	if d.Criterion.Name() == tolerance.NameProb {
		mode = tolerance.Probabilistic
	}
	x := &tolerance.Input{In: in, Ref: r, Out: out, OutLSE: d.Out.LSE, OutMaxLogit: d.Out.MaxLogit, Profile: d.Target.Kernel.Profile(), Shape: d.Target.Shape}
	allowed, _, skip := tolerance.Bounds(x, mode)
	worst := TopK[elemErr]{K: top, Key: func(ee elemErr) float64 { return ee.ratio }}
	for e, ro := range r.O {
		if skip[e] {
			continue
		}
		got := float64(out[e])
		ee := elemErr{e: e, ref: ro, got: got, allowed: allowed[e]}
		switch {
		case math.IsNaN(got) != math.IsNaN(ro) || (math.IsInf(got, 0) || math.IsInf(ro, 0)) && got != ro:
			ee.err, ee.ratio = math.Inf(1), math.Inf(1)
		case math.IsNaN(got) || got == ro:
		default:
			ee.err = math.Abs(got - ro)
			ee.ratio = math.Inf(1)
			if allowed[e] > 0 {
				ee.ratio = ee.err / allowed[e]
			}
		}
		worst.Add(ee)
	}
	es := worst.Items
	if len(es) == 0 {
		fmt.Fprintf(w, "  no element has a finite bound (outside the profile's range)\n")
		return
	}
	boundName := "bound"
	if mode == tolerance.Probabilistic {
		boundName = "prob bound"
	}
	fmt.Fprintf(w, "\nworst elements by err/%s (element = (token, head, j)):\n", boundName)
	fmt.Fprintf(w, "  %-16s %15s %15s %11s %11s %11s\n", "(t, h, j)", "reference", "kernel", "|err|", "allowed", "err/allowed")
	for _, ee := range es {
		fmt.Fprintf(w, "  %-16s %15.8g %15.8g %11.3g %11.3g %11s\n",
			elemName(in, ee.e), ee.ref, ee.got, ee.err, ee.allowed, campaign.Ratio(ee.ratio).String())
	}
	fmt.Fprintf(w, "\ntheir allowance term by term (docs/tolerance.md), with the reference magnitudes it scales:\n")
	fmt.Fprintf(w, "  %-16s %9s %9s %9s %9s %9s %9s %9s %9s %9s %9s\n", "(t, h, j)",
		"jacobian", "accum", "p-round", "sink", "underflow", "denom", "division", "out-round", "Σp|v|", "Σp|v−o|")
	for _, ee := range es {
		tm := tolerance.ElemTerms(x, mode, ee.e)
		fmt.Fprintf(w, "  %-16s %9.3g %9.3g %9.3g %9.3g %9.3g %9.3g %9.3g %9.3g %9.3g %9.3g\n", elemName(in, ee.e),
			tm.Jacobian, tm.Accumulate, tm.PRound, tm.Sink, tm.Underflow, tm.Denom+tm.SinkOver, tm.Division, tm.Output,
			r.AbsV[ee.e], r.Dev1[ee.e])
	}
	// The worst row's inputs.
	e0 := es[0].e
	t, h, j := e0/(in.H*in.Dv), e0/in.Dv%in.H, e0%in.Dv
	row := r.Rows[t*in.H+h]
	fmt.Fprintf(w, "\nrow (token %d, head %d): n=%d keys attended", t, h, row.N)
	fmt.Fprint(w, cases.RowNote(in, t))
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  sink σ=%s p_σ=%.4g, max score %.6g, max|x| %.4g, max|q| %.4g, max|v| %.4g\n",
		fmtF(row.Sink), row.PSink, row.M, row.MaxAbsX, row.MaxAbsQ, row.MaxAbsV)
	printRowKeys(w, in, t, h, j, 8)
}

func elemName(in *problem.Inputs, e int) string {
	return fmt.Sprintf("(%d, %d, %d)", e/(in.H*in.Dv), e/in.Dv%in.H, e%in.Dv)
}

func fmtF(x float64) string {
	switch {
	case math.IsInf(x, -1):
		return "none"
	case math.IsInf(x, 1):
		return "+inf"
	}
	return fmt.Sprintf("%.6g", x)
}

// printRowKeys shows the keys of row (t, h) with the largest weights:
// where they come from, their score x_i, weight p_i and value v_ij.
func printRowKeys(w io.Writer, in *problem.Inputs, t, h, j, limit int) {
	keys := in.RefKeys(t, in.Group(h), nil)
	if len(keys) == 0 {
		fmt.Fprintf(w, "  no keys: the exact output is 0\n")
		return
	}
	src := keySources(in, t, len(keys))
	q := in.QRow(t, h)
	type kx struct {
		i    int
		x, p float64
	}
	ks := make([]kx, len(keys))
	sigma := float64(in.SinkOf(h))
	m := sigma
	for i, k := range keys {
		s := 0.0
		for d, qd := range q {
			s += float64(qd) * float64(k.K[d])
		}
		x := in.Scale * s
		if c := in.Softcap; c > 0 {
			x = c * math.Tanh(x/c)
		}
		x += float64(in.AlibiSlope(h))*float64(k.Dist) + k.Bias
		ks[i] = kx{i: i, x: x}
		m = math.Max(m, ks[i].x)
	}
	if !math.IsInf(sigma, 1) { // a +Inf sink takes all the weight: every p_i is 0
		L := math.Exp(sigma - m)
		for i := range ks {
			ks[i].p = math.Exp(ks[i].x - m)
			L += ks[i].p
		}
		for i := range ks {
			ks[i].p /= L
		}
	}
	sort.SliceStable(ks, func(a, b int) bool { return ks[a].p > ks[b].p })
	fmt.Fprintf(w, "  %-28s %13s %11s %15s\n", "key (reference order)", "score x_i", "weight p_i", fmt.Sprintf("v_i[%d]", j))
	for n, k := range ks {
		if n == limit {
			fmt.Fprintf(w, "  ... %d more keys\n", len(ks)-limit)
			break
		}
		fmt.Fprintf(w, "  %-28s %13.6g %11.4g %15.8g\n", src[k.i], k.x, k.p, keys[k.i].V[j])
	}
	if kk := in.KernelKeys(t, in.Group(h), nil); len(kk) != len(keys) {
		fmt.Fprintf(w, "  the device gathers %d keys for this token (positional read), the reference %d\n", len(kk), len(keys))
	}
}

// keySources names where each reference key of token t comes from: the
// index-row entry (sparse), the key position (window, dense), else its
// rank in the reference's key order.
func keySources(in *problem.Inputs, t, n int) []string { return cases.KeySources(in, t, n) }
