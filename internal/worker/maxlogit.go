package worker

import (
	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/problem"
)

// TMaxLogit is the reply tensor of a case with a max_logit output: [T, H],
// row t·H + h, fp32 values in the convention of the request's
// max_logit_base (natural or base 2; −inf for a row with no key).
const TMaxLogit = "max_logit"

// declareMaxLogit adds max_logit to the request's KeyOutputs
// ("o,max_logit" or "o,lse,max_logit") and its convention to the
// metadata, when the case has a max_logit output.
func declareMaxLogit(f *bundle.File, in *problem.Inputs) {
	c := in.MaxLogit
	if c == nil {
		return
	}
	f.Metadata[KeyOutputs] += "," + TMaxLogit
	f.Metadata[interop.KeyMaxLogitBase] = "e"
	if c.Base2 {
		f.Metadata[interop.KeyMaxLogitBase] = "2"
	}
}

// replyMaxLogit reads the reply's max_logit: nil when the case has no
// max_logit output, empty (not nil) when the reply carries none (then
// every row fails, a missing output). The wrong shape or dtype, or values
// fp32 cannot hold, make a malformed reply.
func replyMaxLogit(f *bundle.File, in *problem.Inputs) ([]float32, error) {
	if in.MaxLogit == nil {
		return nil, nil
	}
	v, err := replyRows(f, in, TMaxLogit)
	if err == nil && v == nil {
		v = []float32{}
	}
	return v, err
}
