package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

const python = "/usr/bin/python3"

// needPython skips the test unless /usr/bin/python3 can import every module
// in mods.
func needPython(t *testing.T, mods ...string) {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Skipf("%s not found; install python3-numpy to run the numpy cross-check", python)
	}
	for _, m := range mods {
		if out, err := exec.Command(python, "-c", "import "+m).CombinedOutput(); err != nil {
			t.Skipf("%s cannot import %s (%v: %s); install python3-%s to run this cross-check", python, m, err, bytes.TrimSpace(out), m)
		}
	}
}

func runPython(t *testing.T, script string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, append([]string{"-c", script}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	return out
}

// pyArray is how the Python side reports an array: dtype string, shape and
// the raw bits of each element as integers (so no float formatting is involved).
type pyArray struct {
	Dtype string   `json:"dtype"`
	Shape []int    `json:"shape"`
	Bits  []uint64 `json:"bits"`
}

// bitsOf returns each element's raw little-endian bits, as the Python side reports them.
func bitsOf(x *Tensor) []uint64 {
	size := x.DType.ItemSize()
	out := make([]uint64, len(x.Data)/size)
	for i := range out {
		var v uint64
		for j := size - 1; j >= 0; j-- {
			v = v<<8 | uint64(x.Data[i*size+j])
		}
		out[i] = v
	}
	return out
}

const pyMakeArrays = `
import numpy as np
def arrays():
    f2 = np.array([0.0, -0.0, 1.0, -2.5, 65504.0, 2.0**-24, np.inf, -np.inf, np.nan, 0.1], dtype='<f2').reshape(2, 5)
    f4 = np.array([[0.0, -0.0, 1.0/3.0], [np.float32(3.4028235e38), 2.0**-149, -np.inf]], dtype='<f4')
    f8 = np.array([np.pi, -1e300, 5e-324, np.nan], dtype='<f8')
    i4 = np.array([[[-2**31, 2**31-1], [0, 7]]], dtype='<i4')
    i8 = np.array([-2**63, 2**63-1, 42], dtype='<i8')
    return dict(f2=f2, f4=f4, f8=f8, i4=i4, i8=i8,
                scalar=np.array(1.5, dtype='<f4'), empty=np.zeros((0, 3), dtype='<f8'),
                big=np.arange(6, dtype='>f4').reshape(2, 3), fort=np.asfortranarray(np.arange(4, dtype='<f4')),
                col=np.asfortranarray(np.arange(3, dtype='<i8').reshape(3, 1)))
def report(d):
    out = {}
    for k, a in d.items():
        a = np.array(a, order='C')
        u = {1: 'u1', 2: 'u2', 4: 'u4', 8: 'u8'}[a.dtype.itemsize]
        out[k] = dict(dtype=a.dtype.str, shape=list(a.shape),
                      bits=[int(x) for x in a.astype(a.dtype.newbyteorder('<')).view('<' + u).ravel()])
    return out
`

// TestNumpyWritesWeRead has numpy write .npz files (stored and deflated)
// and checks we read every array bit for bit.
func TestNumpyWritesWeRead(t *testing.T) {
	t.Parallel() // waits on its Python process
	needPython(t, "numpy")
	dir := t.TempDir()
	script := pyMakeArrays + `
import json, sys
d = arrays()
np.savez(sys.argv[1], **d)
np.savez_compressed(sys.argv[2], **d)
print(json.dumps(report(d)))
`
	stored, deflated := filepath.Join(dir, "stored.npz"), filepath.Join(dir, "deflated.npz")
	var want map[string]pyArray
	if err := json.Unmarshal(runPython(t, script, stored, deflated), &want); err != nil {
		t.Fatal(err)
	}
	descrs := map[string]DType{"<f2": F16, "<f4": F32, "<f8": F64, "<i4": I32, "<i8": I64, ">f4": F32}
	for _, path := range []string{stored, deflated} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Tensors) != len(want) {
				t.Fatalf("read %d tensors %q, numpy wrote %d", len(f.Tensors), f.Order, len(want))
			}
			for name, w := range want {
				x := f.Tensors[name]
				if x == nil {
					t.Fatalf("tensor %s missing", name)
				}
				if x.DType != descrs[w.Dtype] || !slices.Equal(x.Shape, w.Shape) {
					t.Errorf("tensor %s: got %s %v, numpy has %s %v", name, x.DType, x.Shape, w.Dtype, w.Shape)
					continue
				}
				if got := bitsOf(x); !slices.Equal(got, w.Bits) {
					t.Errorf("tensor %s: bits %x, numpy has %x", name, got, w.Bits)
				}
			}
			// Spot-check values through the decoders too.
			f2, _ := f.Tensors["f2"].Float32s()
			if f2[4] != 65504 || f2[5] != 0x1p-24 || !math.IsInf(float64(f2[6]), 1) || f2[8] == f2[8] {
				t.Errorf("f2 values %v", f2)
			}
			if i8, _ := f.Tensors["i8"].Int64s(); i8[0] != math.MinInt64 || i8[2] != 42 {
				t.Errorf("i8 values %v", i8)
			}
		})
	}
}

