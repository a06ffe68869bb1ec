package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/internal/safeio"
	"github.com/attnvet/attnvet/internal/targets"
)

func init() {
	register(command{
		name:    "export",
		summary: "write a case's inputs (and, with --kernel, that kernel's output) as a bundle for another team's harness",
		usage:   "CASE.json OUT.safetensors|OUT.npz [--kernel NAME] [--profile NAME] [--dtype bf16|fp16|fp32]",
		run:     runExport,
	})
}

func runExport(e *env, args []string) int {
	fs := newFlags("export")
	kernel := fs.String("kernel", "", "also write o, the output of this kernel (registry name, mutant:NAME or exec:'CMD'); its profile is declared")
	prof := fs.String("profile", "bf16", "precision profile to declare when there is no --kernel: "+strings.Join(profile.Names(), ", "))
	dtype := fs.String("dtype", "", "input dtype (default: the case's, else the profile's)")
	mem := addMemoryFlag(fs)
	if printFlags(e, fs, args) {
		return exitPass
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return e.exitFor("export", err)
	}
	if len(pos) != 2 {
		return e.exitFor("export", usagef("want CASE.json and OUT.safetensors (or OUT.npz), got %d arguments", len(pos)))
	}
	casePath, out := pos[0], pos[1]
	npz := strings.EqualFold(filepath.Ext(out), ".npz")
	if !npz && !strings.EqualFold(filepath.Ext(out), ".safetensors") {
		return e.exitFor("export", usagef("%s: the output name must end in .safetensors or .npz", out))
	}
	if err := outputFileFlag("export", out); err != nil {
		return e.exitFor("export", err)
	}
	defer mem.apply()()
	c, err := loadCase("export", casePath, mem.n)
	if err != nil {
		return e.exitFor("export", err)
	}
	var t *targets.Target
	p, err := profile.Lookup(*prof)
	if err != nil {
		return e.exitFor("export", usagef("--profile: %v", err))
	}
	if *kernel != "" {
		if flagSet(fs, "profile") {
			return e.exitFor("export", usagef("--profile and --kernel: the kernel declares its own profile"))
		}
		tt, err := targets.Resolve(*kernel, targets.Options{})
		if err != nil {
			return e.exitFor("export", usagef("--kernel: %v", err))
		}
		if cl, ok := tt.Kernel.(interface{ Close() error }); ok {
			defer cl.Close()
		}
		t, p = &tt, tt.Kernel.Profile()
	}
	f := c.Format(p.In)
	if *dtype != "" {
		if f, err = num.ParseFormat(*dtype); err != nil || f == num.FP64 {
			return e.exitFor("export", usagef("--dtype %q: want bf16, fp16 or fp32", *dtype))
		}
	}
	in, err := cases.Generate(c, f)
	if err != nil {
		return e.exitFor("export", usagef("%s: %v", safeio.Printable(casePath), err))
	}
	for _, v := range in.Violations() {
		fmt.Fprintf(e.stderr, "attnvet export: note: the case breaks the input contract: %s\n", v)
	}
	var o, lse []float32
	if t != nil {
		res, err := t.Kernel.Run(in)
		if err != nil {
			return e.exitFor("export", usagef("--kernel %s: %v", t.Name, err))
		}
		if len(res.O) != in.OutLen() {
			return e.exitFor("export", fmt.Errorf("--kernel %s returned %d values, want %d", t.Name, len(res.O), in.OutLen()))
		}
		o, lse = res.O, res.LSE
	}
	b, err := interop.Encode(in, p, o)
	if err == nil && lse != nil {
		err = interop.AddLSE(b, in, lse)
	}
	if err != nil {
		return e.exitFor("export", usagef("%v", err))
	}
	b.Metadata[interop.KeyCase] = strings.TrimSpace(string(c.Marshal()))
	write := b.WriteSafetensors
	if npz {
		write = b.WriteNpz
	}
	if err := bundle.WriteFileAtomic(out, func(w io.Writer) error { return write(w) }); err != nil {
		return e.exitFor("export", usagef("%v", err))
	}
	what := "inputs"
	if t != nil {
		what = "inputs and the output of " + t.Name
	}
	fmt.Fprintf(e.stdout, "wrote %s: %s of %s, profile %s (%s)\n", safeio.Printable(out), safeio.Printable(what), interop.Describe(in), p.Name, p.Describe())
	if npz {
		fmt.Fprintf(e.stdout, ".npz holds no metadata: check it with  attnvet check %s %s\n", safeio.ShellQuote(out), metaAsFlags(b.Metadata))
	}
	return exitPass
}

// metaAsFlags spells a bundle's contract metadata as check's flags (the
// profile by name when it is a built-in one), each value shell-quoted.
func metaAsFlags(m map[string]string) string {
	var ks []string
	for _, k := range interop.ProblemKeys {
		if _, ok := m[k]; ok {
			ks = append(ks, k)
		}
	}
	if _, ok := m[interop.KeyProfile]; ok {
		ks = append(ks, interop.KeyProfile)
	} else {
		for _, k := range interop.ProfileKeys {
			if _, ok := m[k]; ok {
				ks = append(ks, k)
			}
		}
	}
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("--%s %s", flagName(k), safeio.ShellQuote(m[k])))
	}
	return strings.Join(parts, " ")
}
