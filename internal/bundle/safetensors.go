package bundle

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/attnvet/attnvet/internal/safeio"
)

// maxHeaderSize is the largest safetensors JSON header accepted, as in the
// reference implementation.
const maxHeaderSize = 100_000_000

const metadataKey = "__metadata__"

// otherSafetensorsDTypes are dtypes the safetensors format defines that this
// package does not support; they get a "not supported" error rather than
// "unknown".
var otherSafetensorsDTypes = map[string]bool{
	"BOOL": true, "U16": true, "I16": true, "U32": true, "U64": true,
	"F8_E8M0": true, "F6_E2M3": true, "F6_E3M2": true, "F4": true,
	"C64": true, "F8_E4M3FNUZ": true, "F8_E5M2FNUZ": true,
}

// ParseSafetensors parses a safetensors file. b is kept: every tensor's Data
// is a view into it. The data buffer must be exactly the tensors' buffers,
// disjoint and without gaps, as the format requires.
func ParseSafetensors(b []byte) (*File, error) {
	return parseSafetensors(b, &budget{limit: safeio.DefaultLimit, used: int64(len(b))})
}

func parseSafetensors(b []byte, m *budget) (*File, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("safetensors: file is %d bytes, too short for the 8-byte header length", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > uint64(len(b)-8) {
		return nil, fmt.Errorf("safetensors: header length %d exceeds file size %d", n, len(b))
	}
	if n > maxHeaderSize {
		return nil, fmt.Errorf("safetensors: header length %d exceeds the %d-byte limit", n, maxHeaderSize)
	}
	if err := m.take("the safetensors header (JSON)", int64(n)*safeio.JSONFactor); err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	hdr := b[8 : 8+n]
	buf := b[8+n:]

	f := NewFile()
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("safetensors: header is not valid JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("safetensors: header is not a JSON object")
	}
	sawMeta := false
	var spans []span
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("safetensors: header is not valid JSON: %v", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("safetensors: header is not valid JSON: unexpected %v", tok)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("safetensors: header is not valid JSON: %v", err)
		}
		if name == metadataKey {
			if sawMeta {
				return nil, fmt.Errorf("safetensors: duplicate %s in header", metadataKey)
			}
			sawMeta = true
			var m map[string]string
			if err := json.Unmarshal(raw, &m); err != nil {
				return nil, fmt.Errorf("safetensors: %s must map strings to strings: %v", metadataKey, err)
			}
			for k, v := range m {
				f.Metadata[k] = v
			}
			continue
		}
		if _, dup := f.Tensors[name]; dup {
			return nil, tensorErrorf(name, "duplicate tensor name in header")
		}
		t, sp, err := parseTensorInfo(name, raw, buf)
		if err != nil {
			return nil, err
		}
		spans = append(spans, sp)
		f.Tensors[name] = t
		f.Order = append(f.Order, name)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, fmt.Errorf("safetensors: header is not valid JSON: %v", err)
	}
	if tok, err := dec.Token(); err != io.EOF {
		if err != nil {
			return nil, fmt.Errorf("safetensors: header is not valid JSON: %v", err)
		}
		return nil, fmt.Errorf("safetensors: trailing data after header JSON object: %v", tok)
	}
	if err := checkLayout(spans, len(buf)); err != nil {
		return nil, err
	}
	return f, nil
}

// span is where a tensor's bytes lie in the data buffer.
type span struct {
	name       string
	begin, end int
}

// checkLayout requires what the format does: the tensors' buffers, in
// order of their offsets, tile the data buffer exactly, each beginning
// where the one before ends. An overlap (one tensor aliasing another), a
// gap or trailing bytes is an error naming the tensors.
func checkLayout(spans []span, size int) error {
	slices.SortStableFunc(spans, func(a, b span) int {
		if a.begin != b.begin {
			return a.begin - b.begin
		}
		return a.end - b.end
	})
	at, prev := 0, ""
	for _, s := range spans {
		switch {
		case s.begin < at:
			return fmt.Errorf("safetensors: tensors %s and %s overlap: %s's data_offsets [%d, %d] begin inside %s's bytes (which end at %d); each tensor needs bytes of its own",
				displayName(prev), displayName(s.name), displayName(s.name), s.begin, s.end, displayName(prev), at)
		case s.begin > at && prev == "":
			return fmt.Errorf("safetensors: bytes [0, %d) of the data buffer belong to no tensor (the first, %s, begins at %d); the format allows no gaps", s.begin, displayName(s.name), s.begin)
		case s.begin > at:
			return fmt.Errorf("safetensors: bytes [%d, %d) of the data buffer, between tensors %s and %s, belong to no tensor; the format allows no gaps", at, s.begin, displayName(prev), displayName(s.name))
		}
		at, prev = s.end, s.name
	}
	if at != size {
		if prev == "" {
			return fmt.Errorf("safetensors: the %d-byte data buffer belongs to no tensor; the format allows no trailing bytes", size)
		}
		return fmt.Errorf("safetensors: %d bytes after the last tensor, %s (which ends at %d), belong to no tensor; the format allows no trailing bytes", size-at, displayName(prev), at)
	}
	return nil
}

