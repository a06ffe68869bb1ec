package validate

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints res as `attnvet validate` shows it: a row per
// configuration and family, a summary line, and the first bound failure
// of each configuration that has one. It returns the bound failures (o
// and lse) on correct kernels, which must be 0.
func (res *Result) WriteTable(w io.Writer) (boundFails int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kernel\tfamily\tcases\telements\tskipped\tbound fails\tprob fails\ttight bound\ttight prob\tworst err/bound\tlse rows\tlse fails\tlse worst\t")
	for _, s := range res.Stats {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%.3g\t%.3g\t%.3g\t%d\t%d\t%.3g\t\n", s.Kernel, s.Family, s.Cases, s.Elements, s.Skipped,
			s.BoundFail, s.ProbFail, s.TightBound, s.TightProb, s.WorstBound, s.LSERows, s.LSEBoundFail, s.LSEWorst)
		boundFails += s.BoundFail + s.LSEBoundFail
	}
	tw.Flush()
	only := ""
	if res.Inputs != "" {
		only = ", inputs " + res.Inputs + " only"
	}
	fmt.Fprintf(w, "\n%d cases per family (seed %d%s), %d contract-violation cases not judged; bound failures on correct kernels: %d\n",
		res.Cases, res.Seed, only, res.Violations, boundFails)
	for _, s := range res.Stats {
		if s.FirstFail != "" {
			fmt.Fprintf(w, "first bound failure of %s: %s\n", s.Kernel, s.FirstFail)
		}
	}
	return boundFails
}
