package interop

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
	"github.com/attnvet/attnvet/props"
)

func sparseCase() cases.Case {
	return cases.Case{Version: 1, Family: problem.Sparse, Seed: 7, H: 3, D: 8, B: 2, S: 2, Win: 4, IdxTopK: 6, BlockSize: 4,
		Seqused: []int{3, 11}, Sink: &cases.Sink{Kind: "random", Scale: 1}}
}

func windowCase() cases.Case {
	return cases.Case{Version: 1, Family: problem.Window, Seed: 9, H: 4, Hkv: 2, D: 8, Dv: 5, T: 7, Window: 3}
}

func gen(t *testing.T, c cases.Case, f num.Format) *problem.Inputs {
	t.Helper()
	in, err := cases.Generate(c, f)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func mustGen(c cases.Case, f num.Format) *problem.Inputs {
	in, err := cases.Generate(c, f)
	if err != nil {
		panic(err)
	}
	return in
}

// roundTrip encodes, serialises as safetensors, parses and decodes.
func roundTrip(t *testing.T, in *problem.Inputs, p profile.Profile, o []float32) *Bundle {
	t.Helper()
	f, err := Encode(in, p, o)
	if err != nil {
		t.Fatal(err)
	}
	return reparse(t, f)
}

func sameInputs(t *testing.T, a, b *problem.Inputs) {
	t.Helper()
	// Bit-level comparison (NaN poison included).
	eq := func(x, y []float32) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) && !(x[i] != x[i] && y[i] != y[i]) {
				return false
			}
		}
		return true
	}
	for _, c := range []struct {
		name string
		x, y []float32
	}{{"q", a.Q, b.Q}, {"ori", a.OriKV, b.OriKV}, {"cmp", a.CmpKV, b.CmpKV}, {"k", a.K, b.K}, {"v", a.V, b.V}, {"sink", a.Sink, b.Sink}} {
		if !eq(c.x, c.y) {
			t.Errorf("%s differs after the round trip", c.name)
		}
	}
	type scalars struct {
		Family                                   problem.Family
		Format                                   num.Format
		T, H, Hkv, D, Dv, B, S, Win, TopK, BS, W int
		MBori, MBcmp                             int
		Scale                                    float64
		HasSinkTensor, NoCmp                     bool
		OriBT, CmpBT, Idx, Seqused               []int32
	}
	nz := func(s []int32) []int32 {
		if len(s) == 0 {
			return nil
		}
		return s
	}
	sc := func(in *problem.Inputs) scalars {
		return scalars{in.Family, in.Format, in.T, in.H, in.Hkv, in.D, in.Dv, in.B, in.S, in.Win, in.TopK, in.BS, in.W,
			in.MBori, in.MBcmp, in.Scale, in.HasSinkTensor, in.NoCmp, nz(in.OriBT), nz(in.CmpBT), nz(in.Idx), nz(in.Seqused)}
	}
	if sa, sb := sc(a), sc(b); !reflect.DeepEqual(sa, sb) {
		t.Errorf("inputs differ after the round trip:\n got %+v\nwant %+v", sb, sa)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, fam := range []problem.Family{problem.Sparse, problem.Window} {
		for i := 0; i < 30; i++ {
			c := props.CaseAt(3, i, fam)
			for _, pn := range []string{"bf16", "fp16", "fp32", "bf16s16"} {
				p := profile.MustLookup(pn)
				in := gen(t, c, p.In)
				o := make([]float32, in.OutLen())
				for j := range o {
					o[j] = num.Round32(p.Out, float32(j)*0.37, num.RNE)
				}
				b := roundTrip(t, in, p, o)
				sameInputs(t, in, b.Inputs)
				if in.Format != p.In {
					p.In, p.Name = in.Format, b.Profile.Name
				}
				if b.Profile != p {
					t.Errorf("%s: profile %+v, want %+v", c, b.Profile, p)
				}
				if !reflect.DeepEqual(b.O, o) {
					t.Errorf("%s: o differs after the round trip", c)
				}
				if len(b.Warnings) > 0 {
					t.Errorf("%s: warnings %v", c, b.Warnings)
				}
			}
		}
	}
}

