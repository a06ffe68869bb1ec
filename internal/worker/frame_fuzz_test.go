package worker

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"sync"
	"testing"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/props"
)

// fuzzInputs are a few small cases the fuzzed replies answer (built once).
var fuzzInputs = sync.OnceValue(func() []*problem.Inputs {
	var ins []*problem.Inputs
	for i := 0; len(ins) < 4 && i < 200; i++ {
		c := props.CaseAt(11, i, "")
		c.DType = ""
		in, err := cases.Generate(c, num.BF16)
		if err != nil || in.T*in.H*in.Dv > 4096 {
			continue
		}
		ins = append(ins, in)
	}
	return ins
})

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// readFuzzFrame reads a frame the way exchange does and checks the
// limit: a frame longer than max is rejected after the 8-byte prefix,
// unread; an accepted one is never longer than max.
func readFuzzFrame(t *testing.T, r *countingReader, max int64) ([]byte, error) {
	before := r.n
	b, err := readFrame(r, max, "")
	if errors.Is(err, errFrameTooLarge) {
		if got := r.n - before; got != 8 {
			t.Fatalf("a frame beyond the %d-byte limit was read past its prefix: %d bytes consumed", max, got)
		}
		return nil, err
	}
	if int64(len(b)) > max {
		t.Fatalf("frame of %d bytes accepted beyond the %d-byte limit", len(b), max)
	}
	if err == nil && r.n-before != 8+int64(len(b)) {
		t.Fatalf("frame of %d bytes consumed %d bytes", len(b), r.n-before)
	}
	return b, err
}

// FuzzWorkerFrames feeds a raw byte stream as a worker's stdout: a hello
// frame, then replies to requests 1, 2, 3 of one case, decoded exactly as
// New and Run do (readFrame with the hello limit and replyLimit, Parse,
// adopt, decode), for protocol 1 and 2 hellos. Never a panic; no frame
// beyond its limit is read; a decoded o has the case's shape.
func FuzzWorkerFrames(f *testing.F) {
	ins := fuzzInputs()
	if len(ins) == 0 {
		f.Fatal("no small case")
	}
	frame := func(b []byte) []byte {
		var buf bytes.Buffer
		WriteFrame(&buf, b)
		return buf.Bytes()
	}
	file := func(meta map[string]string, ts ...*bundle.Tensor) []byte {
		g := bundle.NewFile()
		for k, v := range meta {
			g.Metadata[k] = v
		}
		for _, t := range ts {
			g.Add(t)
		}
		var buf bytes.Buffer
		if err := g.WriteSafetensors(&buf); err != nil {
			f.Fatal(err)
		}
		return buf.Bytes()
	}
	for ci, in := range ins {
		n := in.T * in.H * in.Dv
		o, err := bundle.NewFloat32(interop.TO, bundle.F32, []int{in.T, in.H, in.Dv}, make([]float32, n))
		if err != nil {
			f.Fatal(err)
		}
		o16, err := bundle.NewFloat32(interop.TO, bundle.BF16, []int{in.T, in.H, in.Dv}, make([]float32, n))
		if err != nil {
			f.Fatal(err)
		}
		bad, err := bundle.NewFloat32(interop.TO, bundle.F32, []int{in.T, in.H + 1, in.Dv}, make([]float32, n+in.T*in.Dv))
		if err != nil {
			f.Fatal(err)
		}
		hellos := [][]byte{
			file(nil),
			file(map[string]string{interop.KeyInDType: "bf16", interop.KeyOutDType: "bf16"}),
			file(map[string]string{KeyProtocol: "2", KeyMaxInflight: "2", KeyFamilies: "window,sparse", KeyMaxTokens: "64"}),
			file(map[string]string{KeyProtocol: "2", KeyDTypePrefix + interop.TQ: "F32", KeyHeadDims: "8,16,32,64,128", KeySink: "true"}),
		}
		for hi, h := range hellos {
			var s []byte
			s = append(s, frame(h)...)
			for seq := 1; seq <= 3; seq++ {
				meta := map[string]string{KeySeq: strconv.Itoa(seq)}
				switch (hi + seq) % 4 {
				case 0:
					s = append(s, frame(file(meta, o))...)
				case 1:
					s = append(s, frame(file(meta, o16))...)
				case 2:
					meta[interop.KeyError] = "out of memory"
					s = append(s, frame(file(meta))...)
				default:
					s = append(s, frame(file(meta, bad))...)
				}
			}
			f.Add(s, uint8(ci))
		}
	}
	f.Add(frame(file(map[string]string{interop.KeyError: "no GPU"})), uint8(0))
	f.Add(frame(file(map[string]string{KeyProtocol: "3"})), uint8(0))
	f.Add([]byte("Loading model...\n"), uint8(0))
	f.Add(append(frame(file(nil)), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), uint8(1))

	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		in := ins[int(which)%len(ins)]
		r := &countingReader{r: bytes.NewReader(data)}
		hmax := min(int64(DefaultMaxFrame), replyHeader)
		hello, err := readFuzzFrame(t, r, hmax)
		if err != nil {
			return
		}
		hf, err := bundle.Parse(hello)
		if err != nil {
			return
		}
		if _, ok := hf.Metadata[interop.KeyError]; ok {
			return
		}
		w := &Worker{cmd: "fuzz", name: "exec:fuzz", opt: DefaultOptions()}
		if err := w.adopt(hf.Metadata); err != nil {
			return
		}
		if v := w.ProtocolVersion(); v != 1 && v != 2 {
			t.Fatalf("protocol version %d", v)
		}
		_ = w.decl.skipReason(in)
		limit := replyLimit(in, DefaultMaxFrame)
		if want := 8*int64(in.T*in.H*in.Dv) + replyHeader; limit != want {
			t.Fatalf("reply limit %d, want %d", limit, want)
		}
		for seq := int64(1); seq <= 3; seq++ {
			reply, err := readFuzzFrame(t, r, limit)
			if err != nil {
				return
			}
			out, kind, err := w.decode(reply, in, seq)
			if err != nil {
				if kind != Malformed && kind != Reported {
					t.Fatalf("decode error of kind %q: %v", kind, err)
				}
				continue
			}
			if out == nil || len(out.O) != in.T*in.H*in.Dv {
				t.Fatalf("decoded o has %d values, the case needs %d", len(out.O), in.T*in.H*in.Dv)
			}
		}
	})
}
