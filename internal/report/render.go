package report

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/internal/tolerance"
)

// A document is built once as blocks, then rendered as Markdown or HTML.
type block struct {
	kind  string // h1, h2, h3, p, list, table, figure
	text  string
	items []string
	head  []string
	rows  [][]string
	svg   []byte
	wide  bool // a figure as wide as the page (else two share a row)
}

type doc struct{ blocks []block }

func (d *doc) h(level int, s string) {
	d.blocks = append(d.blocks, block{kind: "h" + strconv.Itoa(level), text: s})
}
func (d *doc) p(f string, a ...any) {
	d.blocks = append(d.blocks, block{kind: "p", text: fmt.Sprintf(f, a...)})
}
func (d *doc) list(items []string) { d.blocks = append(d.blocks, block{kind: "list", items: items}) }
func (d *doc) table(head []string, rows [][]string) {
	d.blocks = append(d.blocks, block{kind: "table", head: head, rows: rows})
}
func (d *doc) figure(svg []byte, caption string, wide bool) {
	if svg != nil {
		d.blocks = append(d.blocks, block{kind: "figure", svg: svg, text: caption, wide: wide})
	}
}

// details opens a section collapsed by default (HTML <details>, which
// report.md keeps too: GitHub renders it); enddetails closes it.
func (d *doc) details(summary string) {
	d.blocks = append(d.blocks, block{kind: "details", text: summary})
}
func (d *doc) enddetails() { d.blocks = append(d.blocks, block{kind: "/details"}) }

// g formats an error value compactly.
func g(x float64) string {
	switch {
	case math.IsNaN(x):
		return "—"
	case math.IsInf(x, 1):
		return "∞"
	case x == 0:
		return "0"
	}
	return strconv.FormatFloat(x, 'g', 3, 64)
}

// quants is "max · p50 · p99 · p99.9" of s.
func quants(s *Stat) string {
	if s.N() == 0 {
		return "—"
	}
	return fmt.Sprintf("%s · %s · %s · %s", g(float64(s.Max)), g(s.Quantile(0.5)), g(s.Quantile(0.99)), g(s.Quantile(0.999)))
}

// tolSummary is the allclose analysis of one Need.
type tolSummary struct {
	need   Need
	pareto []TolPoint
	knee   TolPoint
	ok     bool
}

func summarizeNeed(grid []Float, needs ...Need) tolSummary {
	n := NewNeed(grid)
	for _, x := range needs {
		n.Merge(x)
	}
	s := tolSummary{need: n, pareto: n.Pareto(grid)}
	s.knee, s.ok = Knee(s.pareto)
	return s
}

// kneeText is the knee of s, or why there is none.
func kneeText(s tolSummary) string {
	if !s.ok {
		return "none (a non-finite mismatch)"
	}
	return tolString(s.knee)
}

func tolString(p TolPoint) string {
	return fmt.Sprintf("(%s, %s)", g(float64(p.ATol)), rtolString(float64(p.RTol)))
}

// rtolString spells grid rtols as powers of two where they are.
func rtolString(r float64) string {
	if r == 0 {
		return "0"
	}
	if l := math.Log2(r); l == math.Trunc(l) {
		return fmt.Sprintf("2^%d", int(l))
	}
	return g(r)
}

// fewPoints picks at most k points of a Pareto set, spread evenly, always
// including the first, the knee and the last.
func fewPoints(ps []TolPoint, knee TolPoint, k int) []TolPoint {
	if len(ps) <= k {
		return ps
	}
	pick := map[int]bool{0: true, len(ps) - 1: true}
	for i, p := range ps {
		if p.idx == knee.idx {
			pick[i] = true
		}
	}
	for j := 1; len(pick) < k && j < k; j++ {
		pick[j*(len(ps)-1)/(k-1)] = true
	}
	var out []TolPoint
	for i, p := range ps {
		if pick[i] {
			out = append(out, p)
		}
	}
	return out
}

