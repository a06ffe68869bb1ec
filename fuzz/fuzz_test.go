package fuzz

// Native fuzz targets. Run one with
//
//	go test ./fuzz -run '^$' -fuzz '^FuzzDifferential$' -fuzztime 60s
//
// or all of them with scripts/fuzz.sh. Seeds come from corpus/ (set
// ATTNVET_FUZZ_NOCORPUS=1 to start from one plain case instead). With
// ATTNVET_FUZZ_INJECT=pr301 the stream kernels carry PR #301's defect (the
// undefined final state at n == 1), to show the targets find it.

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/attnvet/attnvet/corpus"
	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/props"
)

// pr301Hooks: with exactly one key, PR #301's fused stream kernel leaves
// (m, l, o) unbound, so a row keeps the previous head's output (head h−1 of
// the same token), or zeros for the first head of a KV group.
func pr301Hooks(cfg impl.Config) *impl.Hooks {
	if cfg.Kind != impl.Stream {
		return nil
	}
	var mu sync.Mutex
	last := map[[2]int][]float32{}
	return &impl.Hooks{Row: func(in *problem.Inputs, t, h int, keys []problem.Key, pre []float32) {
		mu.Lock()
		defer mu.Unlock()
		if len(keys) == 1 {
			if prev, ok := last[[2]int{t, h - 1}]; ok && h%(in.H/in.Hkv) != 0 {
				copy(pre, prev)
			} else {
				clear(pre)
			}
		}
		last[[2]int{t, h}] = slices.Clone(pre)
	}}
}

func checker(tb testing.TB) *props.Checker {
	switch v := os.Getenv("ATTNVET_FUZZ_INJECT"); v {
	case "":
		return &props.Checker{}
	case "pr301":
		return &props.Checker{Hooks: pr301Hooks}
	default:
		tb.Fatalf("ATTNVET_FUZZ_INJECT=%q: known defects are pr301", v)
		return nil
	}
}

// plainSeed is the seed used without the corpus: a sparse case whose rows
// all see 5 keys (no edge class of note).
func plainSeed() cases.Case {
	return cases.Case{Family: problem.Sparse, Seed: 1, H: 4, D: 8, B: 2, Win: 8, IdxTopK: 8, Seqused: []int{5, 5}}
}

// corpusCases is the corpus, or the plain seed with ATTNVET_FUZZ_NOCORPUS=1.
func corpusCases(tb testing.TB) []corpus.Named {
	if os.Getenv("ATTNVET_FUZZ_NOCORPUS") != "" {
		return []corpus.Named{{Name: "plain", Case: plainSeed()}}
	}
	cs, err := corpus.All()
	if err != nil {
		tb.Fatal(err)
	}
	return slices.DeleteFunc(cs, func(nc corpus.Named) bool { return !encodable(nc.Case) })
}

// encodable: the case survives Encode then Decode (every family; the
// others travel as their JSON, within MaxWork).
func encodable(c cases.Case) bool { return props.Work(c) <= MaxWork }

// encodableFamily: the families the byte layout itself states.
func encodableFamily(f problem.Family) bool { return f == problem.Sparse || f == problem.Window }

// fail shrinks the failing case and reports it with the commands that
// replay it.
func fail(t *testing.T, prop props.Property, ch *props.Checker, c cases.Case, err error) {
	t.Helper()
	check := func(d cases.Case) error {
		if prop.Adapt != nil {
			d = prop.Adapt(d)
		}
		return prop.Check(ch, d)
	}
	s := props.Shrink(c, func(d cases.Case) bool { return check(d) != nil }, 300)
	if prop.Adapt != nil {
		s = prop.Adapt(s)
	}
	env := ""
	if v := os.Getenv("ATTNVET_FUZZ_INJECT"); v != "" {
		env = "ATTNVET_PROPS_INJECT=" + v + " "
	}
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	cd := ""
	if root, err := filepath.Abs(".."); err == nil {
		cd = "cd " + quote(root) + " && "
	}
	t.Fatalf("%s: %v\ncase: %s\nshrunk case:\n%sshrunk failure: %v\nreplay: %s%sATTNVET_REPLAY=%s go test github.com/attnvet/attnvet/props -run '^TestProperties$/^%s$' -v",
		prop.Name, err, c, s.Marshal(), check(s), cd, env, quote(s.String()), prop.Name)
}

