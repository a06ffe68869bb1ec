package campaign

// Rechecks (Options.Recheck, fuzz --recheck N): determinism and invariance
// checks of a kernel on every Nth generated case it passed
// (docs/worker.md, "Rechecks"):
//
//   - nondeterministic: the same request run twice more gives other bits;
//   - order_dependent: the case with its keys' order changed within the
//     contract (window: the heads reversed, query heads with their KV
//     head; sparse: each token's top-k index list shuffled) fails the
//     bound, judged against its own reference;
//   - split_dependent: an exec worker whose hello declares splits=… run
//     with one of them fails the bound.
//
// A recheck failure is a finding of its own kind; it fails the run like a
// failed check (Result.RecheckFailedChecks), unless its signature is known.

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/pipeline"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/ref"
)

// Recheck kinds: the first field of their findings' signatures.
const (
	Nondeterministic = "nondeterministic"
	OrderDependent   = "order_dependent"
	SplitDependent   = "split_dependent"
)

// recheckOut is one recheck failure of target ti.
type recheckOut struct {
	Target int    `json:"target"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// splitter is an exec worker that can run a case with a split count.
type splitter interface {
	Splits() []int
	RunSplit(in *problem.Inputs, n int) (*impl.Output, error)
}

// rechecks reports whether the generated case at index is rechecked.
func (opt *Options) rechecks(index int) bool {
	return opt.Recheck > 0 && index >= 0 && index%opt.Recheck == 0
}

// recheck runs the rechecks of case c (index: its generated index, which
// seeds the shuffle) on every target whose check passed in co.
func (ev *evaluator) recheck(c cases.Case, index int, co *caseOut) []recheckOut {
	var out []recheckOut
	for ti, t := range ev.targets {
		if co.checks[ti].status != Pass {
			continue
		}
		p := t.Kernel.Profile()
		pp, ok, err := pipeline.NewCase(c).For(p)
		if !ok || err != nil || len(pp.Violations) > 0 {
			continue
		}
		in := pp.In
		add := func(kind, format string, a ...any) {
			out = append(out, recheckOut{Target: ti, Kind: kind, Detail: fmt.Sprintf(format, a...)})
		}
		// The same request twice: the same bits.
		o1, _, err1 := runAndJudge(t, ev.crit, pp, true)
		o2, _, err2 := runAndJudge(t, ev.crit, pp, true)
		if err1 == nil && err2 == nil {
			if d := firstBitDiff(o1, o2); d != "" {
				add(Nondeterministic, "the same request twice: %s", d)
			}
		}
		// Keys in another order within the contract.
		if pin, how := permuted(in, index); pin != nil {
			if pr, err := pipeline.Reference(pin, ref.Options{Workers: 1}); err == nil {
				_, v, err := runAndJudge(t, ev.crit, &pipeline.Prepared{In: pin, Ref: pr}, true)
				if err == nil && !v.Pass {
					add(OrderDependent, "%s: %d of %d elements beyond the bound (worst err/allowed %.3g at element %d)", how, v.Failed, v.Checked, v.Worst, v.WorstElem)
				}
			}
		}
		// Another split or tile count, where the worker declares them.
		if sp, ok := t.Kernel.(splitter); ok {
			for _, n := range sp.Splits() {
				o, err := sp.RunSplit(pipeline.CloneInputs(in), n)
				if err != nil || o == nil || len(o.O) != in.OutLen() {
					continue // a worker failure is the check's business, not the recheck's
				}
				v, err := pipeline.Judge(ev.crit, pp.Input(o, p, t.Shape))
				if err == nil && !v.Pass {
					add(SplitDependent, "split=%d: %d of %d elements beyond the bound (worst err/allowed %.3g at element %d)", n, v.Failed, v.Checked, v.Worst, v.WorstElem)
				}
			}
		}
	}
	return out
}

// firstBitDiff names the first element whose bits differ between two
// outputs of the same request ("" when none does).
func firstBitDiff(a, b *impl.Output) string {
	if a == nil || b == nil {
		return ""
	}
	for e := range min(len(a.O), len(b.O)) {
		if math.Float32bits(a.O[e]) != math.Float32bits(b.O[e]) {
			return fmt.Sprintf("o[%d] = %v (%#08x), then %v (%#08x)", e, a.O[e], math.Float32bits(a.O[e]), b.O[e], math.Float32bits(b.O[e]))
		}
	}
	if len(a.LSE) == len(b.LSE) {
		for i := range a.LSE {
			if math.Float32bits(a.LSE[i]) != math.Float32bits(b.LSE[i]) {
				return fmt.Sprintf("lse[%d] = %v, then %v", i, a.LSE[i], b.LSE[i])
			}
		}
	} else {
		return fmt.Sprintf("lse has %d values, then %d", len(a.LSE), len(b.LSE))
	}
	return ""
}

// permuted is in with its keys' order changed within the contract, and
// how; nil when the family has no such order here or the change would
// break the contract.
//
//   - window: the heads reversed (query head h becomes H−1−h, KV head g
//     becomes Hkv−1−g, the sink follows its head): query head h reads KV
//     head h/(H/Hkv), and (H−1−h)/(H/Hkv) = Hkv−1−h/(H/Hkv), so every
//     head keeps its keys; a kernel that mixes heads or assumes an order
//     of them breaks.
//   - sparse: each token's top-k index list (columns WIN..) shuffled, a
//     set whose order the contract leaves free.
func permuted(in *problem.Inputs, index int) (*problem.Inputs, string) {
	var p *problem.Inputs
	how := ""
	switch in.Family {
	case problem.Window:
		if in.H < 2 || in.Hkv < 1 || in.H%in.Hkv != 0 || in.LSE != nil {
			return nil, ""
		}
		p = pipeline.CloneInputs(in)
		revHeads(p.Q, in.T, in.H, in.D)
		revHeads(p.K, in.T, in.Hkv, in.D)
		revHeads(p.V, in.T, in.Hkv, in.Dv)
		if p.Sink != nil {
			revHeads(p.Sink, 1, in.H, 1)
		}
		how = "heads reversed"
	case problem.Sparse:
		k := in.TopK - in.Win
		if k < 2 || len(in.Idx) != in.T*in.TopK {
			return nil, ""
		}
		p = pipeline.CloneInputs(in)
		rng := rand.New(rand.NewPCG(uint64(index), 0x5eed0fde7e12))
		for t := range in.T {
			row := p.Idx[t*in.TopK+in.Win : (t+1)*in.TopK]
			rng.Shuffle(len(row), func(i, j int) { row[i], row[j] = row[j], row[i] })
		}
		how = "top-k index lists shuffled"
	default:
		return nil, ""
	}
	if len(p.Violations()) > 0 {
		return nil, ""
	}
	return p, how
}

// revHeads reverses the head axis of a [rows][heads][width] tensor in place.
func revHeads(x []float32, rows, heads, width int) {
	if len(x) != rows*heads*width {
		return
	}
	for r := range rows {
		base := r * heads * width
		for a, b := 0, heads-1; a < b; a, b = a+1, b-1 {
			for j := range width {
				x[base+a*width+j], x[base+b*width+j] = x[base+b*width+j], x[base+a*width+j]
			}
		}
	}
}

// addRecheck counts the recheck failure rc of case o: a Failure of its
// own list, and a finding "KIND o FAMILY -".
func (a *aggregator) addRecheck(rc recheckOut, o *outcome) {
	r := a.res
	t := a.opt.Targets[rc.Target]
	r.RecheckFailedChecks++
	if r.RecheckFailureKinds == nil {
		r.RecheckFailureKinds = map[string]int{}
	}
	r.RecheckFailureKinds[rc.Kind]++
	f := &Failure{Target: t.Name, Criterion: a.opt.Criterion.Name(), Case: o.name, Index: o.index, Seed: a.opt.Seed,
		WorstElem: -1, Recheck: rc.Kind, Detail: rc.Detail, Input: o.c}
	f.Input.Version = cases.Version
	if len(r.RecheckFailures) < a.opt.MaxFailures {
		r.RecheckFailures = append(r.RecheckFailures, *f)
	}
	a.offerFinding(rc.Target, rc.Kind, rc.Kind, "o", "-", "", &o.item, pending{seq: o.seq, target: rc.Target, f: f})
	if a.opt.Record { // a JUnit test case of its own, failing
		a.recs = append(a.recs, Record{Case: o.name + " (recheck)", CaseIndex: o.seq, Target: t.Name, Status: Fail, Detail: rc.Detail, Failure: f})
	}
}
