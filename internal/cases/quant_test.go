package cases

import (
	"encoding/json"
	"testing"

	"github.com/attnvet/attnvet/internal/num"
)

// An FP8 case whose main scope has no cache rows (topk 0) once failed to
// build ("fp8_model1 cache needs ≥ 1 page"): validate panicked on it.
func TestFP8EmptyScope(t *testing.T) {
	var c Case
	src := `{"version":1,"family":"mla","dtype":"bf16","seed":8046551055356061911,"h":4,"d":512,"dv":512,"b":1,"s":2,"block_size":53,"lse":{"base":"e","empty":"-inf","sink":"included"},"topk_length":[0],"extra_topk":16,"extra_topk_length":[17],"invalid":0.5,"kv_layout":"fp8_model1","fp8_edges":true,"values":{"dist":"zeroq"},"sink":{"kind":"random","scale":2,"offset":3,"value":0}}`
	if err := json.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	in, err := Generate(c, num.BF16)
	if err != nil {
		t.Fatal(err)
	}
	if in.MLAQuant == nil || len(in.Cache) != 0 || len(in.ExtraCache) == 0 || len(in.MLAQuant.ExtraRaw) == 0 {
		t.Fatalf("caches %d/%d rows", len(in.Cache), len(in.ExtraCache))
	}
}

func TestFP8CaseValidation(t *testing.T) {
	base := Case{Family: "mla", DType: "bf16", Seed: 1, H: 1, D: 576, Dv: 512, B: 1, TopK: 4, BlockSize: 4, KVLayout: "fp8_v32"}
	for _, tc := range []struct {
		name string
		edit func(*Case)
	}{
		{"d", func(c *Case) { c.D = 512 }},
		{"dtype", func(c *Case) { c.DType = "fp16" }},
		{"layout", func(c *Case) { c.KVLayout = "fp8_x" }},
		{"fp32 scales model1", func(c *Case) { c.KVLayout, c.D, c.FP8Scales, c.Dequant = "fp8_model1", 512, "fp32", "bf16" }},
		{"fp32 scales exact", func(c *Case) { c.FP8Scales = "fp32" }},
		{"no layout", func(c *Case) { c.KVLayout, c.FP8Edges = "", true }},
	} {
		c := base
		tc.edit(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
}
