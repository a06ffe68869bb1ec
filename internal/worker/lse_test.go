package worker

import (
	"errors"
	"slices"
	"testing"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

func lseInputs(t *testing.T) *problem.Inputs {
	t.Helper()
	c := cases.Case{Family: problem.Dense, Seed: 5, H: 6, Hkv: 2, D: 8, Sq: []int{1, 3}, Sk: []int{0, 7}, Causal: true,
		Page: 3, BlockTable: "permuted", Poison: true, LSE: &cases.LSESpec{Base: "2", Empty: "+inf"}}
	in, err := cases.Generate(c, num.BF16)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestWorkerLSE: a reply's lse [T, H] is read and judged; a reply without
// it fails every lse row (a missing output); one of the wrong shape is
// malformed; the reply limit has room for it.
func TestWorkerLSE(t *testing.T) {
	in := lseInputs(t)
	w := newWorker(t, "ok", DefaultOptions())
	out, err := w.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.LSE) != in.T*in.H {
		t.Fatalf("lse %d values, want %d", len(out.LSE), in.T*in.H)
	}
	if v := judge(t, w, in, out); !v.Pass || v.LSE == nil || v.LSE.Checked == 0 {
		t.Errorf("verdict %+v", v)
	}

	w2 := newWorker(t, "nolse", DefaultOptions())
	out2, err := w2.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	if v := judge(t, w2, in, out2); v.Pass || !slices.Contains(v.FailedOutputs, "lse") {
		t.Errorf("a reply without lse: verdict %+v, want lse failed", v)
	}

	w3 := newWorker(t, "lseshape@1", DefaultOptions())
	_, err = w3.Run(in)
	var e *Error
	if !errors.As(err, &e) || e.Kind != Malformed {
		t.Errorf("an lse of the wrong shape: %v, want malformed", err)
	}

	if got, want := replyLimit(in, DefaultMaxFrame), int64(8*in.T*in.H*in.Dv+8*in.T*in.H+replyHeader); got != want {
		t.Errorf("replyLimit %d, want %d", got, want)
	}
}
