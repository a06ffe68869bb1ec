package bundle

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// The one-byte dtypes of the quantized-KV issue: safetensors round trips,
// exact FP8 decoding, npz's uint8 carriage, and the |V1 refusal.
func TestOneByteDTypes(t *testing.T) {
	f := NewFile()
	e4, err := NewFloat32("e4", F8E4M3, []int{5}, []float32{0, 448, -448, float32(math.Ldexp(1, -9)), 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x00, 0x7e, 0xfe, 0x01, 0x30}; !bytes.Equal(e4.Data, want) {
		t.Fatalf("e4m3 codes %x, want %x", e4.Data, want)
	}
	if _, err := NewFloat32("x", F8E4M3, []int{1}, []float32{449}); err == nil || !strings.Contains(err.Error(), "not representable in F8_E4M3") {
		t.Fatalf("449 as e4m3: %v", err)
	}
	e5, err := NewFloat32("e5", F8E5M2, []int{2}, []float32{57344, float32(math.Inf(-1))})
	if err != nil {
		t.Fatal(err)
	}
	u8, _ := NewBytes("u8", U8, []int{3}, []byte{0, 200, 255})
	i8, _ := NewBytes("i8", I8, []int{3}, []byte{0, 200, 255})
	nan, _ := NewBytes("nan", F8E4M3, []int{2}, []byte{0x7f, 0xff})
	for _, x := range []*Tensor{e4, e5, u8, i8, nan} {
		f.Add(x)
	}
	var buf bytes.Buffer
	if err := f.WriteSafetensors(&buf); err != nil {
		t.Fatal(err)
	}
	g, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	v, err := g.Tensors["e4"].Float32s()
	if err != nil || v[1] != 448 || v[2] != -448 || v[3] != float32(math.Ldexp(1, -9)) || v[4] != 0.5 {
		t.Fatalf("e4m3 decode %v %v", v, err)
	}
	if v, _ := g.Tensors["e5"].Float32s(); v[0] != 57344 || !math.IsInf(float64(v[1]), -1) {
		t.Fatalf("e5m2 decode %v", v)
	}
	if v, _ := g.Tensors["nan"].Float32s(); !math.IsNaN(float64(v[0])) || !math.IsNaN(float64(v[1])) {
		t.Fatalf("e4m3 NaN codes decode to %v", v)
	}
	if v, _ := g.Tensors["u8"].Int64s(); v[1] != 200 || v[2] != 255 {
		t.Fatalf("U8 %v", v)
	}
	if v, _ := g.Tensors["i8"].Int64s(); v[1] != -56 || v[2] != -1 {
		t.Fatalf("I8 %v", v)
	}
	if _, err := g.Tensors["u8"].Float32s(); err == nil {
		t.Fatal("U8 decoded as floats")
	}
	// npz: U8 and I8 as |u1 and |i1; FP8 as its codes in |u1.
	buf.Reset()
	if err := f.WriteNpz(&buf); err != nil {
		t.Fatal(err)
	}
	h, err := ParseNpz(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if x := h.Tensors["e4"]; x.DType != U8 || !bytes.Equal(x.Data, e4.Data) {
		t.Fatalf("npz e4: %s %x", x.DType, x.Data)
	}
	if x := h.Tensors["i8"]; x.DType != I8 || !bytes.Equal(x.Data, i8.Data) {
		t.Fatalf("npz i8: %s %x", x.DType, x.Data)
	}
	if _, err := NewBytes("x", F32, []int{1}, []byte{1}); err == nil {
		t.Fatal("NewBytes took F32")
	}
}

func TestNpyV1Refused(t *testing.T) {
	_, err := parseNpyHeader("{'descr': '|V1', 'fortran_order': False, 'shape': (4,), }")
	if err == nil || !strings.Contains(err.Error(), "a.view(np.uint8)") {
		t.Fatalf("|V1: %v", err)
	}
}
