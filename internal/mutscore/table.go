package mutscore

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/tolerance"
)

// WriteTable prints the result as two aligned tables (per criterion, per
// mutant) and, for each other criterion, the mutants bound kills that it
// never does.
func (r *Result) WriteTable(w io.Writer) error {
	c := r.Cases
	var fams []string
	for _, f := range problem.Families() {
		if n := c.ByFamily[f]; n > 0 {
			fams = append(fams, fmt.Sprintf("%d %s", n, f))
		}
	}
	fmt.Fprintf(w, "seed %d, %d cases (%d generated, %d targeted; %s; %d contract-violating, not judged)\n",
		r.Seed, c.Total, c.Props, c.Targeted, strings.Join(fams, ", "), c.Violating)
	fmt.Fprintf(w, "%d mutants, %d correct kernels\n\n", len(r.Mutants), len(r.CorrectKernels))

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "criterion\tkilled\tmedian cases to kill\tfalse positives (runs)\tcorrect kernels failed\tmutants failed\t")
	for _, name := range r.CriteriaOrder {
		s := r.Criteria[name]
		med := "-"
		if s.MedianCasesToKill != nil {
			med = strconv.FormatFloat(*s.MedianCasesToKill, 'f', -1, 64)
		}
		fmt.Fprintf(tw, "%s\t%d/%d\t%s\t%d/%d\t%d/%d\t%d/%d\t\n", name, s.Killed, s.Total, med,
			s.FalsePositives, s.CorrectJudged, s.FalsePositiveKernels, len(r.CorrectKernels), s.Failed, s.Total)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\ncases to first kill (- = never within the budget); triggered = cases where the output differs from the base's")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "mutant\tclass\t%s\ttriggered/judged\t\n", strings.Join(r.CriteriaOrder, "\t"))
	for _, m := range r.Mutants {
		var cells []string
		for _, name := range r.CriteriaOrder {
			cells = append(cells, killCell(m.KilledBy[name]))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t\n", m.Name, m.BugClass, strings.Join(cells, "\t"), m.Triggered, m.Judged)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	for _, name := range []string{tolerance.NameBound, tolerance.NameProb} {
		s, ok := r.Criteria[name]
		if !ok || len(s.FalsePositiveExamples) == 0 {
			continue
		}
		fp := s.FalsePositiveExamples[0]
		fmt.Fprintf(w, "\n%s failed a correct kernel %d times (a bug in the bound or the kernel); the first: %s on case %d; replay:\n"+
			"  attnvet mutants --seed %d --targeted-every %d --case %d > case.json && attnvet replay case.json --kernel %s --criterion %s\n",
			name, s.FalsePositives, fp.Kernel, fp.Case, r.Seed, r.TargetedEvery, fp.Case, fp.Kernel, name)
	}
	if _, ok := r.Criteria[tolerance.NameBound]; !ok {
		return nil
	}
	var lines []string
	for _, name := range r.CriteriaOrder {
		if name == tolerance.NameBound {
			continue
		}
		var missed []string
		for _, m := range r.Mutants {
			if m.KilledBy[tolerance.NameBound] != nil && m.KilledBy[name] == nil {
				missed = append(missed, m.Name)
			}
		}
		if len(missed) == 0 {
			missed = []string{"(none)"}
		}
		lines = append(lines, fmt.Sprintf("  %s misses %d: %s", name, len(missed), strings.Join(missed, ", ")))
		if missed[0] == "(none)" {
			lines[len(lines)-1] = fmt.Sprintf("  %s misses none", name)
		}
	}
	fmt.Fprintf(w, "\nmutants bound kills that another criterion never does:\n%s\n", strings.Join(lines, "\n"))
	return nil
}

func killCell(n *int) string {
	if n == nil {
		return "-"
	}
	return strconv.Itoa(*n)
}
