package cases

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
)

// digest hashes every tensor of in, bit for bit, with the shape.
func digest(in *problem.Inputs) [32]byte {
	h := sha256.New()
	w := func(v any) { binary.Write(h, binary.LittleEndian, v) }
	w([]int64{int64(in.Format), int64(in.T), int64(in.H), int64(in.Hkv), int64(in.D), int64(in.Dv),
		int64(in.B), int64(in.S), int64(in.Win), int64(in.TopK), int64(in.BS), int64(in.MBori), int64(in.MBcmp), int64(in.W)})
	w(math.Float64bits(in.Scale))
	for _, f := range [][]float32{in.Q, in.Sink, in.OriKV, in.CmpKV, in.K, in.V} {
		w(int64(len(f)))
		for _, x := range f {
			w(math.Float32bits(x))
		}
	}
	for _, s := range [][]int32{in.OriBT, in.CmpBT, in.Idx, in.Seqused} {
		w(int64(len(s)))
		w(s)
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

func sampleCases() map[string]Case {
	return map[string]Case{
		"sparse": {Family: problem.Sparse, Seed: 42, H: 3, D: 8, B: 3, S: 2, Win: 4, IdxTopK: 6, BlockSize: 2,
			Seqused: []int{1, 5, 17}, Indices: "shuffled", BlockTable: "permuted", Plant: []string{"duplicate"},
			Poison: true, Sink: &Sink{Kind: "random", Scale: 2, Offset: -1}},
		"sparse-specials": {Family: problem.Sparse, DType: "fp16", Seed: 7, H: 2, D: 4, B: 1, Win: 2, IdxTopK: 2,
			Seqused: []int{4}, Values: Values{Dist: "wide", WideExp: 30},
			Specials: []Special{{Tensor: "kv", Token: 0, Key: 1, Dim: 2, Value: Float{Name: "max"}},
				{Tensor: "q", Token: 0, Head: 1, Dim: 0, Value: F(math.Copysign(0, -1))}}},
		"window": {Family: problem.Window, Seed: 9, T: 7, H: 4, Hkv: 2, D: 5, Dv: 3, Window: 3,
			Values: Values{Dist: "uniform", Scale: 2, VScale: 0.5}, Sink: &Sink{Kind: "const", Value: F(math.Inf(1))}},
		"window-dominant": {Family: problem.Window, DType: "fp32", Seed: 1, T: 3, H: 2, D: 4, Values: Values{Dist: "dominant"},
			Sink: &Sink{Kind: "const", Values: []Float{F(math.Inf(-1)), {Name: "-max"}}}},
		"zeroq": {Family: problem.Window, Seed: 2, T: 2, H: 1, D: 2, Values: Values{Dist: "zeroq"}, Scale: 0.25},
	}
}

func TestGenerateDeterministic(t *testing.T) {
	for name, c := range sampleCases() {
		for _, f := range []num.Format{num.BF16, num.FP16, num.FP32} {
			a, err := Generate(c, f)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			b, _ := Generate(c, f)
			if digest(a) != digest(b) {
				t.Errorf("%s/%s: two generations differ", name, f)
			}
			c2 := c
			c2.Seed++
			if d, _ := Generate(c2, f); digest(d) == digest(a) {
				t.Errorf("%s/%s: the seed does not matter", name, f)
			}
			if err := a.Check(); err != nil {
				t.Errorf("%s/%s: %v", name, f, err)
			}
			want := c.Format(f)
			if a.Format != want {
				t.Errorf("%s/%s: format %s, want %s", name, f, a.Format, want)
			}
			// Every value is representable in the storage format.
			for _, x := range append(append(append([]float32{}, a.Q...), a.K...), a.OriKV...) {
				if r := num.Round64(want, float64(x), num.RNE); r != float64(x) && !math.IsNaN(float64(x)) {
					t.Fatalf("%s/%s: %v is not a %s value", name, f, x, want)
				}
			}
		}
	}
}

// TestGenerateGolden pins the generator's output: a change here changes
// every saved corpus case.
func TestGenerateGolden(t *testing.T) {
	in, err := Generate(sampleCases()["sparse"], num.BF16)
	if err != nil {
		t.Fatal(err)
	}
	// First values of q, the last token's index row and the sinks.
	if got := in.Q[:4]; !reflect.DeepEqual(got, goldenQ) {
		t.Errorf("q[:4] = %#v, want %#v", got, goldenQ)
	}
	if got := in.Idx[(in.T-1)*in.TopK:]; !reflect.DeepEqual(got, goldenIdx) {
		t.Errorf("last index row = %#v, want %#v", got, goldenIdx)
	}
	if !reflect.DeepEqual(in.Sink, goldenSink) {
		t.Errorf("sink = %#v, want %#v", in.Sink, goldenSink)
	}
}

var (
	goldenQ    = []float32{0.045898438, -2.015625, 1.3046875, 0.27148438}
	goldenIdx  = []int32{2, 0, 3, 1, 11, 5, 16, 9, 15, 7} // u = 17: 4 window slots, 6 of 13 compressed, shuffled
	goldenSink = []float32{-3.0732975, -0.8492766, -1.8156124}
)

func TestJSONRoundTrip(t *testing.T) {
	for name, c := range sampleCases() {
		b := c.Marshal()
		c2, err := Parse(b)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, b)
		}
		if b2 := c2.Marshal(); !bytes.Equal(b, b2) {
			t.Errorf("%s: re-marshalled differs:\n%s\n%s", name, b, b2)
		}
		c.Version = Version
		if !reflect.DeepEqual(c, c2) {
			t.Errorf("%s: round trip gives %+v, want %+v", name, c2, c)
		}
		for _, f := range []num.Format{num.BF16, num.FP16} {
			a, _ := Generate(c, f)
			b, _ := Generate(c2, f)
			if digest(a) != digest(b) {
				t.Errorf("%s/%s: the parsed case generates other inputs", name, f)
			}
		}
		var c3 Case
		if err := json.Unmarshal([]byte(c.String()), &c3); err != nil || !reflect.DeepEqual(c, c3) {
			t.Errorf("%s: String() does not round-trip: %v", name, err)
		}
	}
}

