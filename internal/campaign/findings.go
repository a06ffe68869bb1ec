package campaign

// Findings by signature (docs/json.md, "Findings"): every failed check and
// every worker failure is given a signature, and the result lists one
// finding per (target, signature) with its count and its first example
// in the unsharded case order, so a frequent failure cannot hide a rare
// one. A signature depends only on the failure and the case's shape, never
// on the seed, the index or the shard.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/attnvet/attnvet/internal/safeio"
	"math"
	"sort"
	"strings"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
)

// Finding is one (target, signature) group of failures.
type Finding struct {
	Target    string `json:"target"`
	Signature string `json:"signature"`
	Kind      string `json:"kind"`    // mismatch, gross, error, worker-crash, … (signatureKind)
	Outputs   string `json:"outputs"` // failed outputs joined by "+" ("o", "lse", "o+lse"); "-" when none judged
	Shape     string `json:"shape"`   // the failure's class (FailureClass)
	Count     int    `json:"count"`   // failed checks with this signature
	// Term is the bound term the failure went through (tolerance.Terms.Dominant, "lse"
	// when only lse failed, "-" when nothing was judged).
	Term string `json:"term"`
	// Known: the signature is in the --known list: reported, does not fail
	// the run.
	Known bool `json:"known"`
	// Seq is the example's position in the unsharded campaign's order; the
	// example is the first failure of the group in that order (shrunk and
	// saved, as the failures list shows it).
	Seq           int            `json:"seq"`
	Example       *Failure       `json:"example,omitempty"`
	WorkerExample *WorkerFailure `json:"worker_example,omitempty"`
}

// ShapeClass is a case's shape class: its family, its storage dtype
// ("kernel" when the case does not pin one) and, in this order, the
// features present: gqa (fewer KV heads than query heads), dv (value width
// differs from the key width), window (a sliding window), causal, sink,
// softcap, alibi, lse (the case asks for lse), specials (planted special
// values), poison, plant (index-layout edits), shuffled (shuffled index
// order). Sizes are not part of it: the same defect at another size is
// the same finding.
func ShapeClass(c cases.Case) string {
	dt := c.DType
	if dt == "" {
		dt = "kernel"
	}
	var fs []string
	add := func(ok bool, name string) {
		if ok {
			fs = append(fs, name)
		}
	}
	add(c.Hkv > 0 && c.Hkv < c.H, "gqa")
	add(c.Dv > 0 && c.Dv != c.D, "dv")
	add(c.Window > 0 || (c.WindowLeft != nil && *c.WindowLeft >= 0) || (c.WindowRight != nil && *c.WindowRight > 0), "window")
	add(c.Causal, "causal")
	add(c.Sink != nil && c.Sink.Kind != "" && c.Sink.Kind != "none", "sink")
	add(c.Softcap != 0, "softcap")
	add(c.Alibi != nil, "alibi")
	add(c.LSE != nil, "lse")
	add(c.MaxLogit != nil, "max_logit")
	add(len(c.Specials) > 0, "specials")
	add(c.Poison, "poison")
	add(len(c.Plant) > 0, "plant")
	add(c.Indices == "shuffled", "shuffled")
	s := string(c.Family) + "/" + dt
	if len(fs) > 0 {
		s += "/" + strings.Join(fs, "+")
	}
	return s
}

// failureKind classifies a failed check as the legacy signatures did
// (LegacySignature): error (the kernel errored or
// panicked), nonfinite (the worst err/allowed is NaN or +Inf: a NaN or
// infinite output where the reference is finite, or the reverse), or
// mismatch (a finite error beyond its bound).
func failureKind(err string, worst float64) string {
	switch {
	case err != "":
		return "error"
	case math.IsNaN(worst) || math.IsInf(worst, 0):
		return "nonfinite"
	}
	return "mismatch"
}

// LegacySignature joins kind, outputs and the case's ShapeClass: the
// three-field signature of attnvet before signatures had four fields,
// "mismatch o window/fp16/gqa+sink". A --known file of such signatures
// still marks exactly the failures it marked then.
func LegacySignature(kind, outputs, shape string) string {
	return kind + " " + outputs + " " + shape
}

// Signature joins kind, outputs, class and term: "nonfinite o
// window/sink+inf exact".
func Signature(kind, outputs, class, term string) string {
	if term == "" {
		term = "-"
	}
	return kind + " " + outputs + " " + class + " " + term
}

