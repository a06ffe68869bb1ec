package fuzz

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"maps"
	"math"
	"slices"
	"testing"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/safeio"
)

// seedFiles returns a few bundles covering every dtype, scalars, empty
// tensors and metadata.
func seedFiles(t testing.TB) []*bundle.File {
	t.Helper()
	mk := func(name string, dt bundle.DType, shape []int, vals []float32) *bundle.Tensor {
		x, err := bundle.NewFloat32(name, dt, shape, vals)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	a := bundle.NewFile()
	a.Add(mk("q", bundle.BF16, []int{2, 2}, []float32{1, -0.5, inf, nan}))
	a.Add(mk("k", bundle.F16, []int{3}, []float32{0x1p-24, 65504, -2}))
	a.Add(mk("o", bundle.F32, []int{1, 2}, []float32{0.1, -inf}))
	a.Add(mk("ref", bundle.F64, []int{}, []float32{3}))
	a.Add(bundle.NewInt32("idx", []int{2}, []int32{-1, 7}))
	a.Add(bundle.NewInt64("seed", []int{1}, []int64{1 << 40}))
	a.Metadata["kernel"] = "fa2"
	a.Metadata["causal"] = "1"

	b := bundle.NewFile()
	b.Add(mk("empty", bundle.F32, []int{0, 3}, nil))
	b.Add(bundle.NewFloat64("x", []int{2}, []float64{math.Pi, -0}))

	c := bundle.NewFile() // no tensors at all
	return []*bundle.File{a, b, c}
}

func encode(t testing.TB, f *bundle.File, npz bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	if npz {
		err = f.WriteNpz(&buf)
	} else {
		err = f.WriteSafetensors(&buf)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// addSeeds adds each encoding plus truncations of it.
func addSeeds(f *testing.F, encs [][]byte) {
	for _, e := range encs {
		f.Add(e)
		for _, cut := range []int{0, 1, 7, 8, 9, len(e) / 3, len(e) / 2, len(e) - 1} {
			if cut >= 0 && cut < len(e) {
				f.Add(e[:cut])
			}
		}
	}
}

// sameTensors checks that got holds exactly want's tensors. With widened,
// BF16 tensors in want may come back as F32 with the same values (.npz).
func sameTensors(t *testing.T, want, got *bundle.File, widened bool) {
	t.Helper()
	if !slices.Equal(slices.Sorted(maps.Keys(want.Tensors)), slices.Sorted(maps.Keys(got.Tensors))) {
		t.Fatalf("tensor names differ: %q vs %q", want.Order, got.Order)
	}
	if !slices.Equal(got.Order, slices.Sorted(maps.Keys(got.Tensors))) {
		t.Fatalf("Order %q does not list the tensors in sorted order", got.Order)
	}
	for name, w := range want.Tensors {
		g := got.Tensors[name]
		if !slices.Equal(w.Shape, g.Shape) {
			t.Fatalf("tensor %q: shape %v became %v", name, w.Shape, g.Shape)
		}
		if widened && w.DType == bundle.BF16 {
			if g.DType != bundle.F32 {
				t.Fatalf("tensor %q: BF16 came back as %s", name, g.DType)
			}
			a, err1 := w.Float32s()
			b, err2 := g.Float32s()
			if err1 != nil || err2 != nil {
				t.Fatalf("tensor %q: %v %v", name, err1, err2)
			}
			for i := range a {
				if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
					t.Fatalf("tensor %q: value %d %v became %v", name, i, a[i], b[i])
				}
			}
			continue
		}
		if w.DType != g.DType || !bytes.Equal(w.Data, g.Data) {
			t.Fatalf("tensor %q: %s data changed to %s", name, w.DType, g.DType)
		}
	}
}

// exercise runs every decoder on every tensor; they may fail but must not panic.
func exercise(t *testing.T, f *bundle.File) {
	t.Helper()
	for _, name := range f.Order {
		x := f.Tensors[name]
		if err := x.Validate(); err != nil {
			t.Fatalf("parsed tensor is inconsistent: %v", err)
		}
		if x.Len() < 0 {
			t.Fatalf("tensor %q: Len %d", name, x.Len())
		}
		if x.Len() > 1<<16 {
			continue // keep executions fast
		}
		x.Float32s()
		x.Float64s()
		x.Int32s()
		x.Int64s()
	}
}

func roundTrip(t *testing.T, f *bundle.File, npz bool) (*bundle.File, error) {
	var buf bytes.Buffer
	var err error
	if npz {
		err = f.WriteNpz(&buf)
	} else {
		err = f.WriteSafetensors(&buf)
	}
	if err != nil {
		return nil, err
	}
	var g *bundle.File
	if npz {
		g, err = bundle.ParseNpz(buf.Bytes())
	} else {
		g, err = bundle.ParseSafetensors(buf.Bytes())
	}
	if err != nil {
		t.Fatalf("re-parsing our own output failed: %v", err)
	}
	// Writing is deterministic: the re-parsed bundle writes the same bytes.
	var again bytes.Buffer
	if npz {
		err = g.WriteNpz(&again)
	} else {
		err = g.WriteSafetensors(&again)
	}
	if err != nil || !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Fatalf("re-writing is not stable (err %v)", err)
	}
	return g, nil
}

func FuzzParseSafetensors(f *testing.F) {
	var encs [][]byte
	for _, file := range seedFiles(f) {
		encs = append(encs, encode(f, file, false))
	}
	le := func(n uint64) []byte { return binary.LittleEndian.AppendUint64(nil, n) }
	raw := func(h string, data string) []byte { return append(append(le(uint64(len(h))), h...), data...) }
	encs = append(encs,
		raw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"b":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, "12345678"),
		raw(`{"__metadata__":null,"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, "x"),
		raw(`{"a":{"dtype":"I64","shape":[0,9223372036854775807],"data_offsets":[0,0]}}`, ""),
		le(math.MaxUint64),
		// Layouts the format forbids: aliasing, gaps, trailing bytes, and
		// shapes whose non-zero dimensions overflow.
		raw(`{"q":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"o":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, "1234"),
		raw(`{"q":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"k":{"dtype":"F32","shape":[1],"data_offsets":[6,10]}}`, "1234567890"),
		raw(`{"q":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, "12345678"),
		raw(`{"e":{"dtype":"F32","shape":[0],"data_offsets":[2,2]},"q":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, "1234"),
		raw(`{"a":{"dtype":"F32","shape":[0,4611686018427387904,1,32],"data_offsets":[0,0]}}`, ""),
	)
	addSeeds(f, encs)
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := bundle.ParseSafetensors(b)
		if err != nil {
			return
		}
		// The tensors tile the data buffer exactly.
		data := 0
		for _, x := range file.Tensors {
			data += len(x.Data)
		}
		if hdr := binary.LittleEndian.Uint64(b); uint64(data) != uint64(len(b))-8-hdr {
			t.Fatalf("tensors hold %d bytes of a %d-byte data buffer", data, uint64(len(b))-8-hdr)
		}
		checkLimit(t, b)
		exercise(t, file)
		g, err := roundTrip(t, file, false)
		if err != nil {
			t.Fatalf("writing a parsed file failed: %v", err)
		}
		sameTensors(t, file, g, false)
		if !maps.Equal(file.Metadata, g.Metadata) {
			t.Fatalf("metadata %q became %q", file.Metadata, g.Metadata)
		}
		h, err := roundTrip(t, file, true)
		if err != nil {
			t.Fatalf("writing a parsed safetensors file as npz failed: %v", err)
		}
		sameTensors(t, file, h, true)
	})
}

