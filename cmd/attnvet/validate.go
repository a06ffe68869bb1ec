package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/attnvet/attnvet/internal/atomicfile"
	"github.com/attnvet/attnvet/internal/jsonout"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/validate"
)

func init() {
	register(command{
		name:    "validate",
		summary: "check the tolerance model on every correct emulation: zero bound failures, and how tight it is",
		usage:   "[--cases N] [--seed S] [--family " + familyAlternatives() + "] [--kernels GLOB] [--inputs KIND] [--workers K] [--json FILE] [--progress D]",
		run:     runValidate,
	})
}

func runValidate(e *env, args []string) int {
	fs := newFlags("validate")
	n := fs.Int("cases", 200, "cases per family")
	seed := fs.Uint64("seed", 1, "campaign seed")
	fam := fs.String("family", "", problem.FamilyNames()+" (default all)")
	kernels := fs.String("kernels", "", "kernel glob (default all correct emulations)")
	workers := fs.Int("workers", 0, "worker goroutines (default: all cores)")
	jsonOut := fs.String("json", "", "write the results as JSON to `FILE`")
	inputs := fs.String("inputs", "", "validate only cases whose inputs are of this `KIND`: "+strings.Join(validate.InputKinds, ", ")+
		" (the first N such cases of each family; default: every case)")
	every := fs.Duration("progress", 10*time.Second, "interval of progress lines when stderr is not a terminal (0: none)")
	if printFlags(e, fs, args) {
		return exitPass
	}
	if err := parseFlags(fs, args); err != nil {
		return e.exitFor("validate", err)
	}
	if *n < 1 {
		return e.exitFor("validate", usagef("--cases %d: want at least 1", *n))
	}
	if *workers < 0 {
		return e.exitFor("validate", usagef("--workers %d: want 0 (all cores) or more", *workers))
	}
	if *every < 0 {
		return e.exitFor("validate", usagef("--progress %v: want 0 or a positive duration", *every))
	}
	opt := validate.Options{Seed: *seed, Cases: *n, Kernels: *kernels, Workers: *workers, Inputs: *inputs}
	if *fam != "" {
		f, err := problem.ParseFamily(*fam)
		if err != nil {
			return e.exitFor("validate", usagef("--family: %v", err))
		}
		opt.Families = []problem.Family{f}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pr := newCountProgress(e.stderr, *every, "validate", "cases", 0) // validate.Run reports the total
	opt.Progress = pr.update
	res, err := validate.Run(ctx, opt)
	pr.finish()
	if err != nil && res == nil {
		return e.exitFor("validate", usagef("%v", err))
	}
	boundFails := res.WriteTable(e.stdout)
	if *jsonOut != "" {
		b, _ := jsonout.MarshalIndent(res, "", "  ")
		if err := atomicfile.Write(*jsonOut, append(b, '\n')); err != nil {
			return e.exitFor("validate", usagef("%v", err))
		}
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "attnvet validate: interrupted; results are partial\n")
	}
	if boundFails > 0 {
		return exitMismatch
	}
	return exitPass
}

// familyAlternatives spells the families as a usage line's choices: a|b|c.
func familyAlternatives() string {
	var fs []string
	for _, f := range problem.Families() {
		fs = append(fs, string(f))
	}
	return strings.Join(fs, "|")
}
