// Package validate checks the tolerance model against the correct
// emulations: every configuration over generated cases, counting bound and
// prob failures (there must be none for bound) and measuring tightness, the
// largest err/(bound − output-rounding term) on the FP32 result before the
// output cast.
package validate

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/pipeline"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/props"
)

// Options select the run.
type Options struct {
	Seed     uint64
	Cases    int // per family
	Families []problem.Family
	Kernels  string // impl.Match glob; "" = all
	Workers  int    // 0 = GOMAXPROCS
	// Inputs, if set, validates only cases whose inputs are of this kind
	// (InputKinds): the first Cases such cases of each family's stream, so
	// that a quantized path gets tightness figures of its own.
	Inputs string
	// Progress, if set, is called after each case with the number done.
	Progress func(done, total int)
}

// Stat is one configuration's record over one family.
type Stat struct {
	Kernel   string         `json:"kernel"`
	Family   problem.Family `json:"family"`
	Cases    int            `json:"cases"`    // cases judged (without contract violations)
	Elements int            `json:"elements"` // elements judged by bound
	Skipped  int            `json:"skipped"`  // elements outside the profile's range
	// Failures of a correct kernel: must be 0 for bound.
	BoundFail int `json:"bound_failures"`
	ProbFail  int `json:"prob_failures"`
	// Largest err/(bound − output term) on the pre-cast FP32 result, over
	// rows under the full analysis (not the range fallback).
	TightBound float64 `json:"tightness_bound"`
	TightProb  float64 `json:"tightness_prob"`
	// Largest err/bound on the final output.
	WorstBound float64 `json:"worst_bound"`
	// The lse output (problems that declare one): rows judged, cases with a
	// bound failure (must be 0), and the largest err/allowed.
	LSERows      int     `json:"lse_rows,omitempty"`
	LSEBoundFail int     `json:"lse_bound_failures,omitempty"`
	LSEWorst     float64 `json:"lse_worst_bound,omitempty"`
	FirstFail    string  `json:"first_failure,omitempty"` // case JSON of the first bound failure
}

// Result is a validation run.
type Result struct {
	Seed       uint64 `json:"seed"`
	Cases      int    `json:"cases_per_family"`
	Inputs     string `json:"inputs,omitempty"`         // Options.Inputs: only cases of this input kind
	Violations int    `json:"contract_violation_cases"` // generated cases not judged
	Stats      []Stat `json:"stats"`
}

// InputKinds are the values of Options.Inputs: plain (no quantized
// input) and the case fields of the quantized inputs, fp8 (dense, FA3's
// FP8 q/k/v), int8_kv, nvfp4_kv and int4_kv (dense K/V), kv_layout (mla's FP8 cache).
var InputKinds = []string{"plain", "fp8", "int8_kv", "nvfp4_kv", "int4_kv", "kv_layout"}

// InputKind is the kind of c's inputs (one of InputKinds).
func InputKind(c cases.Case) string {
	switch {
	case c.FP8 != "":
		return "fp8"
	case c.Int8KV != "":
		return "int8_kv"
	case c.NVFP4KV:
		return "nvfp4_kv"
	case c.Int4KV != "":
		return "int4_kv"
	case c.KVLayout != "" && c.KVLayout != "bf16":
		return "kv_layout"
	}
	return "plain"
}

// maxScan bounds the draws per case wanted in indicesOf: a kind the
// family draws less often than this is refused, not searched forever.
const maxScan = 1000

// indicesOf lists the first n case indices of family f's stream whose
// inputs are of kind.
func indicesOf(ctx context.Context, seed uint64, f problem.Family, kind string, n int) ([]int, error) {
	var out []int
	for i := 0; len(out) < n; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if i >= maxScan*(len(out)+1) {
			return nil, fmt.Errorf("inputs %s: the %s family drew %d such cases in %d (its generator draws them rarely or never)", kind, f, len(out), i)
		}
		if InputKind(props.CaseAt(seed, i, f)) == kind {
			out = append(out, i)
		}
	}
	return out, nil
}

type key struct {
	kernel string
	fam    problem.Family
}