func TestFloatJSON(t *testing.T) {
	negZero := math.Copysign(0, -1)
	for _, tc := range []struct {
		f    Float
		json string
	}{
		{F(1.5), `1.5`},
		{F(-3e-320), `-3e-320`},
		{F(0x1.fffffffffffffp1023), `1.7976931348623157e+308`},
		{F(math.Inf(1)), `"+inf"`},
		{F(math.Inf(-1)), `"-inf"`},
		{F(math.NaN()), `"nan"`},
		{F(negZero), `"-0"`},
		{F(0), `0`},
		{Float{Name: "max"}, `"max"`},
		{Float{Name: "-max"}, `"-max"`},
		{Float{Name: "minsub"}, `"minsub"`},
		{Float{Name: "-minsub"}, `"-minsub"`},
	} {
		b, err := json.Marshal(tc.f)
		if err != nil || string(b) != tc.json {
			t.Errorf("Marshal(%+v) = %s, %v; want %s", tc.f, b, err, tc.json)
		}
		var g Float
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if g.Name != tc.f.Name || math.Float64bits(g.V) != math.Float64bits(tc.f.V) && !(math.IsNaN(g.V) && math.IsNaN(tc.f.V)) {
			t.Errorf("Unmarshal(%s) = %+v, want %+v", b, g, tc.f)
		}
	}
	for in, want := range map[string]float64{`"inf"`: math.Inf(1), `"INF"`: math.Inf(1), `"0x1.8p-3"`: 0.1875, `"2.5"`: 2.5, `-0`: negZero} {
		var g Float
		if err := json.Unmarshal([]byte(in), &g); err != nil || math.Float64bits(g.V) != math.Float64bits(want) {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", in, g.V, err, want)
		}
	}
	for _, bad := range []string{`"huge"`, `"1.5.2"`, `true`, `[1]`} {
		var g Float
		if err := json.Unmarshal([]byte(bad), &g); err == nil {
			t.Errorf("Unmarshal(%s) accepted: %+v", bad, g)
		}
	}
	for _, tc := range []struct {
		f    Float
		fmt  num.Format
		want float64
	}{
		{Float{Name: "max"}, num.BF16, 0x1.fep127},
		{Float{Name: "max"}, num.FP16, 65504},
		{Float{Name: "-max"}, num.FP32, -math.MaxFloat32},
		{Float{Name: "minsub"}, num.FP16, 0x1p-24},
		{Float{Name: "-minsub"}, num.BF16, -0x1p-133},
		{F(3), num.FP16, 3},
	} {
		if got := tc.f.Resolve(tc.fmt); got != tc.want {
			t.Errorf("%+v.Resolve(%s) = %v, want %v", tc.f, tc.fmt, got, tc.want)
		}
	}
}

