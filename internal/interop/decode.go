package interop

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
)

// Bundle is a decoded bundle: the problem, the declared profile and, if
// the bundle holds one, the kernel's output.
type Bundle struct {
	Inputs  *problem.Inputs
	Profile profile.Profile
	O       []float32 // [T][H][Dv]; nil when the bundle has no o
	// LSE is the kernel's lse per row t·H + h (dense softmax_lse, in the
	// declared convention Inputs.LSE); nil when the bundle has none.
	LSE []float32
	// MaxLogit is the kernel's max_logit per row t·H + h (mla max_logits,
	// in the declared convention Inputs.MaxLogit); nil when the bundle has
	// none.
	MaxLogit []float32
	// Meta is the effective metadata (the file's, then the overrides).
	Meta map[string]string
	// Warnings are things ignored: unknown tensors and metadata keys,
	// keys that do not apply to the family.
	Warnings []string
}

// Decode interprets f under the contract. override holds metadata that
// replaces the file's (command-line flags; the only metadata of an .npz).
// Every error names the tensor or metadata key at fault and what is wrong.
// Contract violations of well-formed inputs (problem.Inputs.Violations)
// are not errors here; the caller lists them.
func Decode(f *bundle.File, override map[string]string) (*Bundle, error) {
	meta := mergedMeta(f, override)
	d := &decoder{f: f, meta: meta, used: map[string]bool{}}
	if _, ok := meta[KeyLayout]; ok {
		fam, err := d.family()
		if err != nil {
			return nil, err
		}
		if d.f, err = withLayout(f, meta, fam); err != nil {
			return nil, err
		}
	}
	b, err := d.decode()
	if err != nil {
		return nil, err
	}
	b.Meta = meta
	for _, n := range f.Order {
		if !d.used[n] {
			b.Warnings = append(b.Warnings, fmt.Sprintf("tensor %s is not part of the %s family's contract; ignored", n, b.Inputs.Family))
		}
	}
	for _, k := range sortedKeys(meta) {
		if !KnownKey(k) {
			b.Warnings = append(b.Warnings, fmt.Sprintf("metadata %s is not part of the contract; ignored", k))
		}
	}
	if c := codecs[b.Inputs.Family]; c != nil {
		for _, k := range c.foreignKeys {
			if _, ok := meta[k]; ok {
				b.Warnings = append(b.Warnings, fmt.Sprintf("metadata %s applies to the sparse family only; ignored", k))
			}
		}
	}
	return b, nil
}

// mergedMeta is f's metadata with override's keys replacing its own.
func mergedMeta(f *bundle.File, override map[string]string) map[string]string {
	meta := map[string]string{}
	for k, v := range f.Metadata {
		meta[k] = v
	}
	for k, v := range override {
		meta[k] = v
	}
	return meta
}

type decoder struct {
	f    *bundle.File
	meta map[string]string
	used map[string]bool
}

// tensor returns the named tensor (nil if absent and optional), checking
// its rank against the accepted ranks.
func (d *decoder) tensor(name string, required bool, dims string, ranks ...int) (*bundle.Tensor, error) {
	t := d.f.Tensors[name]
	if t == nil {
		if required {
			return nil, fmt.Errorf("tensor %s: missing (want %s)", name, dims)
		}
		return nil, nil
	}
	d.used[name] = true
	if err := t.Validate(); err != nil {
		return nil, err
	}
	for _, r := range ranks {
		if len(t.Shape) == r {
			return t, nil
		}
	}
	return nil, fmt.Errorf("tensor %s: shape %v, want %s", name, t.Shape, dims)
}

// floats decodes a float tensor whose values must be representable in f.
func (d *decoder) floats(t *bundle.Tensor, f num.Format, why string) ([]float32, error) {
	if !t.DType.IsFloat() {
		return nil, fmt.Errorf("tensor %s: dtype %s, want a float dtype", t.Name, t.DType)
	}
	v, err := t.Float32s()
	if err != nil {
		return nil, err
	}
	if f != num.FP32 && f != num.FP64 {
		for i, x := range v {
			if x == x && num.Round32(f, x, num.RNE) != x {
				return nil, fmt.Errorf("tensor %s: value %s at %s is not representable in %s (%s); store values of that format, or declare the format they have",
					t.Name, strconv.FormatFloat(float64(x), 'g', -1, 32), elemIndex(t.Shape, i), f, why)
			}
		}
	}
	return v, nil
}

