package report

import (
	"context"
	"math"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/props"
	"github.com/attnvet/attnvet/ref"
)

// The bound verdict the report derives from bounds it computed once is
// the bound criterion's, on correct kernels and on defective outputs.
func TestBoundVerdictMatches(t *testing.T) {
	n := 0
	for i := 0; i < 30; i++ {
		for _, fam := range []problem.Family{problem.Sparse, problem.Window} {
			c := props.CaseAt(3, i, fam)
			for _, name := range []string{"stream/bf16", "tiled/bc32/fp16", "splitkv/p2/bc32/fp32"} {
				e, err := impl.Lookup(name)
				if err != nil {
					t.Fatal(err)
				}
				in, err := cases.Generate(c, e.Config.Profile.In)
				if err != nil || len(in.Violations()) > 0 || !impl.Compatible(in.Format, e.Config.Profile) {
					continue
				}
				out, err := impl.New(e.Config).Run(in)
				if err != nil {
					continue
				}
				r := ref.Compute(in, ref.Options{Workers: 1})
				for variant := 0; variant < 2; variant++ {
					o := append([]float32(nil), out.O...)
					if variant == 1 && len(o) > 0 { // a defect: one element off
						o[len(o)/2] = o[len(o)/2]*1.01 + 1e-3
						o[0] = float32(math.NaN())
					}
					x := &tolerance.Input{In: in, Ref: r, Out: o, Profile: e.Config.Profile,
						Shape: tolerance.Shape{Kind: string(e.Config.Kind), Bc: e.Config.Bc, Parts: e.Config.Parts}}
					want := (tolerance.BoundCriterion{Mode: tolerance.Rigorous}).Judge(x)
					allowed, _, skip := tolerance.Bounds(x, tolerance.Rigorous)
					got := boundVerdict(x, allowed, skip)
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("case %d %s %s variant %d: boundVerdict %+v, BoundCriterion %+v", i, fam, name, variant, got, want)
					}
					n++
				}
			}
		}
	}
	if n < 60 {
		t.Errorf("only %d comparisons", n)
	}
}

// A cancelled run returns the pairs measured so far as a partial report;
// progress counts every pair.
func TestRunPartialAndProgress(t *testing.T) {
	opt := tinyOptions(t)
	opt.Mutants = nil
	var calls, last atomic.Int64
	opt.Progress = func(done, total int) {
		calls.Add(1)
		last.Store(int64(done))
		if total != 2*opt.Cases {
			t.Errorf("total %d, want %d", total, 2*opt.Cases)
		}
	}
	full, err := Run(opt)
	if err != nil {
		t.Fatal(err)
	}
	if full.Partial || calls.Load() != int64(2*opt.Cases) || last.Load() != int64(2*opt.Cases) {
		t.Errorf("full run: partial %v, %d progress calls (last %d), want %d", full.Partial, calls.Load(), last.Load(), 2*opt.Cases)
	}

	ctx, cancel := context.WithCancel(context.Background())
	opt.Context = ctx
	opt.Workers = 1
	opt.Progress = func(done, total int) {
		if done == 5 {
			cancel()
		}
	}
	part, err := Run(opt)
	if err != nil {
		t.Fatal(err)
	}
	if !part.Partial || part.PartialJobs != 5 {
		t.Fatalf("cancelled after 5 pairs: partial %v, jobs %d", part.Partial, part.PartialJobs)
	}
	var cases int64
	for _, e := range part.Entries {
		if e.Kernel == "stream/bf16" {
			cases += e.Cases + sumSkips(e.Skipped)
		}
	}
	if cases != 5 {
		t.Errorf("partial report covers %d pairs of stream/bf16, want 5", cases)
	}
	if _, err := Parse(part.JSON()); err != nil {
		t.Errorf("partial report.json does not parse: %v", err)
	}
}

func sumSkips(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