// TestSpecialsPlanted: the special values arrive in the tensors, rounded to
// the dtype.
func TestSpecialsPlanted(t *testing.T) {
	c := Case{Family: problem.Window, Seed: 3, T: 2, H: 2, D: 3, Dv: 2,
		Specials: []Special{
			{Tensor: "q", Token: 1, Head: 0, Dim: 2, Value: F(math.Copysign(0, -1))},
			{Tensor: "k", Key: 0, Head: 1, Dim: 1, Value: Float{Name: "max"}},
			{Tensor: "v", Key: 1, Head: 0, Dim: 1, Value: F(math.Inf(-1))},
			{Tensor: "q", Token: 0, Head: 1, Dim: 0, Value: F(1e6)}, // rounds in fp16 to +Inf
		}}
	in, err := Generate(c, num.FP16)
	if err != nil {
		t.Fatal(err)
	}
	if x := in.Q[(1*2+0)*3+2]; x != 0 || !math.Signbit(float64(x)) {
		t.Errorf("q special = %v, want -0", x)
	}
	if x := in.K[(0*2+1)*3+1]; x != 65504 {
		t.Errorf("k special = %v, want 65504 (fp16 max)", x)
	}
	if x := in.V[(1*2+0)*2+1]; !math.IsInf(float64(x), -1) {
		t.Errorf("v special = %v, want -Inf", x)
	}
	if x := in.Q[(0*2+1)*3+0]; !math.IsInf(float64(x), 1) {
		t.Errorf("q 1e6 in fp16 = %v, want +Inf", x)
	}
}