// escapes lists the mutants (with profile prof and, if base is not "",
// varying kernel base) triggered on some typical case that
// allclose(atol, rtol at p) would pass on every typical case; quiet counts
// those no typical case triggered.
func (r *Report) escapes(p TolPoint, prof, base string) (missed []string, ran, quiet int) {
	for _, m := range r.Mutants {
		if m.Profile != prof || (base != "" && m.Base != base) {
			continue
		}
		if m.TriggeredTypical == 0 {
			quiet++
			continue
		}
		ran++
		if m.NeedTypical.Passes(p.idx, float64(p.ATol)) {
			missed = append(missed, fmt.Sprintf("%s (%s)", m.Name, m.BugClass))
		}
	}
	return missed, ran, quiet
}

func (r *Report) missText(p TolPoint, prof, base string) string {
	if len(r.Mutants) == 0 {
		return "n/a (no known-bug kernel ran)"
	}
	missed, ran, quiet := r.escapes(p, prof, base)
	q := ""
	if quiet > 0 {
		q = fmt.Sprintf(" (%d more not exercised by a unit-scale case)", quiet)
	}
	switch {
	case ran == 0 && quiet == 0:
		return "no known bug modelled for it"
	case ran == 0:
		return "none exercised" + q
	case len(missed) == 0:
		return fmt.Sprintf("none of the %d known bugs%s", ran, q)
	}
	return fmt.Sprintf("%d of %d known bugs: %s%s", len(missed), ran, strings.Join(missed, "; "), q)
}

func (r *Report) profiles() []string {
	seen := map[string]bool{}
	var ps []string
	for _, e := range r.Entries {
		if !seen[e.Profile] {
			seen[e.Profile] = true
			ps = append(ps, e.Profile)
		}
	}
	sort.Strings(ps)
	return ps
}

func (r *Report) family(f string) []*Entry {
	var es []*Entry
	for _, e := range r.Entries {
		if e.Family == f {
			es = append(es, e)
		}
	}
	return es
}

func critCell(c *Crit) string {
	if c == nil || c.Pass+c.Fail == 0 {
		return "—"
	}
	if c.Fail == 0 {
		return "all"
	}
	return fmt.Sprintf("✗ %d/%d (%s×)", c.Fail, c.Pass+c.Fail, g(float64(c.Worst)))
}

// headroom is 1 − max err/bound as a percentage.
func headroom(s *Stat) string {
	if s.N() == 0 {
		return "—"
	}
	m := float64(s.Max)
	if m > 1 {
		return fmt.Sprintf("**exceeded (%s×)**", g(m))
	}
	return fmt.Sprintf("%.1f%%", 100*(1-m))
}

var nBuckets = []struct {
	lo, hi int
	name   string
}{{1, 1, "n=1"}, {2, 16, "2–16"}, {17, 64, "17–64"}, {65, 256, "65–256"}, {257, math.MaxInt, ">256"}}

var xBuckets = []struct {
	lo, hi float64
	name   string
}{{0, 1, "<1"}, {1, 4, "1–4"}, {4, 16, "4–16"}, {16, 64, "16–64"}, {64, math.Inf(1), "≥64"}}

