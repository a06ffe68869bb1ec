package kvlayout

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/quant"
)

func TestLayoutInfo(t *testing.T) {
	for _, c := range []struct {
		l                                   Layout
		name                                string
		bpt, dqk, dv, nope, rope, tile, nsc int
	}{
		{V32, "fp8_v32", 656, 576, 512, 512, 64, 128, 4},
		{Model1, "fp8_model1", 584, 512, 512, 448, 64, 64, 7},
	} {
		l := c.l
		if l.String() != c.name || l.BytesPerToken() != c.bpt || l.DQK() != c.dqk || l.DV() != c.dv ||
			l.NoPE() != c.nope || l.RoPE() != c.rope || l.Tile() != c.tile || l.Scales() != c.nsc {
			t.Errorf("%s: info wrong", c.name)
		}
		// bytes per token = NoPE codes + scale bytes (+pad) + 2·RoPE
		scaleBytes := map[Layout]int{V32: 16, Model1: 8}[l]
		if c.nope+scaleBytes+2*c.rope != c.bpt {
			t.Errorf("%s: byte budget does not add up", c.name)
		}
		if p, err := ParseLayout(c.name); err != nil || p != l {
			t.Errorf("ParseLayout(%q) = %v, %v", c.name, p, err)
		}
	}
	if _, err := ParseLayout("bf16"); err == nil {
		t.Error("ParseLayout(bf16) must fail: bf16 is not an FP8 layout")
	}
}

// TestNewCacheGeometry: malformed geometry is an error, never a panic.
func TestNewCacheGeometry(t *testing.T) {
	ok := func(l Layout, n, nb, pbs, stride int) {
		t.Helper()
		if _, err := NewCache(l, make([]byte, n), nb, pbs, stride); err != nil {
			t.Errorf("%v %d bytes %d×%d stride %d: %v", l, n, nb, pbs, stride, err)
		}
	}
	bad := func(l Layout, n, nb, pbs, stride int) {
		t.Helper()
		if _, err := NewCache(l, make([]byte, n), nb, pbs, stride); err == nil {
			t.Errorf("%v %d bytes %d×%d stride %d: want an error", l, n, nb, pbs, stride)
		}
	}
	ok(V32, 2*3*656, 2, 3, 0)
	ok(Model1, 2*3*584, 2, 3, 0)
	ok(Model1, 2*1728, 2, 2, 1728)        // padded pages (2·584 → 3·576)
	ok(Model1, 1728+2*584, 2, 2, 1728)    // last page unpadded
	ok(V32, 2*4*656, 2, 3, 4*656)         // quant.py's block_size+1 stride
	bad(V32, 2*3*656-1, 2, 3, 0)          // short
	bad(V32, 2*3*656+1, 2, 3, 0)          // long
	bad(Model1, 2*3*656, 2, 3, 0)         // V32 sized
	bad(Model1, 1728+2*584-1, 2, 2, 1728) // last page cut
	bad(Model1, 2*1152, 2, 2, 1000)       // stride below a page
	bad(V32, 0, 0, 3, 0)
	bad(V32, 0, 3, 0, 0)
	bad(V32, 0, -1, 3, 0)
	bad(Layout(0), 656, 1, 1, 0)
	bad(Layout(9), 656, 1, 1, 0)
	bad(V32, 656, 1, math.MaxInt/600, 0) // page size overflows
	bad(V32, 656, math.MaxInt/2, 1, 0)   // cache size overflows
	bad(Model1, 584, 1<<40, 1<<40, 0)    // slots overflow
	bad(V32, 656, 2, 1, math.MaxInt/2+1) // nb·stride overflows
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 { // random geometries: errors or views, no panic
		l := Layout(r.IntN(3))
		nb, pbs, stride, n := r.IntN(5)-1, r.IntN(5)-1, r.IntN(3000)-10, r.IntN(6000)
		c, err := NewCache(l, make([]byte, n), nb, pbs, stride)
		if err == nil {
			for s := -1; s <= c.Slots(); s++ {
				_, _ = c.Token(s)
			}
		}
	}
}

