package cases_test

import (
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

func int4Case() cases.Case {
	return cases.Case{Family: problem.Dense, DType: "bf16", Seed: 44, H: 4, Hkv: 2, D: 8, Dv: 6, Sq: []int{2, 1}, Sk: []int{9, 14}, Int4KV: "per_channel"}
}

// int4_kv cases: the field's refusals, and generated inputs whose K/V are
// the dequantized packed codes (Inputs.Check holds the sizes).
func TestInt4KVCases(t *testing.T) {
	for _, b := range []struct {
		name string
		edit func(c *cases.Case)
		want string
	}{
		{"junk", func(c *cases.Case) { c.Int4KV = "per_token" }, `int4_kv "per_token": want per_tensor or per_channel`},
		{"odd d", func(c *cases.Case) { c.D, c.Dv = 7, 0 }, "int4_kv needs even d and dv"},
		{"odd dv", func(c *cases.Case) { c.Dv = 5 }, "int4_kv needs even d and dv"},
		{"with int8", func(c *cases.Case) { c.Int8KV = "per_tensor" }, "not with fp8, int8_kv or nvfp4_kv"},
		{"poison", func(c *cases.Case) { c.Poison = true }, "poison"},
		{"window family", func(c *cases.Case) { c.Family, c.T, c.Sq, c.Sk = problem.Window, 8, nil, nil }, "dense field"},
	} {
		c := int4Case()
		b.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: %v, want %q", b.name, err, b.want)
		}
	}
	for _, kind := range []string{"per_tensor", "per_channel"} {
		c := int4Case()
		c.Int4KV = kind
		in, err := cases.Generate(c, num.BF16)
		if err != nil {
			t.Fatal(err)
		}
		q := in.Int4KV
		if q == nil || len(q.KCodes)*2 != len(in.K) || len(q.VCodes)*2 != len(in.V) || (kind == "per_tensor") != (len(q.VScale) == 1) {
			t.Fatalf("%s: %+v", kind, q)
		}
		got := make([]float32, len(in.V))
		if err := problem.DequantInt4KV(got, q.VCodes, q.VScale, in.Hkv, in.Dv, in.Format); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if got[i] != in.V[i] {
				t.Fatalf("%s: v[%d] = %v, the codes dequantize to %v", kind, i, in.V[i], got[i])
			}
		}
	}
}
