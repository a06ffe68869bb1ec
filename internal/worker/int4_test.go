package worker

import (
	"testing"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/profile"
)

// An INT4-KV request (ORT's kv_cache_bit_width 4) carries the U8 packed
// codes, F32 k_scale/v_scale and kv_cache_bit_width=4, whatever dtype.k
// says; a worker that does not declare int4_kv skips it with a reason.
func TestWorkerInt4Request(t *testing.T) {
	in := quantCase(t, QuantInt4KV, num.BF16)
	d, err := parseDecl(map[string]string{"protocol": "2", "quantized": "int4_kv", "dtype.k": "F32", "dtype.v": "F32"})
	if err != nil {
		t.Fatal(err)
	}
	if r := d.skipReason(in); r != "" {
		t.Fatalf("declared int4_kv: skipped (%s)", r)
	}
	f, err := interop.Encode(in, profile.MustLookup("fp32"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := d.store(f); r != "" || err != nil {
		t.Fatalf("store: %q %v", r, err)
	}
	for name, dt := range map[string]bundle.DType{"k": bundle.U8, "v": bundle.U8, "k_scale": bundle.F32, "v_scale": bundle.F32} {
		got := f.Tensors[name]
		if got == nil && (name == "k" || name == "v") {
			got = f.Tensors[name+"_cache"]
		}
		if got == nil || got.DType != dt {
			t.Errorf("request tensor %s is %v, want %s", name, got, dt)
		}
	}
	if f.Metadata[interop.KeyKVBitWidth] != "4" {
		t.Errorf("kv_cache_bit_width = %q, want 4", f.Metadata[interop.KeyKVBitWidth])
	}
	for hello, want := range map[string]string{"": "int4_kv inputs: no quantized= declaration", "int8_kv,nvfp4_kv": "int4_kv not in quantized=int8_kv,nvfp4_kv"} {
		h := map[string]string{"protocol": "2"}
		if hello != "" {
			h["quantized"] = hello
		}
		d, err := parseDecl(h)
		if err != nil {
			t.Fatal(err)
		}
		if r := d.skipReason(in); r != want {
			t.Errorf("quantized=%q: skip reason %q, want %q", hello, r, want)
		}
	}
}
