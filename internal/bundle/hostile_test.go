package bundle

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/attnvet/attnvet/internal/safeio"
	"github.com/attnvet/attnvet/internal/testkit"
)

// zeroBomb is testkit.NpzBomb with member x.npy.
func zeroBomb(t testing.TB, total int64) []byte {
	t.Helper()
	b, err := testkit.NpzBomb("x", total)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// allocated runs f and returns the bytes it allocated.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

func TestNpzBombRefusedBeforeInflating(t *testing.T) {
	small := zeroBomb(t, 4<<20)
	f, err := ParseLimit(small, 16<<20)
	if err != nil {
		t.Fatalf("a 4 MiB member within a 16 MiB limit: %v", err)
	}
	if got := f.Tensors["x"].Len(); got != 1<<20 {
		t.Fatalf("inflated %d elements, want %d", got, 1<<20)
	}
	var le *safeio.LimitError
	if _, err := ParseLimit(small, 2<<20); !errors.As(err, &le) || !strings.Contains(err.Error(), "--max-memory") {
		t.Fatalf("4 MiB member, 2 MiB limit: %v, want a LimitError", err)
	}
	// The default limit: a member of 1.5 GiB (1.5 MB of deflate) is refused
	// without allocating it (io.ReadAll took 2.7 GB for 1 GiB).
	bomb := zeroBomb(t, 3<<29)
	t.Logf("bomb: %d bytes inflating to 1.5 GiB", len(bomb))
	var perr error
	if n := allocated(func() { _, perr = Parse(bomb) }); n > 16<<20 {
		t.Errorf("refusing the bomb allocated %d bytes", n)
	}
	if !errors.As(perr, &le) || le.Limit != safeio.DefaultLimit {
		t.Fatalf("1.5 GiB member: %v, want a LimitError at the default limit", perr)
	}
	if strings.Contains(perr.Error(), "\n") {
		t.Errorf("error is not one line: %q", perr)
	}
}

func TestNpzMemberSizeLies(t *testing.T) {
	npy := npyF32("(4,)", 1, 2, 3, 4)
	var z bytes.Buffer
	fw, _ := flate.NewWriter(&z, flate.BestCompression)
	fw.Write(npy)
	fw.Close()
	crc := crc32.ChecksumIEEE(npy)
	mkc := func(compressed, claim uint64) []byte {
		var out bytes.Buffer
		zw := zip.NewWriter(&out)
		w, err := zw.CreateRaw(&zip.FileHeader{Name: "x.npy", Method: zip.Deflate, CRC32: crc, CompressedSize64: compressed, UncompressedSize64: claim})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(z.Bytes())
		zw.Close()
		return out.Bytes()
	}
	mk := func(claim uint64) []byte { return mkc(uint64(z.Len()), claim) }
	// A compressed size past the archive would let the ratio bound admit
	// any claim: 1 TiB "compressed" into 1 PiB.
	var err error
	if n := allocated(func() { _, err = ParseLimit(mkc(1<<40, 1<<50), 1<<62) }); n > 1<<20 || err == nil || !strings.Contains(err.Error(), "extends past the end of the archive") {
		t.Errorf("a compressed size past the archive: %v, %d bytes allocated", err, n)
	}
	if _, err := Parse(mk(uint64(len(npy)))); err != nil {
		t.Fatalf("the true size: %v", err)
	}
	for _, c := range []struct {
		claim uint64
		want  string
	}{
		{1 << 40, "more than deflate can expand"},
		{uint64(len(npy)) - 1, "more than the"},
		{uint64(len(npy)) + 1, "truncated"},
	} {
		var err error
		if n := allocated(func() { _, err = Parse(mk(c.claim)) }); n > 1<<20 {
			t.Errorf("claim %d: allocated %d bytes", c.claim, n)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("claim %d: %v, want %q", c.claim, err, c.want)
		}
	}
}

func TestNpyHeaderLimit(t *testing.T) {
	hdr := "{'descr': '<f4', 'fortran_order': False, 'shape': (" + strings.Repeat("1,", maxNpyHeader/2) + "), }"
	b := append([]byte("\x93NUMPY\x02\x00"), 0, 0, 0, 0)
	b[8], b[9], b[10] = byte(len(hdr)), byte(len(hdr)>>8), byte(len(hdr)>>16)
	b = append(append(b, hdr...), 0, 0, 0, 0)
	_, err := Parse(rawZip(t, member{"x.npy", b, zip.Store}))
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("a %d-byte npy header: %v", len(hdr), err)
	}
}