func TestRoundTripSpecials(t *testing.T) {
	c := sparseCase()
	c.Poison = true
	c.Sink = &cases.Sink{Kind: "const", Value: cases.Float{V: math.Inf(1)}}
	c.Specials = []cases.Special{{Tensor: "q", Value: cases.Float{V: math.Copysign(0, -1)}}}
	in := gen(t, c, num.BF16)
	b := roundTrip(t, in, profile.MustLookup("bf16"), nil)
	sameInputs(t, in, b.Inputs)
	if b.O != nil {
		t.Error("o present without an output")
	}
	// No compressed pool.
	in = gen(t, sparseCase(), num.BF16)
	in.NoCmp, in.CmpKV, in.CmpBT, in.MBcmp = true, nil, nil, 0
	b = roundTrip(t, in, profile.MustLookup("bf16"), nil)
	if !b.Inputs.NoCmp {
		t.Error("NoCmp lost")
	}
}

func TestNpzWithFlags(t *testing.T) {
	in := gen(t, windowCase(), num.BF16)
	f, err := Encode(in, profile.MustLookup("bf16"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.WriteNpz(&buf); err != nil {
		t.Fatal(err)
	}
	g, err := bundle.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	// .npz carries no metadata: the family is inferred, the window is a flag.
	b, err := Decode(g, map[string]string{KeyWindow: "3", KeyProfile: "bf16"})
	if err != nil {
		t.Fatal(err)
	}
	sameInputs(t, in, b.Inputs)
	if b.Profile.Name != "bf16" {
		t.Errorf("profile %s", b.Profile.Name)
	}
}

func TestResolveProfile(t *testing.T) {
	bf16 := profile.MustLookup("bf16")
	for _, tc := range []struct {
		name    string
		meta    map[string]string
		in, out num.Format
		want    profile.Profile
		err     string
	}{
		{"defaults from q and o", nil, num.BF16, num.BF16,
			profile.Profile{Name: "bf16rne", In: num.BF16, Score: num.FP32, P: num.BF16, Acc: num.FP32, Out: num.BF16, OutRound: num.RNE}, ""},
		{"fp32 defaults", nil, num.FP32, num.FP32, profile.MustLookup("fp32"), ""},
		{"named", map[string]string{"profile": "bf16"}, num.FP32, num.FP32, bf16, ""},
		{"named, field overrides", map[string]string{"profile": "bf16", "out_rounding": "rne"}, num.FP32, num.FP32, profile.MustLookup("bf16rne"), ""},
		{"custom", map[string]string{"in_dtype": "torch.bfloat16", "score_dtype": "bf16", "out_dtype": "bfloat16"}, num.FP32, num.FP32,
			profile.Profile{Name: "custom", In: num.BF16, Score: num.BF16, P: num.BF16, Acc: num.FP32, Out: num.BF16, OutRound: num.RNE}, ""},
		{"p follows in", map[string]string{"in_dtype": "fp16"}, num.FP32, num.FP16,
			profile.MustLookup("fp16"), ""},
		{"extras", map[string]string{"profile": "bf16", "l_from_rounded_p": "true"}, num.BF16, num.BF16, profile.MustLookup("bf16lrp"), ""},
		{"exp ulps", map[string]string{"profile": "fp32", "exp_ulps": "4"}, num.FP32, num.FP32,
			func() profile.Profile { p := profile.MustLookup("fp32"); p.Name, p.ExpULPs = "custom", 4; return p }(), ""},
		{"gradual exp", map[string]string{"profile": "fp32", "exp_subnormals": "gradual"}, num.FP32, num.FP32,
			func() profile.Profile {
				p := profile.MustLookup("fp32")
				p.Name, p.ExpGradual = "custom", true
				return p
			}(), ""},
		{"flushing exp", map[string]string{"profile": "fp32", "exp_subnormals": "Flush"}, num.FP32, num.FP32, profile.MustLookup("fp32"), ""},
		{"bad exp subnormals", map[string]string{"exp_subnormals": "ftz"}, num.BF16, num.BF16, profile.Profile{}, `metadata exp_subnormals: "ftz" is not flush or gradual`},
		{"unknown profile", map[string]string{"profile": "bf17"}, num.BF16, num.BF16, profile.Profile{}, "metadata profile: unknown precision profile"},
		{"bad dtype", map[string]string{"score_dtype": "int8"}, num.BF16, num.BF16, profile.Profile{}, `metadata score_dtype: unknown dtype "int8"`},
		{"bad rounding", map[string]string{"out_rounding": "down"}, num.BF16, num.BF16, profile.Profile{}, "metadata out_rounding"},
		{"fp64 in", map[string]string{"in_dtype": "fp64"}, num.BF16, num.BF16, profile.Profile{}, "metadata in_dtype: fp64 is not supported"},
		{"bad bool", map[string]string{"l_from_rounded_p": "maybe"}, num.BF16, num.BF16, profile.Profile{}, "metadata l_from_rounded_p"},
		{"bad ulps", map[string]string{"exp_ulps": "-1"}, num.BF16, num.BF16, profile.Profile{}, "metadata exp_ulps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ResolveProfile(tc.meta, tc.in, tc.out)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p != tc.want {
				t.Errorf("got %+v, want %+v", p, tc.want)
			}
			// ProfileMeta declares it back.
			q, err := ResolveProfile(ProfileMeta(p), num.FP32, num.FP32)
			if err != nil || q != p {
				t.Errorf("ProfileMeta round trip: %+v, %v", q, err)
			}
		})
	}
}

