// Package bundle reads and writes the tensor bundles that kernel teams dump
// from their test harnesses: safetensors files and numpy .npz archives.
//
// Reading never copies tensor data when it does not have to: a tensor's Data
// is a view into the byte slice given to Parse (safetensors, and .npz members
// that are stored little-endian and uncompressed). Deflated .npz members are
// decompressed once, and big-endian .npy data is converted to little-endian,
// each only within a memory limit (ParseLimit): no input, however small,
// can make parsing allocate more.
//
// Every input is validated; malformed bytes produce a one-line error that
// names the tensor (when there is one) and what is wrong, never a panic.
package bundle

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/x448/float16"

	"github.com/attnvet/attnvet/internal/atomicfile"
	"github.com/attnvet/attnvet/internal/quant"
	"github.com/attnvet/attnvet/internal/safeio"
)

// DType is a tensor element type, spelled as safetensors spells it.
type DType string

const (
	BF16 DType = "BF16"
	F16  DType = "F16"
	F32  DType = "F32"
	F64  DType = "F64"
	I32  DType = "I32"
	I64  DType = "I64"

	// One-byte dtypes (the quantized-KV issue; docs/interop.md "Quantized
	// inputs"). F8_E4M3 is OCP e4m3fn, F8_E5M2 OCP e5m2; both decode exactly
	// to float32. U8 and I8 are integers; a raw byte layout (FlashMLA's FP8
	// KV cache) is U8 or F8_E4M3 and is read through Data by its layout.
	F8E4M3 DType = "F8_E4M3"
	F8E5M2 DType = "F8_E5M2"
	U8     DType = "U8"
	I8     DType = "I8"
)

// ItemSize returns the size in bytes of one element, or 0 for an unknown dtype.
func (d DType) ItemSize() int {
	switch d {
	case F8E4M3, F8E5M2, U8, I8:
		return 1
	case BF16, F16:
		return 2
	case F32, I32:
		return 4
	case F64, I64:
		return 8
	}
	return 0
}

// IsFloat reports whether d is one of the floating-point dtypes.
func (d DType) IsFloat() bool {
	return d == BF16 || d == F16 || d == F32 || d == F64 || d == F8E4M3 || d == F8E5M2
}

// IsInt reports whether d is one of the integer dtypes.
func (d DType) IsInt() bool { return d == I32 || d == I64 || d == U8 || d == I8 }

// Valid reports whether d is a dtype this package supports.
func (d DType) Valid() bool { return d.ItemSize() != 0 }

// Tensor is one named n-dimensional array in row-major (C) order.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte // little-endian raw data; a view into the file's buffer when read (no second copy)
}

// Len returns the number of elements, the product of Shape (1 for a
// scalar). It returns -1 if Shape has a negative dimension or the product
// of its non-zero dimensions overflows int.
func (t *Tensor) Len() int {
	n, err := shapeLen(t.Shape)
	if err != nil {
		return -1
	}
	return n
}

// Validate checks that the tensor is consistent: a supported dtype, a valid
// shape and len(Data) == Len()*ItemSize.
func (t *Tensor) Validate() error {
	_, err := t.check()
	return err
}

// check validates t and returns its element count.
func (t *Tensor) check() (int, error) {
	if !t.DType.Valid() {
		return 0, tensorErrorf(t.Name, "unknown dtype %q", string(t.DType))
	}
	n, err := shapeLen(t.Shape)
	if err != nil {
		return 0, tensorErrorf(t.Name, "%v", err)
	}
	size, ok := mulInt(n, t.DType.ItemSize())
	if !ok {
		return 0, tensorErrorf(t.Name, "shape %v of %s is too large", t.Shape, t.DType)
	}
	if len(t.Data) != size {
		return 0, tensorErrorf(t.Name, "data is %d bytes, want %d for shape %v of %s", len(t.Data), size, t.Shape, t.DType)
	}
	return n, nil
}