// build lays out the whole report: the verdict and plain words first,
// then the plots, then the detail tables (collapsed in HTML).
func (r *Report) build(plots bool) (*doc, error) {
	d := &doc{}
	grid := r.RTols
	profs := r.profiles()
	d.h(1, "attnvet tolerance report")
	if r.Partial {
		d.p("**Partial report: the run was interrupted** after %d (case, family) pairs of %d; every figure below covers only those cases.", r.PartialJobs, r.Cases*len(r.Families))
	}
	if r.Shards > 1 && !r.Complete() {
		d.p("**Incomplete: shards %v of %d.** Merge every shard's report.json with `attnvet report --merge` for the whole run.", r.ShardIDs, r.Shards)
	}
	d.p("attnvet ran %d generated test cases of each attention family (%s) through %d correct kernel emulations (%d precision profiles × loop shapes: streaming, tiled, split-KV) and compared every output element with the exact answer computed in float64. The cases reach the edges a kernel meets in the field: long and single-key rows, scores that overflow exp, the largest finite values, subnormals, ±∞ sinks. This page answers, per precision profile: does a correct kernel stay within attnvet's error bound, with how much to spare, and what a fixed (atol, rtol) tolerance would need to pass it.",
		r.Cases, strings.Join(r.Families, " and "), len(r.Kernels), len(profs))

	// The verdict per profile and family.
	d.h(2, "Verdict")
	d.p("One row per precision profile and family, over every kernel of that profile. **Within the bound** means every element of every case stayed inside attnvet's error bound for that precision (`--criterion bound`, the default of `check`, `gate` and `fuzz`): what a correct kernel must get, and does. **Worst / headroom**: the largest error as a fraction of its element's bound, and what is left to spare. **Fixed tolerance needed**: the smallest torch.allclose-style (atol, rtol) that passes the same correct kernels, on unit-scale inputs (what tolerances are usually tuned on) and on all inputs; **it misses** lists the known bugs of that precision the unit-scale tolerance would let through.")
	var rows [][]string
	for _, pn := range profs {
		desc := pn
		if p, err := profile.Lookup(pn); err == nil {
			desc = p.Describe()
		}
		for _, fam := range r.Families {
			var ratio Stat
			var needs, needsAll []Need
			var cases, failCases, mism int64
			var failing []string
			kernels := 0
			for _, e := range r.Entries {
				if e.Profile != pn || e.Family != fam {
					continue
				}
				kernels++
				cases += e.Cases
				ratio.Merge(&e.Ratio)
				needs, needsAll = append(needs, e.NeedTypical), append(needsAll, e.Need)
				mism += e.Mismatch
				if len(e.Fails) > 0 {
					failCases += int64(len(e.Fails))
					failing = append(failing, e.Kernel)
				}
			}
			if kernels == 0 {
				continue
			}
			kw := "kernels"
			if kernels == 1 {
				kw = "kernel"
			}
			verdict := fmt.Sprintf("PASS: %d %s × %d cases within the bound", kernels, kw, cases/int64(kernels))
			switch {
			case len(failing) > 0:
				verdict = fmt.Sprintf("**FAIL: %s exceeded the bound in %d cases** (the bound or the emulation is wrong)", strings.Join(failing, ", "), failCases)
			case cases == 0:
				verdict = "no case measured"
			}
			ts, tsAll := summarizeNeed(grid, needs...), summarizeNeed(grid, needsAll...)
			typ, miss := "none (a non-finite mismatch)", "—"
			if ts.ok {
				typ, miss = tolString(ts.knee), r.missText(ts.knee, pn, "")
			}
			if mism > 0 {
				verdict += fmt.Sprintf("; %d elements finite in one of kernel and reference only", mism)
			}
			rows = append(rows, []string{pn, desc, fam, verdict, worstText(&ratio), typ, kneeText(tsAll), miss})
		}
	}
	d.table([]string{"profile", "computes in", "family", "verdict", "worst / headroom", "fixed tolerance needed: unit-scale inputs (atol, rtol)", "all inputs (atol, rtol)", "it misses"}, rows)

	// Findings in words.
	d.h(2, "Findings")
	d.list(r.findings())

	if plots {
		d.h(2, "How close the kernels come to the bound")
		d.p("Per profile, the distribution of every element's error as a fraction of its bound (box: median to 99th percentile; ▲ 99.9th percentile; whisker to the maximum). Everything left of the dashed line at 1 is within the bound; a correct kernel never crosses it, and a kernel whose maximum sits far left has room a sloppier declaration could not claim.")
		for _, fam := range r.Families {
			hp, err := headroomPlot(fam, r.family(fam), profs)
			if err != nil {
				return nil, err
			}
			d.figure(hp, fmt.Sprintf("Family %s: error / bound per element, per profile (all its kernels).", fam), true)
		}
		d.h(2, "Where the error grows: key count and score range")
		d.p("Per case, the largest error relative to the magnitude the output is made of (|a − o| / Σp|v|, scale-free, so cases with huge and tiny values compare), against the number of keys of the row where it occurred and against that row's largest |score|. One series per profile; the kernel with the largest error per case.")
		for _, fam := range r.Families {
			np, xp, notes, err := familyScatters(fam, r.family(fam), profs)
			if err != nil {
				return nil, err
			}
			d.figure(np, fmt.Sprintf("Family %s: error against the key count n. Exact (zero-error) cases sit on the bottom edge.%s", fam, notes[0]), false)
			d.figure(xp, fmt.Sprintf("Family %s: error against the largest |score| of the row. Rows with all scores below 0.001 (q = 0, say) sit on the left edge.%s", fam, notes[1]), false)
		}
	}

	d.h(2, "Details")
	d.p("The tables behind the figures above, collapsed; kernels whose rows are identical are listed together in one row. Errors: err/bound is |a − o| over the element's bound (1 = at the bound); ulp is |a − o| in units in the last place of the output format at o; rel is |a − o|/|o| where |o| is at least the smallest normal of the output format. Columns read max · median · p99 · p99.9; the percentiles come from log-spaced histograms (16 bins per octave) and are upper estimates, at most 6.25%% high; maxima are exact.")
	for _, fam := range r.Families {
		es := r.family(fam)
		d.details(fmt.Sprintf("Family %s: error per kernel (%d kernels)", fam, len(es)))
		d.p("Absolute errors scale with the values: cases whose values reach the format's largest finite numbers have absolute errors of that order (up to %s here) that are still within their bound, which is why the verdict uses err/bound. The ulp and rel maxima come from outputs near 0 that are sums of large terms of both signs (cancellation), where the bound allows many ulps.", g(maxAbs(es)))
		rows = nil
		for _, e := range es {
			rows = append(rows, []string{e.Kernel, strconv.FormatInt(e.Cases, 10), strconv.FormatInt(e.Elements, 10),
				quants(&e.Ratio), headroom(&e.Ratio), quants(&e.ULP), quants(&e.Rel), g(float64(e.Abs.Max))})
		}
		d.table([]string{"kernels", "cases", "elements", "err/bound", "headroom", "ulp", "rel", "abs max"}, collapse(rows))
		d.enddetails()

		d.details(fmt.Sprintf("Family %s: what each criterion says about these correct kernels", fam))
		d.p("A cell reads \"all\" when every case passed, else the cases failed of those run and the worst statistic over its threshold; on correct kernels every failure is a false alarm. \"not judged\" counts elements the bound leaves out (outside the profile's range, or without a finite bound). %s", criteriaLegend())
		rows = nil
		names := tolerance.Names()
		for _, e := range es {
			row := []string{e.Kernel, strconv.FormatInt(e.Unbounded+e.OutOfRange, 10)}
			for _, n := range names {
				row = append(row, critCell(e.Criteria[n]))
			}
			rows = append(rows, row)
		}
		d.table(append([]string{"kernels", "not judged"}, names...), collapse(rows))
		d.enddetails()

		d.details(fmt.Sprintf("Family %s: largest error by key count and score range", fam))
		d.p("Largest |a − o|/Σp|v| of a case, by the key count n and the largest |score| of the row it occurred in, per profile (max over its kernels); — means no case fell in the bucket.")
		nrows, xrows := bucketRows(es, profs)
		head := []string{"profile \\ n"}
		for _, b := range nBuckets {
			head = append(head, b.name)
		}
		d.table(head, nrows)
		head = []string{"profile \\ max|score|"}
		for _, b := range xBuckets {
			head = append(head, b.name)
		}
		d.table(head, xrows)
		d.enddetails()
	}

	d.details("allclose: the smallest (atol, rtol) per kernel")
	d.p("For each rtol r of a grid (0 and 2^(−k/2) down to 2^−26), atol(r) is the smallest atol with which allclose passes every element of every unit-scale correct case: max of (|a − o| − r·|o|). Unit-scale cases draw q, k, v at unit scale with no planted special value, the data tolerances are tuned on. Output errors scale with |v|, so over all inputs (values up to the format's maximum) no useful fixed atol exists: the last column shows what it would take. The Pareto points are the grid points whose atol is below that of every smaller rtol; the knee, the suggestion, minimises atol + rtol (the error it allows at |o| = 1). \"Misses\" are the known bugs varying this kernel that the knee passes on every unit-scale case.")
	rows = nil
	for _, kn := range r.Kernels {
		var needs, needsAll []Need
		var prof string
		var typical int64
		for _, e := range r.Entries {
			if e.Kernel == kn {
				needs, needsAll = append(needs, e.NeedTypical), append(needsAll, e.Need)
				prof, typical = e.Profile, typical+e.Typical
			}
		}
		ts, tsAll := summarizeNeed(grid, needs...), summarizeNeed(grid, needsAll...)
		row := []string{kn, strconv.FormatInt(typical, 10)}
		if !ts.ok {
			rows = append(rows, append(row, "∞", "none", "—", "—", kneeText(tsAll)))
			continue
		}
		var pts []string
		for _, p := range fewPoints(ts.pareto, ts.knee, 5) {
			pts = append(pts, tolString(p))
		}
		rows = append(rows, append(row, g(float64(ts.need[0])), tolString(ts.knee), strings.Join(pts, " "), r.missText(ts.knee, prof, kn), kneeText(tsAll)))
	}
	d.table([]string{"kernels", "unit-scale cases", "atol at rtol 0", "knee (atol, rtol)", "Pareto points (atol, rtol)", "misses", "all inputs: knee"}, collapse(rows))
	d.enddetails()

	if len(r.Mutants) == 0 {
		d.p("No known-bug kernel (mutant) ran: none varies a measured kernel, or the run was told not to (`--mutants=false`), so the \"it misses\" columns are empty.")
	} else {
		d.details(fmt.Sprintf("Known bugs: which criterion catches each of the %d defective kernels", len(r.Mutants)))
		d.p("Each row is a kernel with one realistic defect (docs/mutants.md describes them), run on the same cases. A defect that a case does not exercise leaves the output bit for bit the correct kernel's; \"exercised\" counts the cases where it differs, and each criterion's cell counts the exercised cases it failed (caught it). The last column says whether the profile's suggested unit-scale tolerance passes the defect on every unit-scale case (missed), fails it on some (caught), or no unit-scale case exercised it.")
		names := tolerance.Names()
		rows = nil
		for _, m := range r.Mutants {
			row := []string{m.Name, m.BugClass, m.Base, fmt.Sprintf("%d/%d", m.Triggered, m.Cases)}
			for _, n := range names {
				c := m.Criteria[n]
				if c == nil {
					row = append(row, "—")
					continue
				}
				row = append(row, fmt.Sprintf("%d/%d", c.Fail, m.Triggered))
			}
			var needs []Need
			for _, e := range r.Entries {
				if e.Profile == m.Profile {
					needs = append(needs, e.NeedTypical)
				}
			}
			ts := summarizeNeed(grid, needs...)
			esc := "—"
			switch {
			case !ts.ok || m.Typical == 0:
			case m.TriggeredTypical == 0:
				esc = "not exercised"
			default:
				esc = "caught"
				if m.NeedTypical.Passes(ts.knee.idx, float64(ts.knee.ATol)) {
					esc = "**missed**"
				}
			}
			rows = append(rows, append(row, esc))
		}
		d.table(append(append([]string{"defect", "bug class", "varies", "exercised/cases"}, names...), "unit-scale tolerance"), rows)
		d.enddetails()
	}

	d.h(2, "Reproducing this report")
	shards := ""
	if r.Shards > 1 {
		shards = fmt.Sprintf(" (run here as %d shards, merged)", r.Shards)
	}
	d.p("`attnvet report --seed %d --cases %d` regenerates the same cases and figures on any machine%s; report.json holds every number (docs/report.md), report.md the tables. A case is named by its seed, family and index i (0..%d): `attnvet fuzz --seed %d --cases N` runs the same cases against a kernel of yours. Report format version %d.",
		r.Seed, r.Cases, shards, max(r.Cases-1, 0), r.Seed, r.Version)
	return d, nil
}