// FuzzDifferential decodes a case and checks every correct emulation
// against the reference under the rigorous bound (contract violations:
// reported, not judged).
func FuzzDifferential(f *testing.F) {
	for _, nc := range corpusCases(f) {
		f.Add(Encode(nc.Case))
	}
	for i := range Families { // the generator's cases of the other families, planted values
		for _, x := range []float32{0.5, -3, float32(math.Inf(1)), 65504} {
			f.Add(append([]byte{flagOther, 1}, familySeed(i, uint64(i+1), x)...))
		}
	}
	ch := checker(f)
	prop, _ := props.PropertyByName("differential")
	f.Fuzz(func(t *testing.T, b []byte) {
		c := Decode(b)
		if err := c.Validate(); err != nil {
			t.Fatalf("Decode made an invalid case (%v): %s", err, c)
		}
		sub := *ch
		if props.Work(c) > FullWork {
			sub.Configs = ch.Pick(c)
		}
		if err := sub.Check(c); err != nil {
			fail(t, prop, &sub, c, err)
		}
	})
}

// FullWork is the largest case FuzzDifferential checks on every correct
// emulation; beyond it, on the eight kernel shapes of one precision profile
// (chosen by the case seed), so that large inputs cost about as much as
// small ones.
const FullWork = 1 << 14

// FuzzMetamorphic decodes a case and checks the property the first byte
// selects (adapted to its precondition) on one precision profile.
func FuzzMetamorphic(f *testing.F) {
	ps := props.Properties()
	for i, nc := range corpusCases(f) {
		f.Add(append([]byte{byte(i)}, Encode(nc.Case)...))
	}
	ch := checker(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		p := ps[int(b[0])%len(ps)]
		c := Decode(b[1:])
		if p.Family != "" && c.Family != p.Family || p.Family == "" && !encodableFamily(c.Family) {
			return // "" is sparse and window: the metamorphic properties state those two
		}
		if p.Adapt != nil {
			c = p.Adapt(c)
		}
		if err := p.Check(ch, c); err != nil {
			fail(t, p, ch, c, err)
		}
	})
}

// formatInfo of the formats, written out independently of package num.
type formatInfo struct{ prec, emin, emax int }

var formatInfos = map[num.Format]formatInfo{num.BF16: {8, -126, 127}, num.FP16: {11, -14, 15}, num.FP32: {24, -126, 127}}

// refRound rounds x to format f with integer arithmetic: |x| = m·2^e with
// a 53-bit m, the quantum 2^q of the target binade (or of its subnormal
// range), n = m·2^(e−q) rounded by the remainder, overflow to ±Inf past
// the largest finite value.
func refRound(x float64, f num.Format, r num.Rounding) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) || x == 0 {
		return x
	}
	fi := formatInfos[f]
	frac, e := math.Frexp(math.Abs(x))
	m := uint64(math.Ldexp(frac, 53)) // in [2^52, 2^53)
	e -= 53
	q := max(e+52, fi.emin) - (fi.prec - 1)
	shift := q - e
	if shift <= 0 {
		return x // on the format's grid already (or beyond it: overflow below)
	}
	var n uint64
	if shift < 64 {
		n = m >> shift
		rem, half := m&(1<<shift-1), uint64(1)<<(shift-1)
		if rem > half || rem == half && (r == num.Away || n&1 == 1) {
			n++
		}
	}
	y := math.Ldexp(float64(n), q)
	if y > math.Ldexp(float64(uint64(1)<<fi.prec-1), fi.emax-fi.prec+1) {
		y = math.Inf(1)
	}
	return math.Copysign(y, x)
}

