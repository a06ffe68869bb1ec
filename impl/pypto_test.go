package impl_test

import (
	"slices"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

func runP(t *testing.T, name string, in *problem.Inputs) []float32 {
	t.Helper()
	k, err := impl.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	out, err := k.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	return out.O
}

func genP(t *testing.T, c cases.Case) *problem.Inputs {
	t.Helper()
	in, err := cases.Generate(c, num.BF16)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestPyptoKind: the device emulation is tiled/bc128 on a family without a
// column layout, differs from it where the device's blocks split the keys
// otherwise (60 window keys in block 0, 100 compressed in block 1, against
// tiles of 128 and 32), and reproduces a hand-derived case exactly.
func TestPyptoKind(t *testing.T) {
	sp := genP(t, cases.Case{Family: problem.Sparse, Seed: 3, B: 1, H: 2, D: 8, Win: 40, IdxTopK: 200, Seqused: []int{230}})
	if !slices.Equal(runP(t, "pypto/bf16rne", sp), runP(t, "tiled/bc128/bf16rne", sp)) {
		t.Error("sparse: pypto/bf16rne differs from tiled/bc128/bf16rne")
	}
	csa := genP(t, cases.Case{Family: problem.CSA, Seed: 4, B: 1, H: 4, D: 16, Win: 128, IdxTopK: 100, Ratio: 1,
		Positions: []int{59 + 128*1}, BlockSize: 128, CmpBlockSize: 16, Values: cases.Values{Scale: 2}})
	for i := range csa.WinIdx[60:] { // a window of 60 rows
		csa.WinIdx[60+i] = -1
	}
	if slices.Equal(runP(t, "pypto/bf16rne", csa), runP(t, "tiled/bc128/bf16rne", csa)) {
		t.Error("csa: the device's blocks give what tiled/bc128 gives")
	}
	// hca, window all −1 (block 0 all-false: m = −1e20, l = 128, o = 0), one
	// key in block 1: α = e^{−1e20−s} = 0, β = 1, so o is the key's row exactly.
	hca := genP(t, cases.Case{Family: problem.HCA, Seed: 5, B: 1, H: 3, D: 8, Win: 128, IdxTopK: 4, Ratio: 1,
		Positions: []int{10}, BlockSize: 128, CmpBlockSize: 4})
	for i := range hca.WinIdx {
		hca.WinIdx[i] = -1
	}
	hca.Idx = []int32{2, -1, -1, -1}
	o := runP(t, "pypto/bf16rne", hca)
	row := hca.CmpRow(0, 2)
	for h := range hca.H {
		if !slices.Equal(o[h*hca.D:(h+1)*hca.D], row) {
			t.Errorf("head %d: o = %v, want the key row %v", h, o[h*hca.D:(h+1)*hca.D], row)
		}
	}
}