func TestValidateErrors(t *testing.T) {
	sp := func(edit func(c *Case)) Case {
		c := Case{Family: problem.Sparse, Seed: 1, H: 2, D: 4, B: 2, Win: 2, IdxTopK: 2, Seqused: []int{1, 2}}
		edit(&c)
		return c
	}
	wn := func(edit func(c *Case)) Case {
		c := Case{Family: problem.Window, Seed: 1, T: 3, H: 4, Hkv: 2, D: 4}
		edit(&c)
		return c
	}
	if err := sp(func(*Case) {}).Validate(); err != nil {
		t.Fatal(err)
	}
	if err := wn(func(*Case) {}).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    Case
		want string
	}{
		{"version", sp(func(c *Case) { c.Version = Version + 1 }), "newer"},
		{"dtype", sp(func(c *Case) { c.DType = "fp64" }), "dtype"},
		{"dtype junk", sp(func(c *Case) { c.DType = "int8" }), "dtype"},
		{"h=0", sp(func(c *Case) { c.H = 0 }), "bad shape"},
		{"d=0", wn(func(c *Case) { c.D = 0 }), "bad shape"},
		{"d huge", wn(func(c *Case) { c.D = maxDim + 1 }), "bad shape"},
		{"scale<0", sp(func(c *Case) { c.Scale = -1 }), "softmax_scale"},
		{"scale NaN", sp(func(c *Case) { c.Scale = math.NaN() }), "softmax_scale"},
		{"dist", sp(func(c *Case) { c.Values.Dist = "cauchy" }), "values.dist"},
		{"values scale", sp(func(c *Case) { c.Values.VScale = math.Inf(1) }), "values scale"},
		{"wide_exp", sp(func(c *Case) { c.Values.WideExp = 121 }), "wide_exp"},
		{"sink kind", sp(func(c *Case) { c.Sink = &Sink{Kind: "huge"} }), "sink.kind"},
		{"sink values", sp(func(c *Case) { c.Sink = &Sink{Kind: "const", Values: []Float{F(1)}} }), "sink.values"},
		{"sink scale", sp(func(c *Case) { c.Sink = &Sink{Kind: "random", Scale: math.NaN()} }), "finite"},
		{"family", sp(func(c *Case) { c.Family = "dense" }), "family"},
		{"sparse hkv", sp(func(c *Case) { c.Hkv = 2 }), "one shared KV head"},
		{"sparse dv", sp(func(c *Case) { c.Dv = 3 }), "one shared KV head"},
		{"b=0", sp(func(c *Case) { c.B = 0; c.Seqused = nil }), "bad sparse shape"},
		{"s<0", sp(func(c *Case) { c.S = -1 }), "bad sparse shape"},
		{"tokens", sp(func(c *Case) { c.S = maxTokens }), "bad sparse shape"},
		{"no slots", sp(func(c *Case) { c.Win, c.IdxTopK = 0, 0 }), "index geometry"},
		{"win<0", sp(func(c *Case) { c.Win = -1 }), "index geometry"},
		{"block size", sp(func(c *Case) { c.BlockSize = -2 }), "block_size"},
		{"seqused len", sp(func(c *Case) { c.Seqused = []int{1} }), "seqused has 1"},
		{"seqused<0", sp(func(c *Case) { c.Seqused[1] = -1 }), "seqused[1]"},
		{"seqused huge", sp(func(c *Case) { c.Seqused[0] = 1<<20 + 1 }), "seqused[0]"},
		{"indices", sp(func(c *Case) { c.Indices = "random" }), "indices"},
		{"block_table", sp(func(c *Case) { c.BlockTable = "reversed" }), "block_table"},
		{"plant", sp(func(c *Case) { c.Plant = []string{"nan_row"} }), "plant"},
		{"too large", sp(func(c *Case) { c.D, c.Seqused = maxDim, []int{1 << 20, 1} }), "too large"},
		{"hkv∤h", wn(func(c *Case) { c.Hkv = 3 }), "divisor"},
		{"hkv>h", wn(func(c *Case) { c.Hkv = 8 }), "divisor"},
		{"t=0", wn(func(c *Case) { c.T = 0 }), "t=0"},
		{"t huge", wn(func(c *Case) { c.T = maxTokens + 1 }), "t="},
		{"dv", wn(func(c *Case) { c.Dv = -1 }), "dv="},
		{"window<0", wn(func(c *Case) { c.Window = -1 }), "negative"},
		{"window+sparse fields", wn(func(c *Case) { c.Win = 4 }), "window family takes"},
		{"window too large", wn(func(c *Case) { c.T, c.D, c.H, c.Hkv = maxTokens, maxDim, 8, 8 }), "too large"},
		{"special tensor", wn(func(c *Case) { c.Specials = []Special{{Tensor: "o"}} }), "specials[0]"},
		{"special q range", wn(func(c *Case) { c.Specials = []Special{{Tensor: "q", Token: 3}} }), "outside"},
		{"special kv in window", wn(func(c *Case) { c.Specials = []Special{{Tensor: "kv"}} }), "sparse family"},
		{"special k in sparse", sp(func(c *Case) { c.Specials = []Special{{Tensor: "k"}} }), "window family"},
		{"special kv range", sp(func(c *Case) { c.Specials = []Special{{Tensor: "kv", Key: 4}} }), "outside"},
		{"special v range", wn(func(c *Case) { c.Specials = []Special{{Tensor: "v", Head: 2}} }), "outside"},
	} {
		err := tc.c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want an error containing %q", tc.name, err, tc.want)
			continue
		}
		if _, gerr := Generate(tc.c, num.BF16); gerr == nil {
			t.Errorf("%s: Generate accepted an invalid case", tc.name)
		}
		switch tc.name {
		case "scale NaN", "values scale", "sink scale":
			continue // JSON cannot carry these values (and Marshal panics on them)
		}
		if _, perr := Parse(tc.c.Marshal()); perr == nil && tc.name != "version" {
			t.Errorf("%s: Parse accepted an invalid case", tc.name)
		}
	}
}

func TestParseErrors(t *testing.T) {
	good := string(Case{Family: problem.Window, T: 1, H: 1, D: 1}.Marshal())
	for _, tc := range []struct{ in, want string }{
		{`{"family":"window","t":1,"h":1,"d":1,"colour":3}`, "unknown field"},
		{good + `{}`, "trailing data"},
		{`{"family":"window"`, "bad case JSON"},
		{`{"family":"window","t":1,"h":1,"d":1,"sink":{"kind":"const","value":"big"}}`, "bad float"},
		{`{"family":"window","t":1,"h":0,"d":1}`, "bad shape"},
	} {
		_, err := Parse([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "c.json")
	if err := os.WriteFile(p, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(p); err != nil || c.T != 1 {
		t.Errorf("Load: %+v, %v", c, err)
	}
	os.WriteFile(p, []byte(`{"family":"x"}`), 0o644)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("Load of a bad case: %v, want an error naming the file", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}
