package report

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"sort"
	"strconv"
	"strings"

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
func (d *doc) figure(svg []byte, caption string) {
	if svg != nil {
		d.blocks = append(d.blocks, block{kind: "figure", svg: svg, text: caption})
	}
}

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
		return "n/a (no mutant ran)"
	}
	missed, ran, quiet := r.escapes(p, prof, base)
	q := ""
	if quiet > 0 {
		q = fmt.Sprintf(" (%d more not triggered by a typical case)", quiet)
	}
	switch {
	case ran == 0 && quiet == 0:
		return "no mutant of this kernel"
	case ran == 0:
		return "none triggered" + q
	case len(missed) == 0:
		return fmt.Sprintf("none of %d%s", ran, q)
	}
	return fmt.Sprintf("%d of %d: %s%s", len(missed), ran, strings.Join(missed, "; "), q)
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

// build lays out the whole report.
func (r *Report) build(plots bool) (*doc, error) {
	d := &doc{}
	grid := r.RTols
	profs := r.profiles()
	d.h(1, "attnvet tolerance report")
	shards := "all shards"
	if r.Shards > 1 {
		shards = fmt.Sprintf("shards %v of %d", r.ShardIDs, r.Shards)
		if !r.Complete() {
			shards += " (**incomplete**: merge the other shards' report.json with `attnvet report --merge`)"
		}
	}
	d.p("Seed %d, %d cases per family (case i of family f is `props.CaseAt(%d, i, f)`, i = 0..%d), %s; families: %s; %d correct kernel emulations (%d profiles); report format version %d.",
		r.Seed, r.Cases, r.Seed, max(r.Cases-1, 0), shards, strings.Join(r.Families, ", "), len(r.Kernels), len(profs), r.Version)
	if len(r.Mutants) == 0 {
		d.p("No mutant ran (none varies a measured kernel, or the run was told not to), so the \"bugs it misses\" columns are empty.")
	} else {
		d.p("%d mutants (known bug classes, SPEC.md §3) ran on the same cases.", len(r.Mutants))
	}
	d.p("Errors compare the kernel output a with the float64 reference o per element: abs = |a − o|; rel = abs/|o| where |o| is at least the output format's smallest normal; ulp = abs/ulp(o) in the output format; err/bound = abs divided by the rigorous per-element bound (1 = at the bound; headroom = 1 − the largest); norm = abs/Σp|v|. Columns read max · p50 · p99 · p99.9; percentiles come from log-spaced histograms (16 bins per octave) and are upper estimates, at most 6.25%% above the exact value; maxima are exact.")

	// Findings.
	d.h(2, "Findings")
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
			skips[e.Family+": "+k] += n
		}
	}
	if len(finds) == 0 {
		finds = append(finds, "No correct emulation exceeded the rigorous bound, and none disagreed with the reference on which elements are finite.")
	}
	// False alarms: each criterion over every correct kernel × case.
	var alarms []string
	for _, n := range tolerance.Names() {
		var c Crit
		for _, e := range r.Entries {
			c.add(e.Criteria[n])
		}
		if tot := c.Pass + c.Fail; tot > 0 {
			alarms = append(alarms, fmt.Sprintf("%s %d (%.1f%%)", n, c.Fail, 100*float64(c.Fail)/float64(tot)))
		}
	}
	if len(alarms) > 0 {
		finds = append(finds, "Correct kernel × case pairs each criterion fails (false alarms): "+strings.Join(alarms, ", ")+".")
	}
	if len(r.Mutants) > 0 {
		var kills []string
		triggered := 0
		for _, m := range r.Mutants {
			if m.Triggered > 0 {
				triggered++
			}
		}
		for _, n := range tolerance.Names() {
			k := 0
			for _, m := range r.Mutants {
				if c := m.Criteria[n]; c != nil && c.Fail > 0 {
					k++
				}
			}
			kills = append(kills, fmt.Sprintf("%s %d", n, k))
		}
		finds = append(finds, fmt.Sprintf("Mutants caught on at least one case, of the %d that some case triggered (%d ran): %s.", triggered, len(r.Mutants), strings.Join(kills, ", ")))
	}
	if len(skips) > 0 {
		var ks []string
		for k := range skips {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		var parts []string
		for _, k := range ks {
			parts = append(parts, fmt.Sprintf("%s %d", k, skips[k]))
		}
		finds = append(finds, "Kernel × case pairs not measured (a contract violation makes the kernel read other keys than the reference; dtype: inputs the kernel does not take): "+strings.Join(parts, ", ")+".")
	}
	d.list(finds)

	// Per profile.
	d.h(2, "Per precision profile")
	d.p("Over every kernel of the profile and every family. The suggested (atol, rtol) is the knee of the Pareto set of allclose tolerances that pass every typical correct case (unit-scale values, nothing planted: see the allclose section); \"bugs it misses\" names the mutants of that profile it passes on every typical case. The last column is the same knee over all cases, extreme magnitudes included: the atol a fixed tolerance would need there.")
	var rows [][]string
	for _, pn := range profs {
		var abs, ulp, ratio Stat
		var needs, needsAll []Need
		kernels := map[string]bool{}
		var cases int64
		prob := &Crit{}
		for _, e := range r.Entries {
			if e.Profile != pn {
				continue
			}
			kernels[e.Kernel] = true
			cases += e.Cases
			abs.Merge(&e.Abs)
			ulp.Merge(&e.ULP)
			ratio.Merge(&e.Ratio)
			needs, needsAll = append(needs, e.NeedTypical), append(needsAll, e.Need)
			prob.add(e.Criteria[tolerance.NameProb])
		}
		ts, tsAll := summarizeNeed(grid, needs...), summarizeNeed(grid, needsAll...)
		sug, miss, all := kneeText(ts), "—", kneeText(tsAll)
		if ts.ok {
			miss = r.missText(ts.knee, pn, "")
		}
		rows = append(rows, []string{pn, strconv.Itoa(len(kernels)), strconv.FormatInt(cases, 10),
			g(float64(abs.Max)), fmt.Sprintf("%s · %s", g(float64(ulp.Max)), g(ulp.Quantile(0.999))),
			fmt.Sprintf("%s (%s)", g(float64(ratio.Max)), headroom(&ratio)), critCell(prob),
			sug, miss, all})
	}
	d.table([]string{"profile", "kernels", "kernel·cases", "abs max", "ulp max · p99.9", "err/bound max (headroom)", "prob", "suggested (atol, rtol)", "bugs it misses", "all cases: knee"}, rows)

	// Per family.
	for _, fam := range r.Families {
		es := r.family(fam)
		d.h(2, "Family "+fam)
		d.h(3, "Error per kernel")
		rows = nil
		for _, e := range es {
			rows = append(rows, []string{e.Kernel, strconv.FormatInt(e.Cases, 10), strconv.FormatInt(e.Elements, 10),
				quants(&e.Abs), quants(&e.Rel), quants(&e.ULP)})
		}
		d.table([]string{"kernel", "cases", "elements", "abs", "rel", "ulp"}, rows)

		d.h(3, "Headroom and criteria")
		d.p("err/bound is the observed error over the rigorous bound; \"not judged\" counts the elements the bound leaves out (outside the profile's range, or without a finite bound). A criterion cell reads \"all\" when every case passed, else failed/total and the worst statistic over its threshold: on correct kernels every failure is a false alarm.")
		rows = nil
		names := tolerance.Names()
		for _, e := range es {
			row := []string{e.Kernel, quants(&e.Ratio), headroom(&e.Ratio), strconv.FormatInt(e.Unbounded+e.OutOfRange, 10)}
			for _, n := range names {
				row = append(row, critCell(e.Criteria[n]))
			}
			rows = append(rows, row)
		}
		d.table(append([]string{"kernel", "err/bound", "headroom", "not judged"}, names...), rows)

		d.h(3, "Error against n and score range")
		d.p("Largest norm error (|a − o|/Σp|v|) of a case, by the key count n and the largest |score| of the row it occurred in, per profile (max over its kernels); — means no case fell in the bucket.")
		var nrows, xrows [][]string
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
			for _, e := range es {
				if e.Profile != pn {
					continue
				}
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
			for _, v := range nmax {
				nr = append(nr, g(v))
			}
			for _, v := range xmax {
				xr = append(xr, g(v))
			}
			nrows, xrows = append(nrows, nr), append(xrows, xr)
		}
		head := []string{"profile \\ n"}
		for _, b := range nBuckets {
			head = append(head, b.name)
		}
		d.table(head, nrows)
		head = []string{"profile \\ max|x|"}
		for _, b := range xBuckets {
			head = append(head, b.name)
		}
		d.table(head, xrows)
		if plots {
			hp, np, xp, err := familyPlots(fam, es, profs)
			if err != nil {
				return nil, err
			}
			d.figure(hp, "Error over the rigorous bound, per element, per kernel (color: profile). Right of the dashed line would be a bound violation.")
			d.figure(np, "Per case: the largest error relative to Σp|v| against the key count n of the row where it occurred; one series per profile (the kernel with the largest error per case). Exact (zero-error) cases sit on the bottom edge.")
			d.figure(xp, "Per case: the same error against the largest |score| of that row. Rows whose scores are all below 0.001 in magnitude (q = 0, say) sit on the left edge.")
		}
	}

	// allclose per kernel.
	d.h(2, "allclose: the smallest (atol, rtol) per kernel")
	d.p("For each rtol r of a grid (0 and 2^(−k/2) down to 2^−26), atol(r) = max over every element of every typical correct case of (|a − o| − r·|o|)⁺ is the smallest atol with which allclose passes all of them. Typical cases draw q, k, v at unit scale (normal, uniform, zeroq or dominant, v not rescaled) with no planted special value: the data allclose tolerances are tuned on. Output errors scale with |v|, so over all cases (values up to the format's maximum) no useful fixed atol exists: the last column shows what it would take. The Pareto set keeps the grid points whose atol is below that of every smaller rtol; the knee (the suggestion) is the Pareto point that allows the least error at |o| = 1, i.e. minimises atol + rtol. \"Misses\" are the mutants varying this kernel that the knee passes on every typical case.")
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
	d.table([]string{"kernel", "typical cases", "atol at rtol 0", "knee (atol, rtol)", "Pareto points (atol, rtol)", "misses", "all cases: knee"}, rows)

	// Mutants.
	d.h(2, "Known bug classes (mutants)")
	if len(r.Mutants) == 0 {
		d.p("None ran: report.Options.Mutants held no mutant of a measured kernel (the CLI passes impl/mutant's catalog, filtered to the measured kernels, unless --mutants=false).")
	} else {
		d.p("A mutant whose trigger a case lacks computes what its base computes bit for bit; \"triggered\" counts the cases where its output differs, and each criterion's cell is the number of triggered cases it failed (caught), so a criterion that also fails correct kernels (see the per-family tables) is not credited for that. The last column says whether the profile's suggested (atol, rtol) passes the mutant on every typical case (missed), fails it on some (caught), or whether no typical case triggered it.")
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
				esc = "not triggered"
			default:
				esc = "caught"
				if m.NeedTypical.Passes(ts.knee.idx, float64(ts.knee.ATol)) {
					esc = "**missed**"
				}
			}
			rows = append(rows, append(row, esc))
		}
		d.table(append(append([]string{"mutant", "bug class", "varies", "triggered/cases"}, names...), "suggested allclose"), rows)
	}
	return d, nil
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

const css = `body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",sans-serif;margin:24px auto;max-width:1500px;padding:0 16px;color:#222;line-height:1.4}
h1{font-size:1.6em}nav{font-size:14px;margin-bottom:12px}h2{margin-top:1.8em;border-bottom:1px solid #ccc}h3{margin-top:1.2em}
table{border-collapse:collapse;font-size:12.5px;margin:8px 0 16px}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f2f2f2}tr:nth-child(even) td{background:#fafafa}
td{font-variant-numeric:tabular-nums}
code{background:#f2f2f2;padding:0 3px;border-radius:3px}
figure{margin:12px 0 20px}figure svg{max-width:100%;height:auto;background:#fff;border:1px solid #ddd}
figcaption{font-size:13px;color:#555;max-width:830px}
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
			b.WriteString("<figure>")
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