// ints decodes an integer tensor. Float dtypes are accepted when every
// value is an integer in int32 range (numpy's float default), so that a
// NaN or 2.5 is reported by position.
func (d *decoder) ints(t *bundle.Tensor) ([]int32, error) {
	if t.DType.IsInt() {
		return t.Int32s()
	}
	v, err := t.Float64s()
	if err != nil {
		return nil, err
	}
	out := make([]int32, len(v))
	for i, x := range v {
		if x != math.Trunc(x) || x < math.MinInt32 || x > math.MaxInt32 { // NaN and ±Inf fail the first test
			return nil, fmt.Errorf("tensor %s: value %s at %s is not an int32 (an integer-only field, stored as %s)",
				t.Name, strconv.FormatFloat(x, 'g', -1, 64), elemIndex(t.Shape, i), t.DType)
		}
		out[i] = int32(x)
	}
	return out, nil
}

func (d *decoder) intMeta(key string, def int, min int) (int, bool, error) {
	s, ok := d.meta[key]
	if !ok {
		return def, false, nil
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, true, metaErr(key, "%q is not an integer", s)
	}
	if v < min {
		return 0, true, metaErr(key, "%d, want at least %d", v, min)
	}
	return v, true, nil
}

func (d *decoder) family() (problem.Family, error) {
	if s, ok := d.meta[KeyFamily]; ok {
		f, err := problem.ParseFamily(strings.ToLower(strings.TrimSpace(s)))
		if err != nil {
			return "", metaErr(KeyFamily, "%q, want %s", s, problem.FamilyNames())
		}
		return f, nil
	}
	if f := sniffed(d.f.Tensors); f != "" {
		return f, nil
	}
	_, sp := d.f.Tensors[TOriKV]
	_, wk := d.f.Tensors[TK]
	if sp && wk {
		return "", metaErr(KeyFamily, "missing, and the bundle holds both ori_kv (sparse) and k (window); declare the family")
	}
	return "", metaErr(KeyFamily, "missing, and the bundle holds neither ori_kv (sparse) nor k (window)")
}

// defaultIn is the input format q's dtype implies.
func defaultFormat(dt bundle.DType) num.Format {
	switch dt {
	case bundle.BF16:
		return num.BF16
	case bundle.F16:
		return num.FP16
	}
	return num.FP32
}

