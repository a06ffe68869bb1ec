package interop

import (
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/props"
)

// Every family has a bundle form, complete; an unknown one is an error.
func TestCodecRegistry(t *testing.T) {
	for _, fam := range problem.Families() {
		c, err := codecOf(fam)
		if err != nil {
			t.Fatal(err)
		}
		if c.encode == nil || c.sink == "" || c.out == "" || c.oShape == nil || c.addLSE == nil || c.describe == nil || c.violationTensor == nil {
			t.Errorf("%s: codec lacks an encoding step", fam)
		}
		if c.whole == nil && (c.qDims == "" || len(c.qRanks) == 0 || c.shapeQ == nil || c.body == nil || c.sinkIn == nil) {
			t.Errorf("%s: codec lacks a decoding step", fam)
		}
	}
	orders := map[int]problem.Family{}
	for _, fam := range problem.Families() {
		c := codecs[fam]
		if c.sniff == nil {
			t.Errorf("%s: no sniff (a bundle without metadata family)", fam)
		}
		if o, dup := orders[c.sniffOrder]; dup {
			t.Errorf("%s and %s share sniffOrder %d", o, fam, c.sniffOrder)
		}
		orders[c.sniffOrder] = fam
	}
	if len(codecs) != len(problem.Families()) {
		t.Errorf("%d codecs for %d families", len(codecs), len(problem.Families()))
	}
	if _, err := codecOf("bogus"); err == nil || !strings.Contains(err.Error(), `"bogus"`) {
		t.Errorf("codecOf(bogus) = %v, want an error naming it", err)
	}
	f := bundle.NewFile()
	f.Metadata[KeyFamily] = "bogus"
	if _, err := Decode(f, nil); err == nil {
		t.Error("Decode of family bogus: no error")
	}
}

func TestOutputName(t *testing.T) {
	for fam, want := range map[problem.Family]string{problem.Sparse: TO, problem.Window: TO, problem.Dense: TOut, problem.Combine: TVMerged, problem.MLA: TOut, problem.CSA: TO, problem.HCA: TO, problem.SWA: TO, "bogus": ""} {
		if got := OutputName(fam); got != want {
			t.Errorf("OutputName(%s) = %q, want %q", fam, got, want)
		}
	}
}

// A bundle without metadata family is recognised by its tensors, for
// every family (the codecs' sniffs, in their order).
func TestFamilyInferred(t *testing.T) {
	p, err := profile.Lookup("bf16")
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range problem.Families() {
		for i := range 20 {
			c := props.CaseAt(11, i, fam)
			in, err := cases.Generate(c, num.BF16)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Encode(in, p, nil)
			if err != nil {
				t.Fatal(err)
			}
			delete(f.Metadata, KeyFamily)
			d := &decoder{f: f, meta: f.Metadata, used: map[string]bool{}}
			got, err := d.family()
			if err != nil || got != fam {
				t.Fatalf("%s case %d: inferred %q, %v", fam, i, got, err)
			}
		}
	}
}