// TestAddressing builds caches byte by byte with distinctive markers and
// checks Token reads each token's fields from where SPEC-flashmla.md puts
// them, for contiguous and padded page strides.
func TestAddressing(t *testing.T) {
	for _, tc := range []struct {
		l       Layout
		nb, pbs int
		stride  int
	}{
		{V32, 3, 5, 0}, {V32, 2, 3, 4 * 656}, {Model1, 3, 5, 0}, {Model1, 2, 3, 2304}, {Model1, 1, 1, 0},
	} {
		t.Run(fmt.Sprintf("%v_%dx%d_%d", tc.l, tc.nb, tc.pbs, tc.stride), func(t *testing.T) {
			stride := tc.stride
			if stride == 0 {
				stride = tc.pbs * tc.l.BytesPerToken()
			}
			data := make([]byte, tc.nb*stride)
			for i := range data {
				data[i] = 0xee // unreferenced bytes: must never be read
			}
			for s := range tc.nb * tc.pbs {
				page, off := s/tc.pbs, s%tc.pbs
				base := page * stride
				var nope, sc, rope int
				if tc.l == V32 {
					nope, sc, rope = base+off*656, base+off*656+512, base+off*656+528
				} else {
					nope, sc, rope = base+off*576, base+tc.pbs*576+off*8, base+off*576+448
				}
				for j := range tc.l.NoPE() {
					data[nope+j] = byte(s + j%3) // small positive e4m3 codes
				}
				for j := range tc.l.Scales() {
					if tc.l == V32 {
						binary.LittleEndian.PutUint32(data[sc+4*j:], math.Float32bits(float32(s*10+j+1)))
					} else {
						data[sc+j] = byte(100 + s + j)
					}
				}
				if tc.l == Model1 {
					data[sc+7] = 0 // pad
				}
				for j := range tc.l.RoPE() {
					binary.LittleEndian.PutUint16(data[rope+2*j:], num.BF16FromF32(float32(s*1000+j), num.RNE))
				}
			}
			c, err := NewCache(tc.l, data, tc.nb, tc.pbs, tc.stride)
			if err != nil {
				t.Fatal(err)
			}
			row := make([]float64, tc.l.DQK())
			for s := range tc.nb * tc.pbs {
				tk, err := c.Token(s)
				if err != nil {
					t.Fatal(err)
				}
				for j, code := range tk.NoPE {
					if code != byte(s+j%3) {
						t.Fatalf("slot %d NoPE %d: code %#x", s, j, code)
					}
				}
				for j, v := range tk.Scales {
					want := float64(s*10 + j + 1)
					if tc.l == Model1 {
						want = math.Ldexp(1, 100+s+j-127)
					}
					if v != want {
						t.Fatalf("slot %d scale %d: %v want %v", s, j, v, want)
					}
				}
				for j, h := range tk.RoPE {
					if h != num.BF16FromF32(float32(s*1000+j), num.RNE) {
						t.Fatalf("slot %d RoPE %d: %#x", s, j, h)
					}
				}
				if err := c.Row(row, s, quant.Exact); err != nil {
					t.Fatal(err)
				}
				tile := tc.l.Tile()
				for j := range tc.l.NoPE() {
					if want := quant.E4M3ToF64(byte(s+j%3)) * tk.Scales[j/tile]; row[j] != want {
						t.Fatalf("slot %d col %d: %v want %v (wrong scale block?)", s, j, row[j], want)
					}
				}
				for j := range tc.l.RoPE() {
					if want := float64(num.BF16ToF32(num.BF16FromF32(float32(s*1000+j), num.RNE))); row[tc.l.NoPE()+j] != want {
						t.Fatalf("slot %d RoPE col %d: %v", s, j, row[tc.l.NoPE()+j])
					}
				}
			}
			for _, s := range []int{-1, tc.nb * tc.pbs, math.MinInt, math.MaxInt} {
				if _, err := c.Token(s); !errors.Is(err, ErrSlot) {
					t.Errorf("slot %d: %v, want ErrSlot", s, err)
				}
			}
			if err := c.Row(make([]float64, tc.l.DQK()-1), 0, quant.Exact); err == nil {
				t.Error("short row must fail")
			}
		})
	}
}

