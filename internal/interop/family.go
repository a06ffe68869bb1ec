package interop

import (
	"fmt"
	"sort"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
)

// adder stores a float tensor in a bundle (Encode's helper).
type adder = func(name string, shape []int, vals []float32, dt bundle.DType) error

// codec is one family's bundle form: everything Encode, Decode, AddLSE,
// Describe, ViolationTensor, Unstated and the layout handling do
// differently per family. Each family's own file registers its codec
// (registerCodec), so the shared code holds no switch on the family; a
// family without one is an error (codecOf), never a default.
type codec struct {
	// encode adds q (if the family has one), the family's tensors and its
	// metadata; the shared Encode adds the sink, the output and the
	// quantized forms after it.
	encode func(f *bundle.File, in *problem.Inputs, add adder) error
	sink   string                         // the name attn_sink is stored under
	out    string                         // the judged output's name
	oShape func(in *problem.Inputs) []int // the output's shape
	// addLSE stores a kernel's lse (rows t·H + h) in the family's layout.
	addLSE func(f *bundle.File, in *problem.Inputs, lse []float32) error
	// describe is the one-line shape description; sink and lse are the
	// shared phrases ("sink" or "no sink"; ", <convention>" or "").
	describe func(in *problem.Inputs, sink, lse string) string
	// violationTensor names the tensor a contract violation is about.
	violationTensor func(in *problem.Inputs, v problem.Violation) string

	// whole decodes the bundle on its own (combine: no q); nil for the
	// families decoded by the shared steps below.
	whole func(d *decoder) (*Bundle, error)
	// qDims and qRanks are q's accepted shapes (for messages and checks).
	qDims  string
	qRanks []int
	// shapeQ takes T, H, D (and the batch layout, −1 if none) from q.
	shapeQ func(d *decoder, in *problem.Inputs, qt *bundle.Tensor) (batch, sq int)
	// body decodes the family's own tensors and metadata.
	body func(d *decoder, in *problem.Inputs, p profile.Profile, qt *bundle.Tensor, batch, sq int) error
	// sinkIn is the name the sink is read under.
	sinkIn func(d *decoder) string
	// outputs decodes the kernel's outputs before the inputs are
	// checked; nil for the families whose only output is o [T, H, Dv],
	// decoded after the check.
	outputs func(d *decoder, b *Bundle, p profile.Profile, batch, sq int) error
	// foreignKeys are metadata keys of other families this one warns
	// about (and ignores).
	foreignKeys []string
	// layout: whether metadata layout applies; oneSeq: a 4-D tensor of
	// batch 1 becomes 3-D (one sequence).
	layout, oneSeq bool
	// unstated names a semantics-defining key the bundle leaves to a
	// default (Unstated); nil if the family has none.
	unstated func(f *bundle.File, has func(string) bool) error
	// sniff reports whether a bundle without metadata family holds this
	// family's tensors; the families are tried in sniffOrder (lowest
	// first: mla's 4-D q must be tried before dense's).
	sniff      func(ts map[string]*bundle.Tensor) bool
	sniffOrder int
	// misreadings are the family's metadata values a harness most often
	// gets wrong, for check's hints (Misreadings); nil if none.
	misreadings func(in *problem.Inputs) []Misreading
}

// Misreading is a metadata value to try in place of the declared one, and
// why a harness might have meant it.
type Misreading struct{ Key, Value, Why string }

// Misreadings are the family's likely metadata misreadings for in.
func Misreadings(in *problem.Inputs) []Misreading {
	if c := codecs[in.Family]; c != nil && c.misreadings != nil {
		return c.misreadings(in)
	}
	return nil
}

var codecs = map[problem.Family]*codec{}

// registerCodec records fam's codec (from the family's own file).
func registerCodec(c *codec, fams ...problem.Family) bool {
	for _, f := range fams {
		if codecs[f] != nil {
			panic(fmt.Sprintf("interop: family %s registered twice", f))
		}
		codecs[f] = c
	}
	return true
}

// codecOf is fam's codec; an unknown family is an error.
func codecOf(fam problem.Family) (*codec, error) {
	if c := codecs[fam]; c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("interop: family %q has no bundle form (want %s)", fam, problem.FamilyNames())
}

// mustCodec is codecOf for callers given checked inputs (Inputs.Check
// rejects an unknown family): a miss is a programming error.
func mustCodec(fam problem.Family) *codec {
	c, err := codecOf(fam)
	if err != nil {
		panic(err)
	}
	return c
}

// thdOut is the output shape [T, H, Dv] (every family but mla).
func thdOut(in *problem.Inputs) []int { return []int{in.T, in.H, in.Dv} }

// thdQDims is the message for q [T, H, D].
const thdQDims = "[T, H, D] (layout thd; a 4-D dump needs metadata layout=bshd or bhsd)"

// thdQ reads q [T, H, D] (no batch layout).
func thdQ(_ *decoder, in *problem.Inputs, qt *bundle.Tensor) (batch, sq int) {
	in.T, in.H, in.D = qt.Shape[0], qt.Shape[1], qt.Shape[2]
	return -1, -1
}

// addQ3 stores q as [T, H, D].
func addQ3(in *problem.Inputs, add adder) error {
	return add(TQ, []int{in.T, in.H, in.D}, in.Q, DType(in.Format))
}

// sinkTensor reads the sink as attn_sink.
func sinkTensor(*decoder) string { return TSink }

// addVarlenLSE stores lse as softmax_lse [H, T], FlashAttention's varlen
// layout.
func addVarlenLSE(f *bundle.File, in *problem.Inputs, lse []float32) error {
	return addLSETensor(f, in, lse, -1, []int{in.H, in.T})
}

// addLSETensor stores lse as softmax_lse of shape, rows placed by lseIndex
// for sequences of s queries.
func addLSETensor(f *bundle.File, in *problem.Inputs, lse []float32, s int, shape []int) error {
	v := make([]float32, len(lse))
	for t := 0; t < in.T; t++ {
		for h := 0; h < in.H; h++ {
			v[lseIndex(t, h, in.T, in.H, s)] = lse[t*in.H+h]
		}
	}
	t, err := bundle.NewFloat32(TLSE, bundle.F32, shape, v)
	if err != nil {
		return err
	}
	f.Add(t)
	return nil
}

// OutputName is the name of the judged output tensor of family fam ("o",
// "out", "v_merged"); "" for an unknown family.
func OutputName(fam problem.Family) string {
	if c := codecs[fam]; c != nil {
		return c.out
	}
	return ""
}

// sniffed is the family whose tensors ts holds, trying the families in
// their sniffOrder ("" if none fits).
func sniffed(ts map[string]*bundle.Tensor) problem.Family {
	fams := problem.Families()
	sort.SliceStable(fams, func(i, j int) bool { return mustCodec(fams[i]).sniffOrder < mustCodec(fams[j]).sniffOrder })
	for _, f := range fams {
		if mustCodec(f).sniff(ts) {
			return f
		}
	}
	return ""
}