func (d *decoder) decode() (*Bundle, error) {
	fam, err := d.family()
	if err != nil {
		return nil, err
	}
	c, err := codecOf(fam)
	if err != nil {
		return nil, err
	}
	if c.whole != nil {
		return c.whole(d)
	}
	qt, err := d.tensor(TQ, true, c.qDims, c.qRanks...)
	if err != nil {
		return nil, err
	}
	ot, err := d.tensor(c.out, false, "[T, H, Dv]", 3, 4)
	if err != nil {
		return nil, err
	}
	defOut := defaultFormat(qt.DType)
	if ot != nil {
		defOut = defaultFormat(ot.DType)
	} else if n, ok := d.meta[KeyProfile]; ok {
		if p, err := profile.Lookup(strings.TrimSpace(n)); err == nil {
			defOut = p.Out
		}
	}
	p, err := ResolveProfile(d.profileMeta(), defaultFormat(qt.DType), defOut) // fp8dense.go: in_dtype/p_dtype e4m3
	if err != nil {
		return nil, err
	}
	why := "the declared in_dtype"
	in := &problem.Inputs{Family: fam, Format: p.In}
	batch, sq := c.shapeQ(d, in, qt)
	if in.Q, err = d.floats(qt, p.In, why); err != nil {
		return nil, err
	}
	if in.H < 1 || in.D < 1 {
		return nil, fmt.Errorf("tensor q: shape %v, want [T, H, D] with H, D ≥ 1", qt.Shape)
	}
	err = c.body(d, in, p, qt, batch, sq)
	if err != nil {
		return nil, err
	}
	// Each tensor's shape fits (bundle checks it), but the code multiplies
	// dimensions of different tensors (T·H·Dv, BS·D): those must fit too.
	w := max(in.D, in.Dv)
	if !fitsInt(in.T, in.H, w) || !fitsInt(in.T, in.Hkv, w) || !fitsInt(in.BS, in.D) || !fitsInt(in.B, in.S) ||
		!fitsInt(in.B, max(in.MBori, in.MBcmp)) || !fitsInt(in.T, in.TopK) || !fitsInt(in.T, in.ExtraTopK) {
		return nil, fmt.Errorf("tensor shapes too large: T=%d H=%d Hkv=%d D=%d Dv=%d BS=%d B=%d S=%d TOPK=%d overflow when multiplied", in.T, in.H, in.Hkv, in.D, in.Dv, in.BS, in.B, in.S, in.TopK)
	}
	sinkName := c.sinkIn(d)
	st, err := d.tensor(sinkName, false, "[H]", 1)
	if err != nil {
		return nil, err
	}
	if st != nil {
		if st.Shape[0] != in.H {
			return nil, fmt.Errorf("tensor %s: shape %v, want [H] = [%d] (q has H=%d)", sinkName, st.Shape, in.H, in.H)
		}
		if in.Sink, err = d.floats(st, num.FP32, sinkName+" is fp32"); err != nil {
			return nil, err
		}
		in.HasSinkTensor = true
	}
	in.Scale = 1 / math.Sqrt(float64(in.D))
	if s, ok := d.meta[KeySoftmaxScale]; ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || !(v > 0) || math.IsInf(v, 0) {
			return nil, metaErr(KeySoftmaxScale, "%q is not a positive finite number", s)
		}
		in.Scale = v
	}
	b := &Bundle{Inputs: in, Profile: p}
	if c.outputs != nil {
		if err = c.outputs(d, b, p, batch, sq); err != nil {
			return nil, err
		}
	}
	if err := in.Check(); err != nil {
		return nil, err
	}
	if ot != nil && c.outputs == nil {
		want := []int{in.T, in.H, in.Dv}
		if !sameShape(ot.Shape, want) {
			return nil, fmt.Errorf("tensor o: shape %v, want [T, H, Dv] = %v", ot.Shape, want)
		}
		if b.O, err = d.floats(ot, p.Out, "the declared out_dtype"); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// pool decodes a paged KV pool [NB, BS, 1, D] or [NB, BS, D].
func (d *decoder) pool(t *bundle.Tensor, D int, p profile.Profile) (vals []float32, bs int, err error) {
	s := t.Shape
	if len(s) == 4 && s[2] != 1 {
		return nil, 0, fmt.Errorf("tensor %s: shape %v has %d KV heads; the sparse family has one ([NB, BS, 1, D])", t.Name, s, s[2])
	}
	if s[len(s)-1] != D {
		return nil, 0, fmt.Errorf("tensor %s: shape %v, last dimension must be q's D = %d", t.Name, s, D)
	}
	if s[1] < 1 {
		return nil, 0, fmt.Errorf("tensor %s: shape %v, block size BS (dimension 1) must be at least 1", t.Name, s)
	}
	vals, err = d.floats(t, p.In, "the declared in_dtype")
	return vals, s[1], err
}

// mulFits multiplies two non-negative ints, reporting overflow.
func mulFits(a, b int) (int, bool) {
	if a < 0 || b < 0 || b != 0 && a > math.MaxInt/b {
		return 0, false
	}
	return a * b, true
}

func fmtProduct(n int, ok bool) string {
	if !ok {
		return "too many (overflows)"
	}
	return strconv.Itoa(n)
}

// fitsInt reports whether the product of dims, with zeros taken as ones,
// fits in an int: whether any product of some of them does.
func fitsInt(dims ...int) bool {
	n := 1
	for _, d := range dims {
		var ok bool
		if n, ok = mulFits(n, max(d, 1)); !ok {
			return false
		}
	}
	return true
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// elemIndex spells flat index i of shape as "[i0, i1, …]".
func elemIndex(shape []int, i int) string {
	if len(shape) == 0 {
		return "[]"
	}
	ix := make([]string, len(shape))
	for a := len(shape) - 1; a >= 0; a-- {
		if shape[a] > 0 {
			ix[a] = strconv.Itoa(i % shape[a])
			i /= shape[a]
		} else {
			ix[a] = "0"
		}
	}
	return "[" + strings.Join(ix, ", ") + "]"
}