// TestNumpyReadsWhatWeWrite has numpy load an .npz we wrote (allow_pickle
// off) and report every array back.
func TestNumpyReadsWhatWeWrite(t *testing.T) {
	t.Parallel() // waits on its Python process
	needPython(t, "numpy")
	f := NewFile()
	for _, dt := range allDTypes {
		f.Add(makeTensor(t, "t_"+string(dt), dt, []int{3, 4}))
	}
	f.Add(makeTensor(t, "scalar", F64, []int{}))
	f.Add(makeTensor(t, "empty", F16, []int{0, 2}))
	f.Add(makeTensor(t, "rank4", I32, []int{2, 1, 2, 3}))
	f.Add(makeTensor(t, "layer.0/µ", F32, []int{5}))
	path := filepath.Join(t.TempDir(), "ours.npz")
	if err := WriteFileAtomic(path, f.WriteNpz); err != nil {
		t.Fatal(err)
	}
	script := pyMakeArrays + `
import json, sys
with np.load(sys.argv[1], allow_pickle=False) as z:
    d = {k: z[k] for k in z.files}
    assert all(a.flags.c_contiguous for a in d.values())
print(json.dumps(report(d)))
`
	var got map[string]pyArray
	if err := json.Unmarshal(runPython(t, script, path), &got); err != nil {
		t.Fatal(err)
	}
	descrs := map[DType]string{BF16: "<f4", F16: "<f2", F32: "<f4", F64: "<f8", I32: "<i4", I64: "<i8"}
	if len(got) != len(f.Tensors) {
		t.Fatalf("numpy read %d arrays, we wrote %d", len(got), len(f.Tensors))
	}
	for name, x := range f.Tensors {
		t.Run(name, func(t *testing.T) {
			g, ok := got[name]
			if !ok {
				t.Fatalf("numpy did not find %s", name)
			}
			want := x
			if x.DType == BF16 {
				vals, _ := x.Float32s()
				want = mustF32(t, name, F32, x.Shape, vals)
			}
			if g.Dtype != descrs[x.DType] || !slices.Equal(g.Shape, x.Shape) {
				t.Fatalf("numpy has %s %v, we wrote %s %v", g.Dtype, g.Shape, x.DType, x.Shape)
			}
			if b := bitsOf(want); !slices.Equal(g.Bits, b) {
				t.Fatalf("numpy bits %x, ours %x", g.Bits, b)
			}
		})
	}
}

// TestPythonReadsOurSafetensors checks our safetensors output with a small
// hand-written Python reader (json + struct + numpy; torch.frombuffer for
// BF16 when torch is importable, else a bit shift in numpy).
func TestPythonReadsOurSafetensors(t *testing.T) {
	t.Parallel() // waits on its Python process
	needPython(t, "numpy")
	f := NewFile()
	for _, dt := range allDTypes {
		f.Add(makeTensor(t, "t_"+string(dt), dt, []int{2, 3}))
	}
	f.Add(makeTensor(t, "odd_bf16", BF16, []int{3})) // makes later tensors unaligned
	f.Add(makeTensor(t, "scalar", F32, []int{}))
	f.Metadata["kernel"] = "fa3 \"fwd\""
	path := filepath.Join(t.TempDir(), "ours.safetensors")
	if err := WriteFileAtomic(path, f.WriteSafetensors); err != nil {
		t.Fatal(err)
	}
	script := `
import json, struct, sys
import numpy as np
try:
    import torch
except ImportError:
    torch = None
raw = open(sys.argv[1], 'rb').read()
(n,) = struct.unpack('<Q', raw[:8])
assert n % 8 == 0, n
hdr = json.loads(raw[8:8 + n].decode('utf-8'))
buf = raw[8 + n:]
meta = hdr.pop('__metadata__', {})
pos = 0
out = {}
for name, info in sorted(hdr.items(), key=lambda kv: kv[1]['data_offsets']):
    b, e = info['data_offsets']
    assert b == pos, (name, b, pos)  # contiguous, as the reference reader requires
    pos = e
    chunk = buf[b:e]
    dt = info['dtype']
    if dt == 'BF16':
        if torch is not None and len(chunk) > 0:
            v = torch.frombuffer(bytearray(chunk), dtype=torch.bfloat16).float().numpy()
        else:
            v = (np.frombuffer(chunk, dtype='<u2').astype('<u4') << 16).view('<f4')
        bits = [int(x) >> 16 for x in v.astype('<f4').view('<u4')]
    else:
        npdt = {'F16': '<f2', 'F32': '<f4', 'F64': '<f8', 'I32': '<i4', 'I64': '<i8'}[dt]
        a = np.frombuffer(chunk, dtype=npdt)
        u = {2: '<u2', 4: '<u4', 8: '<u8'}[a.dtype.itemsize]
        bits = [int(x) for x in a.view(u)]
    assert int(np.prod(info['shape'])) == len(bits), name
    out[name] = dict(dtype=dt, shape=info['shape'], bits=bits)
assert pos == len(buf), (pos, len(buf))
print(json.dumps(dict(meta=meta, tensors=out)))
`
	var got struct {
		Meta    map[string]string  `json:"meta"`
		Tensors map[string]pyArray `json:"tensors"`
	}
	if err := json.Unmarshal(runPython(t, script, path), &got); err != nil {
		t.Fatal(err)
	}
	if got.Meta["kernel"] != f.Metadata["kernel"] || len(got.Meta) != 1 {
		t.Fatalf("metadata %q", got.Meta)
	}
	for name, x := range f.Tensors {
		g := got.Tensors[name]
		if g.Dtype != string(x.DType) || !slices.Equal(g.Shape, x.Shape) || !slices.Equal(g.Bits, bitsOf(x)) {
			t.Errorf("tensor %s: python read %s %v %x, we wrote %s %v %x", name, g.Dtype, g.Shape, g.Bits, x.DType, x.Shape, bitsOf(x))
		}
	}
}