func parseTensorInfo(name string, raw json.RawMessage, buf []byte) (*Tensor, span, error) {
	if name == "" {
		return nil, span{}, fmt.Errorf("safetensors: empty tensor name in header")
	}
	var info map[string]json.RawMessage
	if err := json.Unmarshal(raw, &info); err != nil || info == nil {
		return nil, span{}, tensorErrorf(name, "header entry is not a JSON object")
	}
	for _, k := range []string{"dtype", "shape", "data_offsets"} {
		if _, ok := info[k]; !ok {
			return nil, span{}, tensorErrorf(name, "header entry has no %q", k)
		}
	}
	var dts string
	if err := json.Unmarshal(info["dtype"], &dts); err != nil {
		return nil, span{}, tensorErrorf(name, "dtype is not a string")
	}
	dt := DType(dts)
	if !dt.Valid() {
		if otherSafetensorsDTypes[dts] {
			return nil, span{}, tensorErrorf(name, "dtype %s not supported", dts)
		}
		return nil, span{}, tensorErrorf(name, "unknown dtype %q", dts)
	}
	shape, err := jsonInts(info["shape"])
	if err != nil {
		return nil, span{}, tensorErrorf(name, "shape: %v", err)
	}
	for i, d := range shape {
		if d < 0 {
			return nil, span{}, tensorErrorf(name, "negative dimension %d at axis %d of shape %v", d, i, shape)
		}
	}
	offs, err := jsonInts(info["data_offsets"])
	if err != nil {
		return nil, span{}, tensorErrorf(name, "data_offsets: %v", err)
	}
	if len(offs) != 2 {
		return nil, span{}, tensorErrorf(name, "data_offsets has %d entries, want 2", len(offs))
	}
	begin, end := offs[0], offs[1]
	if begin < 0 || end < begin || end > len(buf) {
		return nil, span{}, tensorErrorf(name, "data_offsets [%d, %d] out of range of the %d-byte data buffer", begin, end, len(buf))
	}
	n, err := shapeLen(shape)
	if err != nil {
		return nil, span{}, tensorErrorf(name, "%v", err)
	}
	size, ok := mulInt(n, dt.ItemSize())
	if !ok {
		return nil, span{}, tensorErrorf(name, "shape %v overflows: too many bytes", shape)
	}
	if end-begin != size {
		return nil, span{}, tensorErrorf(name, "data_offsets [%d, %d] span %d bytes, but shape %v of %s needs %d", begin, end, end-begin, shape, dt, size)
	}
	return &Tensor{Name: name, DType: dt, Shape: shape, Data: buf[begin:end:end]}, span{name, begin, end}, nil
}

// jsonInts decodes a JSON array of integers (no fractions, no exponents,
// no strings), each fitting in int.
func jsonInts(raw json.RawMessage) ([]int, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil || elems == nil {
		return nil, errors.New("not a JSON array of integers")
	}
	out := make([]int, len(elems))
	for i, e := range elems {
		s := string(bytes.TrimSpace(e))
		if !isIntLiteral(s) {
			return nil, fmt.Errorf("element %d (%s) is not an integer", i, truncate(s))
		}
		v, err := strconv.ParseInt(s, 10, strconv.IntSize)
		if err != nil {
			return nil, fmt.Errorf("element %d (%s) is out of range", i, truncate(s))
		}
		out[i] = int(v)
	}
	return out, nil
}

func isIntLiteral(s string) bool {
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strconv.Quote(s)[1 : len(strconv.Quote(s))-1]
}

// WriteSafetensors writes f as safetensors: tensors sorted by name, data
// packed in that order with no gaps, metadata keys sorted (the whole
// __metadata__ entry omitted when empty), and the JSON header padded with
// spaces to a multiple of 8 bytes, as the reference implementation does.
// Output is deterministic. Tensor data is not 8-byte aligned when tensors of
// different item sizes interleave; readers (the reference included) accept
// that.
func (f *File) WriteSafetensors(w io.Writer) error {
	names := sortedNames(f)
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	first := true
	if len(f.Metadata) > 0 {
		keys := make([]string, 0, len(f.Metadata))
		for k := range f.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		hdr.WriteString(`"` + metadataKey + `":{`)
		for i, k := range keys {
			v := f.Metadata[k]
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return fmt.Errorf("safetensors: metadata key %q: key and value must be valid UTF-8", k)
			}
			if i > 0 {
				hdr.WriteByte(',')
			}
			writeJSONString(&hdr, k)
			hdr.WriteByte(':')
			writeJSONString(&hdr, v)
		}
		hdr.WriteByte('}')
		first = false
	}
	offset := 0
	for _, name := range names {
		t := f.Tensors[name]
		if err := checkName(name, t, true); err != nil {
			return err
		}
		if name == metadataKey {
			return tensorErrorf(name, "name is reserved for metadata in safetensors")
		}
		if _, err := t.check(); err != nil {
			return err
		}
		end := offset + len(t.Data)
		if end < offset {
			return tensorErrorf(name, "data offsets overflow")
		}
		if !first {
			hdr.WriteByte(',')
		}
		first = false
		writeJSONString(&hdr, name)
		hdr.WriteString(`:{"dtype":"` + string(t.DType) + `","shape":[`)
		for i, d := range t.Shape {
			if i > 0 {
				hdr.WriteByte(',')
			}
			hdr.WriteString(strconv.Itoa(d))
		}
		fmt.Fprintf(&hdr, `],"data_offsets":[%d,%d]}`, offset, end)
		offset = end
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	if hdr.Len() > maxHeaderSize {
		return fmt.Errorf("safetensors: header would be %d bytes, over the %d-byte limit", hdr.Len(), maxHeaderSize)
	}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(hdr.Len()))
	if _, err := w.Write(lenBuf[:]); err != nil {
		return err
	}
	if _, err := w.Write(hdr.Bytes()); err != nil {
		return err
	}
	for _, name := range names {
		if _, err := w.Write(f.Tensors[name].Data); err != nil {
			return err
		}
	}
	return nil
}

func writeJSONString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // a string always encodes
	buf.Truncate(buf.Len() - 1) // Encode appends a newline
}

func sortedNames(f *File) []string {
	names := make([]string, 0, len(f.Tensors))
	for k := range f.Tensors {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}
