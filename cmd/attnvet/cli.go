package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"

	"github.com/attnvet/attnvet/internal/safeio"
)

// Exit codes are contracts.
const (
	exitPass     = 0
	exitMismatch = 1
	exitUsage    = 2
	exitInternal = 3
)

// command is one subcommand. run returns an exit code; errors it reports
// itself via usageErr / fail helpers.
type command struct {
	name    string
	summary string
	usage   string // one line of arguments, e.g. "[--cases N] [--seed S]"
	run     func(env *env, args []string) int
}

var commands = map[string]command{}

// register adds a subcommand; each command's file calls it from init.
func register(c command) { commands[c.name] = c }

// env is what a command may touch: its output streams (and, through
// getenv, the environment), so commands are testable in-process.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// errUsage marks a bad-usage or bad-input error (exit 2).
type errUsage struct{ msg string }

func (e errUsage) Error() string { return e.msg }

// usagef builds an exit-2 error.
func usagef(format string, a ...any) error { return errUsage{fmt.Sprintf(format, a...)} }

// exitFor prints err as one line and returns its exit code.
func (e *env) exitFor(cmd string, err error) int {
	if err == nil {
		return exitPass
	}
	fmt.Fprintf(e.stderr, "attnvet %s: %s\n", cmd, safeio.OneLine(err.Error()))
	var u errUsage
	if errors.As(err, &u) {
		return exitUsage
	}
	return exitInternal
}

// memFlag is --max-memory: the memory an input (a bundle, a case) may
// need; one that needs more is refused, exit 2, before it is read on.
type memFlag struct{ n int64 }

func (m *memFlag) String() string {
	if m == nil {
		return ""
	}
	return safeio.FormatSize(m.n)
}

func (m *memFlag) Set(s string) error {
	n, err := safeio.ParseSize(s)
	if err != nil {
		return err
	}
	if n < 1<<20 {
		return fmt.Errorf("%s is below the 1MiB minimum", s)
	}
	m.n = n
	return nil
}

func addMemoryFlag(fs *flag.FlagSet) *memFlag {
	m := &memFlag{n: safeio.DefaultLimit}
	fs.Var(m, "max-memory", "the memory an input may need, a `SIZE` such as 512MiB or 2GiB: a bundle or case that needs more is refused (exit 2); also the Go runtime's soft memory limit")
	return m
}

// apply makes the limit the Go runtime's soft memory limit, so the
// collector keeps the heap under it, until the returned func restores it.
func (m *memFlag) apply() (restore func()) {
	prev := debug.SetMemoryLimit(m.n)
	return func() { debug.SetMemoryLimit(prev) }
}

// newFlags makes a FlagSet that reports errors through exit code 2.
func newFlags(cmd string) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses and turns flag errors into usage errors naming the command.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return usagef("see 'attnvet help %s'", fs.Name())
		}
		return usagef("%v", err)
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer) (code int) {
	e := &env{stdout: stdout, stderr: stderr, getenv: os.Getenv}
	return e.run(args)
}

func (e *env) run(args []string) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(e.stderr, "attnvet: internal error: %v (please report it with the command line)\n", r)
			if e.getenv("ATTNVET_DEBUG") != "" {
				fmt.Fprintf(e.stderr, "%s\n", debug.Stack())
			}
			code = exitInternal
		}
	}()
	if len(args) == 0 {
		e.help(nil)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "--help", "-help":
		return e.help(args[1:])
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(e.stderr, "attnvet: unknown command %q (see 'attnvet help')\n", name)
		return exitUsage
	}
	return c.run(e, args[1:])
}

func (e *env) help(args []string) int {
	if len(args) > 0 {
		c, ok := commands[args[0]]
		if !ok {
			fmt.Fprintf(e.stderr, "attnvet help: unknown command %q\n", args[0])
			return exitUsage
		}
		fmt.Fprintf(e.stdout, "usage: attnvet %s %s\n\n%s\n", c.name, c.usage, c.summary)
		if c.run != nil {
			// Print the command's flags.
			c.run(&env{stdout: e.stdout, stderr: e.stdout, getenv: e.getenv}, []string{"-attnvet-print-flags"})
		}
		return exitPass
	}
	fmt.Fprintln(e.stdout, "attnvet: differential numerical verification of low-precision attention kernels")
	fmt.Fprintln(e.stdout, "\nusage: attnvet COMMAND [flags]\n\ncommands:")
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(e.stdout, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(e.stdout, "\nexit codes: 0 pass, 1 verified mismatch, 2 bad usage or input, 3 internal error")
	fmt.Fprintln(e.stdout, "'attnvet help COMMAND' describes one command.")
	return exitPass
}

// printFlags is the hidden flag help uses to list a command's flags.
func printFlags(e *env, fs *flag.FlagSet, args []string) bool {
	if len(args) == 1 && args[0] == "-attnvet-print-flags" {
		fs.SetOutput(e.stdout)
		fs.PrintDefaults()
		return true
	}
	return false
}
