package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/attnvet/attnvet/internal/atomicfile"
	"github.com/attnvet/attnvet/internal/bundlecheck"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/jsonout"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/internal/safeio"
	"github.com/attnvet/attnvet/internal/tolerance"
)

func init() {
	register(command{
		name:    "check",
		summary: "judge a kernel's dumped output: recompute the exact answer from a bundle's inputs (safetensors or .npz) and check o",
		usage:   "BUNDLE... [--criterion NAME[,NAME…]] [--json FILE] [--junit FILE] [--top K] [metadata flags: --family, --profile, …]",
		run:     runCheck,
	})
}

// metaFlags are the flags that override (or, for .npz, supply) the
// bundle's metadata, named after its keys with dashes.
var metaFlags = []struct{ key, usage string }{
	{interop.KeyFamily, problem.FamilyNames() + " (default: the bundle's, else inferred from its tensors)"},
	{interop.KeySoftmaxScale, "softmax scale (default: the bundle's, else D^-0.5)"},
	{interop.KeyWindow, "sparse: WIN, window: W (0 = full causal)"},
	{interop.KeyIndexTopK, "sparse: IDX_TOPK (WIN = TOPK - index_topk)"},
	{interop.KeyTokensPerBatch, "sparse: S, tokens per batch entry (default 1)"},
	{interop.KeyProfile, "built-in precision profile: " + strings.Join(profile.Names(), ", ")},
	{interop.KeyInDType, "input dtype bf16|fp16|fp32 (default: the profile's, else q's dtype)"},
	{interop.KeyScoreDType, "score dtype (default: the profile's, else fp32)"},
	{interop.KeyPDType, "P dtype before P·V (default: the profile's, else the input dtype)"},
	{interop.KeyAccDType, "accumulator dtype (default: the profile's, else fp32)"},
	{interop.KeyOutDType, "output dtype (default: the profile's, else o's dtype)"},
	{interop.KeyOutRounding, "rne or away (default: the profile's, else rne)"},
	{interop.KeyLFromRoundedP, "true if l sums the rounded P (default false)"},
	{interop.KeyExpULPs, "the kernel's exp error in ulps (default 2)"},
	{interop.KeyExpSubnormals, "gradual if the exp rounds results below 2^-126 into the subnormals (default flush: it may return 0)"},
	{interop.KeyCompressRatio, "csa, hca: the compress ratio (default 4 for csa, 128 for hca)"},
}

func flagName(key string) string { return strings.ReplaceAll(key, "_", "-") }

func runCheck(e *env, args []string) int {
	fs := newFlags("check")
	crit := fs.String("criterion", tolerance.NameBound, "gating criteria, comma-separated: "+strings.Join(tolerance.Names(), ", ")+" (every criterion is reported; these decide the exit code)")
	jsonOut := fs.String("json", "", "write the results as JSON to `FILE`")
	junitOut := fs.String("junit", "", "write JUnit XML to `FILE` (one test per bundle and gating criterion)")
	top := fs.Int("top", 5, "worst elements to show per bundle")
	assume := fs.Bool("assume-defaults", false, "judge bundles that leave a semantics-defining key (window, causal, d_v, in_dtype of an F32 dump of bf16 values) to its default, instead of refusing them")
	mem := addMemoryFlag(fs)
	meta := map[string]*string{}
	for _, m := range metaFlags {
		meta[m.key] = fs.String(flagName(m.key), "", "metadata "+m.key+": "+m.usage)
	}
	if printFlags(e, fs, args) {
		return exitPass
	}
	paths, err := parseInterleaved(fs, args)
	if err != nil {
		return e.exitFor("check", err)
	}
	if len(paths) == 0 {
		return e.exitFor("check", usagef("missing BUNDLE (usage: attnvet check BUNDLE... [--criterion NAME])"))
	}
	if *top < 0 || *top > 10000 {
		return e.exitFor("check", usagef("--top %d: want 0..10000", *top))
	}
	gating, err := gatingCriteria(*crit)
	if err != nil {
		return e.exitFor("check", err)
	}
	for _, f := range []struct{ name, path string }{{"json", *jsonOut}, {"junit", *junitOut}} {
		if err := outputFileFlag(f.name, f.path); err != nil {
			return e.exitFor("check", err)
		}
	}
	override := map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		for _, m := range metaFlags {
			if f.Name == flagName(m.key) {
				override[m.key] = *meta[m.key]
			}
		}
	})

	defer mem.apply()()
	doc := bundlecheck.File{Version: bundlecheck.Version, Command: "check", Criteria: gating}
	for i, path := range paths {
		if i > 0 {
			fmt.Fprintln(e.stdout)
		}
		r := bundlecheck.Check(path, bundlecheck.Options{Override: override, Gating: gating, Limit: mem.n,
			AssumeDefaults: *assume, Decode: decodeBundle, Criteria: checkCriteria})
		bundlecheck.Print(e.stdout, &r, *top)
		doc.Bundles = append(doc.Bundles, r)
	}
	doc.Exit = checkExit(doc.Bundles)
	if len(paths) > 1 {
		n := map[string]int{}
		for _, r := range doc.Bundles {
			n[r.Status]++
		}
		fmt.Fprintf(e.stdout, "\n%d bundles: %d pass, %d fail, %d contract violations, %d invalid",
			len(paths), n["pass"], n["fail"], n["contract"], n["invalid"])
		if n["internal"] > 0 {
			fmt.Fprintf(e.stdout, ", %d internal errors", n["internal"])
		}
		fmt.Fprintln(e.stdout)
	}
	if *jsonOut != "" {
		b, err := jsonout.MarshalIndent(doc, "", "  ")
		if err != nil {
			return e.exitFor("check", fmt.Errorf("encoding JSON: %v", err))
		}
		if err := atomicfile.Write(*jsonOut, append(b, '\n')); err != nil {
			return e.exitFor("check", usagef("--json: %v", err))
		}
	}
	if *junitOut != "" {
		if err := atomicfile.Write(*junitOut, bundlecheck.JUnit(&doc)); err != nil {
			return e.exitFor("check", usagef("--junit: %v", err))
		}
	}
	for _, r := range doc.Bundles {
		if r.Status == "invalid" || r.Status == "contract" || r.Status == "internal" {
			fmt.Fprintf(e.stderr, "attnvet check: %s: %s\n", safeio.Printable(r.Path), safeio.OneLine(r.Error))
		}
	}
	return doc.Exit
}

// gatingCriteria parses --criterion.
func gatingCriteria(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if _, err := tolerance.Lookup(n); err != nil {
			return nil, usagef("--criterion: %v", err)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, usagef("--criterion %q: name at least one criterion", s)
	}
	return out, nil
}

// checkExit: 3 if judging some bundle hit an internal error (a panic),
// else 2 if any bundle is invalid or breaks the contract (it could not be
// judged), else 1 if any failed, else 0.
func checkExit(rs []bundlecheck.Result) int {
	code := exitPass
	for _, r := range rs {
		switch r.Status {
		case "internal":
			return exitInternal
		case "invalid", "contract":
			code = exitUsage
		case "fail":
			if code == exitPass {
				code = exitMismatch
			}
		}
	}
	return code
}

// decodeBundle is interop.Decode; a test makes it panic.
var decodeBundle = interop.Decode

// checkCriteria is tolerance.All; a test adds one that panics.
var checkCriteria = tolerance.All
