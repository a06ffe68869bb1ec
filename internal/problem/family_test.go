package problem

import (
	"slices"
	"strings"
	"testing"
)

// The families register in their fixed order, each complete; an unknown
// family is an error from ParseFamily and Check.
func TestFamilyRegistry(t *testing.T) {
	want := []Family{Sparse, Window, Dense, Combine, MLA, CSA, HCA, SWA}
	if got := Families(); !slices.Equal(got, want) {
		t.Fatalf("Families() = %v, want %v", got, want)
	}
	if got := FamilyNames(); got != "sparse, window, dense, combine, mla, csa, hca or swa" {
		t.Errorf("FamilyNames() = %q", got)
	}
	for _, f := range want {
		s := specs[f]
		if s.refKeys == nil || s.kernelKeys == nil || (s.check == nil && s.checkAll == nil) || s.violations == nil || s.keysPerToken == nil {
			t.Errorf("%s: incomplete spec", f)
		}
	}
	if _, err := ParseFamily("bogus"); err == nil {
		t.Error("ParseFamily(bogus): no error")
	}
	in := &Inputs{Family: "bogus", T: 1, H: 1, Hkv: 1, D: 1, Dv: 1, Scale: 1, Q: []float32{1}}
	if err := in.Check(); err == nil || !strings.Contains(err.Error(), `"bogus"`) {
		t.Errorf("Check: %v, want an error naming the family", err)
	}
}

func TestKeysDistinct(t *testing.T) {
	for f, want := range map[Family]bool{Sparse: false, Window: true, Dense: true, Combine: true, MLA: false, CSA: false, HCA: false, SWA: false} {
		if got := (&Inputs{Family: f}).KeysDistinct(); got != want {
			t.Errorf("%s: KeysDistinct() = %v, want %v", f, got, want)
		}
	}
}
