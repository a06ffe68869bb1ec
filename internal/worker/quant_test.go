package worker

import (
	"errors"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/props"
	"github.com/attnvet/attnvet/ref"
)

// quantCase returns the first generated dense case (seed 20261203) of
// quantized kind kind that keeps the contract, in format f, without a sink
// (a +inf sink would make o zero whatever the scales), most of whose
// output is not 0.
func quantCase(t *testing.T, kind string, f num.Format) *problem.Inputs {
	t.Helper()
	for i := 0; i < 4000; i++ {
		c := props.CaseAt(20261203, i, problem.Dense)
		if c.NVFP4Edge != "" {
			continue // the zero-block class may leave nothing for a scale to change
		}
		if c.DType != "" && c.FP8 == "" {
			c.DType = ""
		}
		in, err := cases.Generate(c, f)
		if err != nil {
			t.Fatal(err)
		}
		if quantKind(in) != kind || len(in.Violations()) > 0 || in.Sink != nil || in.Dv < 4 || in.T*in.H > 3000 || in.Format != f {
			continue
		}
		nonzero := 0
		for _, o := range ref.Compute(in, ref.Options{Workers: 1}).O {
			if o != 0 {
				nonzero++
			}
		}
		if 2*nonzero > in.OutLen() { // most rows attend keys
			return in
		}
	}
	t.Fatalf("no %s case in 4000", kind)
	return nil
}

// quantized=… declares the quantized dense inputs a protocol 2 worker
// reads: the request then carries the codes and scales of the bundle
// contract, in their own dtypes whatever dtype.k or dtype.q says; a
// worker that dequantizes correctly passes, one that drops a scale fails;
// without the declaration (or with another kind declared) the case is
// skipped with a reason naming it.
func TestWorkerQuantized(t *testing.T) {
	for _, tc := range []struct {
		kind, kernel, bad string
		f                 num.Format
		tensors           map[string]bundle.DType // what the request must carry
	}{
		{QuantInt8KV, "", "unit-int8-scale", num.BF16, map[string]bundle.DType{"q": bundle.F32, "k": bundle.I8, "v": bundle.I8, "k_scale": bundle.F32, "v_scale": bundle.F32}},
		{QuantNVFP4KV, "", "unit-block-scales", num.BF16, map[string]bundle.DType{"q": bundle.F32, "k": bundle.U8, "v": bundle.U8,
			"k_block_scale": bundle.U8, "v_block_scale": bundle.U8, "k_global_scale": bundle.F32, "v_global_scale": bundle.F32}},
		{QuantNVFP4KV, "", "unit-global-scale", num.BF16, nil},
		{QuantFP8, "fa3/bc128/fp8bf16", "unit-descale", num.FP32, map[string]bundle.DType{"q": bundle.F8E4M3, "k": bundle.F8E4M3, "v": bundle.F8E4M3}},
	} {
		in := quantCase(t, tc.kind, tc.f)
		// dtype.q/k/v=F32: q of an INT8 or NVFP4 problem is re-encoded,
		// codes never are.
		hello := map[string]string{"protocol": "2", "quantized": tc.kind, "dtype.q": "F32", "dtype.k": "F32", "dtype.v": "F32"}
		env := ""
		if tc.kernel != "" {
			env = "ATTNVET_FAKE_KERNEL='" + tc.kernel + "' "
		}
		if tc.tensors != nil {
			d, err := parseDecl(hello)
			if err != nil {
				t.Fatal(err)
			}
			pf := profile.MustLookup("fp32")
			f, err := interop.Encode(in, pf, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r, err := d.store(f); r != "" || err != nil {
				t.Fatalf("%s: store: %q %v", tc.kind, r, err)
			}
			for name, dt := range tc.tensors {
				got := f.Tensors[name]
				if got == nil && (name == "k" || name == "v") {
					got = f.Tensors[name+"_cache"] // paged
				}
				if got == nil || got.DType != dt {
					t.Errorf("%s: request tensor %s is %v, want %s", tc.kind, name, got, dt)
				}
			}
		}
		for _, mode := range []string{"ok", tc.bad} {
			w, err := New(env+fakeV2(t, mode, hello), DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			out, err := w.Run(in)
			w.Close()
			if err != nil {
				t.Fatalf("%s %s (%s): %v", tc.kind, mode, interop.Describe(in), err)
			}
			v := judge(t, w, in, out)
			if v.Pass != (mode == "ok") {
				t.Errorf("%s %s: pass %v (worst %v), want %v", tc.kind, mode, v.Pass, v.Worst, mode == "ok")
			}
		}
		// Skipped: no declaration (protocol 1 or 2), or another kind.
		other := QuantFP8
		if tc.kind == QuantFP8 {
			other = QuantInt8KV
		}
		for _, h := range []struct {
			hello map[string]string
			want  string
		}{
			{nil, tc.kind + " inputs: no quantized= declaration"},
			{map[string]string{"protocol": "2"}, tc.kind + " inputs: no quantized= declaration"},
			{map[string]string{"protocol": "2", "quantized": other + ",nvfp4_kv"}, tc.kind + " not in quantized=" + other + ",nvfp4_kv"},
		} {
			if tc.kind == QuantNVFP4KV && h.hello["quantized"] != "" {
				h.hello = map[string]string{"protocol": "2", "quantized": "int8_kv"}
				h.want = "nvfp4_kv not in quantized=int8_kv"
			}
			w, err := New(env+fakeV2(t, "ok", h.hello), DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			_, err = w.Run(in)
			w.Close()
			var se *SkipError
			if !errors.As(err, &se) || se.Reason != h.want {
				t.Errorf("%s, hello %v: %v, want the skip %q", tc.kind, h.hello, err, h.want)
			}
			if s := w.Stats(); s.Requests != 0 || s.SkipReasons[h.want] != 1 {
				t.Errorf("%s, hello %v: stats %+v", tc.kind, h.hello, s)
			}
		}
	}
}

func TestWorkerQuantizedHellos(t *testing.T) {
	d, err := parseDecl(map[string]string{"protocol": "2", "quantized": " NVFP4_KV, fp8"})
	if err != nil || d.quantList != "fp8,nvfp4_kv" {
		t.Errorf("%+v %v", d, err)
	}
	for _, tc := range []struct {
		hello map[string]string
		want  string
	}{
		{map[string]string{"quantized": "fp8"}, `declares quantized="fp8", a protocol 2 key, without protocol=2`},
		{map[string]string{"protocol": "2", "quantized": "fp8,int4"}, `unknown quantized input "int4" (want fp8, int8_kv, nvfp4_kv`},
		{map[string]string{"protocol": "2", "quantized": ""}, `unknown quantized input ""`},
	} {
		if _, err := parseDecl(tc.hello); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.hello, err, tc.want)
		}
	}
}