// mutate encodes a valid bundle, applies edit and decodes it.
func mutate(t *testing.T, c cases.Case, edit func(f *bundle.File)) error {
	t.Helper()
	in := gen(t, c, num.BF16)
	f, err := Encode(in, profile.MustLookup("bf16"), make([]float32, in.OutLen()))
	if err != nil {
		t.Fatal(err)
	}
	edit(f)
	_, err = Decode(f, nil)
	return err
}

func f32Tensor(t *testing.T, name string, shape []int, vals []float32) *bundle.Tensor {
	t.Helper()
	x, err := bundle.NewFloat32(name, bundle.F32, shape, vals)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestDecodeErrors(t *testing.T) {
	drop := func(names ...string) func(*bundle.File) {
		return func(f *bundle.File) {
			for _, n := range names {
				delete(f.Tensors, n)
			}
		}
	}
	setMeta := func(k, v string) func(*bundle.File) { return func(f *bundle.File) { f.Metadata[k] = v } }
	reshape := func(name string, shape ...int) func(*bundle.File) {
		return func(f *bundle.File) { f.Tensors[name].Shape = shape }
	}
	for _, tc := range []struct {
		name string
		c    cases.Case
		edit func(*bundle.File)
		want string
	}{
		{"no q", sparseCase(), drop("q"), "tensor q: missing"},
		{"q rank", sparseCase(), reshape("q", 4, 24), "tensor q: shape [4 24], want [T, H, D]"},
		{"no family no pools", sparseCase(), func(f *bundle.File) { delete(f.Metadata, "family"); delete(f.Tensors, "ori_kv") }, "metadata family: missing"},
		{"bad family", sparseCase(), setMeta("family", "bogus"), `metadata family: "bogus"`},
		{"kv width", sparseCase(), reshape("ori_kv", 2, 8, 1, 4), "tensor ori_kv: shape [2 8 1 4], last dimension must be q's D = 8"},
		{"kv heads", sparseCase(), reshape("ori_kv", 2, 4, 2, 4), "tensor ori_kv: shape [2 4 2 4] has 2 KV heads"},
		{"cmp without table", sparseCase(), drop("cmp_block_table"), "tensor cmp_block_table: missing while cmp_kv is present"},
		{"seqused len", sparseCase(), func(f *bundle.File) { f.Add(bundle.NewInt32("seqused_kv", []int{3}, []int32{1, 2, 3})) }, "tensor seqused_kv: shape [3], want [B] = [2]"},
		{"T not B·S", sparseCase(), setMeta("tokens_per_batch", "1"), "tensor q: T=4 tokens, want B·tokens_per_batch = 2·1 = 2"},
		{"S not int", sparseCase(), setMeta("tokens_per_batch", "two"), `metadata tokens_per_batch: "two" is not an integer`},
		{"topk too big", sparseCase(), func(f *bundle.File) { f.Metadata["index_topk"] = "11"; delete(f.Metadata, "window") }, "metadata index_topk: 11 exceeds TOPK = 10"},
		{"topk window disagree", sparseCase(), setMeta("window", "5"), "window 5 + index_topk 6 ≠ TOPK = 10"},
		{"no topk", sparseCase(), func(f *bundle.File) { delete(f.Metadata, "window"); delete(f.Metadata, "index_topk") }, "metadata index_topk: missing"},
		{"idx rows", sparseCase(), func(f *bundle.File) { f.Add(bundle.NewInt32("cmp_sparse_indices", []int{3, 1}, []int32{0, 0, 0})) }, "tensor cmp_sparse_indices: shape [3 1] has 3 rows, q has T=4"},
		{"NaN in an integer field", sparseCase(), func(f *bundle.File) {
			f.Add(f32Tensor(t, "seqused_kv", []int{2}, []float32{3, float32(math.NaN())}))
		}, "tensor seqused_kv: value NaN at [1] is not an int32"},
		{"fraction in an integer field", sparseCase(), func(f *bundle.File) {
			f.Add(f32Tensor(t, "ori_block_table", []int{2, 1}, []float32{0, 1.5}))
		}, "tensor ori_block_table: value 1.5 at [1, 0] is not an int32"},
		{"I64 overflow", sparseCase(), func(f *bundle.File) {
			f.Add(bundle.NewInt64("seqused_kv", []int{2}, []int64{3, 1 << 40}))
		}, "tensor seqused_kv: value 1099511627776 at index 1 does not fit in int32"},
		{"q not bf16", sparseCase(), func(f *bundle.File) {
			q := make([]float32, 4*3*8)
			q[5] = 0.1
			f.Add(f32Tensor(t, "q", []int{4, 3, 8}, q))
		}, "tensor q: value 0.1 at [0, 0, 5] is not representable in bf16"},
		{"o not bf16", sparseCase(), func(f *bundle.File) {
			o := make([]float32, 4*3*8)
			o[9] = 1.0 / 3
			f.Add(f32Tensor(t, "o", []int{4, 3, 8}, o))
		}, "tensor o: value 0.33333334 at [0, 1, 1] is not representable in bf16 (the declared out_dtype)"},
		{"o shape", sparseCase(), reshape("o", 4, 3, 4, 2), "tensor o: shape [4 3 4 2], want [T, H, Dv]"},
		{"o dims", sparseCase(), func(f *bundle.File) { f.Tensors["o"].Shape = []int{4, 8, 3} }, "tensor o: shape [4 8 3], want [T, H, Dv] = [4 3 8]"},
		{"int q", sparseCase(), func(f *bundle.File) { f.Add(bundle.NewInt32("q", []int{4, 3, 8}, make([]int32, 96))) }, "tensor q: dtype I32, want a float dtype"},
		{"sink len", sparseCase(), func(f *bundle.File) { f.Add(f32Tensor(t, "attn_sink", []int{2}, []float32{0, 0})) }, "tensor attn_sink: shape [2], want [H] = [3]"},
		{"scale", sparseCase(), setMeta("softmax_scale", "-1"), `metadata softmax_scale: "-1" is not a positive finite number`},
		{"unknown dtype", sparseCase(), func(f *bundle.File) { f.Tensors["q"].DType = "F8" }, `tensor q: unknown dtype "F8"`},
		{"short data", sparseCase(), func(f *bundle.File) { f.Tensors["q"].Data = f.Tensors["q"].Data[:10] }, "tensor q: data is 10 bytes, want 192"},
		{"window k heads", windowCase(), reshape("k", 7, 3, 8), "tensor k: data is 224 bytes, want 336 for shape [7 3 8]"},
		{"window v", windowCase(), reshape("v", 7, 1, 10), "tensor v: shape [7 1 10], want [T, Hkv, Dv] = [7, 2, Dv]"},
		{"window heads", windowCase(), func(f *bundle.File) {
			f.Tensors["k"].Shape = []int{7, 3, 8}
			f.Tensors["k"].Data = make([]byte, 7*3*8*2)
			f.Tensors["v"].Shape = []int{7, 3, 5}
			f.Tensors["v"].Data = make([]byte, 7*3*5*2)
		}, "tensor k: 3 KV heads do not divide q's 4 heads"},
		{"window negative", windowCase(), setMeta("window", "-2"), "metadata window: -2, want at least 0"},
		{"profile", windowCase(), setMeta("profile", "nope"), "metadata profile: unknown precision profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := mutate(t, tc.c, tc.edit)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDecodeAccepts(t *testing.T) {
	// Wider containers, I64 indices, [NB,BS,D] pools, inferred family.
	in := gen(t, sparseCase(), num.BF16)
	f, err := Encode(in, profile.MustLookup("bf16"), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.Add(f32Tensor(t, "q", []int{in.T, in.H, in.D}, in.Q))
	f.Tensors["ori_kv"].Shape = []int{len(in.OriKV) / (in.BS * in.D), in.BS, in.D}
	idx := make([]int64, len(in.Idx))
	for i, x := range in.Idx {
		idx[i] = int64(x)
	}
	f.Add(bundle.NewInt64("cmp_sparse_indices", []int{in.T, in.TopK}, idx))
	delete(f.Metadata, "family")
	delete(f.Metadata, "window")
	f.Metadata["harness_commit"] = "abc"
	f.Add(f32Tensor(t, "extra", []int{1}, []float32{1}))
	b, err := Decode(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameInputs(t, in, b.Inputs)
	want := []string{"tensor extra is not part of the sparse family's contract; ignored", "metadata harness_commit is not part of the contract; ignored"}
	if !reflect.DeepEqual(b.Warnings, want) {
		t.Errorf("warnings %q, want %q", b.Warnings, want)
	}
	// Overrides win over the file's metadata.
	b, err = Decode(f, map[string]string{"softmax_scale": "0.5"})
	if err != nil || b.Inputs.Scale != 0.5 {
		t.Fatalf("override: %v %v", b, err)
	}
}

func TestOutput(t *testing.T) {
	in := gen(t, windowCase(), num.BF16)
	f := bundle.NewFile()
	o := make([]float32, in.OutLen())
	o[3] = 1.5
	x, _ := bundle.NewFloat32("o", bundle.BF16, []int{in.T, in.H, in.Dv}, o)
	f.Add(x)
	got, err := Output(f, in, num.BF16)
	if err != nil || !reflect.DeepEqual(got, o) {
		t.Fatalf("Output: %v", err)
	}
	x.Shape = []int{in.T, in.Dv, in.H}
	if _, err := Output(f, in, num.BF16); err == nil || !strings.Contains(err.Error(), "tensor o: shape") {
		t.Errorf("wrong shape accepted: %v", err)
	}
	if _, err := Output(bundle.NewFile(), in, num.BF16); err == nil || !strings.Contains(err.Error(), "tensor o: missing") {
		t.Errorf("missing o: %v", err)
	}
}

func TestElemIndex(t *testing.T) {
	for _, tc := range []struct {
		shape []int
		i     int
		want  string
	}{{[]int{4, 3, 8}, 0, "[0, 0, 0]"}, {[]int{4, 3, 8}, 95, "[3, 2, 7]"}, {[]int{5}, 4, "[4]"}, {nil, 0, "[]"}} {
		if got := elemIndex(tc.shape, tc.i); got != tc.want {
			t.Errorf("elemIndex(%v, %d) = %s, want %s", tc.shape, tc.i, got, tc.want)
		}
	}
}

func TestViolationTensor(t *testing.T) {
	in := gen(t, sparseCase(), num.BF16)
	in.Idx[0] = -1 // token 0 has u_s = 2: a pad in its prefix
	vs := in.Violations()
	if len(vs) == 0 {
		t.Fatal("no violation")
	}
	if got := ViolationTensor(in, vs[0]); got != TIdx {
		t.Errorf("%v names %s", vs[0], got)
	}
	if got := ViolationTensor(&problem.Inputs{Family: problem.Window}, problem.Violation{Name: problem.VNonFinite, Detail: "attended key/value 1"}); got != "k/v" {
		t.Errorf("window key: %s", got)
	}
}
