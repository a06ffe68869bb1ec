package main

import (
	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/safeio"
)

func init() {
	register(command{
		name:    "case",
		summary: "print the case JSON a campaign of seed S runs at generated index I (replay it, or save it as a case file)",
		usage:   "--seed S --index I [--family F]",
		run:     runCase,
	})
}

func runCase(e *env, args []string) int {
	fs := newFlags("case")
	seed := fs.Uint64("seed", 0, "campaign seed (as fuzz and gate print it)")
	index := fs.Int("index", -1, "generated case index (0, 1, …; in a shard i/n the indices i, i+n, …)")
	fam := fs.String("family", "", "the campaign's --family (default: drawn per case, as in a campaign without --family)")
	if printFlags(e, fs, args) {
		return exitPass
	}
	if err := parseFlags(fs, args); err != nil {
		return e.exitFor("case", err)
	}
	if fs.NArg() > 0 {
		return e.exitFor("case", usagef("unexpected argument %q (case takes only flags)", fs.Arg(0)))
	}
	if !flagSet(fs, "seed") || !flagSet(fs, "index") {
		return e.exitFor("case", usagef("want --seed S and --index I"))
	}
	if *index < 0 {
		return e.exitFor("case", usagef("--index %d: want 0 or more", *index))
	}
	f, err := familyFlag(*fam)
	if err != nil {
		return e.exitFor("case", err)
	}
	c := campaign.CaseAt(*seed, *index, f)
	c.Version = cases.Version
	if c.Family == "" {
		return e.exitFor("case", usagef("seed %d index %d: %s", *seed, *index, safeio.OneLine(c.Description)))
	}
	e.stdout.Write(c.Marshal())
	return exitPass
}