// TestDequantModes: with a non-power-of-two V32 scale the three modes
// differ as their formulas say; with power-of-two scales they agree.
func TestDequantModes(t *testing.T) {
	data := make([]byte, 656)
	data[0] = 0x3f                         // 1.875
	data[1] = 0x39                         // 1.125
	scale := float32(1 + 0x1p-6 + 0x1p-12) // BF16 rounds it to 1 + 2^-6
	binary.LittleEndian.PutUint32(data[512:], math.Float32bits(scale))
	binary.LittleEndian.PutUint32(data[516:], math.Float32bits(0.5))
	data[128] = 0x3f
	c, err := NewCache(V32, data, 1, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[quant.Dequant][]float64{}
	for _, d := range []quant.Dequant{quant.Exact, quant.BF16, quant.FP32} {
		rows[d] = make([]float64, 576)
		if err := c.Row(rows[d], 0, d); err != nil {
			t.Fatal(err)
		}
	}
	s := float64(scale)
	if got := rows[quant.Exact][0]; got != 1.875*s {
		t.Errorf("exact: %v", got)
	}
	// bf16: 1.875 × (1 + 2^-6) = 1.904296875 = 1.111100111b needs 10 bits → BF16 RNE 1.90625.
	if got := rows[quant.BF16][0]; got != 1.90625 {
		t.Errorf("bf16: %v", got)
	}
	if got := rows[quant.FP32][0]; got != float64(float32(1.875*s)) {
		t.Errorf("fp32: %v", got)
	}
	for _, d := range []quant.Dequant{quant.BF16, quant.FP32} {
		if got := rows[d][128]; got != 1.875*0.5 {
			t.Errorf("%v with a power-of-two scale: %v", d, got)
		}
	}
	f32 := make([]float32, 576)
	if err := c.RowF32(f32, 0, quant.BF16); err != nil || f32[0] != 1.90625 {
		t.Errorf("RowF32 bf16: %v %v", f32[0], err)
	}
	// exact 1.125 × scale needs 4 + 13 bits: fits float32; a 24-bit scale times 1.125 does not.
	binary.LittleEndian.PutUint32(data[512:], math.Float32bits(float32(1+0x1p-23)))
	if err := c.RowF32(f32, 0, quant.Exact); err == nil {
		t.Error("RowF32 exact of a 27-bit product must fail, not round")
	}
	if err := c.RowF32(f32, 0, quant.FP32); err != nil {
		t.Error(err)
	}
	if err := c.Row(make([]float64, 576), 0, quant.Dequant(7)); err == nil {
		t.Error("invalid dequant must fail")
	}
}

// bf16Rows returns n rows of d BF16-valued float32s ~ N(0,1)/10 with some
// structure: zero tiles, large tiles, ties.
func bf16Rows(r *rand.Rand, n, d int) []float32 {
	k := make([]float32, n*d)
	for i := range k {
		k[i] = num.BF16ToF32(num.BF16FromF32(float32(r.NormFloat64()/10), num.RNE))
	}
	if n > 1 {
		clear(k[:64])
		for j := d; j < d+64; j++ {
			k[j] *= 4096
		}
	}
	return k
}

// TestEncodeRoundTrip: Encode then Row(Exact) reproduces each value to
// within half an e4m3 spacing at its scale, the scales are FlashMLA's, and
// all three dequant modes agree (power-of-two scales).
func TestEncodeRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, l := range []Layout{V32, Model1} {
		nb, pbs := 3, 4
		k := bf16Rows(r, nb*pbs, l.DQK())
		data, err := Encode(l, k, nb, pbs)
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewCache(l, data, nb, pbs, 0)
		if err != nil {
			t.Fatal(err)
		}
		ex, bf, f3 := make([]float64, l.DQK()), make([]float64, l.DQK()), make([]float64, l.DQK())
		for s := range nb * pbs {
			_ = c.Row(ex, s, quant.Exact)
			_ = c.Row(bf, s, quant.BF16)
			_ = c.Row(f3, s, quant.FP32)
			tk, _ := c.Token(s)
			in := k[s*l.DQK() : (s+1)*l.DQK()]
			for ti, inv := range tk.Scales {
				var amax float32
				for _, v := range in[ti*l.Tile() : (ti+1)*l.Tile()] {
					amax = max(amax, float32(math.Abs(float64(v))))
				}
				if want := float64(quant.FlashMLAScale(amax)); inv != want {
					t.Fatalf("%v slot %d tile %d: scale %v want %v", l, s, ti, inv, want)
				}
			}
			for j := range l.DQK() {
				if ex[j] != bf[j] || ex[j] != f3[j] {
					t.Fatalf("%v slot %d col %d: modes disagree %v %v %v", l, s, j, ex[j], bf[j], f3[j])
				}
				x := float64(in[j])
				if j >= l.NoPE() {
					if ex[j] != x {
						t.Fatalf("%v slot %d RoPE %d: %v want %v", l, s, j, ex[j], x)
					}
					continue
				}
				inv := tk.Scales[j/l.Tile()]
				// half the e4m3 spacing at x/inv: 2^(max(e,−6)−4)
				_, e := math.Frexp(math.Abs(x / inv))
				half := math.Ldexp(1, max(e-1, -6)-4) * inv
				if math.Abs(ex[j]-x) > half {
					t.Fatalf("%v slot %d col %d: %v → %v (error > %v)", l, s, j, x, ex[j], half)
				}
			}
		}
		// RoPE goes through BF16 RNE.
		k2 := make([]float32, l.DQK())
		k2[l.NoPE()] = 1 + 0x1p-8 // tie → 1
		k2[l.NoPE()+1] = 1 + 0x1p-8 + 0x1p-20
		d2, err := Encode(l, k2, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		c2, _ := NewCache(l, d2, 1, 1, 0)
		row := make([]float64, l.DQK())
		_ = c2.Row(row, 0, quant.Exact)
		if row[l.NoPE()] != 1 || row[l.NoPE()+1] != 1+0x1p-7 {
			t.Errorf("%v RoPE rounding: %v %v", l, row[l.NoPE()], row[l.NoPE()+1])
		}
	}
	for _, bad := range []struct {
		l       Layout
		n       int
		nb, pbs int
	}{{V32, 575, 1, 1}, {Model1, 576, 1, 1}, {V32, 0, 0, 1}, {Layout(3), 576, 1, 1}, {V32, 576, math.MaxInt / 2, 3}} {
		if _, err := Encode(bad.l, make([]float32, bad.n), bad.nb, bad.pbs); err == nil {
			t.Errorf("Encode(%v, %d values, %d×%d) must fail", bad.l, bad.n, bad.nb, bad.pbs)
		}
	}
	k := make([]float32, 576)
	k[3] = float32(math.NaN())
	if _, err := Encode(V32, k, 1, 1); err == nil {
		t.Error("NaN input must fail")
	}
	k[3], k[570] = 0, float32(math.Inf(1))
	if _, err := Encode(V32, k, 1, 1); err == nil {
		t.Error("Inf RoPE input must fail")
	}
}

// python returns /usr/bin/python3 if it imports numpy; otherwise the test
// is skipped, except under CI=true.
func python(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if exec.Command(py, "-c", "import numpy").Run() == nil {
		return py
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true but /usr/bin/python3 cannot import numpy (apt-get install python3-numpy)")
	}
	t.Skip("no /usr/bin/python3 with numpy")
	return ""
}

func readFile[T any](t *testing.T, path string, n int) []T {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]T, n)
	if err := binary.Read(bytes.NewReader(b), binary.LittleEndian, out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

// TestPythonCache: testdata/build_cache.py builds V32 and MODEL1 caches
// with numpy from SPEC-flashmla.md's byte layout (padded page strides as
// FlashMLA's quant.py allocates them) and its own e4m3 table. The Go decoder
// must give its dequantized values bit for bit, and Encode its bytes.
func TestPythonCache(t *testing.T) {
	t.Parallel() // waits on its Python process
	py := python(t)
	for _, tc := range []struct {
		l             Layout
		nb, pbs, seed int
	}{{V32, 3, 5, 1}, {Model1, 3, 5, 2}, {Model1, 2, 64, 3}, {V32, 1, 1, 4}, {Model1, 2, 53, 5}} {
		t.Run(fmt.Sprintf("%v_%dx%d", tc.l, tc.nb, tc.pbs), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(py, filepath.Join("testdata", "build_cache.py"), tc.l.String(),
				fmt.Sprint(tc.nb), fmt.Sprint(tc.pbs), fmt.Sprint(tc.seed), dir)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %v\n%s", cmd, err, out)
			}
			meta, err := os.ReadFile(filepath.Join(dir, "meta.txt"))
			if err != nil {
				t.Fatal(err)
			}
			var stride int
			if _, err := fmt.Sscanf(strings.TrimSpace(string(meta)), "stride %d", &stride); err != nil {
				t.Fatal(err)
			}
			n, d := tc.nb*tc.pbs, tc.l.DQK()
			raw, err := os.ReadFile(filepath.Join(dir, "cache.u8"))
			if err != nil {
				t.Fatal(err)
			}
			k := readFile[float32](t, filepath.Join(dir, "k.f32"), n*d)
			deq := readFile[float64](t, filepath.Join(dir, "deq.f64"), n*d)
			c, err := NewCache(tc.l, raw, tc.nb, tc.pbs, stride)
			if err != nil {
				t.Fatal(err)
			}
			row := make([]float64, d)
			bad := 0
			for s := range n {
				if err := c.Row(row, s, quant.Exact); err != nil {
					t.Fatal(err)
				}
				for j, v := range row {
					if w := deq[s*d+j]; math.Float64bits(v) != math.Float64bits(w) {
						if bad++; bad <= 10 {
							t.Errorf("slot %d col %d: Go %v, numpy %v", s, j, v, w)
						}
					}
				}
			}
			enc, err := Encode(tc.l, k, tc.nb, tc.pbs)
			if err != nil {
				t.Fatal(err)
			}
			page := tc.pbs * tc.l.BytesPerToken()
			for p := range tc.nb {
				if !bytes.Equal(enc[p*page:(p+1)*page], raw[p*stride:p*stride+page]) {
					for i := range page {
						if enc[p*page+i] != raw[p*stride+i] {
							t.Errorf("page %d byte %d: Go %#x, numpy %#x", p, i, enc[p*page+i], raw[p*stride+i])
							break
						}
					}
				}
			}
			t.Logf("%d tokens × %d columns agree; stride %d", n, d, stride)
		})
	}
}