// FailureClass is the class of a failure (the third field of its
// signature): the case's family and, after a "/", the class of the row
// the worst failing element lies in (tolerance.RowClass: "n0", "n1",
// "sink+inf", "sink", "+"-joined). Sizes, the storage dtype and the
// case's other features (GQA, a window, planted specials) are not in it:
// a defect that shows in the rows of one class is one finding however
// the cases that reach it differ (one ORT defect made 20 signatures of
// ShapeClass). row is "" for a failure with no failing row (an error, a
// worker failure).
func FailureClass(c cases.Case, row string) string {
	s := string(c.Family)
	if s == "" {
		s = "?"
	}
	if row != "" {
		s += "/" + row
	}
	return s
}

// GrossRatio is the err/allowed beyond which a failure is gross: not a
// precision defect whose error a bound term can name, but a kernel that
// computed something else (a hidden key's weight, a NaN, another head's
// values). 2^8: a rigorous bound is exceeded by a correct kernel never, and
// by one rounding step done in a format a few bits narrower than declared
// by a small factor; 256 times the whole allowance is not rounding.
const GrossRatio = 256

// signatureKind is the first field of a failed check's signature: error
// (the kernel errored or panicked), gross (a NaN or ±Inf where the
// reference is finite or the reverse, any error on an exactly determined
// output, or an error beyond GrossRatio times its allowance), or mismatch
// (a finite error within GrossRatio times its allowance).
func signatureKind(err string, worst float64) string {
	switch {
	case err != "":
		return "error"
	case math.IsNaN(worst) || worst > GrossRatio:
		return "gross"
	}
	return "mismatch"
}

// signatureOf is the signature of a failed check of case c: kind
// (signatureKind), outputs, and for a mismatch the class of its worst
// row (FailureClass) and the bound term it exceeded, for the others the
// family alone and "-": which term a NaN or a wrong key's value exceeds,
// and whether the first row it shows in has a sink or one key, depend on
// the case, not on the defect (one ORT defect was 10 signatures with
// them).
func signatureOf(kind, outputs, term, row string, c cases.Case) (sig, class, t string) {
	class, t = FailureClass(c, ""), "-"
	if kind == "mismatch" {
		class, t = FailureClass(c, row), term
	}
	return Signature(kind, outputs, class, t), class, t
}

// FailureSignature is the signature of a listed failure.
func FailureSignature(f *Failure) string {
	if f.Recheck != "" {
		return Signature(f.Recheck, "o", FailureClass(f.Input, ""), "-")
	}
	sig, _, _ := signatureOf(signatureKind(f.Error, float64(f.Worst)), outputsOf(f.FailedOutputs), f.Term, f.RowClass, f.Input)
	return sig
}

func outputsOf(fo []string) string {
	if len(fo) == 0 {
		return "-"
	}
	return strings.Join(fo, "+")
}

// findingAcc accumulates one group in the aggregator.
type findingAcc struct {
	f     Finding
	first pending
	set   bool
}

// offerFinding counts the failure p (f or w set) of target ti at item it,
// whose worst failing element's term and row class are term and row. It
// is known when --known lists its signature or its legacy (three-field)
// one; a group whose failures differ in that is two findings.
func (a *aggregator) offerFinding(ti int, kind, legacyKind, outputs, term, row string, it *item, p pending) {
	sig, shape, term := signatureOf(kind, outputs, term, row, it.c)
	known := a.opt.Known[sig] || a.opt.Known[LegacySignature(legacyKind, outputs, ShapeClass(it.c))]
	key := a.opt.Targets[ti].Name + "\x00" + sig
	if known {
		key += "\x00known"
	}
	if a.finds == nil {
		a.finds = map[string]*findingAcc{}
	}
	acc := a.finds[key]
	if acc == nil {
		acc = &findingAcc{f: Finding{Target: a.opt.Targets[ti].Name, Signature: sig, Kind: kind, Outputs: outputs, Shape: shape, Term: term, Known: known}}
		a.finds[key] = acc
	}
	acc.f.Count++
	if acc.f.Known {
		a.res.KnownChecks++
	}
	if !acc.set || less([2]int{p.seq, p.target}, [2]int{acc.first.seq, acc.first.target}) {
		acc.first, acc.set, acc.f.Seq = p, true, it.global
	}
}

// findingSaves are the first failures of each group: saved and shrunk
// like the first Save of each target, so each group shows a shrunk
// example.
func (a *aggregator) findingSaves() (fs, ws []pending) {
	for _, acc := range a.finds {
		if acc.first.f != nil && acc.first.f.Recheck != "" {
			continue // a recheck failure: its case passes a plain check, nothing to shrink
		}
		if acc.first.f != nil {
			fs = append(fs, acc.first)
		} else {
			ws = append(ws, acc.first)
		}
	}
	return fs, ws
}