// Float32s decodes the tensor as float32 values. BF16, F16, F32, F8_E4M3
// and F8_E5M2 decode exactly (e4m3fn's NaN codes to NaN); F64 decodes only if every value is exactly representable in
// float32 (NaN counts as representable). Integer dtypes are an error.
func (t *Tensor) Float32s() ([]float32, error) {
	n, err := t.check()
	if err != nil {
		return nil, err
	}
	out := make([]float32, n)
	d := t.Data
	switch t.DType {
	case BF16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(d[2*i:])) << 16)
		}
	case F16:
		for i := range out {
			out[i] = float16.Frombits(binary.LittleEndian.Uint16(d[2*i:])).Float32()
		}
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(d[4*i:]))
		}
	case F8E4M3:
		for i := range out {
			out[i] = quant.E4M3ToF32(d[i])
		}
	case F8E5M2:
		for i := range out {
			out[i] = quant.E5M2ToF32(d[i])
		}
	case F64:
		for i := range out {
			v := math.Float64frombits(binary.LittleEndian.Uint64(d[8*i:]))
			f := float32(v)
			if float64(f) != v && !math.IsNaN(v) {
				return nil, tensorErrorf(t.Name, "value %s at index %d not representable in float32", fmtFloat(v), i)
			}
			out[i] = f
		}
	default:
		return nil, tensorErrorf(t.Name, "dtype %s, want a float type", t.DType)
	}
	return out, nil
}

// Float64s decodes any float dtype exactly. Integer dtypes are an error.
func (t *Tensor) Float64s() ([]float64, error) {
	if t.DType == F64 {
		n, err := t.check()
		if err != nil {
			return nil, err
		}
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:]))
		}
		return out, nil
	}
	if !t.DType.IsFloat() {
		if t.DType.Valid() {
			return nil, tensorErrorf(t.Name, "dtype %s, want a float type", t.DType)
		}
		return nil, tensorErrorf(t.Name, "unknown dtype %q", string(t.DType))
	}
	f, err := t.Float32s()
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(f))
	for i, v := range f {
		out[i] = float64(v)
	}
	return out, nil
}

// Int32s decodes I32, and I64 when every value fits in int32. Float dtypes
// are an error.
func (t *Tensor) Int32s() ([]int32, error) {
	wide, err := t.Int64s()
	if err != nil {
		return nil, err
	}
	out := make([]int32, len(wide))
	for i, v := range wide {
		if v < math.MinInt32 || v > math.MaxInt32 {
			return nil, tensorErrorf(t.Name, "value %d at index %d does not fit in int32", v, i)
		}
		out[i] = int32(v)
	}
	return out, nil
}

// Int64s decodes I32 or I64. Float dtypes are an error.
func (t *Tensor) Int64s() ([]int64, error) {
	if !t.DType.IsInt() {
		if t.DType.Valid() {
			return nil, tensorErrorf(t.Name, "dtype %s, want an integer type", t.DType)
		}
		return nil, tensorErrorf(t.Name, "unknown dtype %q", string(t.DType))
	}
	n, err := t.check()
	if err != nil {
		return nil, err
	}
	out := make([]int64, n)
	for i := range out {
		switch t.DType {
		case U8:
			out[i] = int64(t.Data[i])
		case I8:
			out[i] = int64(int8(t.Data[i]))
		case I32:
			out[i] = int64(int32(binary.LittleEndian.Uint32(t.Data[4*i:])))
		default:
			out[i] = int64(binary.LittleEndian.Uint64(t.Data[8*i:]))
		}
	}
	return out, nil
}

// NewFloat32 encodes vals into a tensor of dtype dt (BF16, F16, F32 or F64).
// BF16 and F16 must be exact: a value that would round is an error naming its
// index. NaN is always accepted (encoded as a quiet NaN with the same sign).
func NewFloat32(name string, dt DType, shape []int, vals []float32) (*Tensor, error) {
	if !dt.IsFloat() {
		if dt.Valid() {
			return nil, tensorErrorf(name, "cannot encode float32 values as %s", dt)
		}
		return nil, tensorErrorf(name, "unknown dtype %q", string(dt))
	}
	if err := checkValsLen(name, shape, len(vals)); err != nil {
		return nil, err
	}
	size := dt.ItemSize()
	data := make([]byte, len(vals)*size)
	for i, v := range vals {
		bits := math.Float32bits(v)
		nan := v != v
		switch dt {
		case BF16:
			h := uint16(bits >> 16)
			if nan {
				h |= 0x0040 // keep it a NaN (quiet) even if its payload was only in the low bits
			} else if bits&0xffff != 0 {
				return nil, tensorErrorf(name, "value %s at index %d not representable in BF16", fmtFloat(float64(v)), i)
			}
			binary.LittleEndian.PutUint16(data[2*i:], h)
		case F16:
			h := float16.Fromfloat32(v)
			if !nan && math.Float32bits(h.Float32()) != bits {
				return nil, tensorErrorf(name, "value %s at index %d not representable in F16", fmtFloat(float64(v)), i)
			}
			binary.LittleEndian.PutUint16(data[2*i:], h.Bits())
		case F32:
			binary.LittleEndian.PutUint32(data[4*i:], bits)
		case F64:
			binary.LittleEndian.PutUint64(data[8*i:], math.Float64bits(float64(v)))
		case F8E4M3, F8E5M2:
			c, back := quant.E4M3FromF32(v, quant.NoSaturate), quant.E4M3ToF32
			if dt == F8E5M2 {
				c, back = quant.E5M2FromF32(v, quant.NoSaturate), quant.E5M2ToF32
			}
			if !nan && math.Float32bits(back(c)) != bits {
				return nil, tensorErrorf(name, "value %s at index %d not representable in %s", fmtFloat(float64(v)), i, dt)
			}
			data[i] = c
		}
	}
	return &Tensor{Name: name, DType: dt, Shape: cloneShape(shape), Data: data}, nil
}

