package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/attnvet/attnvet/impl/mutant"
	"github.com/attnvet/attnvet/internal/atomicfile"
	"github.com/attnvet/attnvet/internal/jsonout"
	"github.com/attnvet/attnvet/internal/mutscore"
	"github.com/attnvet/attnvet/internal/tolerance"
)

func init() {
	register(command{
		name:    "mutants",
		summary: "score the tolerance criteria on the mutant catalog: kills, false positives, cases to first kill",
		usage:   "[--cases N] [--seed S] [--workers K] [--json FILE] [--progress D] [--criterion NAME] [--target MUTANT] [--targeted-every K] [--correct=false] | --list | --case N",
		run:     runMutants,
	})
}

func runMutants(e *env, args []string) int {
	const name = "mutants"
	def := mutscore.DefaultOptions()
	fs := newFlags(name)
	n := fs.Int("cases", def.Cases, "case budget")
	seed := fs.Uint64("seed", def.Seed, "campaign seed")
	workers := fs.Int("workers", 0, "worker goroutines (default: all cores)")
	jsonOut := fs.String("json", "", "also write the result as JSON to `FILE`")
	crit := fs.String("criterion", "", "score only this criterion (default all)")
	target := fs.String("target", "", "score only this mutant (default all)")
	targeted := fs.Int("targeted-every", def.TargetedEvery, "make every K-th case a targeted one (0: props.CaseAt only)")
	correct := fs.Bool("correct", true, "run every correct configuration for the false-positive count (false: only the mutants' bases)")
	every := fs.Duration("progress", 10*time.Second, "interval of progress lines when stderr is not a terminal (0: none)")
	list := fs.Bool("list", false, "list the mutant catalog and exit")
	show := fs.Int("case", 0, "print campaign case N (1-based) as JSON and exit (for attnvet replay)")
	if printFlags(e, fs, args) {
		return exitPass
	}
	if err := parseFlags(fs, args); err != nil {
		return e.exitFor(name, err)
	}
	if fs.NArg() > 0 {
		return e.exitFor(name, usagef("unexpected argument %q", fs.Arg(0)))
	}
	if *list {
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "mutant\tclass\tbase\tfamily\tdefect\t")
		for _, m := range mutant.All() {
			fam := string(m.Family)
			if fam == "" {
				fam = "both"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", m.Name, m.BugClass, m.Base, fam, m.Doc)
		}
		tw.Flush()
		return exitPass
	}
	if *show != 0 {
		if *show < 1 || *show > mutscore.MaxCases {
			return e.exitFor(name, usagef("--case %d: want 1..%d", *show, mutscore.MaxCases))
		}
		if *targeted < 0 {
			return e.exitFor(name, usagef("--targeted-every %d: want 0 (none) or more", *targeted))
		}
		c, _ := mutscore.CaseAt(*seed, *show-1, *targeted)
		e.stdout.Write(c.Marshal())
		return exitPass
	}
	if *n < 1 || *n > mutscore.MaxCases {
		return e.exitFor(name, usagef("--cases %d: want 1..%d", *n, mutscore.MaxCases))
	}
	if *workers < 0 {
		return e.exitFor(name, usagef("--workers %d: want 0 (all cores) or more", *workers))
	}
	if *targeted < 0 {
		return e.exitFor(name, usagef("--targeted-every %d: want 0 (none) or more", *targeted))
	}
	opt := def
	opt.Cases, opt.Seed, opt.Workers, opt.TargetedEvery, opt.Correct = *n, *seed, *workers, *targeted, *correct
	if *crit != "" {
		if _, err := tolerance.Lookup(*crit); err != nil {
			return e.exitFor(name, usagef("--criterion: %v", err))
		}
		opt.Criteria = []string{*crit}
	}
	if *target != "" {
		if _, err := mutant.Lookup(*target); err != nil {
			return e.exitFor(name, usagef("--target: %v", err))
		}
		opt.Mutants = []string{*target}
	}
	if *every < 0 {
		return e.exitFor(name, usagef("--progress %v: want 0 or a positive duration", *every))
	}
	pr := newCountProgress(e.stderr, *every, name, "cases", opt.Cases)
	opt.Progress = pr.update
	res, err := mutscore.Run(opt)
	pr.finish()
	if err != nil {
		return e.exitFor(name, err)
	}
	if err := res.WriteTable(e.stdout); err != nil {
		return e.exitFor(name, err)
	}
	if *jsonOut != "" {
		b, err := jsonout.MarshalIndent(res, "", "  ")
		if err != nil {
			return e.exitFor(name, err)
		}
		if err := atomicfile.Write(*jsonOut, append(b, '\n')); err != nil {
			return e.exitFor(name, usagef("--json: %v", err))
		}
	}
	return exitPass
}