// findings lists the groups: unknown before known, then by count
// (largest first), then by the example's case order.
func (a *aggregator) findings() []Finding {
	var out []Finding
	for _, acc := range a.finds {
		f := acc.f
		if acc.first.f != nil {
			c := *acc.first.f
			f.Example = &c
		} else {
			c := *acc.first.w
			f.WorkerExample = &c
		}
		out = append(out, f)
	}
	sortFindings(out)
	return out
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Known != b.Known {
			return !a.Known
		}
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.Seq != b.Seq {
			return a.Seq < b.Seq
		}
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		return a.Signature < b.Signature
	})
}

// mergeFindings groups the findings of merged results by (target,
// signature): counts add, the example is the first in the unsharded case
// order.
func mergeFindings(parts [][]Finding) []Finding {
	idx := map[string]int{}
	var out []Finding
	for _, fs := range parts {
		for _, f := range fs {
			key := f.Target + "\x00" + f.Signature
			if f.Known {
				key += "\x00known"
			}
			i, ok := idx[key]
			if !ok {
				idx[key] = len(out)
				out = append(out, f)
				continue
			}
			m := &out[i]
			m.Count += f.Count
			if f.Seq < m.Seq {
				m.Seq, m.Example, m.WorkerExample = f.Seq, f.Example, f.WorkerExample
			}
		}
	}
	sortFindings(out)
	return out
}

// ParseKnown reads a --known file: either a JSON document (a campaign
// result, whose findings' signatures are taken, or an array of signature
// strings) or text, one signature per line, blank lines and lines starting
// with # ignored, surrounding space trimmed.
func ParseKnown(b []byte) (map[string]bool, error) {
	known := map[string]bool{}
	if t := bytes.TrimSpace(b); len(t) > 0 && (t[0] == '[' || t[0] == '{') {
		var list []string
		if t[0] == '[' {
			if err := json.Unmarshal(t, &list); err != nil {
				return nil, fmt.Errorf("bad known-signature JSON (want an array of strings): %v", err)
			}
		} else {
			var r struct {
				Findings []Finding `json:"findings"`
			}
			if err := json.Unmarshal(t, &r); err != nil {
				return nil, fmt.Errorf("bad known-signature JSON (want a campaign result with findings): %v", err)
			}
			for _, f := range r.Findings {
				list = append(list, f.Signature)
			}
		}
		for _, s := range list {
			if err := checkSignature(s); err != nil {
				return nil, err
			}
			known[strings.TrimSpace(s)] = true
		}
		return known, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := checkSignature(line); err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		known[line] = true
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return known, nil
}

// checkSignature rejects what cannot be a signature: four fields, or
// three (a legacy signature, LegacySignature).
func checkSignature(s string) error {
	if n := len(strings.Fields(s)); n != 3 && n != 4 {
		return fmt.Errorf("%q is not a signature (want \"KIND OUTPUTS CLASS TERM\", e.g. \"nonfinite o window/sink+inf exact\", or a three-field signature of an older attnvet, \"KIND OUTPUTS SHAPE\")", s)
	}
	return nil
}

// LoadKnown reads a --known file (a regular file, at most 16 MiB; a FIFO
// or device is refused without blocking).
func LoadKnown(path string) (map[string]bool, error) {
	b, err := safeio.ReadFile(path, 16<<20)
	if err != nil {
		return nil, err
	}
	k, err := ParseKnown(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return k, nil
}

// saveLists are the failure lists to save (and shrink): the first Save
// of each target and, with SaveFindings, the first of each finding group.
func (a *aggregator) saveLists() [][]pending {
	if !a.opt.SaveFindings {
		return a.perT
	}
	fs, _ := a.findingSaves()
	return append(append([][]pending(nil), a.perT...), fs)
}

// wsaveLists is saveLists for worker failures.
func (a *aggregator) wsaveLists() [][]pending {
	if !a.opt.SaveFindings {
		return a.wperT
	}
	_, ws := a.findingSaves()
	return append(append([][]pending(nil), a.wperT...), ws)
}

// CaseAt is the case a campaign of seed runs at generated index (family
// "" draws the family per case, as fuzz does): attnvet case.
func CaseAt(seed uint64, index int, family problem.Family) cases.Case {
	return caseAt(seed, index, family)
}