// NewBytes wraps raw one-byte elements (U8, I8, F8_E4M3, F8_E5M2: codes as
// stored) as a tensor; data is copied.
func NewBytes(name string, dt DType, shape []int, data []byte) (*Tensor, error) {
	if dt.ItemSize() != 1 {
		return nil, tensorErrorf(name, "NewBytes takes a one-byte dtype, not %s", dt)
	}
	if err := checkValsLen(name, shape, len(data)); err != nil {
		return nil, err
	}
	return &Tensor{Name: name, DType: dt, Shape: cloneShape(shape), Data: append([]byte(nil), data...)}, nil
}

// NewFloat64 encodes vals as an F64 tensor. A tensor whose len(vals) does not
// match shape is reported by Validate and by the writers.
func NewFloat64(name string, shape []int, vals []float64) *Tensor {
	data := make([]byte, 8*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint64(data[8*i:], math.Float64bits(v))
	}
	return &Tensor{Name: name, DType: F64, Shape: cloneShape(shape), Data: data}
}

// NewInt32 encodes vals as an I32 tensor.
func NewInt32(name string, shape []int, vals []int32) *Tensor {
	data := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(data[4*i:], uint32(v))
	}
	return &Tensor{Name: name, DType: I32, Shape: cloneShape(shape), Data: data}
}

// NewInt64 encodes vals as an I64 tensor.
func NewInt64(name string, shape []int, vals []int64) *Tensor {
	data := make([]byte, 8*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint64(data[8*i:], uint64(v))
	}
	return &Tensor{Name: name, DType: I64, Shape: cloneShape(shape), Data: data}
}

// File is a bundle of named tensors plus string metadata.
type File struct {
	Tensors  map[string]*Tensor
	Order    []string          // tensor names in file order (writers always write sorted names)
	Metadata map[string]string // safetensors __metadata__; always empty for .npz
}

// NewFile returns an empty bundle.
func NewFile() *File {
	return &File{Tensors: map[string]*Tensor{}, Metadata: map[string]string{}}
}

// Add adds t, replacing any tensor of the same name (which keeps its place
// in Order).
func (f *File) Add(t *Tensor) {
	if t == nil {
		return
	}
	if f.Tensors == nil {
		f.Tensors = map[string]*Tensor{}
	}
	if f.Metadata == nil {
		f.Metadata = map[string]string{}
	}
	if _, ok := f.Tensors[t.Name]; !ok {
		f.Order = append(f.Order, t.Name)
	}
	f.Tensors[t.Name] = t
}

// Parse sniffs the format: a zip archive (.npz) starts with "PK\x03\x04"
// (or "PK\x05\x06" when empty); anything else is read as safetensors.
// It allocates at most safeio.DefaultLimit bytes, b included (ParseLimit).
func Parse(b []byte) (*File, error) { return ParseLimit(b, safeio.DefaultLimit) }

// ParseLimit is Parse with a memory limit: b plus what parsing allocates
// (decompressed .npz members, byte-swapped big-endian data, the decoded
// header) must fit in limit bytes, or it returns a *safeio.LimitError
// before allocating.
func ParseLimit(b []byte, limit int64) (*File, error) {
	m := &budget{limit: limit, used: int64(len(b))}
	if isZip(b) {
		return parseNpz(b, m)
	}
	return parseSafetensors(b, m)
}