// FuzzCache: any bytes and geometry give a view or an error, and reading
// any slot of a view gives a row or an error, never a panic.
func FuzzCache(f *testing.F) {
	f.Add(uint8(1), make([]byte, 656), 1, 1, 0, 0)
	f.Add(uint8(2), make([]byte, 2*584), 1, 2, 0, 1)
	f.Add(uint8(2), make([]byte, 1728), 1, 2, 1728, 1)
	f.Fuzz(func(t *testing.T, l uint8, data []byte, nb, pbs, stride, slot int) {
		c, err := NewCache(Layout(l), data, nb, pbs, stride)
		if err != nil {
			return
		}
		row := make([]float64, c.Layout().DQK())
		for _, d := range []quant.Dequant{quant.Exact, quant.BF16, quant.FP32} {
			if err := c.Row(row, slot, d); err != nil && !errors.Is(err, ErrSlot) {
				t.Fatal(err)
			}
		}
	})
}

func TestInvalidLayoutNoPanic(t *testing.T) {
	for _, l := range []Layout{0, 3, 255} {
		if l.BytesPerToken() != 0 || l.DQK() != 0 || l.Scales() != 0 || l.Tile() != 0 || l.String() == "" {
			t.Errorf("Layout(%d): nonzero geometry", l)
		}
	}
}
