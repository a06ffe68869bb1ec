package bundle

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// ---- builders for hand-made inputs ----

// rawSafetensors assembles a safetensors file from a header string and a
// data buffer, without any validation.
func rawSafetensors(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

// rawNpy assembles a version 1.0 .npy file from a header dict and data.
func rawNpy(header string, data []byte) []byte {
	b := append([]byte(npyMagic), 1, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

type member struct {
	name   string
	data   []byte
	method uint16
}

// rawZip builds a zip archive with the given members through archive/zip.
func rawZip(t testing.TB, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: m.name, Method: m.method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func npyF32(shape string, vals ...float32) []byte {
	data := make([]byte, 0, 4*len(vals))
	for _, v := range vals {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
	}
	return rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': "+shape+", }\n", data)
}

func mustF32(t testing.TB, name string, dt DType, shape []int, vals []float32) *Tensor {
	t.Helper()
	x, err := NewFloat32(name, dt, shape, vals)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func writeSafetensors(t testing.TB, f *File) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := f.WriteSafetensors(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeNpz(t testing.TB, f *File) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := f.WriteNpz(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// valuesFor returns 12 values of the given dtype, with special values for
// the float types.
func valuesFor(dt DType) []float32 {
	switch dt {
	case F16:
		return []float32{0, float32(math.Copysign(0, -1)), 1, -1, 0.5, 65504, -65504,
			float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 0x1p-14, -0x1p-24}
	case BF16:
		return []float32{0, float32(math.Copysign(0, -1)), 1, -1, 0.5, 0x1p127, -3.3895314e38,
			float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 0x1p-126, -0x1p-133}
	default:
		return []float32{0, float32(math.Copysign(0, -1)), 1, -1, 0.1, math.MaxFloat32, -math.SmallestNonzeroFloat32,
			float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 0x1p-126, 3.1415927}
	}
}

func makeTensor(t testing.TB, name string, dt DType, shape []int) *Tensor {
	t.Helper()
	n, err := shapeLen(shape)
	if err != nil {
		t.Fatal(err)
	}
	switch dt {
	case I32:
		vals := make([]int32, n)
		for i := range vals {
			vals[i] = int32(i*7919 - 40000)
		}
		if n > 1 {
			vals[0], vals[1] = math.MinInt32, math.MaxInt32
		}
		return NewInt32(name, shape, vals)
	case I64:
		vals := make([]int64, n)
		for i := range vals {
			vals[i] = int64(i)*1_000_000_007 - 3
		}
		if n > 1 {
			vals[0], vals[1] = math.MinInt64, math.MaxInt64
		}
		return NewInt64(name, shape, vals)
	}
	base := valuesFor(dt)
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = base[i%len(base)]
	}
	return mustF32(t, name, dt, shape, vals)
}

// sameBits32 reports whether two float slices hold the same values bit for
// bit, with any NaN matching any NaN of the same sign.
func sameBits32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != a[i] && b[i] != b[i] && math.Signbit(float64(a[i])) == math.Signbit(float64(b[i])) {
			continue
		}
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

var allDTypes = []DType{BF16, F16, F32, F64, I32, I64}

// ---- round trips ----

func TestRoundTrip(t *testing.T) {
	shapes := []struct {
		name  string
		shape []int
	}{
		{"scalar", []int{}},
		{"vector", []int{12}},
		{"matrix", []int{3, 4}},
		{"rank4", []int{2, 1, 3, 2}},
		{"empty", []int{0, 5}},
	}
	formats := []struct {
		name  string
		write func(testing.TB, *File) []byte
		parse func([]byte) (*File, error)
	}{
		{"safetensors", writeSafetensors, ParseSafetensors},
		{"npz", writeNpz, ParseNpz},
	}
	for _, format := range formats {
		for _, dt := range allDTypes {
			for _, sh := range shapes {
				t.Run(fmt.Sprintf("%s/%s/%s", format.name, dt, sh.name), func(t *testing.T) {
					orig := makeTensor(t, "x", dt, sh.shape)
					f := NewFile()
					f.Add(orig)
					b := format.write(t, f)
					// Parse (sniffing) must agree with the format-specific parser.
					for _, parse := range []func([]byte) (*File, error){format.parse, Parse} {
						g, err := parse(b)
						if err != nil {
							t.Fatal(err)
						}
						if !slices.Equal(g.Order, []string{"x"}) {
							t.Fatalf("Order = %q", g.Order)
						}
						got := g.Tensors["x"]
						wantDT := dt
						if format.name == "npz" && dt == BF16 {
							wantDT = F32 // numpy has no bfloat16: written exactly as <f4
						}
						if got.DType != wantDT || !slices.Equal(got.Shape, orig.Shape) || got.Shape == nil {
							t.Fatalf("got %s %v, want %s %v", got.DType, got.Shape, wantDT, orig.Shape)
						}
						if wantDT == dt && !bytes.Equal(got.Data, orig.Data) {
							t.Fatalf("data differs")
						}
						if dt.IsFloat() {
							a, err := orig.Float32s()
							if err != nil {
								t.Fatal(err)
							}
							c, err := got.Float32s()
							if err != nil {
								t.Fatal(err)
							}
							if !sameBits32(a, c) {
								t.Fatalf("values differ: %v vs %v", a, c)
							}
						}
					}
				})
			}
		}
	}
}

func TestMultiTensorAndMetadata(t *testing.T) {
	f := NewFile()
	f.Add(makeTensor(t, "v", F16, []int{3}))
	f.Add(makeTensor(t, "q", BF16, []int{2, 3}))
	f.Add(makeTensor(t, "lse", F32, []int{5}))
	f.Add(makeTensor(t, "seed", I64, []int{}))
	f.Add(makeTensor(t, "layer.0/k", F64, []int{1, 2}))
	f.Add(makeTensor(t, "idx", I32, []int{4}))
	f.Metadata["kernel"] = "flash_fwd <v2> & co"
	f.Metadata["causal"] = "true"
	f.Metadata["unicode"] = "µ±∞ \"quoted\"\n"
	f.Metadata[""] = "empty key"

	b1 := writeSafetensors(t, f)
	b2 := writeSafetensors(t, f)
	if !bytes.Equal(b1, b2) {
		t.Fatal("safetensors output is not deterministic")
	}
	n := binary.LittleEndian.Uint64(b1)
	if n%8 != 0 {
		t.Fatalf("header length %d not a multiple of 8", n)
	}
	g, err := ParseSafetensors(b1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g.Metadata, f.Metadata) {
		t.Fatalf("metadata = %q, want %q", g.Metadata, f.Metadata)
	}
	want := slices.Sorted(func(yield func(string) bool) {
		for k := range f.Tensors {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(g.Order, want) {
		t.Fatalf("Order = %q, want sorted %q", g.Order, want)
	}
	for name, x := range f.Tensors {
		y := g.Tensors[name]
		if y == nil || y.DType != x.DType || !slices.Equal(y.Shape, x.Shape) || !bytes.Equal(y.Data, x.Data) {
			t.Fatalf("tensor %s differs", name)
		}
		// Parsed data is a view into b1.
		if len(y.Data) > 0 {
			p := uintptr(unsafe.Pointer(&y.Data[0]))
			lo := uintptr(unsafe.Pointer(&b1[0]))
			if p < lo || p >= lo+uintptr(len(b1)) {
				t.Fatalf("tensor %s data is a copy, not a view", name)
			}
		}
	}

	z1, z2 := writeNpz(t, f), writeNpz(t, f)
	if !bytes.Equal(z1, z2) {
		t.Fatal("npz output is not deterministic")
	}
	h, err := ParseNpz(z1)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Metadata) != 0 {
		t.Fatalf("npz metadata = %q, want empty", h.Metadata)
	}
	if !slices.Equal(h.Order, want) {
		t.Fatalf("npz Order = %q", h.Order)
	}
	for name, y := range h.Tensors {
		if name == "q" {
			continue // BF16 → F32, checked in TestRoundTrip
		}
		if !bytes.Equal(y.Data, f.Tensors[name].Data) {
			t.Fatalf("npz tensor %s differs", name)
		}
		p := uintptr(unsafe.Pointer(&y.Data[0]))
		lo := uintptr(unsafe.Pointer(&z1[0]))
		if p < lo || p >= lo+uintptr(len(z1)) {
			t.Fatalf("npz tensor %s data is a copy, not a view", name)
		}
	}
}

// TestSafetensorsLayout pins the exact bytes the writer produces.
func TestSafetensorsLayout(t *testing.T) {
	f := NewFile()
	f.Add(NewInt32("b", []int{1}, []int32{7}))
	f.Add(mustF32(t, "a", F32, []int{2}, []float32{1, 2}))
	f.Metadata["format"] = "pt"
	b := writeSafetensors(t, f)
	hdr := `{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}}`
	for len(hdr)%8 != 0 {
		hdr += " "
	}
	want := rawSafetensors(hdr, []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 7, 0, 0, 0})
	if !bytes.Equal(b, want) {
		t.Fatalf("got\n%q\nwant\n%q", b, want)
	}
	// No metadata: no __metadata__ entry at all.
	delete(f.Metadata, "format")
	if b := writeSafetensors(t, f); bytes.Contains(b, []byte("__metadata__")) {
		t.Fatalf("empty metadata written: %q", b)
	}
}

// TestNpyLayout pins the .npy header numpy would write.
func TestNpyLayout(t *testing.T) {
	for _, tc := range []struct {
		shape []int
		dict  string
	}{
		{[]int{}, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }"},
		{[]int{3}, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"},
		{[]int{2, 3}, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"},
	} {
		t.Run(pyShape(tc.shape), func(t *testing.T) {
			p := npyPrefix("<f4", tc.shape)
			if len(p)%64 != 0 || p[len(p)-1] != '\n' || string(p[:8]) != npyMagic+"\x01\x00" {
				t.Fatalf("bad prefix %q", p)
			}
			hdr := strings.TrimRight(string(p[10:]), " \n")
			if hdr != tc.dict {
				t.Fatalf("header %q, want %q", hdr, tc.dict)
			}
			if int(binary.LittleEndian.Uint16(p[8:])) != len(p)-10 {
				t.Fatal("bad header length")
			}
		})
	}
	// A header over 64 KiB switches to version 2.0.
	long := make([]int, 30000)
	for i := range long {
		long[i] = 1
	}
	p := npyPrefix("<f4", long)
	if p[6] != 2 || len(p)%64 != 0 || int(binary.LittleEndian.Uint32(p[8:])) != len(p)-12 {
		t.Fatalf("long header: version %d, len %d", p[6], len(p))
	}
	h, err := parseNpy("long", append(p, 0, 0, 0, 0), nil)
	if err != nil || len(h.Shape) != 30000 {
		t.Fatalf("parse long header: %v", err)
	}
}

// ---- accepted npy variants ----

func TestNpyVariants(t *testing.T) {
	le := []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40} // float32 1, 2
	be := []byte{0x3f, 0x80, 0, 0, 0x40, 0, 0, 0}
	cases := []struct {
		name   string
		npy    []byte
		dt     DType
		shape  []int
		values []float64
	}{
		{"plain", rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", le), F32, []int{2}, []float64{1, 2}},
		{"big-endian converted", rawNpy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n", be), F32, []int{2}, []float64{1, 2}},
		{"pipe byte order", rawNpy("{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }\n", le), F32, []int{2}, []float64{1, 2}},
		{"double quotes, no trailing comma, key order", rawNpy(`{"shape": (1, 2), "fortran_order": False, "descr": "<f4"}`, le), F32, []int{1, 2}, []float64{1, 2}},
		{"python2 long", rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }", le), F32, []int{2}, []float64{1, 2}},
		{"fortran 1-D", rawNpy("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", le), F32, []int{2}, []float64{1, 2}},
		{"fortran 2x1x1", rawNpy("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2, 1), }", le), F32, []int{1, 2, 1}, []float64{1, 2}},
		{"scalar", rawNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", binary.LittleEndian.AppendUint64(nil, math.Float64bits(-2.5))), F64, []int{}, []float64{-2.5}},
		{"f2", rawNpy("{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", []byte{0x00, 0x3c}), F16, []int{1}, []float64{1}},
		{"big-endian f2", rawNpy("{'descr': '>f2', 'fortran_order': False, 'shape': (1,), }", []byte{0xc0, 0x00}), F16, []int{1}, []float64{-2}},
		{"version 2", append(append([]byte(npyMagic+"\x02\x00"), binary.LittleEndian.AppendUint32(nil, 58)...), []byte("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n"+string(le))...), F32, []int{2}, []float64{1, 2}},
		{"version 3", append(append([]byte(npyMagic+"\x03\x00"), binary.LittleEndian.AppendUint32(nil, 58)...), []byte("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n"+string(le))...), F32, []int{2}, []float64{1, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, method := range []uint16{zip.Store, zip.Deflate} {
				f, err := Parse(rawZip(t, member{"x.npy", tc.npy, method}))
				if err != nil {
					t.Fatal(err)
				}
				x := f.Tensors["x"]
				if x.DType != tc.dt || !slices.Equal(x.Shape, tc.shape) {
					t.Fatalf("got %s %v", x.DType, x.Shape)
				}
				v, err := x.Float64s()
				if err != nil || !slices.Equal(v, tc.values) {
					t.Fatalf("values %v, %v", v, err)
				}
			}
		})
	}
	t.Run("big-endian ints", func(t *testing.T) {
		npy := rawNpy("{'descr': '>i8', 'fortran_order': False, 'shape': (1,), }", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe})
		f, err := ParseNpz(rawZip(t, member{"i.npy", npy, zip.Store}))
		if err != nil {
			t.Fatal(err)
		}
		if v, err := f.Tensors["i"].Int32s(); err != nil || v[0] != -2 {
			t.Fatalf("%v %v", v, err)
		}
	})
	t.Run("empty archive", func(t *testing.T) {
		f, err := Parse(rawZip(t))
		if err != nil || len(f.Tensors) != 0 {
			t.Fatalf("%v %v", f, err)
		}
	})
}

// ---- malformed inputs ----

func TestMalformed(t *testing.T) {
	f32x2 := make([]byte, 8)
	goodZip := func() []byte {
		f := NewFile()
		f.Add(makeTensor(t, "a", F32, []int{4, 4}))
		f.Add(makeTensor(t, "b", I64, []int{3}))
		return writeNpz(t, f)
	}()
	st := func(hdr string) []byte { return rawSafetensors(hdr, f32x2) }
	npz := func(npy []byte) []byte { return rawZip(t, member{"q.npy", npy, zip.Store}) }
	hdr := func(d string) []byte { return rawNpy(d, f32x2) }
	crcBad := bytes.Clone(goodZip)
	crcBad[bytes.Index(crcBad, []byte(npyMagic))+len(npyMagic)+2+2+70] ^= 1 // a byte of a's data
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		// safetensors
		{"empty file", nil, "too short for the 8-byte header length"},
		{"short file", []byte{1, 2, 3}, "too short"},
		{"truncated header", rawSafetensors(`{"q":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32x2)[:30], "exceeds file size"},
		{"header length beyond file", binary.LittleEndian.AppendUint64(nil, 1<<63), "header length 9223372036854775808 exceeds file size 8"},
		{"header length max uint64", binary.LittleEndian.AppendUint64(nil, math.MaxUint64), "exceeds file size"},
		{"empty header", st(""), "not valid JSON"},
		{"bad JSON", st(`{"q":{"dtype":"F32",`), "not valid JSON"},
		{"bad JSON token", st(`{"q" 5}`), "not valid JSON"},
		{"header not object", st(`[1,2]`), "header is not a JSON object"},
		{"trailing JSON", st(`{} {}`), "trailing data after header"},
		{"trailing garbage", st(`{} x`), "not valid JSON"},
		{"entry not object", st(`{"q":5}`), "tensor q: header entry is not a JSON object"},
		{"entry null", st(`{"q":null}`), "tensor q: header entry is not a JSON object"},
		{"missing dtype", st(`{"q":{"shape":[2],"data_offsets":[0,8]}}`), `tensor q: header entry has no "dtype"`},
		{"missing offsets", st(`{"q":{"dtype":"F32","shape":[2]}}`), `tensor q: header entry has no "data_offsets"`},
		{"dtype not string", st(`{"q":{"dtype":4,"shape":[2],"data_offsets":[0,8]}}`), "tensor q: dtype is not a string"},
		{"unknown dtype", st(`{"q":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}`), `tensor q: unknown dtype "Q7"`},
		{"unsupported dtype U16", st(`{"q":{"dtype":"U16","shape":[4],"data_offsets":[0,8]}}`), "tensor q: dtype U16 not supported"},
		{"unsupported dtype F8", st(`{"q":{"dtype":"F8_E8M0","shape":[8],"data_offsets":[0,8]}}`), "tensor q: dtype F8_E8M0 not supported"},
		{"lower-case dtype", st(`{"q":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}}`), `tensor q: unknown dtype "f32"`},
		{"offsets out of range", st(`{"q":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`), "tensor q: data_offsets [0, 16] out of range of the 8-byte data buffer"},
		{"negative offset", st(`{"q":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`), "tensor q: data_offsets [-4, 0] out of range"},
		{"reversed offsets", st(`{"q":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}`), "out of range"},
		{"huge offset", st(`{"q":{"dtype":"F32","shape":[1],"data_offsets":[0,99999999999999999999999]}}`), "tensor q: data_offsets: element 1 (99999999999999999999999) is out of range"},
		{"float offset", st(`{"q":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}}`), "tensor q: data_offsets: element 1 (8.0) is not an integer"},
		{"string offset", st(`{"q":{"dtype":"F32","shape":[2],"data_offsets":[0,"8"]}}`), "is not an integer"},
		{"three offsets", st(`{"q":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}`), "tensor q: data_offsets has 3 entries, want 2"},
		{"size mismatch", st(`{"q":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`), "tensor q: data_offsets [0, 8] span 8 bytes, but shape [3] of F32 needs 12"},
		{"negative dim", st(`{"q":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`), "tensor q: negative dimension -2 at axis 0"},
		{"negative dim with zero", st(`{"q":{"dtype":"F32","shape":[0,-2],"data_offsets":[0,0]}}`), "tensor q: negative dimension -2 at axis 1"},
		{"overflowing shape", st(`{"q":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`), "tensor q: shape [4294967296 4294967296] overflows"},
		{"overflowing bytes", st(`{"q":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}}`), "tensor q: shape [2305843009213693952] overflows"},
		{"float dim", st(`{"q":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}`), "tensor q: shape: element 0 (2.5) is not an integer"},
		{"shape not array", st(`{"q":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}`), "tensor q: shape: not a JSON array"},
		{"duplicate tensor", st(`{"q":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"q":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`), "tensor q: duplicate tensor name"},
		{"empty tensor name", st(`{"":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`), "empty tensor name"},
		{"metadata not strings", st(`{"__metadata__":{"a":1}}`), "__metadata__ must map strings to strings"},
		{"duplicate metadata", st(`{"__metadata__":{},"__metadata__":{}}`), "duplicate __metadata__"},
		{"odd name quoted", st(`{"a b\n":{"dtype":"X","shape":[2],"data_offsets":[0,8]}}`), `tensor "a b\n": unknown dtype "X"`},

		// npz / npy
		{"truncated zip", goodZip[:len(goodZip)/2], "npz: zip: not a valid zip file"},
		{"truncated zip end", goodZip[:len(goodZip)-1], "npz: zip: not a valid zip file"},
		{"zip checksum", crcBad, "tensor a: npz member: checksum mismatch"},
		{"not npy member", rawZip(t, member{"q.txt", nil, zip.Store}), `npz: member "q.txt" is not a .npy file`},
		{"empty member name", rawZip(t, member{".npy", nil, zip.Store}), "empty tensor name"},
		{"duplicate member", rawZip(t, member{"q.npy", npyF32("(1,)", 1), zip.Store}, member{"q.npy", npyF32("(1,)", 1), zip.Store}), "tensor q: duplicate member"},
		{"bad npy magic", npz([]byte("\x93NUMPZ\x01\x00\x00\x00")), `tensor q: bad npy magic "\x93NUMPZ"`},
		{"short member", npz([]byte("PK")), "tensor q: bad npy magic"},
		{"truncated npy", npz([]byte("\x93NUM")), "tensor q: npy file truncated (4 bytes)"},
		{"truncated npy prefix", npz([]byte("\x93NUMPY\x01\x00")), "tensor q: npy file truncated (8 bytes)"},
		{"npy version", npz([]byte("\x93NUMPY\x04\x00\x00\x00")), "tensor q: npy version 4.0 not supported"},
		{"npy header beyond file", npz([]byte("\x93NUMPY\x01\x00\xff\x00{}")), "tensor q: npy header length 255 extends past the end of the file"},
		{"npy v2 header beyond file", npz([]byte("\x93NUMPY\x02\x00\xff\xff\xff\xff{}")), "npy header length 4294967295 extends past"},
		{"fortran order", npz(hdr("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2, 2), }")), "tensor q: npy header: fortran_order=True not supported for shape (1, 2, 2)"},
		{"unsupported descr", npz(hdr("{'descr': '<u2', 'fortran_order': False, 'shape': (4,), }")), `tensor q: npy header: descr "<u2" not supported`},
		{"complex descr", npz(hdr("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }")), `descr "<c8" not supported`},
		{"structured descr", npz(hdr("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }")), "structured dtypes are not supported"},
		{"missing key", npz(hdr("{'descr': '<f4', 'fortran_order': False}")), `tensor q: npy header: missing key "shape"`},
		{"extra key", npz(hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}")), `unexpected key "x"`},
		{"duplicate key", npz(hdr("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}")), `duplicate key "descr"`},
		{"not a dict", npz(hdr("('descr', '<f4')")), "not a Python dict literal"},
		{"unclosed tuple", npz(hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (2, }")), "unexpected '}' at offset 54"},
		{"unclosed tuple no comma", npz(hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (2 }")), `expected ',' or ')', found '}'`},
		{"unclosed dict", npz(hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)")), "unexpected end of header"},
		{"unterminated string", npz(hdr("{'descr: '<f4'}")), "npy header:"},
		{"missing colon", npz(hdr("{'descr' '<f4'}")), `expected ':' after key "descr"`},
		{"trailing junk", npz(hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x")), "after the dictionary"},
		{"bare word", npz(hdr("{'descr': '<f4', 'fortran_order': false, 'shape': (2,)}")), "unexpected 'f'"},
		{"float dim", npz(hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,)}")), "only integers are allowed"},
		{"negative dim", npz(hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}")), "tensor q: npy header: negative dimension -2 at axis 0"},
		{"huge dim", npz(hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}")), "integer 99999999999999999999 out of range"},
		{"overflowing shape", npz(hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}")), "tensor q: npy header: shape [4294967296 4294967296] overflows"},
		{"overflowing bytes", npz(hdr("{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,)}")), "overflows: too many bytes"},
		{"shape not tuple", npz(hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (2)}")), "shape is not a tuple"},
		{"fortran not bool", npz(hdr("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}")), "fortran_order is not True or False"},
		{"deep nesting", npz(hdr("{'descr': " + strings.Repeat("(", 100))), "nested too deeply"},
		{"data too short", npz(hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}")), "tensor q: npy data is 8 bytes, want 12 for shape (3,) of F32"},
		{"data too long", npz(hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}")), "npy data is 8 bytes, want 4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(tc.in)
			if err == nil {
				t.Fatalf("parsed without error: %v", f.Order)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q does not contain %q", msg, tc.want)
			}
			if strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("error is not one line: %q", msg)
			}
		})
	}
}

// ---- conversions ----

// refF16 decodes binary16 bits independently of the float16 package.
func refF16(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	man := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(man, -24)
	case 0x1f:
		if man == 0 {
			return sign * math.Inf(1)
		}
		return math.NaN()
	}
	return sign * math.Ldexp(1024+man, exp-25)
}

func TestFloat32sExhaustive(t *testing.T) {
	for _, dt := range []DType{BF16, F16} {
		t.Run(string(dt), func(t *testing.T) {
			data := make([]byte, 2*65536)
			for i := range 65536 {
				binary.LittleEndian.PutUint16(data[2*i:], uint16(i))
			}
			x := &Tensor{Name: "all", DType: dt, Shape: []int{65536}, Data: data}
			vals, err := x.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			v64, err := x.Float64s()
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				var want float64
				if dt == BF16 {
					want = float64(math.Float32frombits(uint32(i) << 16))
				} else {
					want = refF16(uint16(i))
				}
				if math.IsNaN(want) {
					if v == v || v64[i] == v64[i] || math.Signbit(float64(v)) != (i&0x8000 != 0) {
						t.Fatalf("bits %#04x: got %v, want NaN with the same sign", i, v)
					}
					continue
				}
				if float64(v) != want || v64[i] != want || math.Signbit(float64(v)) != math.Signbit(want) {
					t.Fatalf("bits %#04x: got %v / %v, want %v", i, v, v64[i], want)
				}
			}
			// Re-encoding every decoded value must reproduce the bits (NaN
			// stays a NaN of the same sign).
			y, err := NewFloat32("all", dt, []int{65536}, vals)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 65536 {
				got := binary.LittleEndian.Uint16(y.Data[2*i:])
				if !math.IsNaN(float64(vals[i])) && got != uint16(i) {
					t.Fatalf("re-encoding %#04x gave %#04x", i, got)
				}
			}
		})
	}
}

func TestFloat32sSpecials(t *testing.T) {
	negZero := float32(math.Copysign(0, -1))
	cases := []struct {
		name string
		dt   DType
		bits []uint16
		want []float32
	}{
		{"bf16 zeros", BF16, []uint16{0x0000, 0x8000}, []float32{0, negZero}},
		{"bf16 inf", BF16, []uint16{0x7f80, 0xff80}, []float32{float32(math.Inf(1)), float32(math.Inf(-1))}},
		{"bf16 subnormal", BF16, []uint16{0x0001, 0x807f}, []float32{0x1p-133, -0x1.fcp-127}},
		{"bf16 max", BF16, []uint16{0x7f7f}, []float32{0x1.fep127}},
		{"f16 zeros", F16, []uint16{0x0000, 0x8000}, []float32{0, negZero}},
		{"f16 inf", F16, []uint16{0x7c00, 0xfc00}, []float32{float32(math.Inf(1)), float32(math.Inf(-1))}},
		{"f16 subnormal", F16, []uint16{0x0001, 0x83ff}, []float32{0x1p-24, -0x1.ff8p-15}},
		{"f16 max", F16, []uint16{0x7bff}, []float32{65504}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := make([]byte, 0)
			for _, b := range tc.bits {
				data = binary.LittleEndian.AppendUint16(data, b)
			}
			x := &Tensor{Name: "s", DType: tc.dt, Shape: []int{len(tc.bits)}, Data: data}
			got, err := x.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			if !sameBits32(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("nan", func(t *testing.T) {
		for _, tc := range []struct {
			dt   DType
			bits uint16
		}{{BF16, 0x7fc0}, {BF16, 0xffc1}, {BF16, 0x7f81}, {F16, 0x7e00}, {F16, 0xfc01}, {F16, 0x7c01}} {
			x := &Tensor{Name: "n", DType: tc.dt, Shape: []int{1}, Data: binary.LittleEndian.AppendUint16(nil, tc.bits)}
			got, err := x.Float32s()
			if err != nil || got[0] == got[0] || math.Signbit(float64(got[0])) != (tc.bits&0x8000 != 0) {
				t.Fatalf("%s %#04x: got %v, %v", tc.dt, tc.bits, got, err)
			}
		}
		// A float32 NaN whose payload is only in the low bits must stay a NaN in BF16 and F16.
		nan := math.Float32frombits(0x7f800001)
		for _, dt := range []DType{BF16, F16} {
			x, err := NewFloat32("n", dt, []int{1}, []float32{nan})
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := x.Float32s(); got[0] == got[0] {
				t.Fatalf("%s: NaN became %v", dt, got[0])
			}
		}
	})
}

func TestNewFloat32Errors(t *testing.T) {
	cases := []struct {
		name  string
		dt    DType
		shape []int
		vals  []float32
		want  string
	}{
		{"bf16 inexact", BF16, []int{3}, []float32{1, 2, 1 + 0x1p-10}, "tensor w: value 1.0009765625 at index 2 not representable in BF16"},
		{"f16 inexact", F16, []int{2}, []float32{1, 1.0 / 3}, "tensor w: value 0.3333333432674408 at index 1 not representable in F16"},
		{"f16 overflow", F16, []int{1}, []float32{65520}, "value 65520 at index 0 not representable in F16"},
		{"f16 underflow", F16, []int{1}, []float32{0x1p-26}, "at index 0 not representable in F16"},
		{"f16 subnormal inexact", F16, []int{1}, []float32{0x1.8p-24}, "at index 0 not representable in F16"},
		{"integer dtype", I32, []int{1}, []float32{1}, "tensor w: cannot encode float32 values as I32"},
		{"unknown dtype", "X", []int{1}, []float32{1}, `tensor w: unknown dtype "X"`},
		{"count mismatch", F32, []int{2, 2}, []float32{1}, "tensor w: 1 values for shape [2 2], want 4"},
		{"negative dim", F32, []int{-1}, nil, "tensor w: negative dimension -1"},
		{"overflow", F32, []int{1 << 40, 1 << 40}, nil, "overflows"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewFloat32("w", tc.dt, tc.shape, tc.vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestFloat32sFromF64(t *testing.T) {
	ok := []float64{0, math.Copysign(0, -1), 1.5, math.Inf(1), math.Inf(-1), math.NaN(), 0x1p-149, math.MaxFloat32, -0x1p-126}
	x := NewFloat64("d", []int{len(ok)}, ok)
	got, err := x.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range ok {
		if !(math.IsNaN(v) && got[i] != got[i]) && math.Float64bits(float64(got[i])) != math.Float64bits(v) {
			t.Fatalf("index %d: got %v want %v", i, got[i], v)
		}
	}
	for _, tc := range []struct {
		name string
		vals []float64
		want string
	}{
		{"inexact", []float64{1, 0.1}, "tensor d: value 0.1 at index 1 not representable in float32"},
		{"too large", []float64{1e39}, "value 1e+39 at index 0 not representable in float32"},
		{"too small", []float64{0x1p-150}, "at index 0 not representable in float32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewFloat64("d", []int{len(tc.vals)}, tc.vals).Float32s()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestIntegerConversions(t *testing.T) {
	t.Run("i64 in range", func(t *testing.T) {
		got, err := NewInt64("i", []int{3}, []int64{math.MinInt32, 0, math.MaxInt32}).Int32s()
		if err != nil || !slices.Equal(got, []int32{math.MinInt32, 0, math.MaxInt32}) {
			t.Fatalf("%v %v", got, err)
		}
	})
	t.Run("i32 widening", func(t *testing.T) {
		got, err := NewInt32("i", []int{2}, []int32{-5, 7}).Int64s()
		if err != nil || !slices.Equal(got, []int64{-5, 7}) {
			t.Fatalf("%v %v", got, err)
		}
	})
	f32 := mustF32(t, "f", F32, []int{1}, []float32{1})
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"i64 too large", func() error { _, err := NewInt64("i", []int{3}, []int64{1, 2, 1 << 31}).Int32s(); return err }, "tensor i: value 2147483648 at index 2 does not fit in int32"},
		{"i64 too small", func() error { _, err := NewInt64("i", []int{1}, []int64{math.MinInt32 - 1}).Int32s(); return err }, "value -2147483649 at index 0 does not fit in int32"},
		{"float as int32", func() error { _, err := f32.Int32s(); return err }, "tensor f: dtype F32, want an integer type"},
		{"float as int64", func() error { _, err := f32.Int64s(); return err }, "tensor f: dtype F32, want an integer type"},
		{"int as float32", func() error { _, err := NewInt32("i", []int{1}, []int32{1}).Float32s(); return err }, "tensor i: dtype I32, want a float type"},
		{"int as float64", func() error { _, err := NewInt64("i", []int{1}, []int64{1}).Float64s(); return err }, "tensor i: dtype I64, want a float type"},
		{"inconsistent data", func() error { _, err := NewInt32("i", []int{3}, []int32{1}).Int32s(); return err }, "tensor i: data is 4 bytes, want 12 for shape [3] of I32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// ---- writers ----

func TestWriterErrors(t *testing.T) {
	cases := []struct {
		name  string
		build func() *File
		want  string
	}{
		{"inconsistent tensor", func() *File {
			f := NewFile()
			f.Add(NewFloat64("x", []int{3}, []float64{1, 2}))
			return f
		}, "tensor x: data is 16 bytes, want 24"},
		{"unknown dtype", func() *File {
			f := NewFile()
			f.Add(&Tensor{Name: "x", DType: "U16", Shape: []int{1}, Data: []byte{1}})
			return f
		}, `tensor x: unknown dtype "U16"`},
		{"empty name", func() *File {
			f := NewFile()
			f.Add(NewInt32("", []int{1}, []int32{1}))
			return f
		}, "empty tensor name"},
		{"key mismatch", func() *File {
			f := NewFile()
			f.Tensors["a"] = NewInt32("b", []int{1}, []int32{1})
			return f
		}, "tensor b: stored under map key a"},
	}
	for _, tc := range cases {
		for _, format := range []string{"safetensors", "npz"} {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				f := tc.build()
				var err error
				if format == "npz" {
					err = f.WriteNpz(&bytes.Buffer{})
				} else {
					err = f.WriteSafetensors(&bytes.Buffer{})
				}
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want %q", err, tc.want)
				}
			})
		}
	}
	t.Run("reserved name/safetensors", func(t *testing.T) {
		f := NewFile()
		f.Add(NewInt32("__metadata__", []int{1}, []int32{1}))
		if err := f.WriteSafetensors(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "reserved") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestAdd(t *testing.T) {
	var f File
	f.Add(NewInt32("b", []int{1}, []int32{1}))
	f.Add(NewInt32("a", []int{1}, []int32{2}))
	f.Add(NewInt32("b", []int{1}, []int32{3}))
	f.Add(nil)
	if !slices.Equal(f.Order, []string{"b", "a"}) || len(f.Tensors) != 2 || f.Metadata == nil {
		t.Fatalf("Order %q, %d tensors", f.Order, len(f.Tensors))
	}
	if v, _ := f.Tensors["b"].Int32s(); v[0] != 3 {
		t.Fatal("replacement lost")
	}
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	f := NewFile()
	f.Add(makeTensor(t, "o", BF16, []int{4, 8}))
	f.Metadata["m"] = "1"
	for _, tc := range []struct {
		name  string
		write func(io.Writer) error
	}{
		{"out.safetensors", f.WriteSafetensors},
		{"out.npz", f.WriteNpz},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			for range 2 { // the second write replaces the first
				if err := WriteFileAtomic(path, tc.write); err != nil {
					t.Fatal(err)
				}
			}
			g, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := f.Tensors["o"].Float32s()
			b, err := g.Tensors["o"].Float32s()
			if err != nil || !sameBits32(a, b) {
				t.Fatalf("read back differs: %v", err)
			}
			st, err := os.Stat(path)
			if err != nil || st.Mode().Perm() != 0o644 {
				t.Fatalf("mode %v, %v", st.Mode(), err)
			}
		})
	}
	t.Run("no temp left on error", func(t *testing.T) {
		path := filepath.Join(dir, "bad.safetensors")
		err := WriteFileAtomic(path, func(w io.Writer) error { return fmt.Errorf("boom") })
		if err == nil || !strings.Contains(err.Error(), path+": boom") {
			t.Fatalf("error %v", err)
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.Contains(e.Name(), "tmp") {
				t.Fatalf("temp file %s left behind", e.Name())
			}
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatal("target created on error")
		}
	})
	t.Run("read error names path", func(t *testing.T) {
		path := filepath.Join(dir, "junk.safetensors")
		if err := os.WriteFile(path, []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadFile(path)
		if err == nil || !strings.HasPrefix(err.Error(), path+": safetensors: ") {
			t.Fatalf("error %v", err)
		}
	})
}

// ---- benchmark ----

// BenchmarkParseSafetensors parses a 64 MiB file. Tensor data is viewed, not
// copied, so allocations stay a few KiB per parse.
func BenchmarkParseSafetensors(b *testing.B) {
	f := NewFile()
	const perTensor = 4 << 20 // 16 tensors of 4 MiB
	for i := range 16 {
		n := perTensor / 4
		f.Add(&Tensor{Name: fmt.Sprintf("layer%02d.out", i), DType: F32, Shape: []int{n / 128, 128}, Data: make([]byte, perTensor)})
	}
	f.Metadata["kernel"] = "bench"
	data := writeSafetensors(b, f)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		g, err := ParseSafetensors(data)
		if err != nil || len(g.Tensors) != 16 {
			b.Fatal(err)
		}
	}
}

func TestParseAllocatesLittle(t *testing.T) {
	f := NewFile()
	f.Add(&Tensor{Name: "big", DType: F32, Shape: []int{1 << 20}, Data: make([]byte, 4<<20)})
	data := writeSafetensors(t, f)
	var ms1, ms2 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	for range 10 {
		if _, err := ParseSafetensors(data); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&ms2)
	if per := (ms2.TotalAlloc - ms1.TotalAlloc) / 10; per > 64<<10 {
		t.Fatalf("parse allocated %d bytes for a %d-byte file", per, len(data))
	}
}