func FuzzParseNpz(f *testing.F) {
	var encs [][]byte
	for _, file := range seedFiles(f) {
		encs = append(encs, encode(f, file, true))
	}
	// A deflated archive with a big-endian member, as numpy.savez_compressed
	// might write on a big-endian machine.
	mkNpy := func(header string, data []byte) []byte {
		b := binary.LittleEndian.AppendUint16([]byte("\x93NUMPY\x01\x00"), uint16(len(header)))
		return append(append(b, header...), data...)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range []struct {
		name   string
		method uint16
		npy    []byte
	}{
		{"be.npy", zip.Deflate, mkNpy("{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }        \n", binary.BigEndian.AppendUint64(nil, math.Float64bits(-1.5)))},
		{"s.npy", zip.Store, mkNpy("{'descr': '<i4', 'fortran_order': True, 'shape': (1L,)}\n", []byte{1, 0, 0, 0})},
	} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: m.name, Method: m.method})
		if err != nil {
			f.Fatal(err)
		}
		w.Write(m.npy)
	}
	if err := zw.Close(); err != nil {
		f.Fatal(err)
	}
	if g, err := bundle.ParseNpz(buf.Bytes()); err != nil || len(g.Tensors) != 2 {
		f.Fatalf("hand-made seed does not parse: %v", err)
	}
	encs = append(encs, buf.Bytes())
	// Deflated members whose header lies about the inflated size: too
	// small, too large, larger than deflate can expand (a zip bomb's claim).
	var lies [][]byte
	npy := mkNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (256,), }\n", make([]byte, 1024))
	var z bytes.Buffer
	fw, _ := flate.NewWriter(&z, flate.BestCompression)
	fw.Write(npy)
	fw.Close()
	for _, claim := range []uint64{uint64(len(npy)), uint64(len(npy)) - 1, uint64(len(npy)) + 1, 1 << 40} {
		var lie bytes.Buffer
		zw := zip.NewWriter(&lie)
		w, err := zw.CreateRaw(&zip.FileHeader{Name: "q.npy", Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(npy),
			CompressedSize64: uint64(z.Len()), UncompressedSize64: claim})
		if err != nil {
			f.Fatal(err)
		}
		w.Write(z.Bytes())
		zw.Close()
		lies = append(lies, lie.Bytes())
	}
	// Raw .npy members too: the target also wraps its input as the single
	// member of a valid archive, so the fuzzer reaches the npy header parser
	// without having to forge zip checksums.
	for _, enc := range encs[:len(encs)-1] {
		zr, err := zip.NewReader(bytes.NewReader(enc), int64(len(enc)))
		if err != nil {
			f.Fatal(err)
		}
		for _, zf := range zr.File {
			rc, err := zf.Open()
			if err != nil {
				f.Fatal(err)
			}
			member, err := io.ReadAll(rc)
			if err != nil {
				f.Fatal(err)
			}
			encs = append(encs, member)
		}
	}
	addSeeds(f, append(encs, lies...))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkNpz(t, b)
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, err := zw.CreateHeader(&zip.FileHeader{Name: "member.npy", Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		checkNpz(t, buf.Bytes())
	})
}

