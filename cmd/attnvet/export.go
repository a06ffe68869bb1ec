package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/internal/safeio"
	"github.com/attnvet/attnvet/internal/targets"
)

func init() {
	register(command{
		name: "export",
		summary: "write a case's inputs (and, with --kernel, that kernel's output) as a bundle for another team's harness; " +
			"--quantize quantizes a case's or a float bundle's K/V (or mla KV cache) with the source's reference quantizer",
		usage: "CASE.json|IN.safetensors|IN.npz OUT.safetensors|OUT.npz [--kernel NAME] [--profile NAME] [--dtype bf16|fp16|fp32] [--quantize SCHEME] [metadata flags of a bundle IN: --family, …]",
		run:   runExport,
	})
}

func runExport(e *env, args []string) int {
	fs := newFlags("export")
	kernel := fs.String("kernel", "", "also write o, the output of this kernel (registry name, mutant:NAME or exec:'CMD'); its profile is declared")
	prof := fs.String("profile", "bf16", "precision profile to declare when there is no --kernel: "+strings.Join(profile.Names(), ", ")+" (a bundle IN: overrides its metadata profile)")
	dtype := fs.String("dtype", "", "input dtype (default: the case's, else the profile's; a bundle IN keeps its own)")
	scheme := fs.String("quantize", "", "quantize K/V (dense: "+strings.Join(interop.DenseQuantSchemes, ", ")+
		") or the KV cache (mla: "+strings.Join(interop.MLAQuantSchemes, ", ")+") with the source's reference quantizer (amax-based scales, nothing drawn); "+
		"the reference is then the exact attention of the dequantized values (the quantization error is the model's, not judged); IN may be a float bundle")
	mem := addMemoryFlag(fs)
	meta := map[string]*string{}
	for _, m := range metaFlags {
		if m.key != interop.KeyProfile { // --profile is export's own
			meta[m.key] = fs.String(flagName(m.key), "", "a bundle IN's metadata "+m.key+" (as check's flag): "+m.usage)
		}
	}
	if printFlags(e, fs, args) {
		return exitPass
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return e.exitFor("export", err)
	}
	if len(pos) != 2 {
		return e.exitFor("export", usagef("want CASE.json and OUT.safetensors (or OUT.npz), got %d arguments (with --quantize, IN may be a float bundle)", len(pos)))
	}
	casePath, out := pos[0], pos[1]
	npz := strings.EqualFold(filepath.Ext(out), ".npz")
	if !npz && !strings.EqualFold(filepath.Ext(out), ".safetensors") {
		return e.exitFor("export", usagef("%s: the output name must end in .safetensors or .npz", out))
	}
	if err := outputFileFlag("export", out); err != nil {
		return e.exitFor("export", err)
	}
	inExt := strings.ToLower(filepath.Ext(casePath))
	fromBundle := inExt == ".safetensors" || inExt == ".npz"
	override := map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		for _, m := range metaFlags {
			if f.Name == flagName(m.key) && m.key != interop.KeyProfile {
				override[m.key] = *meta[m.key]
			}
		}
	})
	if fromBundle && *scheme == "" {
		return e.exitFor("export", usagef("%s: a bundle IN is re-exported only with --quantize SCHEME", safeio.Printable(casePath)))
	}
	if !fromBundle && len(override) > 0 {
		return e.exitFor("export", usagef("metadata flags (--%s, …) describe a bundle IN, not a case", flagName(sortedFirst(override))))
	}
	defer mem.apply()()
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
	var c cases.Case
	var in *problem.Inputs
	if fromBundle {
		if *dtype != "" {
			return e.exitFor("export", usagef("--dtype: a bundle IN keeps its inputs' dtype (declare it with --in-dtype)"))
		}
		if flagSet(fs, "profile") {
			override[interop.KeyProfile] = *prof
		}
		b, pbs, err := readFloatBundle(casePath, override, mem.n)
		if err != nil {
			return e.exitFor("export", err)
		}
		if b.O != nil || b.LSE != nil || b.MaxLogit != nil {
			fmt.Fprintf(e.stderr, "attnvet export: note: %s's outputs are not written: they are the outputs of the float inputs\n", safeio.Printable(casePath))
		}
		in = b.Inputs
		if t == nil {
			p = b.Profile
		}
		if err := interop.Quantize(in, *scheme, pbs[0], pbs[1]); err != nil {
			return e.exitFor("export", usagef("%v", err))
		}
	} else {
		if c, err = loadCase("export", casePath, mem.n); err != nil {
			return e.exitFor("export", err)
		}
		f := c.Format(p.In)
		if *dtype != "" {
			if f, err = num.ParseFormat(*dtype); err != nil || f == num.FP64 {
				return e.exitFor("export", usagef("--dtype %q: want bf16, fp16 or fp32", *dtype))
			}
		}
		if in, err = cases.Generate(c, f); err != nil {
			return e.exitFor("export", usagef("%s: %v", safeio.Printable(casePath), err))
		}
		if *scheme != "" {
			if err := interop.Quantize(in, *scheme, c.PageSize(), c.PageSize()); err != nil {
				return e.exitFor("export", usagef("%s: %v", safeio.Printable(casePath), err))
			}
		}
	}
	for _, v := range in.Violations() {
		fmt.Fprintf(e.stderr, "attnvet export: note: the %s breaks the input contract: %s\n", map[bool]string{false: "case", true: "bundle"}[fromBundle], v)
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
	if !fromBundle {
		if *scheme != "" {
			qc, ok := quantizedCase(c, *scheme, in)
			if !ok {
				fmt.Fprintf(e.stderr, "attnvet export: note: no case regenerates these quantized inputs (the generator quantizes before it plants values): the bundle records no %s\n", interop.KeyCase)
			} else {
				b.Metadata[interop.KeyCase] = strings.TrimSpace(string(qc.Marshal()))
			}
		} else {
			b.Metadata[interop.KeyCase] = strings.TrimSpace(string(c.Marshal()))
		}
	}
	write := b.WriteSafetensors
	if npz {
		write = b.WriteNpz
	}
	if err := bundle.WriteFileAtomic(out, func(w io.Writer) error { return write(w) }); err != nil {
		return e.exitFor("export", usagef("%v", err))
	}
	what := "inputs"
	if *scheme != "" {
		what = "inputs quantized " + *scheme
	}
	if t != nil {
		what += " and the output of " + t.Name
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

// readFloatBundle reads and decodes a bundle IN as check does (the same
// refusal of unstated semantics) and returns the mla caches' page sizes
// (main, extra; 1 when absent).
func readFloatBundle(path string, override map[string]string, limit int64) (*interop.Bundle, [2]int, error) {
	pbs := [2]int{1, 1}
	f, err := bundle.ReadFileLimit(path, limit)
	if err != nil {
		return nil, pbs, usagef("%v", err)
	}
	if err := interop.Unstated(f, override); err != nil {
		return nil, pbs, usagef("%s: %v", safeio.Printable(path), err)
	}
	b, err := interop.Decode(f, override)
	if err != nil {
		return nil, pbs, usagef("%s: %v", safeio.Printable(path), err)
	}
	if b.Inputs.Family == problem.MLA {
		for i, n := range []string{interop.TKCache, interop.TExtraKCache} {
			if t := f.Tensors[n]; t != nil && len(t.Shape) >= 3 && t.Shape[1] > 0 {
				pbs[i] = t.Shape[1]
			}
		}
	}
	return b, pbs, nil
}

// quantizedCase is c with scheme's case field (int8_kv, nvfp4_kv, int4_kv or
// kv_layout with the default dequant), if that case regenerates the
// quantized inputs q exactly: the generator quantizes with the same
// function, but before it plants some values (mla: before dominant keys).
func quantizedCase(c cases.Case, scheme string, q *problem.Inputs) (cases.Case, bool) {
	switch scheme {
	case interop.QuantInt8PerTensor:
		c.Int8KV = "per_tensor"
	case interop.QuantInt8PerChannel:
		c.Int8KV = "per_channel"
	case interop.QuantNVFP4:
		c.NVFP4KV = true
	case interop.QuantInt4PerTensor:
		c.Int4KV = "per_tensor"
	case interop.QuantInt4PerChannel:
		c.Int4KV = "per_channel"
	default:
		c.KVLayout = scheme
	}
	g, err := cases.Generate(c, q.Format)
	if err != nil {
		return c, false
	}
	same := reflect.DeepEqual(g.Int8KV, q.Int8KV) && reflect.DeepEqual(g.Int4KV, q.Int4KV) && reflect.DeepEqual(g.NVFP4KV, q.NVFP4KV) && reflect.DeepEqual(g.MLAQuant, q.MLAQuant) &&
		reflect.DeepEqual(g.K, q.K) && reflect.DeepEqual(g.V, q.V) && reflect.DeepEqual(g.Cache, q.Cache) && reflect.DeepEqual(g.ExtraCache, q.ExtraCache) &&
		reflect.DeepEqual(g.Q, q.Q)
	return c, same
}

// sortedFirst is m's smallest key.
func sortedFirst(m map[string]string) string {
	first := ""
	for k := range m {
		if first == "" || k < first {
			first = k
		}
	}
	return first
}
