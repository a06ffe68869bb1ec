package problem_test

import (
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/props"
)

// within reports whether view v lies inside one of the tensors ts.
func within(v []float32, ts [][]float32) bool {
	if len(v) == 0 {
		return true
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
	for _, t := range ts {
		if len(t) == 0 {
			continue
		}
		lo := uintptr(unsafe.Pointer(unsafe.SliceData(t)))
		if p >= lo && p+uintptr(len(v))*4 <= lo+uintptr(len(t))*4 {
			return true
		}
	}
	return false
}

// speedCases are generated cases of every family, the campaign mix
// included (special values, planted NaN and ±Inf, contract violations).
func speedCases(t *testing.T, each int) []*problem.Inputs {
	var ins []*problem.Inputs
	for _, fam := range problem.Families() {
		for i := 0; i < each; i++ {
			c := props.CaseAt(11, i, fam)
			in, err := cases.Generate(c, c.Format(num.BF16))
			if err != nil {
				continue
			}
			ins = append(ins, in)
		}
	}
	if len(ins) < each {
		t.Fatalf("only %d cases generated", len(ins))
	}
	return ins
}

// TestKeySourcesCoverKeys: every K and V view the gathers return lies in
// a tensor KeySources names (poison rows aside), so checking those
// tensors decides what a per-row scan of the keys would.
func TestKeySourcesCoverKeys(t *testing.T) {
	covered := map[problem.Family]int{}
	for _, in := range speedCases(t, 150) {
		ks, vs, ok := in.KeySources()
		if !ok {
			continue
		}
		poison := [][]float32{in.Poison()}
		var keys []problem.Key
		for tk := 0; tk < in.T; tk++ {
			for g := 0; g < in.Hkv; g++ {
				for pass, gather := range []func(int, int, []problem.Key) []problem.Key{in.RefKeys, in.KernelKeys} {
					keys = gather(tk, g, keys)
					for j, k := range keys {
						if !within(k.K, ks) && !(pass == 1 && within(k.K, poison)) {
							t.Fatalf("%s: token %d head %d key %d: K view outside KeySources", in.Family, tk, g, j)
						}
						if !within(k.V, vs) && !(pass == 1 && within(k.V, poison)) {
							t.Fatalf("%s: token %d head %d key %d: V view outside KeySources", in.Family, tk, g, j)
						}
					}
				}
			}
		}
		covered[in.Family]++
	}
	for _, f := range []problem.Family{problem.Window, problem.Sparse, problem.Dense, problem.MLA} {
		if covered[f] == 0 {
			t.Errorf("no %s case checked", f)
		}
	}
}

// TestViolationsShortcut: Violations with the all-finite shortcut lists
// exactly what the full per-row scan lists, on cases with and without
// planted non-finite keys.
func TestViolationsShortcut(t *testing.T) {
	nonfinite := 0
	for _, in := range speedCases(t, 300) {
		fast, full := in.Violations(), in.ViolationsFullScan()
		if !reflect.DeepEqual(fast, full) {
			t.Fatalf("%s T=%d: shortcut %v, full scan %v", in.Family, in.T, fast, full)
		}
		for _, v := range full {
			if v.Name == problem.VNonFinite && strings.HasPrefix(v.Detail, "attended key") {
				nonfinite++
			}
		}
	}
	if nonfinite == 0 {
		t.Fatal("no case with a non-finite attended key: the comparison cannot fail")
	}
}
