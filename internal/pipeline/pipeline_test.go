package pipeline

import (
	"reflect"
	"testing"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

func TestUntrustedKernelsGetPrivateInputs(t *testing.T) {
	in, err := cases.Generate(cases.Case{Family: problem.Sparse, Seed: 5, H: 2, D: 4, B: 1, Win: 4, IdxTopK: 4, BlockSize: 2, Seqused: []int{6}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := CloneInputs(in)
	if !reflect.DeepEqual(c.Q, in.Q) || !reflect.DeepEqual(c.Idx, in.Idx) || !reflect.DeepEqual(c.OriKV, in.OriKV) {
		t.Fatal("clone differs")
	}
	c.Q[0]++
	c.Idx[0] = 99
	c.OriKV[0]++
	if c.Q[0] == in.Q[0] || c.Idx[0] == in.Idx[0] || c.OriKV[0] == in.OriKV[0] {
		t.Error("clone shares memory with the original")
	}
}

// Every exported tensor of every family is private to the clone: each
// slice field is set, the clone's copy changed, the original checked.
func TestCloneCopiesEverySliceField(t *testing.T) {
	var in problem.Inputs
	v := reflect.ValueOf(&in).Elem()
	var names []string
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() != reflect.Slice || !f.CanSet() {
			continue
		}
		f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		names = append(names, v.Type().Field(i).Name)
	}
	if len(names) < 10 {
		t.Fatalf("only %d slice fields found: %v", len(names), names)
	}
	c := CloneInputs(&in)
	cv := reflect.ValueOf(c).Elem()
	for _, n := range names {
		e := cv.FieldByName(n).Index(0)
		switch e.Kind() {
		case reflect.Float32, reflect.Float64:
			e.SetFloat(7)
		case reflect.Int32, reflect.Int, reflect.Int64:
			e.SetInt(7)
		default:
			t.Fatalf("%s: element kind %s not covered by this test", n, e.Kind())
		}
		if o := v.FieldByName(n).Index(0); !o.IsZero() {
			t.Errorf("%s: the clone shares its memory with the original", n)
		}
	}
}

// NeedRef saying no leaves the reference out and keeps the contract
// check; saying yes (or unset) computes it.
func TestNeedRefSkipsTheReference(t *testing.T) {
	c := cases.Case{Family: problem.Window, Seed: 3, H: 2, D: 8, T: 6, Window: 3}
	for _, need := range []bool{false, true} {
		pc := NewCase(c)
		var asked []num.Format
		pc.NeedRef = func(in *problem.Inputs, f num.Format) bool {
			if in == nil || in.Family != problem.Window {
				t.Errorf("NeedRef got inputs %v", in)
			}
			asked = append(asked, f)
			return need
		}
		p, err := pc.In(num.BF16)
		if err != nil {
			t.Fatal(err)
		}
		if (p.Ref != nil) != need || p.In == nil || p.Violations != nil {
			t.Errorf("need %v: ref %v, inputs %v, violations %v", need, p.Ref != nil, p.In != nil, p.Violations)
		}
		if len(asked) != 1 || asked[0] != num.BF16 {
			t.Errorf("need %v: NeedRef asked for %v, want [bf16] once", need, asked)
		}
	}
}

// A released case's reference memory serves the next case, with the bits
// a fresh reference has (the campaign releases every case it judged).
func TestReleasedReferencesAreReused(t *testing.T) {
	big := cases.Case{Family: problem.Window, Seed: 3, H: 4, D: 16, T: 40, Window: 9}
	small := cases.Case{Family: problem.Window, Seed: 4, H: 2, D: 8, T: 6, Window: 3}
	fresh, err := Prepare(small, num.BF16)
	if err != nil {
		t.Fatal(err)
	}
	reused := 0
	for range 20 { // the pool may drop entries (a collection): try a few times
		pb := NewCase(big)
		pb.LazyDev = true
		p, err := pb.In(num.BF16)
		if err != nil || p.Ref == nil {
			t.Fatal(err)
		}
		old := p.Ref
		pb.Release()
		if p.Ref != nil {
			t.Fatal("Release left the reference in its Prepared")
		}
		ps := NewCase(small)
		q, err := ps.In(num.BF16)
		if err != nil {
			t.Fatal(err)
		}
		if q.Ref == old {
			reused++
		}
		if !reflect.DeepEqual(q.Ref.O, fresh.Ref.O) || !reflect.DeepEqual(q.Ref.AbsV, fresh.Ref.AbsV) || !reflect.DeepEqual(q.Ref.Rows, fresh.Ref.Rows) {
			t.Fatal("a reference computed into released memory differs from a fresh one")
		}
	}
	if reused == 0 {
		t.Error("no released reference was reused")
	}
}