func overflowRef(x float64, f num.Format) float64 {
	fi := formatInfos[f]
	if math.Abs(x) > math.Ldexp(float64(uint64(1)<<fi.prec-1), fi.emax-fi.prec+1) {
		return math.Copysign(math.Inf(1), x)
	}
	return x
}

func same(a, b float64) bool {
	return (math.IsNaN(a) && math.IsNaN(b)) || (a == b && math.Signbit(a) == math.Signbit(b))
}

// FuzzFormats checks the number formats on raw bit patterns: rounding from
// float64 and float32 against refRound, the 16-bit encodings against the
// rounding, and that every 16-bit value survives a round trip.
func FuzzFormats(f *testing.F) {
	for _, x := range []float64{0, math.Copysign(0, -1), 1, -1.5, 65504, 65520, 0x1.fep127, 0x1p-24, 0x1p-25, 0x1.8p-25,
		0x1p-133, 0x1p-134, 0x1.0000000000001p-134, 1 + 0x1p-8, 1 + 0x1p-11 + 0x1p-40, math.MaxFloat32, math.Inf(1), math.NaN(), 5e-324} {
		f.Add(math.Float64bits(x))
	}
	f.Fuzz(func(t *testing.T, bits uint64) {
		x := math.Float64frombits(bits)
		x32 := math.Float32frombits(uint32(bits))
		h := uint16(bits)
		for _, ft := range []num.Format{num.BF16, num.FP16, num.FP32} {
			for _, r := range []num.Rounding{num.RNE, num.Away} {
				want := refRound(x, ft, r)
				if ft == num.FP32 && r == num.RNE {
					want = overflowRef(float64(float32(x)), ft) // the IEEE conversion
				}
				if got := num.Round64(ft, x, r); !same(got, want) {
					t.Fatalf("Round64(%v, %v (%#x), %v) = %v, want %v", ft, x, bits, r, got, want)
				}
				if ft == num.FP32 {
					continue
				}
				want32 := refRound(float64(x32), ft, r)
				got32 := num.Round32(ft, x32, r)
				if !same(float64(got32), want32) {
					t.Fatalf("Round32(%v, %v (%#x), %v) = %v, want %v", ft, x32, uint32(bits), r, got32, want32)
				}
				var enc float32
				var back uint16
				var y float32
				if ft == num.BF16 {
					enc, y = num.BF16ToF32(num.BF16FromF32(x32, r)), num.BF16ToF32(h)
					back = num.BF16FromF32(y, r)
				} else {
					enc, y = num.FP16ToF32(num.FP16FromF32(x32, r)), num.FP16ToF32(h)
					back = num.FP16FromF32(y, r)
				}
				if !same(float64(enc), want32) {
					t.Fatalf("%v encoding of %v (%v) decodes to %v, want %v", ft, x32, r, enc, want32)
				}
				if y == y && back != h {
					t.Fatalf("%v bits %#04x → %v → %#04x (%v)", ft, h, y, back, r)
				}
				if y != y && float64(num.Round32(ft, y, r)) == float64(num.Round32(ft, y, r)) {
					t.Fatalf("%v NaN bits %#04x did not stay NaN", ft, h)
				}
			}
		}
	})
}

// elems is the number of tensor elements c generates (pools included).
func elems(c cases.Case) int {
	if c.Family == problem.Window {
		hkv, dv := c.H, c.D
		if c.Hkv > 0 {
			hkv = c.Hkv
		}
		if c.Dv > 0 {
			dv = c.Dv
		}
		return c.T * (c.H*c.D + hkv*(c.D+dv))
	}
	bs := c.BlockSize
	if bs == 0 {
		bs = 16
	}
	maxU := slices.Max(append([]int{0}, c.Seqused...))
	blocks := c.B * ((c.Win+bs-1)/bs + (max(maxU-c.Win, 0)+bs-1)/bs)
	return c.Tokens()*(c.H*c.D+c.Win+c.IdxTopK) + blocks*bs*c.D
}