// TestSafetensorsLayoutRules: the data buffer is the tensors' buffers,
// disjoint and without gaps or trailing bytes (the reference reader's rule);
// header order does not matter.
func TestSafetensorsLayoutRules(t *testing.T) {
	data := make([]byte, 48)
	for i := range data {
		data[i] = byte(i)
	}
	ent := func(name string, b, e int) string {
		return `"` + name + `":{"dtype":"F32","shape":[` + itoa((e-b)/4) + `],"data_offsets":[` + itoa(b) + `,` + itoa(e) + `]}`
	}
	for _, c := range []struct {
		name, hdr string
		size      int
		want      string // "" = accepted
	}{
		{"packed", "{" + ent("q", 0, 16) + "," + ent("k", 16, 32) + "," + ent("v", 32, 48) + "}", 48, ""},
		{"header order differs from data order", "{" + ent("v", 32, 48) + "," + ent("q", 0, 16) + "," + ent("k", 16, 32) + "}", 48, ""},
		{"empty tensors anywhere", `{"e":{"dtype":"F32","shape":[0],"data_offsets":[16,16]},` + ent("q", 0, 16) + "," + ent("k", 16, 32) + "," + ent("v", 32, 48) + "}", 48, ""},
		{"o aliases q", "{" + ent("q", 0, 16) + "," + ent("k", 16, 32) + "," + ent("v", 32, 48) + "," + ent("o", 0, 16) + "}", 48, "tensors q and o overlap: o's data_offsets [0, 16]"},
		{"partial overlap", "{" + ent("q", 0, 16) + "," + ent("k", 8, 24) + "," + ent("v", 24, 40) + "}", 40, "tensors q and k overlap"},
		{"empty inside another", `{"e":{"dtype":"F32","shape":[0],"data_offsets":[8,8]},` + ent("q", 0, 16) + "}", 16, "overlap"},
		{"gap", "{" + ent("q", 0, 16) + "," + ent("k", 20, 36) + "}", 36, "bytes [16, 20) of the data buffer, between tensors q and k"},
		{"leading gap", "{" + ent("q", 4, 20) + "}", 20, "bytes [0, 4)"},
		{"trailing bytes", "{" + ent("q", 0, 16) + "}", 20, "4 bytes after the last tensor, q"},
		{"no tensors, some data", "{}", 8, "belongs to no tensor"},
	} {
		f, err := ParseSafetensors(rawSafetensors(c.hdr, data[:c.size]))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want == "" && f != nil:
		case err == nil || !strings.Contains(err.Error(), c.want):
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestShapeProductOverflow: a zero dimension does not excuse the others
// from overflowing (ori_kv [0, 2^62, 1, 32] made BS·D wrap to 0, and a
// later division panicked).
func TestShapeProductOverflow(t *testing.T) {
	for _, shape := range []string{"[0,4611686018427387904,1,32]", "[4294967296,4294967296,0]", "[0,9223372036854775807,2]"} {
		_, err := ParseSafetensors(rawSafetensors(`{"x":{"dtype":"F32","shape":`+shape+`,"data_offsets":[0,0]}}`, nil))
		if err == nil || !strings.Contains(err.Error(), "overflows") {
			t.Errorf("shape %s: %v, want an overflow error", shape, err)
		}
		npy := rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': ("+strings.Trim(shape, "[]")+"), }", nil)
		if _, err := Parse(rawZip(t, member{"x.npy", npy, zip.Store})); err == nil || !strings.Contains(err.Error(), "overflows") {
			t.Errorf("npy shape %s: %v, want an overflow error", shape, err)
		}
	}
	if _, err := ParseSafetensors(rawSafetensors(`{"x":{"dtype":"F32","shape":[0,1073741824,1,32],"data_offsets":[0,0]}}`, nil)); err != nil {
		t.Errorf("an empty tensor whose other dimensions fit: %v", err)
	}
}

func TestReadFileRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	paths := []string{dir}
	if runtime.GOOS != "windows" {
		fifo := filepath.Join(dir, "f.safetensors")
		if err := mkfifo(fifo); err == nil {
			paths = append(paths, fifo)
		}
		paths = append(paths, "/dev/zero")
	}
	for _, p := range paths {
		done := make(chan error, 1)
		go func() { _, err := ReadFile(p); done <- err }()
		select {
		case err := <-done:
			var nr *safeio.NotRegularError
			if !errors.As(err, &nr) {
				t.Errorf("%s: %v, want a NotRegularError", p, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("ReadFile(%s) blocked for 5 s", p)
		}
	}
	big := filepath.Join(dir, "big.safetensors")
	if err := os.WriteFile(big, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	var le *safeio.LimitError
	if _, err := ReadFileLimit(big, 1000); !errors.As(err, &le) {
		t.Errorf("4096-byte file, 1000-byte limit: %v", err)
	}
}