// worstText is the largest err/bound and the headroom it leaves.
func worstText(s *Stat) string {
	if s.N() == 0 {
		return "—"
	}
	m := float64(s.Max)
	if m > 1 {
		return fmt.Sprintf("**%s× the bound**", g(m))
	}
	return fmt.Sprintf("%s of the bound (%s%% to spare)", g(m), strconv.FormatFloat(100*(1-m), 'g', 2, 64))
}

// maxAbs is the largest absolute error of es.
func maxAbs(es []*Entry) float64 {
	m := 0.0
	for _, e := range es {
		m = math.Max(m, float64(e.Abs.Max))
	}
	return m
}

// criteriaLegend says what the criteria other than bound are.
func criteriaLegend() string {
	return "The criteria: bound, attnvet's per-element error bound for the declared precision; prob, the same with probabilistic accumulation terms; allclose, torch.testing.assert_close's defaults for the output dtype; ratio, atol 1e-4 and rtol 1/128 with 0.5% of elements allowed out; fa2x, FlashAttention's rule (max error at most twice a same-precision reference's); flashmla, FlashMLA's test (abs 1e-3 or rel 2.01/128, cosine distance); ulp, within 2 output ulps."
}

// findings are the plain-words conclusions.
func (r *Report) findings() []string {
	var finds []string
	skips := map[string]int64{}
	for _, e := range r.Entries {
		if len(e.Fails) > 0 {
			cs := e.Fails
			more := ""
			if len(cs) > 10 {
				cs, more = cs[:10], fmt.Sprintf(" and %d more", len(e.Fails)-10)
			}
			finds = append(finds, fmt.Sprintf("**%s on %s exceeded the rigorous bound** (worst %s×) in cases %v%s: the bound or the emulation is wrong.",
				e.Kernel, e.Family, g(float64(e.Criteria[tolerance.NameBound].Worst)), cs, more))
		}
		if e.Mismatch > 0 {
			finds = append(finds, fmt.Sprintf("%s on %s: %d elements finite in one of kernel and reference and not the other.", e.Kernel, e.Family, e.Mismatch))
		}
		for k, n := range e.Skipped {
			skips[k] += n
		}
	}
	if len(finds) == 0 {
		finds = append(finds, "Every correct kernel stayed within its bound on every case, and agreed with the exact answer on which outputs are finite: the bound raises no false alarm.")
	}
	var alarms []string
	for _, n := range tolerance.Names() {
		if n == tolerance.NameBound {
			continue
		}
		var c Crit
		for _, e := range r.Entries {
			c.add(e.Criteria[n])
		}
		if tot := c.Pass + c.Fail; tot > 0 {
			alarms = append(alarms, fmt.Sprintf("%s %.1f%%", n, 100*float64(c.Fail)/float64(tot)))
		}
	}
	if len(alarms) > 0 {
		finds = append(finds, "Fixed-tolerance rules fail these same correct kernels on a share of the runs (false alarms): "+strings.Join(alarms, ", ")+". They fail on the edge cases (extreme magnitudes, long rows), which is why they cannot gate.")
	}
	if len(r.Mutants) > 0 {
		triggered := 0
		for _, m := range r.Mutants {
			if m.Triggered > 0 {
				triggered++
			}
		}
		var kills []string
		for _, n := range tolerance.Names() {
			k := 0
			for _, m := range r.Mutants {
				if c := m.Criteria[n]; c != nil && c.Fail > 0 {
					k++
				}
			}
			kills = append(kills, fmt.Sprintf("%s %d", n, k))
		}
		finds = append(finds, fmt.Sprintf("Of the %d known-bug kernels these cases exercised (%d ran), each criterion caught on some case: %s. The per-profile tolerance it would take to pass the correct kernels is what decides which bugs a fixed tolerance lets through (\"it misses\" above).", triggered, len(r.Mutants), strings.Join(kills, ", ")))
	}
	if len(skips) > 0 {
		var parts []string
		for _, k := range sortedKeys(skips) {
			parts = append(parts, fmt.Sprintf("%s %d", k, skips[k]))
		}
		finds = append(finds, "Not measured, by reason (kernel × case pairs): "+strings.Join(parts, ", ")+". A case that breaks the kernel's input contract (a −1 inside an index row, a block table pointing outside the pool, NaN or ±Inf in the inputs, …) makes the kernel read other keys than the reference, so it is reported, not judged; \"dtype\" is a case whose inputs are stored in a format the kernel does not take.")
	}
	return finds
}