// FuzzCaseJSON feeds arbitrary bytes to cases.Parse: no panic; a parsed
// case is valid, its JSON is a fixed point of Marshal∘Parse, and small
// ones generate inputs without error.
func FuzzCaseJSON(f *testing.F) {
	for _, nc := range corpusCases(f) {
		f.Add(nc.Case.Marshal())
	}
	for _, s := range []string{``, `{}`, `null`, `[]`, `{"family":"sparse"}`, `{"family":"window","h":1,"d":1,"t":1} {}`,
		`{"family":"window","h":1,"d":1,"t":1,"sink":{"kind":"const","value":"nan"}}`,
		`{"family":"window","h":2,"d":1,"t":1,"hkv":3}`, `{"family":"sparse","h":1,"d":1,"b":1,"win":1,"seqused":[1],"extra":1}`,
		`{"family":"window","h":1,"d":1,"t":2,"specials":[{"tensor":"k","key":1,"value":"-minsub"}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := cases.Parse(b)
		if err != nil {
			return // an error, not a panic (its text may quote the input, newlines included)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid case: %v", err)
		}
		m := c.Marshal()
		c2, err := cases.Parse(m)
		if err != nil {
			t.Fatalf("Parse(Marshal(c)) failed: %v\n%s", err, m)
		}
		if m2 := c2.Marshal(); !bytes.Equal(m, m2) {
			t.Fatalf("Marshal is not a fixed point:\n%s\n%s", m, m2)
		}
		if elems(c) > 1<<18 || props.Work(c) > 1<<18 {
			return
		}
		for _, ft := range []num.Format{num.BF16, num.FP16, num.FP32} {
			in, err := cases.Generate(c, ft)
			if err != nil {
				t.Fatalf("a valid case failed to generate (%v): %v\n%s", ft, err, m)
			}
			in.Violations()
		}
		props.Classes(c)
	})
}

// TestDecodeRoundTrip: every corpus case survives Encode then Decode, so
// the fuzz seeds are the corpus.
func TestDecodeRoundTrip(t *testing.T) {
	cs, err := corpus.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, nc := range cs {
		if !encodable(nc.Case) {
			continue
		}
		want := nc.Case
		want.Description = ""
		if got := Decode(Encode(nc.Case)); got.String() != want.String() {
			t.Errorf("%s: Decode(Encode(c)) =\n%s\nwant\n%s", nc.Name, got, want)
		}
	}
}

// TestDecodeAnyBytes: random bytes always decode to a valid, bounded case.
func TestDecodeAnyBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		b := make([]byte, r.IntN(120))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		if i%3 == 0 && len(b) > 0 {
			b[0] &^= flagWindow // keep both families common
		}
		c := Decode(b)
		if err := c.Validate(); err != nil {
			t.Fatalf("Decode(%x) invalid: %v\n%s", b, err, c)
		}
		if w := props.Work(c); w > MaxWork {
			t.Fatalf("Decode(%x): work %d\n%s", b, w, c)
		}
	}
	if c := Decode(nil); c.Validate() != nil {
		t.Fatalf("Decode(nil) = %s: %v", c, c.Validate())
	}
}

// TestDecodeTail: the bytes after the header set the values, in order.
func TestDecodeTail(t *testing.T) {
	c := cases.Case{Family: problem.Window, Seed: 3, H: 1, D: 2, T: 2, DType: "fp16"}
	b := Encode(c)
	for _, h := range []uint16{0x3c00, 0x7bff, 0x0001, 0x8000, 0x7c00, 0x4000} { // 1, 65504, minsub, -0, +Inf, 2
		b = append(b, byte(h), byte(h>>8))
	}
	d := Decode(b)
	want := []cases.Special{
		{Tensor: "q", Value: cases.F(1)}, {Tensor: "q", Dim: 1, Value: cases.F(65504)},
		{Tensor: "q", Token: 1, Value: cases.F(0x1p-24)}, {Tensor: "q", Token: 1, Dim: 1, Value: cases.F(math.Copysign(0, -1))},
		{Tensor: "k", Value: cases.F(math.Inf(1))}, {Tensor: "k", Dim: 1, Value: cases.F(2)},
	}
	if got, w := fmt.Sprint(d.Specials), fmt.Sprint(want); got != w {
		t.Fatalf("tail specials\n%v\nwant\n%v", got, w)
	}
	in, err := cases.Generate(d, num.FP32)
	if err != nil {
		t.Fatal(err)
	}
	if in.Q[1] != 65504 || in.K[0] != float32(math.Inf(1)) {
		t.Fatalf("planted q %v k %v", in.Q, in.K)
	}
}

func TestRefRound(t *testing.T) {
	tests := []struct {
		x    float64
		f    num.Format
		r    num.Rounding
		want float64
	}{
		{1 + 0x1p-8, num.BF16, num.RNE, 1},                 // tie to even
		{1 + 0x1p-8, num.BF16, num.Away, 1 + 0x1p-7},       // tie away
		{1 + 3*0x1p-8, num.BF16, num.RNE, 1 + 0x1p-6},      // tie to even, upward
		{65520, num.FP16, num.RNE, math.Inf(1)},            // overflow at the midpoint
		{65519.99, num.FP16, num.RNE, 65504},               //
		{0x1p-25, num.FP16, num.RNE, 0},                    // half the smallest subnormal: to even (0)
		{0x1p-25, num.FP16, num.Away, 0x1p-24},             //
		{-0x1.8p-25, num.FP16, num.RNE, -0x1p-24},          //
		{0x1p-26, num.FP16, num.Away, 0},                   //
		{0x1p-134, num.BF16, num.Away, 0x1p-133},           //
		{0x1p-1000, num.BF16, num.Away, 0},                 //
		{math.MaxFloat64, num.FP32, num.Away, math.Inf(1)}, //
		{-0x1.fffffefffffffp127, num.FP32, num.Away, -0x1.fffffep127},
	}
	for _, tc := range tests {
		if got := refRound(tc.x, tc.f, tc.r); !same(got, tc.want) {
			t.Errorf("refRound(%v, %v, %v) = %v, want %v", tc.x, tc.f, tc.r, got, tc.want)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	ins := make([][]byte, 256)
	for i := range ins {
		ins[i] = make([]byte, 16+r.IntN(200))
		for j := range ins[i] {
			ins[i][j] = byte(r.Uint32())
		}
	}
	for i := 0; b.Loop(); i++ {
		Decode(ins[i%len(ins)])
	}
}

// TestDecodeOtherFamilies: the other-family mode reaches every family
// through the generator, and a case's JSON comes back as itself.
func TestDecodeOtherFamilies(t *testing.T) {
	for i, fam := range Families {
		seen := false
		for seed := range 20 {
			c := Decode([]byte{flagOther, 1, byte(i), byte(seed), byte(seed * 7)})
			if err := c.Validate(); err != nil || props.Work(c) > MaxWork {
				t.Fatalf("%s seed %d: %v, work %d\n%s", fam, seed, err, props.Work(c), c)
			}
			seen = seen || c.Family == fam
		}
		if !seen {
			t.Errorf("%s: never generated", fam)
		}
	}
	c := props.CaseAt(3, 5, problem.MLA)
	if got := Decode(Encode(c)); got.String() != c.String() {
		t.Errorf("Decode(Encode(mla case)) =\n%s\nwant\n%s", got, c)
	}
	if got := Decode([]byte{flagOther, 0, '{'}); got.String() != fallback().String() {
		t.Errorf("broken JSON decodes to %s, want the fallback", got)
	}
}
