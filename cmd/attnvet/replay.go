package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/safeio"
	"github.com/attnvet/attnvet/internal/show"
	"github.com/attnvet/attnvet/internal/targets"
	"github.com/attnvet/attnvet/internal/tolerance"
)

func init() {
	register(command{
		name:    "replay",
		summary: "run one case file against a kernel and show, element by element, where it fails",
		usage:   "CASE.json [--kernel NAME] [--criterion NAME] [--top K] [--case-timeout D] [--worker-profile NAME]",
		run:     runReplay,
	})
}

func runReplay(e *env, args []string) int {
	fs := newFlags("replay")
	kernel := fs.String("kernel", "", "kernel, mutant:NAME or registry name (default: the target the case file records)")
	critName := fs.String("criterion", "", "criterion (default: the one the case file records, else bound)")
	top := fs.Int("top", 5, "worst elements to show")
	mem := addMemoryFlag(fs)
	wf := addWorkerFlags(fs)
	if printFlags(e, fs, args) {
		return exitPass
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return e.exitFor("replay", err)
	}
	switch {
	case len(pos) == 0:
		return e.exitFor("replay", usagef("missing CASE.json (usage: attnvet replay CASE.json [--kernel NAME])"))
	case len(pos) > 1:
		return e.exitFor("replay", usagef("one case file at a time (got %d arguments)", len(pos)))
	}
	if *top < 1 || *top > 10000 {
		return e.exitFor("replay", usagef("--top %d: want 1..10000", *top))
	}
	defer mem.apply()()
	c, err := loadCase("replay", pos[0], mem.n)
	if err != nil {
		return e.exitFor("replay", err)
	}
	recTarget, recCrit := campaign.Provenance(c)
	name := *kernel
	if name == "" {
		name = recTarget
	}
	if name == "" {
		return e.exitFor("replay", usagef("%s does not record a target: give --kernel NAME (see 'attnvet kernels')", safeio.Printable(pos[0])))
	}
	topt, err := wf.options(fs, targets.IsExec(name))
	if err != nil {
		return e.exitFor("replay", err)
	}
	t, err := targets.Resolve(name, topt)
	if err != nil {
		return e.exitFor("replay", usagef("--kernel: %v", err))
	}
	defer t.Close()
	cn := *critName
	if cn == "" {
		cn = recCrit
	}
	if cn == "" {
		cn = tolerance.NameBound
	}
	crit, err := criterionFlag(cn)
	if err != nil {
		return e.exitFor("replay", err)
	}
	d, err := campaign.Check(c, t, crit)
	var ie *campaign.InternalError
	if errors.As(err, &ie) {
		return e.exitFor("replay", fmt.Errorf("%s: %v (please report it with the case file)", safeio.Printable(pos[0]), err))
	}
	if err != nil {
		return e.exitFor("replay", usagef("%s: %v", safeio.Printable(pos[0]), err))
	}
	show.Replay(e.stdout, pos[0], d, *top)
	switch d.Status {
	case campaign.Fail:
		return exitMismatch
	case campaign.Incompatible:
		return e.exitFor("replay", usagef("%v", d.Err))
	}
	return exitPass
}

// loadCase reads a case file for cmd within limit bytes of memory; every
// error is a usage error (exit 2), and a directory or special file is
// named as such.
func loadCase(cmd, path string, limit int64) (cases.Case, error) {
	c, err := cases.LoadLimit(path, limit)
	var nr *safeio.NotRegularError
	switch {
	case safeio.IsDir(err):
		return c, usagef("%s is a directory: %s wants one case file, e.g. %s/NAME.json", safeio.Printable(path), cmd, safeio.ShellQuote(path))
	case errors.As(err, &nr):
		return c, usagef("%v: %s reads a case file (JSON)", err, cmd)
	case err != nil:
		return c, usagef("%v", err)
	}
	return c, nil
}

// parseInterleaved parses flags placed before and after positional
// arguments ("replay FILE --kernel K").
func parseInterleaved(fs interface {
	Parse([]string) error
	NArg() int
	Arg(int) string
	Args() []string
	Name() string
}, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, parseErr(fs.Name(), err)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func parseErr(name string, err error) error {
	if strings.Contains(err.Error(), "help requested") {
		return usagef("see 'attnvet help %s'", name)
	}
	return usagef("%v", err)
}
