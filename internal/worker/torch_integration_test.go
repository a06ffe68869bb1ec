package worker

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/attnvet/attnvet/internal/testpy"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/props"
	"github.com/attnvet/attnvet/ref"
)

func torchPython(t *testing.T) string { return testpy.Torch(t) }

// sharedTorch is one examples/torch_worker.py process for the tests that
// run the plain worker (importing torch costs about 1.6 CPU-s a process);
// TestMain closes it.
var sharedTorch struct {
	once sync.Once
	w    *Worker
	err  error
}

func torchWorker(t *testing.T) *Worker {
	t.Helper()
	py := torchPython(t)
	sharedTorch.once.Do(func() {
		opt := DefaultOptions()
		opt.Dir = filepath.Join("..", "..")
		sharedTorch.w, sharedTorch.err = New(py+" examples/torch_worker.py", opt)
	})
	if sharedTorch.err != nil {
		t.Fatal(sharedTorch.err)
	}
	return sharedTorch.w
}

func closeSharedTorch() {
	if sharedTorch.w != nil {
		sharedTorch.w.Close()
	}
}

// torchProfile is what examples/torch_worker.py declares (docs/interop.md).
var torchProfile = profile.Profile{Name: "custom", In: num.BF16, Score: num.BF16, P: num.BF16, Acc: num.FP32, Out: num.BF16, OutRound: num.RNE}

// runTorch sends cases of both families through the torch worker and
// judges each with bound; it returns the cases judged and those failed.
func runTorch(t *testing.T, w *Worker, seed uint64, n int) (judged, failed int) {
	t.Helper()
	for i := 0; i < n; i++ {
		fam := []problem.Family{problem.Sparse, problem.Window}[i%2]
		c := props.CaseAt(seed, i, fam)
		c.DType = "" // the worker takes BF16
		in, err := cases.Generate(c, num.BF16)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if len(in.Violations()) > 0 {
			continue // not judged (the campaign reports these separately)
		}
		out, err := w.Run(in)
		if err != nil {
			t.Fatalf("case %d (%s): %v", i, c, err)
		}
		r := ref.Compute(in, ref.Options{})
		v := tolerance.BoundCriterion{Mode: tolerance.Rigorous}.Judge(&tolerance.Input{In: in, Ref: r, Out: out.O, OutLSE: out.LSE, Profile: w.Profile()})
		judged++
		if !v.Pass {
			failed++
			if failed <= 3 {
				t.Logf("case %d fails bound: %s: %d of %d elements, worst err/allowed %.3g", i, c, v.Failed, v.Checked, v.Worst)
			}
		}
	}
	return judged, failed
}

// The torch worker passes bound under its declared profile, on cases of
// both families, through the exec protocol.
func TestTorchWorkerPassesBound(t *testing.T) {
	t.Parallel() // waits on its worker processes
	w := torchWorker(t)
	if w.Profile() != torchProfile {
		t.Fatalf("the worker declares %+v, want %+v", w.Profile(), torchProfile)
	}
	judged, failed := runTorch(t, w, 20240611, 60)
	if failed > 0 {
		t.Errorf("%d of %d cases fail bound", failed, judged)
	}
	if judged < 40 {
		t.Errorf("only %d cases judged", judged)
	}
	if s := w.Stats(); s.Starts != 1 || s.Crashes+s.Timeouts+s.Malformed+s.Reported != 0 {
		t.Errorf("worker stats %+v", s)
	}
}

// The same attention with o = p @ v (v as stored) accumulates P·V in BF16
// on torch's CPU path for small products; declaring acc fp32 for it is a
// false declaration, and bound says so (docs/interop.md).
func TestTorchNaiveWorkerCaught(t *testing.T) {
	t.Parallel() // waits on its worker processes
	py := torchPython(t)
	opt := DefaultOptions()
	opt.Dir = filepath.Join("..", "..")
	w, err := New(py+" examples/torch_worker.py --naive", opt)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	judged, failed := runTorch(t, w, 20240611, 60)
	if failed == 0 {
		t.Errorf("bound passes all %d cases of the naive worker, which accumulates P·V in BF16", judged)
	}
}

// The minimal worker of docs/worker.md serves the window family and
// reports an error for the sparse one.
func TestDocWorker(t *testing.T) {
	py := torchPython(t)
	opt := DefaultOptions()
	opt.Dir = filepath.Join("..", "..")
	w, err := New(py+" examples/numpy_window_worker.py", opt)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Profile() != profile.MustLookup("fp32") {
		t.Fatalf("profile %+v", w.Profile())
	}
	judged := 0
	for i := 0; i < 30; i++ {
		c := props.CaseAt(7, i, problem.Window)
		in, err := cases.Generate(c, num.FP32)
		if err != nil {
			t.Fatal(err)
		}
		if len(in.Violations()) > 0 || in.T*in.H > 2000 {
			continue
		}
		out, err := w.Run(in)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		r := ref.Compute(in, ref.Options{})
		if v := (tolerance.BoundCriterion{Mode: tolerance.Rigorous}).Judge(&tolerance.Input{In: in, Ref: r, Out: out.O, OutLSE: out.LSE, Profile: w.Profile()}); !v.Pass {
			t.Errorf("case %d (%s) fails bound: %+v", i, c, v)
		}
		judged++
	}
	if judged < 10 {
		t.Errorf("only %d cases judged", judged)
	}
	in, err := cases.Generate(props.CaseAt(7, 0, problem.Sparse), num.FP32)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Run(in)
	var we *Error
	if !errors.As(err, &we) || we.Kind != Reported || !strings.Contains(we.Msg, "window family only") {
		t.Errorf("sparse case: %v", err)
	}
}
