package main

import (
	"fmt"
	"path"
	"strings"
	"text/tabwriter"

	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/jsonout"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/internal/targets"
	"github.com/attnvet/attnvet/internal/tolerance"
)

func init() {
	register(command{
		name:    "kernels",
		summary: "list the registry kernels, the mutants and the criteria",
		usage:   "[GLOB] [--json] [-v]",
		run:     runKernels,
	})
}

type kernelsDoc struct {
	Kernels  []kernelEntry    `json:"kernels"`
	Mutants  []kernelEntry    `json:"mutants"`
	Criteria []criterionEntry `json:"criteria"`
}

type kernelEntry struct {
	Name      string `json:"name"`
	Profile   string `json:"profile"`
	Precision string `json:"precision"`
	// Families: the families a correct emulation runs (every one); a
	// mutant's trigger family, or every one.
	Families []string `json:"families"`
	BugClass string   `json:"bug_class,omitempty"`
	Doc      string   `json:"doc,omitempty"`
}

type criterionEntry struct {
	Name string `json:"name"`
	Doc  string `json:"doc"`
}

func runKernels(e *env, args []string) int {
	fs := newFlags("kernels")
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	verbose := fs.Bool("v", false, "describe each mutant's defect")
	if printFlags(e, fs, args) {
		return exitPass
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return e.exitFor("kernels", err)
	}
	glob := ""
	switch len(pos) {
	case 0:
	case 1:
		glob = pos[0]
		if _, err := path.Match(glob, ""); err != nil {
			return e.exitFor("kernels", usagef("bad pattern %q: %v", glob, err))
		}
	default:
		return e.exitFor("kernels", usagef("at most one GLOB (got %d arguments)", len(pos)))
	}
	match := func(n string) bool {
		if glob == "" {
			return true
		}
		ok, _ := path.Match(glob, n)
		return ok
	}
	var families []string
	for _, f := range problem.Families() {
		families = append(families, string(f))
	}
	var doc kernelsDoc
	for _, t := range targets.RegistryTargets() {
		if match(t.Name) {
			p := t.Kernel.Profile()
			doc.Kernels = append(doc.Kernels, kernelEntry{Name: t.Name, Profile: p.Name, Precision: p.Describe(), Families: families})
		}
	}
	for _, t := range targets.Mutants() {
		if match(t.Name) || match(t.Name[len(targets.MutantPrefix):]) {
			p := t.Kernel.Profile()
			fams := families
			if t.Family != "" {
				fams = []string{t.Family}
			}
			doc.Mutants = append(doc.Mutants, kernelEntry{Name: t.Name, Profile: p.Name, Precision: p.Describe(), BugClass: t.BugClass, Doc: t.Doc, Families: fams})
		}
	}
	for _, c := range tolerance.All() {
		doc.Criteria = append(doc.Criteria, criterionEntry{Name: c.Name(), Doc: c.Doc()})
	}
	if *asJSON {
		b, _ := jsonout.MarshalIndent(doc, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
		return exitPass
	}
	if len(doc.Kernels)+len(doc.Mutants) == 0 {
		return e.exitFor("kernels", usagef("no kernel or mutant matches %q", glob))
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(e.stdout, "Every correct emulation runs every family (%s): %d loop shapes × %d precision profiles, plus %s.\n\n",
		strings.Join(families, ", "), len(doc.Kernels)/max(len(profile.Names()), 1), len(profile.Names()), pyptoKernelsNote)
	fmt.Fprintf(tw, "KERNEL (%d correct emulations)\tPRECISION\n", len(doc.Kernels))
	for _, k := range doc.Kernels {
		fmt.Fprintf(tw, "%s\t%s\n", k.Name, k.Precision)
	}
	tw.Flush()
	fmt.Fprintln(e.stdout)
	tw = tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "MUTANT (%d)\tPROFILE\tBUG CLASS\tFAMILY\n", len(doc.Mutants))
	for _, k := range doc.Mutants {
		fam := "any"
		if len(k.Families) == 1 {
			fam = k.Families[0]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Name, k.Profile, k.BugClass, fam)
		if *verbose {
			fmt.Fprintf(tw, "    %s\t\t\n", k.Doc)
		}
	}
	tw.Flush()
	fmt.Fprintln(e.stdout)
	tw = tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "CRITERION\tWHAT PASSES\n")
	for _, c := range doc.Criteria {
		fmt.Fprintf(tw, "%s\t%s\n", c.Name, c.Doc)
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "\nfuzz --target takes a kernel, mutant:NAME (or a bare mutant name); gate --kernels takes comma-separated globs (path.Match: * stops at /), e.g. 'tiled/*/bf16,*/*/*/bf16,stream/*'.\n")
	fmt.Fprintf(e.stdout, "Results are JSON version %d (docs/json.md).\n", campaign.Version)
	fmt.Fprintf(e.stdout, "FP8 KV caches (mla, kv_layout fp8_v32|fp8_model1, dequant bf16): FlashMLA SM90's sparse decode is tiled/bc64/bf16rne on the dequantized cache; the fp8-* mutants misread it (docs/interop.md, \"Quantized inputs\").\n")
	fmt.Fprintf(e.stdout, "Dense FP8 (FA3: F8_E4M3 q/k/v, q/k/v_descale [B, Hkv], p_dtype=e4m3, acc_bits): fa3/bc128/fp8bf16 is FA3's path (+8 max offset, e4m3 P, truncated accumulation); INT8 KV (ONNX Runtime: I8 k/v, k_scale/v_scale): every compatible emulation on the dequantized cache; the fa3-* and int8-* mutants (docs/interop.md, \"Dense FP8 inputs\", \"INT8 KV caches\").\n")
	fmt.Fprintf(e.stdout, "NVFP4 KV (flashinfer: U8 packed e2m1 k/v, k/v_block_scale e4m3 per 16 values, k/v_global_scale F32): dequantized to in_dtype(FP32(e2m1·e4m3·global)), then every compatible emulation (tiled/bc128/bf16rne as flashinfer's BF16 path); the nvfp4-* mutants (docs/interop.md, \"NVFP4 KV caches\").\n")
	fmt.Fprintf(e.stdout, "INT4 KV (ONNX Runtime, kv_cache_bit_width 4: U8 k/v two codes a byte, element 2i low, +8 bias; k_scale/v_scale F32): dequantized to in_dtype(FP32(code·scale)), then every compatible emulation; the int4-* mutants (docs/interop.md, \"INT4 KV caches\").\n")
	return exitPass
}

// pyptoKernelsNote describes the device emulation of the pypto families.
const pyptoKernelsNote = "pypto/bf16rne, the pypto-lib DeepSeek-V4 decode kernels' own precision path (128-column blocks of the window-then-compressed list; tiled/bc128 on the other families)"
