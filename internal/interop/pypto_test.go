package interop

import (
	"reflect"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/props"
)

// TestPyptoRoundTrip: generated csa, hca and swa problems survive Encode +
// Decode bit for bit, under the kernels' tensor names, without warnings.
func TestPyptoRoundTrip(t *testing.T) {
	k, _ := impl.Lookup("tiled/bc16/bf16")
	for _, fam := range []problem.Family{problem.CSA, problem.HCA, problem.SWA} {
		t.Run(string(fam), func(t *testing.T) {
			for i := range 30 {
				c := props.CaseAt(11, i, fam)
				c.DType = ""
				in, err := cases.Generate(c, num.BF16)
				if err != nil {
					t.Fatal(err)
				}
				out, err := k.Run(in)
				if err != nil {
					t.Fatal(err)
				}
				f, err := Encode(in, k.Profile(), out.O)
				if err != nil {
					t.Fatal(err)
				}
				b := reparse(t, f)
				got := b.Inputs
				sameInputs(t, in, got)
				if fam != problem.CSA { // positions are the callers' (classes use them), not these kernels' inputs
					in.Pos = nil
				}
				if !reflect.DeepEqual([]any{in.WinIdx, in.SwaLens, in.Pos, in.IdxTopK, in.CBS, in.Ratio},
					[]any{got.WinIdx, got.SwaLens, got.Pos, got.IdxTopK, got.CBS, got.Ratio}) {
					t.Fatalf("case %d: pypto fields differ after the round trip: %s", i, c)
				}
				if !sameBits(b.O, out.O) {
					t.Fatalf("case %d: o differs after the round trip", i)
				}
				if len(b.Warnings) > 0 {
					t.Fatalf("case %d: warnings %v", i, b.Warnings)
				}
			}
		})
	}
}

// TestSwaSparseBias: swa_lens may come as the callers' sparse_bias (0 on a
// prefix, −1e20 after it); a bias that is not a length, or disagrees with
// swa_lens, is refused.
func TestSwaSparseBias(t *testing.T) {
	c := cases.Case{Family: problem.SWA, Seed: 5, B: 2, S: 2, H: 2, D: 8, Win: 6, BlockSize: 4, Plant: []string{cases.PlantShortLens}}
	in, err := cases.Generate(c, num.BF16)
	if err != nil {
		t.Fatal(err)
	}
	bias := func(lens []int32, bad bool) *bundle.Tensor {
		v := make([]float32, in.T*8)
		for t := range in.T {
			for k := int(lens[t]); k < 8; k++ {
				v[t*8+k] = -1e20
			}
		}
		if bad {
			v[8+7] = 0
		}
		b, _ := bundle.NewFloat32(TSparseBias, bundle.F32, []int{in.T, 8}, v)
		return b
	}
	for _, tc := range []struct {
		name     string
		keepLens bool
		bad      bool
		lens     []int32
		err      string
	}{
		{"bias only", false, false, in.SwaLens, ""},
		{"both agree", true, false, in.SwaLens, ""},
		{"not a length", false, true, in.SwaLens, "not 0 on a prefix"},
		{"disagree", true, false, []int32{0, 0, 0, 0}, "valid columns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Encode(in, profile.MustLookup("bf16"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.keepLens {
				delete(f.Tensors, TSwaLens)
				f.Order = slicesDelete(f.Order, TSwaLens)
			}
			f.Add(bias(tc.lens, tc.bad))
			_, err = Decode(f, nil)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				got, _ := Decode(f, nil)
				if !reflect.DeepEqual(got.Inputs.SwaLens, in.SwaLens) {
					t.Fatalf("swa_lens %v, want %v", got.Inputs.SwaLens, in.SwaLens)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}

func slicesDelete(s []string, x string) []string {
	var out []string
	for _, v := range s {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

// TestPyptoViolationTensor: check names the tensor a violation is about.
func TestPyptoViolationTensor(t *testing.T) {
	for _, tc := range []struct {
		fam  problem.Family
		v    problem.Violation
		want string
	}{
		{problem.SWA, problem.Violation{Name: problem.VPadInPrefix}, "swa_indices / swa_lens"},
		{problem.CSA, problem.Violation{Name: problem.VIndexRange}, "window_swa_indices → ori_kv"},
		{problem.CSA, problem.Violation{Name: problem.VBlockTable}, "idx_topk → cmp_block_table"},
		{problem.HCA, problem.Violation{Name: problem.VBlockTable}, "cmp_sparse_indices → cmp_block_table"},
		{problem.CSA, problem.Violation{Name: problem.VNegativePosition}, "position_ids"},
		{problem.SWA, problem.Violation{Name: problem.VSwaLens}, "swa_lens"},
		{problem.HCA, problem.Violation{Name: problem.VNonFinite, Detail: "q[3] = NaN"}, "q"},
		{problem.HCA, problem.Violation{Name: problem.VNonFinite, Detail: "attended key/value 0"}, "ori_kv/cmp_kv"},
	} {
		if got := ViolationTensor(&problem.Inputs{Family: tc.fam}, tc.v); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.fam, tc.v.Name, got, tc.want)
		}
	}
}