// Run validates. It stops early (with partial results) when ctx is done.
func Run(ctx context.Context, o Options) (*Result, error) {
	kernels, err := impl.Match(o.Kernels)
	if err != nil {
		return nil, err
	}
	fams := o.Families
	if len(fams) == 0 {
		fams = problem.Families()
	}
	w := o.Workers
	if w <= 0 {
		w = runtime.GOMAXPROCS(0)
	}
	// The j-th case of family f is props.CaseAt(seed, idx[f][j]).
	idx := map[problem.Family][]int{}
	if o.Inputs != "" {
		if !slices.Contains(InputKinds, o.Inputs) {
			return nil, fmt.Errorf("inputs %q: want one of %s", o.Inputs, strings.Join(InputKinds, ", "))
		}
		for _, f := range fams {
			if idx[f], err = indicesOf(ctx, o.Seed, f, o.Inputs, o.Cases); err != nil {
				return nil, err
			}
		}
	}
	total := o.Cases * len(fams)
	res := &Result{Seed: o.Seed, Cases: o.Cases, Inputs: o.Inputs}
	stats := map[key]*Stat{}
	var mu sync.Mutex
	next, done := 0, 0
	var wg sync.WaitGroup
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				mu.Lock()
				j := next
				next++
				mu.Unlock()
				if j >= total {
					return
				}
				fam := fams[j%len(fams)]
				i := j / len(fams)
				if o.Inputs != "" {
					i = idx[fam][i]
				}
				c := props.CaseAt(o.Seed, i, fam)
				local, viol := runCase(c, kernels)
				mu.Lock()
				if viol {
					res.Violations++
				}
				for _, s := range local {
					merge(stats, s)
				}
				done++
				if o.Progress != nil {
					o.Progress(done, total)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, s := range stats {
		res.Stats = append(res.Stats, *s)
	}
	sort.Slice(res.Stats, func(i, j int) bool {
		a, b := res.Stats[i], res.Stats[j]
		if a.Family != b.Family {
			return a.Family < b.Family
		}
		return a.Kernel < b.Kernel
	})
	return res, ctx.Err()
}

func merge(m map[key]*Stat, s Stat) {
	k := key{s.Kernel, s.Family}
	t, ok := m[k]
	if !ok {
		cp := s
		m[k] = &cp
		return
	}
	t.Cases += s.Cases
	t.Elements += s.Elements
	t.Skipped += s.Skipped
	t.BoundFail += s.BoundFail
	t.ProbFail += s.ProbFail
	t.TightBound = math.Max(t.TightBound, s.TightBound)
	t.TightProb = math.Max(t.TightProb, s.TightProb)
	t.WorstBound = math.Max(t.WorstBound, s.WorstBound)
	t.LSERows += s.LSERows
	t.LSEBoundFail += s.LSEBoundFail
	t.LSEWorst = math.Max(t.LSEWorst, s.LSEWorst)
	if t.FirstFail == "" {
		t.FirstFail = s.FirstFail
	}
}

// runCase runs every kernel on case c; viol reports a contract-violating
// case (not judged).
func runCase(c cases.Case, kernels []*impl.Emulation) (stats []Stat, viol bool) {
	pc := pipeline.NewCase(c)
	for _, k := range kernels {
		// Prepared before the compatibility check: a case that violates the
		// contract in any kernel's format is not judged at all.
		f := c.Format(k.Profile().In)
		p, err := pc.In(f)
		if err != nil {
			panic(fmt.Sprintf("validate: generated case does not build: %v: %s", err, c))
		}
		if len(p.Violations) > 0 {
			return nil, true
		}
		if !impl.Compatible(f, k.Profile()) {
			continue
		}
		out, err := k.Run(p.In)
		if err != nil {
			panic(fmt.Sprintf("validate: %s: %v", k.Name(), err))
		}
		stats = append(stats, judge(k, c, p, out))
	}
	return stats, false
}

func judge(k *impl.Emulation, c cases.Case, p *pipeline.Prepared, out *impl.Output) Stat {
	s := Stat{Kernel: k.Name(), Family: c.Family, Cases: 1}
	x := p.Input(out, k.Profile(), tolerance.ShapeOf(k.Config))
	in, r := p.In, p.Ref
	for _, mode := range []tolerance.Mode{tolerance.Rigorous, tolerance.Probabilistic} {
		allowed, outTerm, skip := tolerance.Bounds(x, mode)
		full := tolerance.WellConditioned(x, mode)
		fails, tight, worst := 0, 0.0, 0.0
		for e, ro := range r.O {
			if skip[e] {
				if mode == tolerance.Rigorous {
					s.Skipped++
				}
				continue
			}
			if mode == tolerance.Rigorous {
				s.Elements++
			}
			errOut := math.Abs(float64(out.O[e]) - ro)
			errPre := math.Abs(float64(out.Pre[e]) - ro)
			if math.IsNaN(errOut) || errOut > allowed[e] {
				fails++
			}
			if allowed[e] > 0 {
				worst = math.Max(worst, errOut/allowed[e])
			}
			// Tightness where it means something: rows under the full
			// analysis (the range fallback is loose by design).
			if d := allowed[e] - outTerm[e]; d > 0 && full[e] {
				tight = math.Max(tight, errPre/d)
			}
		}
		if mode == tolerance.Rigorous {
			s.BoundFail, s.TightBound, s.WorstBound = fails, tight, worst
			if fails > 0 {
				s.FirstFail = c.String()
			}
		} else {
			s.ProbFail, s.TightProb = fails, tight
		}
	}
	if in.LSE != nil {
		lv := tolerance.JudgeLSE(x, tolerance.Rigorous)
		s.LSERows, s.LSEWorst = lv.Checked, lv.Worst
		if lv.Failed > 0 {
			s.LSEBoundFail = 1
			if s.FirstFail == "" {
				s.FirstFail = c.String()
			}
		}
	}
	if s.BoundFail > 0 {
		s.BoundFail = 1 // count failing cases, not elements
	}
	if s.ProbFail > 0 {
		s.ProbFail = 1
	}
	return s
}