func sortedKeys(m map[string]int64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// bucketRows are the key-count and score-range tables of one family.
func bucketRows(es []*Entry, profs []string) (nrows, xrows [][]string) {
	for _, pn := range profs {
		nr, xr := []string{pn}, []string{pn}
		nmax := make([]float64, len(nBuckets))
		xmax := make([]float64, len(xBuckets))
		for i := range nmax {
			nmax[i] = math.NaN()
		}
		for i := range xmax {
			xmax[i] = math.NaN()
		}
		seen := false
		for _, e := range es {
			if e.Profile != pn {
				continue
			}
			seen = true
			for _, pt := range e.Points {
				for i, b := range nBuckets {
					if pt.N >= b.lo && pt.N <= b.hi && !(float64(pt.Norm) <= nmax[i]) {
						nmax[i] = float64(pt.Norm)
					}
				}
				for i, b := range xBuckets {
					if x := float64(pt.MaxAbsX); x >= b.lo && x < b.hi && !(float64(pt.Norm) <= xmax[i]) {
						xmax[i] = float64(pt.Norm)
					}
				}
			}
		}
		if !seen {
			continue
		}
		for _, v := range nmax {
			nr = append(nr, g(v))
		}
		for _, v := range xmax {
			xr = append(xr, g(v))
		}
		nrows, xrows = append(nrows, nr), append(xrows, xr)
	}
	return nrows, xrows
}

// collapse merges rows whose cells other than the first are identical,
// keeping the first row's position and listing the merged names.
func collapse(rows [][]string) [][]string {
	idx := map[string]int{}
	var out [][]string
	var names [][]string
	for _, row := range rows {
		k := strings.Join(row[1:], "\x00")
		if i, ok := idx[k]; ok {
			names[i] = append(names[i], row[0])
			continue
		}
		idx[k] = len(out)
		out = append(out, append([]string(nil), row...))
		names = append(names, []string{row[0]})
	}
	for i, ns := range names {
		out[i][0] = strings.Join(ns, ", ")
	}
	return out
}

// Markdown renders r as report.md (tables, no plots).
func Markdown(r *Report) []byte {
	d, _ := r.build(false) // without plots build cannot fail
	var b bytes.Buffer
	esc := func(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
	for _, bl := range d.blocks {
		switch bl.kind {
		case "h1", "h2", "h3":
			lvl, _ := strconv.Atoi(bl.kind[1:])
			fmt.Fprintf(&b, "%s %s\n\n", strings.Repeat("#", lvl), bl.text)
		case "p":
			fmt.Fprintf(&b, "%s\n\n", bl.text)
		case "details":
			fmt.Fprintf(&b, "<details><summary>%s</summary>\n\n", html.EscapeString(bl.text))
		case "/details":
			b.WriteString("</details>\n\n")
		case "list":
			for _, it := range bl.items {
				fmt.Fprintf(&b, "- %s\n", it)
			}
			b.WriteString("\n")
		case "table":
			hs := make([]string, len(bl.head))
			for i, h := range bl.head {
				hs[i] = esc(h)
			}
			fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(hs, " | "), strings.Repeat("---|", len(bl.head)))
			for _, row := range bl.rows {
				cs := make([]string, len(row))
				for i, c := range row {
					cs[i] = esc(c)
				}
				fmt.Fprintf(&b, "| %s |\n", strings.Join(cs, " | "))
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("Plots: report.html (self-contained). Data: report.json.\n")
	return b.Bytes()
}

// inline renders the little Markdown the text uses (`code`, **bold**) as
// escaped HTML.
func inline(s string) string {
	s = html.EscapeString(s)
	for _, m := range []struct{ mark, open, close string }{{"`", "<code>", "</code>"}, {"**", "<strong>", "</strong>"}} {
		parts := strings.Split(s, m.mark)
		if len(parts)%2 == 0 {
			continue // unbalanced: leave as is
		}
		var b strings.Builder
		for i, p := range parts {
			if i > 0 {
				if i%2 == 1 {
					b.WriteString(m.open)
				} else {
					b.WriteString(m.close)
				}
			}
			b.WriteString(p)
		}
		s = b.String()
	}
	return s
}

// slug makes a heading an HTML id: lowercase letters, digits and hyphens.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

const css = `body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",sans-serif;margin:24px auto;max-width:1368px;padding:0 16px;color:#222;line-height:1.4}
p,li{max-width:1100px}
details{margin:10px 0;border:1px solid #ddd;border-radius:4px;padding:4px 10px}
summary{cursor:pointer;font-weight:600;padding:4px 0}
h1{font-size:1.6em}nav{font-size:14px;margin-bottom:12px}h2{margin-top:1.8em;border-bottom:1px solid #ccc}h3{margin-top:1.2em}
table{border-collapse:collapse;font-size:12.5px;margin:8px 0 16px}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f2f2f2}tr:nth-child(even) td{background:#fafafa}
td{font-variant-numeric:tabular-nums}
code{background:#f2f2f2;padding:0 3px;border-radius:3px}
figure{margin:12px 0 20px;flex:1 1 560px;min-width:0}figure.wide{flex-basis:100%}
figure svg{width:100%;height:auto;background:#fff;border:1px solid #ddd}
figcaption{font-size:13px;color:#555}
.plots{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}`

// HTML renders r as a self-contained report.html: the tables of
// report.md and inline SVG plots, no scripts, no external resources.
func HTML(r *Report) ([]byte, error) {
	d, err := r.build(true)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>attnvet tolerance report</title>\n<style>" + css + "</style></head><body>\n")
	// Anchors for the headings, and a table of contents after the title.
	slugs := map[int]string{}
	used := map[string]int{}
	var toc []string
	for i, bl := range d.blocks {
		if bl.kind != "h2" && bl.kind != "h3" {
			continue
		}
		sl := slug(bl.text)
		if used[sl]++; used[sl] > 1 {
			sl = fmt.Sprintf("%s-%d", sl, used[sl])
		}
		slugs[i] = sl
		if bl.kind == "h2" {
			toc = append(toc, fmt.Sprintf("<a href=\"#%s\">%s</a>", sl, inline(bl.text)))
		}
	}
	inFigs := false
	for i, bl := range d.blocks {
		if bl.kind != "figure" && inFigs {
			b.WriteString("</div>\n")
			inFigs = false
		}
		switch bl.kind {
		case "h1":
			fmt.Fprintf(&b, "<h1>%s</h1>\n<nav>%s</nav>\n", inline(bl.text), strings.Join(toc, " · "))
		case "h2", "h3":
			fmt.Fprintf(&b, "<%s id=\"%s\">%s</%s>\n", bl.kind, slugs[i], inline(bl.text), bl.kind)
		case "p":
			fmt.Fprintf(&b, "<p>%s</p>\n", inline(bl.text))
		case "details":
			fmt.Fprintf(&b, "<details><summary>%s</summary>\n", inline(bl.text))
		case "/details":
			b.WriteString("</details>\n")
		case "list":
			b.WriteString("<ul>\n")
			for _, it := range bl.items {
				fmt.Fprintf(&b, "<li>%s</li>\n", inline(it))
			}
			b.WriteString("</ul>\n")
		case "table":
			b.WriteString("<table><thead><tr>")
			for _, h := range bl.head {
				fmt.Fprintf(&b, "<th>%s</th>", inline(h))
			}
			b.WriteString("</tr></thead><tbody>\n")
			for _, row := range bl.rows {
				b.WriteString("<tr>")
				for _, c := range row {
					fmt.Fprintf(&b, "<td>%s</td>", inline(c))
				}
				b.WriteString("</tr>\n")
			}
			b.WriteString("</tbody></table>\n")
		case "figure":
			if !inFigs {
				b.WriteString("<div class=\"plots\">\n")
				inFigs = true
			}
			if bl.wide {
				b.WriteString("<figure class=\"wide\">")
			} else {
				b.WriteString("<figure>")
			}
			b.Write(bl.svg)
			fmt.Fprintf(&b, "<figcaption>%s</figcaption></figure>\n", inline(bl.text))
		}
	}
	if inFigs {
		b.WriteString("</div>\n")
	}
	b.WriteString("</body></html>\n")
	return b.Bytes(), nil
}