// budget counts the bytes parsing allocates.
type budget struct{ limit, used int64 }

// take reserves n bytes for what, or returns a *safeio.LimitError.
func (m *budget) take(what string, n int64) error {
	if m == nil {
		return nil
	}
	if n < 0 || n > m.limit-m.used {
		need := m.used + n
		if n < 0 || need < m.used {
			need = math.MaxInt64
		}
		return safeio.Check(what, need, m.limit)
	}
	m.used += n
	return nil
}

func isZip(b []byte) bool {
	return bytes.HasPrefix(b, []byte("PK\x03\x04")) || bytes.HasPrefix(b, []byte("PK\x05\x06"))
}

// ReadFile reads path once and parses it, within safeio.DefaultLimit
// bytes. Tensor data views the bytes read. Errors are prefixed with the
// path.
func ReadFile(path string) (*File, error) { return ReadFileLimit(path, safeio.DefaultLimit) }

// ReadFileLimit is ReadFile with a memory limit on the file's bytes and
// what parsing them allocates (ParseLimit). path must be a regular file:
// a FIFO, device or directory is refused without blocking (safeio.Open).
func ReadFileLimit(path string, limit int64) (*File, error) {
	b, err := safeio.ReadFile(path, limit)
	if err != nil {
		return nil, err // already names the path
	}
	f, err := ParseLimit(b, limit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", safeio.Printable(path), err)
	}
	return f, nil
}

// WriteFileAtomic writes path through write, into a temporary file in the
// same directory that is synced and then renamed over path, so readers see
// either the old file or the complete new one. The file mode is 0644.
func WriteFileAtomic(path string, write func(io.Writer) error) error {
	return atomicfile.WriteFunc(path, write)
}

// ---- helpers ----

// shapeLen returns the product of shape, checking for negative dimensions
// and overflow. The product of the non-zero dimensions must fit in an int
// even when a zero makes the tensor empty: code that multiplies some of
// the dimensions (a block size by a width) must not overflow either.
func shapeLen(shape []int) (int, error) {
	n := 1
	zero := false
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d at axis %d of shape %v", d, i, shape)
		}
		if d == 0 {
			zero = true
			continue
		}
		var ok bool
		if n, ok = mulInt(n, d); !ok {
			return 0, fmt.Errorf("shape %v overflows: the product of its dimensions is too large", shape)
		}
	}
	if zero {
		return 0, nil
	}
	return n, nil
}

// mulInt multiplies two non-negative ints, reporting overflow.
func mulInt(a, b int) (int, bool) {
	if a < 0 || b < 0 {
		return 0, false
	}
	if a == 0 || b == 0 {
		return 0, true
	}
	if a > math.MaxInt/b {
		return 0, false
	}
	return a * b, true
}

func checkValsLen(name string, shape []int, n int) error {
	want, err := shapeLen(shape)
	if err != nil {
		return tensorErrorf(name, "%v", err)
	}
	if want != n {
		return tensorErrorf(name, "%d values for shape %v, want %d", n, shape, want)
	}
	return nil
}

func cloneShape(s []int) []int {
	out := make([]int, len(s))
	copy(out, s)
	return out
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// displayName renders a tensor name for an error message: bare when it is
// plain printable text, quoted (so the message stays one line) otherwise.
func displayName(name string) string {
	q := strconv.Quote(name)
	if name != "" && q[1:len(q)-1] == name && !strings.ContainsAny(name, " :") {
		return name
	}
	return q
}

func tensorErrorf(name, format string, args ...any) error {
	return fmt.Errorf("tensor %s: "+format, append([]any{displayName(name)}, args...)...)
}

// checkName validates a tensor name for writing. safetensors needs names
// that are valid UTF-8 (JSON strings); zip names may be any bytes.
func checkName(key string, t *Tensor, utf8Only bool) error {
	if t == nil {
		return fmt.Errorf("tensor %s: nil tensor", displayName(key))
	}
	if t.Name != key {
		return fmt.Errorf("tensor %s: stored under map key %s", displayName(t.Name), displayName(key))
	}
	if key == "" {
		return fmt.Errorf("tensor \"\": empty tensor name")
	}
	if utf8Only && !utf8.ValidString(key) {
		return tensorErrorf(key, "name is not valid UTF-8")
	}
	return nil
}
