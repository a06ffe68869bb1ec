package campaign

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/targets"
)

// noisyKernel is correct the first time it sees a request and adds one
// ulp to o[0] the second time: a race that shows only on a repeat.
type noisyKernel struct {
	impl.Kernel
	mu   sync.Mutex
	seen map[string]int
}

func (k *noisyKernel) Run(in *problem.Inputs) (*impl.Output, error) {
	key := fmt.Sprint(in.T, in.H, in.D, in.Q[:min(8, len(in.Q))], in.Scale)
	k.mu.Lock()
	k.seen[key]++
	n := k.seen[key]
	k.mu.Unlock()
	out, err := k.Kernel.Run(in)
	if err == nil && n == 2 && len(out.O) > 0 {
		out.O[0] = math.Nextafter32(out.O[0], float32(math.Inf(1)))
	}
	return out, err
}

// orderKernel breaks when its first query head's first value exceeds its
// last head's: right on some head orders, wrong on others.
type orderKernel struct{ impl.Kernel }

func (k orderKernel) Run(in *problem.Inputs) (*impl.Output, error) {
	out, err := k.Kernel.Run(in)
	if err == nil && in.H >= 2 && in.Q[0] > in.Q[(in.H-1)*in.D] {
		for i := range out.O {
			out.O[i] += 1
		}
	}
	return out, err
}

// sparseOrderKernel breaks when a token's top-k indices are not in
// increasing order (as a kernel that merges sorted lists might).
type sparseOrderKernel struct{ impl.Kernel }

func unsorted(in *problem.Inputs) bool {
	for t := range in.T {
		for j := in.Win + 1; j < in.TopK; j++ {
			if a, b := in.Idx[t*in.TopK+j-1], in.Idx[t*in.TopK+j]; a >= 0 && b >= 0 && a > b {
				return true
			}
		}
	}
	return false
}

func (k sparseOrderKernel) Run(in *problem.Inputs) (*impl.Output, error) {
	out, err := k.Kernel.Run(in)
	if err == nil && unsorted(in) {
		for i := range out.O {
			out.O[i] += 1
		}
	}
	return out, err
}

// splitKernel declares splits 1 and 4 and is wrong with 4.
type splitKernel struct{ impl.Kernel }

func (k splitKernel) Splits() []int { return []int{1, 4} }
func (k splitKernel) RunSplit(in *problem.Inputs, n int) (*impl.Output, error) {
	out, err := k.Kernel.Run(in)
	if err == nil && n == 4 {
		for i := range out.O {
			out.O[i] = -out.O[i] + 1
		}
	}
	return out, err
}

func recheckRun(t *testing.T, k impl.Kernel, fam problem.Family) *Result {
	t.Helper()
	o := DefaultOptions()
	o.Seed, o.Cases, o.Family, o.Recheck, o.Workers = 3, 40, fam, 2, 2
	o.Targets = []targets.Target{{Name: "exec:fake", Kind: targets.Exec, Kernel: k}}
	r, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func base(t *testing.T) impl.Kernel {
	e, err := impl.Lookup("stream/fp32")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A deterministic, order- and split-independent kernel passes its
// rechecks; each deliberately broken one is caught by its own kind, as a
// finding that fails the run.
func TestRechecks(t *testing.T) {
	for _, fam := range []problem.Family{problem.Window, problem.Sparse} {
		r := recheckRun(t, base(t), fam)
		if !r.Passed || r.RecheckedCases == 0 || r.RecheckFailedChecks != 0 {
			t.Errorf("%s, correct kernel: passed %v, %d rechecked, %d recheck failures %v", fam, r.Passed, r.RecheckedCases, r.RecheckFailedChecks, r.RecheckFailures)
		}
	}
	for _, c := range []struct {
		name string
		k    impl.Kernel
		fam  problem.Family
		kind string
	}{
		{"noisy", &noisyKernel{Kernel: base(t), seen: map[string]int{}}, problem.Window, Nondeterministic},
		{"order", orderKernel{base(t)}, problem.Window, OrderDependent},
		{"split", splitKernel{base(t)}, problem.Window, SplitDependent},
		{"sparse-order", sparseOrderKernel{base(t)}, problem.Sparse, OrderDependent},
	} {
		r := recheckRun(t, c.k, c.fam)
		if c.name == "split" {
			o := DefaultOptions()
			o.Seed, o.Cases, o.Family, o.Recheck, o.Workers, o.Record = 3, 40, c.fam, 2, 2, true
			o.Targets = []targets.Target{{Name: "exec:fake", Kind: targets.Exec, Kernel: c.k}}
			rr, err := Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if x := string(JUnit(rr, "fuzz", 0)); !strings.Contains(x, `type="split_dependent"`) {
				t.Errorf("JUnit has no split_dependent failure")
			}
		}
		if r.Passed || r.RecheckFailureKinds[c.kind] == 0 || r.RecheckFailureKinds[c.kind] != r.RecheckFailedChecks {
			t.Errorf("%s: passed %v, recheck failures %v, want only %s", c.name, r.Passed, r.RecheckFailureKinds, c.kind)
			continue
		}
		found := false
		for _, f := range r.Findings {
			if f.Kind == c.kind {
				found = true
				if f.Signature != c.kind+" o "+string(c.fam)+" -" || f.Example == nil || f.Example.Recheck != c.kind || FailureSignature(f.Example) != f.Signature {
					t.Errorf("%s: finding %+v", c.name, f)
				}
			}
		}
		if !found || len(r.RecheckFailures) == 0 || !strings.Contains(r.RecheckFailures[0].Detail, "") {
			t.Errorf("%s: no %s finding in %v", c.name, c.kind, r.Findings)
		}
		// Known, it does not fail the run.
		o := DefaultOptions()
		o.Seed, o.Cases, o.Family, o.Recheck, o.Workers = 3, 40, c.fam, 2, 2
		o.Targets = []targets.Target{{Name: "exec:fake", Kind: targets.Exec, Kernel: c.k}}
		o.Known = map[string]bool{}
		for _, f := range r.Findings {
			o.Known[f.Signature] = true
		}
		if c.name == "noisy" {
			c.k.(*noisyKernel).seen = map[string]int{}
		}
		if r2, err := Run(context.Background(), o); err != nil || !r2.Passed {
			t.Errorf("%s with its findings known: passed %v (%v)", c.name, r2 != nil && r2.Passed, err)
		}
	}
}

// The rechecks survive a journal: a resumed campaign counts them again.
func TestRecheckJournal(t *testing.T) {
	o := DefaultOptions()
	o.Seed, o.Cases, o.Family, o.Recheck, o.Workers = 3, 40, problem.Window, 2, 2
	o.Targets = []targets.Target{{Name: "exec:fake", Kind: targets.Exec, Kernel: splitKernel{base(t)}}}
	o.OutDir, o.Journal, o.Save = t.TempDir(), true, 0
	r, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	j, err := LoadJournal(o.OutDir)
	if err != nil {
		t.Fatal(err)
	}
	if j.Header.Recheck != 2 {
		t.Errorf("journal header recheck %d", j.Header.Recheck)
	}
	rb, err := Rebuild(j)
	if err != nil {
		t.Fatal(err)
	}
	if rb.RecheckedCases != r.RecheckedCases || rb.RecheckFailedChecks != r.RecheckFailedChecks || rb.Passed != r.Passed {
		t.Errorf("rebuilt: %d rechecked, %d failures, passed %v; ran: %d, %d, %v", rb.RecheckedCases, rb.RecheckFailedChecks, rb.Passed, r.RecheckedCases, r.RecheckFailedChecks, r.Passed)
	}
}