// fuzzLimit is the memory limit the fuzz targets parse with: an input may
// claim (and make the parser allocate) this much, so keep it small to keep
// executions fast.
const fuzzLimit = 64 << 20

// checkLimit: b parses within fuzzLimit, so within a smaller limit it
// parses or is refused with a LimitError, never another error, and within
// a larger one it parses.
func checkLimit(t *testing.T, b []byte) {
	for _, limit := range []int64{0, int64(len(b)), int64(len(b)) + 1<<10, fuzzLimit + 1} {
		_, err := bundle.ParseLimit(b, limit)
		var le *safeio.LimitError
		if err != nil && (!errors.As(err, &le) || limit > fuzzLimit) {
			t.Fatalf("ParseLimit(b, %d): %v, but b parses within %d bytes", limit, err, fuzzLimit)
		}
	}
}

// FuzzNpyHeader fuzzes the .npy header dictionary and the data after it,
// wrapped in a valid .npy prefix and a stored .npz member, so every
// execution reaches the header parser.
func FuzzNpyHeader(f *testing.F) {
	for _, h := range []string{
		"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
		"{'descr': '>f8', 'fortran_order': False, 'shape': (1, 1), }",
		"{'descr': '<i8', 'fortran_order': True, 'shape': (1L, 2, 1), }",
		`{"shape": (), "fortran_order": False, "descr": "<i4"}`,
		"{'descr': '<f2', 'fortran_order': False, 'shape': (0, 4611686018427387904, 2), }",
		"{'descr': '|f4', 'fortran_order': False, 'shape': [2], 'x': None}",
		"{'descr': '<f4', 'fortran_order': False, 'shape': ((((((1,),),),),),), }",
		"{'descr': 'f4', 'fortran_order': False, 'shape': (+2,), }",
	} {
		f.Add(h, []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 1, 2, 3, 4, 5, 6, 7, 8})
		f.Add(h+"\n", []byte{})
	}
	f.Fuzz(func(t *testing.T, header string, data []byte) {
		var npy []byte
		if len(header) <= 0xffff {
			npy = binary.LittleEndian.AppendUint16([]byte("\x93NUMPY\x01\x00"), uint16(len(header)))
		} else {
			npy = binary.LittleEndian.AppendUint32([]byte("\x93NUMPY\x02\x00"), uint32(len(header)))
		}
		npy = append(append(npy, header...), data...)
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, err := zw.CreateHeader(&zip.FileHeader{Name: "x.npy", Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(npy)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		checkNpz(t, buf.Bytes())
	})
}

func checkNpz(t *testing.T, b []byte) {
	if !bytes.HasPrefix(b, []byte("PK\x03\x04")) && !bytes.HasPrefix(b, []byte("PK\x05\x06")) {
		return // ParseLimit would read it as safetensors
	}
	file, err := bundle.ParseLimit(b, fuzzLimit)
	if err != nil {
		return
	}
	checkLimit(t, b)
	{
		if len(file.Metadata) != 0 {
			t.Fatal("npz produced metadata")
		}
		exercise(t, file)
		g, err := roundTrip(t, file, true)
		if err != nil {
			t.Fatalf("writing a parsed npz failed: %v", err)
		}
		sameTensors(t, file, g, false)
		// Through safetensors too, unless a name cannot be a safetensors name.
		if h, err := roundTrip(t, file, false); err == nil {
			sameTensors(t, file, h, false)
		}
	}
}
