package worker

import (
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

// TestMaxLogitReply: a request declares max_logit in outputs and its base;
// a reply's max_logit [T, H] is read, a reply without it gives an empty
// (missing, every row failing) output, one of the wrong shape is malformed.
func TestMaxLogitReply(t *testing.T) {
	c := cases.Case{Family: problem.MLA, Seed: 3, H: 2, D: 8, B: 1, S: 2, TopK: 6, BlockSize: 2,
		LSE: &cases.LSESpec{Base: "e", Empty: "+inf"}, MaxLogit: &cases.MaxLogitSpec{Base: "2"}}
	in, err := cases.Generate(c, num.BF16)
	if err != nil {
		t.Fatal(err)
	}
	f := bundle.NewFile()
	declareOutputs(f, in)
	if got := f.Metadata[KeyOutputs]; got != "o,lse,max_logit" {
		t.Errorf("outputs=%q, want o,lse,max_logit", got)
	}
	if got := f.Metadata[interop.KeyMaxLogitBase]; got != "2" {
		t.Errorf("max_logit_base=%q, want 2", got)
	}
	reply := bundle.NewFile()
	if v, err := replyMaxLogit(reply, in); err != nil || v == nil || len(v) != 0 {
		t.Errorf("no max_logit in the reply: %v, %v; want an empty (missing) output", v, err)
	}
	vals := make([]float32, in.T*in.H)
	vals[1] = 2.5
	tt, _ := bundle.NewFloat32(TMaxLogit, bundle.F32, []int{in.T, in.H}, vals)
	reply.Add(tt)
	if v, err := replyMaxLogit(reply, in); err != nil || len(v) != in.T*in.H || v[1] != 2.5 {
		t.Errorf("max_logit reply: %v, %v", v, err)
	}
	bad := bundle.NewFile()
	tb, _ := bundle.NewFloat32(TMaxLogit, bundle.F32, []int{in.T * in.H}, vals)
	bad.Add(tb)
	if _, err := replyMaxLogit(bad, in); err == nil || !strings.Contains(err.Error(), "max_logit") {
		t.Errorf("a [T·H] max_logit: %v, want a shape error", err)
	}
	in.MaxLogit = nil
	if v, _ := replyMaxLogit(reply, in); v != nil {
		t.Error("max_logit read for a case without the output")
	}
}
