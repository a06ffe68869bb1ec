package bundle

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/attnvet/attnvet/internal/safeio"
)

const npyMagic = "\x93NUMPY"

// ParseNpz parses a numpy .npz archive (a zip of "<name>.npy" members,
// stored or deflated, as numpy.savez and numpy.savez_compressed write).
// Stored little-endian members are viewed into b without copying. The
// archive carries no metadata: Metadata is empty. Order is archive order.
// It allocates at most safeio.DefaultLimit bytes, b included (ParseLimit).
func ParseNpz(b []byte) (*File, error) {
	return parseNpz(b, &budget{limit: safeio.DefaultLimit, used: int64(len(b))})
}

func parseNpz(b []byte, m *budget) (*File, error) {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, errors.New("npz: zip archive truncated")
	}
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, fmt.Errorf("npz: %v", err)
	}
	f := NewFile()
	for _, zf := range zr.File {
		if strings.HasSuffix(zf.Name, "/") {
			continue // a directory entry; numpy never writes them
		}
		name, ok := strings.CutSuffix(zf.Name, ".npy")
		if !ok {
			return nil, fmt.Errorf("npz: member %q is not a .npy file", zf.Name)
		}
		if name == "" {
			return nil, fmt.Errorf("npz: member %q has an empty tensor name", zf.Name)
		}
		if _, dup := f.Tensors[name]; dup {
			return nil, tensorErrorf(name, "duplicate member in npz")
		}
		data, err := npzMember(b, zf, m)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("member data truncated")
		}
		if err != nil {
			return nil, tensorErrorf(name, "npz member: %w", err)
		}
		t, err := parseNpy(name, data, m)
		if err != nil {
			return nil, err
		}
		f.Tensors[name] = t
		f.Order = append(f.Order, name)
	}
	return f, nil
}

// npzMember returns the uncompressed bytes of one member: a view into b for
// stored members (CRC checked), a fresh buffer for deflated ones.
func npzMember(b []byte, zf *zip.File, m *budget) ([]byte, error) {
	if zf.Flags&0x1 != 0 {
		return nil, errors.New("encrypted members are not supported")
	}
	switch zf.Method {
	case zip.Store:
		if zf.CompressedSize64 != zf.UncompressedSize64 {
			return nil, fmt.Errorf("stored member has compressed size %d != uncompressed size %d", zf.CompressedSize64, zf.UncompressedSize64)
		}
		off, err := zf.DataOffset()
		if err != nil {
			return nil, err
		}
		size := zf.UncompressedSize64
		if off < 0 || uint64(off) > uint64(len(b)) || size > uint64(len(b))-uint64(off) {
			return nil, fmt.Errorf("member data (%d bytes at offset %d) extends past the end of the archive (%d bytes)", size, off, len(b))
		}
		data := b[off : uint64(off)+size : uint64(off)+size]
		if crc32.ChecksumIEEE(data) != zf.CRC32 {
			return nil, errors.New("checksum mismatch")
		}
		return data, nil
	case zip.Deflate:
		// Deflate expands at most 1032:1, so a larger claimed size is a lie
		// (refused before allocating); a true one must fit in the budget.
		size := zf.UncompressedSize64
		off, err := zf.DataOffset()
		if err != nil {
			return nil, err
		}
		if off < 0 || uint64(off) > uint64(len(b)) || zf.CompressedSize64 > uint64(len(b))-uint64(off) {
			return nil, fmt.Errorf("compressed data (%d bytes at offset %d) extends past the end of the archive (%d bytes)", zf.CompressedSize64, off, len(b))
		}
		if size > 1024 && (size-1024)/maxDeflateRatio > zf.CompressedSize64 {
			return nil, fmt.Errorf("claims %d bytes uncompressed from %d compressed, more than deflate can expand", size, zf.CompressedSize64)
		}
		if err := m.take(fmt.Sprintf("inflating it (%d bytes)", size), int64(size)); err != nil {
			return nil, err
		}
		rc, err := zf.Open()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		// The zip reader refuses data past the declared size, and checks
		// the CRC at the end: read exactly the size, then the end.
		data := make([]byte, size)
		if _, err := io.ReadFull(rc, data); err != nil {
			return nil, err
		}
		var one [1]byte
		if _, err := io.ReadFull(rc, one[:]); err != io.EOF {
			if err == nil || errors.Is(err, zip.ErrFormat) {
				err = fmt.Errorf("decompresses to more than the %d bytes its header says", size)
			}
			return nil, err
		}
		return data, nil
	default:
		return nil, fmt.Errorf("compression method %d not supported (want stored or deflated)", zf.Method)
	}
}

// npyHeader is the parsed header dictionary of a .npy file.
type npyHeader struct {
	dtype     DType
	bigEndian bool
	shape     []int
}

// maxDeflateRatio bounds how much deflate can expand: a 258-byte match in
// two bits.
const maxDeflateRatio = 1032

// maxNpyHeader bounds an .npy header. numpy writes a few hundred bytes (and
// reads at most 10000 by default); parsing one of many megabytes would
// build a large tuple for nothing.
const maxNpyHeader = 1 << 20

// parseNpy parses one .npy file. Data is a view into b unless the file is
// big-endian, in which case it is converted into a new buffer.
func parseNpy(name string, b []byte, m *budget) (*Tensor, error) {
	if len(b) < 6 && strings.HasPrefix(npyMagic, string(b)) || len(b) >= 6 && len(b) < 10 && string(b[:6]) == npyMagic {
		return nil, tensorErrorf(name, "npy file truncated (%d bytes)", len(b))
	}
	if len(b) < 6 || string(b[:6]) != npyMagic {
		return nil, tensorErrorf(name, "bad npy magic %q, want \"\\x93NUMPY\"", b[:min(len(b), 6)])
	}
	major, minor := b[6], b[7]
	var hlen, start uint64
	switch major {
	case 1:
		hlen, start = uint64(binary.LittleEndian.Uint16(b[8:])), 10
	case 2, 3:
		if len(b) < 12 {
			return nil, tensorErrorf(name, "npy file truncated (%d bytes)", len(b))
		}
		hlen, start = uint64(binary.LittleEndian.Uint32(b[8:])), 12
	default:
		return nil, tensorErrorf(name, "npy version %d.%d not supported (want 1.0, 2.0 or 3.0)", major, minor)
	}
	if hlen > uint64(len(b))-start {
		return nil, tensorErrorf(name, "npy header length %d extends past the end of the file (%d bytes)", hlen, len(b))
	}
	if hlen > maxNpyHeader {
		return nil, tensorErrorf(name, "npy header length %d exceeds the %d-byte limit", hlen, maxNpyHeader)
	}
	h, err := parseNpyHeader(string(b[start : start+hlen]))
	if err != nil {
		return nil, tensorErrorf(name, "npy header: %v", err)
	}
	data := b[start+hlen:]
	n, err := shapeLen(h.shape)
	if err != nil {
		return nil, tensorErrorf(name, "npy header: %v", err)
	}
	size, ok := mulInt(n, h.dtype.ItemSize())
	if !ok {
		return nil, tensorErrorf(name, "npy header: shape %v overflows: too many bytes", h.shape)
	}
	if len(data) != size {
		return nil, tensorErrorf(name, "npy data is %d bytes, want %d for shape %s of %s", len(data), size, pyShape(h.shape), h.dtype)
	}
	if h.bigEndian {
		if err := m.take(fmt.Sprintf("converting its %d big-endian bytes", size), int64(size)); err != nil {
			return nil, tensorErrorf(name, "%w", err)
		}
		data = swapBytes(data, h.dtype.ItemSize())
	} else {
		data = data[:size:size]
	}
	return &Tensor{Name: name, DType: h.dtype, Shape: h.shape, Data: data}, nil
}

func swapBytes(b []byte, size int) []byte {
	out := make([]byte, len(b))
	for i := 0; i+size <= len(b); i += size {
		for j := 0; j < size; j++ {
			out[i+j] = b[i+size-1-j]
		}
	}
	return out
}

// numpy has no FP8 dtype: FP8 codes and FlashMLA's raw cache bytes travel
// as uint8 ('|u1', read as U8; the metadata says how to read them, e.g.
// kv_layout). ml_dtypes' float8 arrays save as the opaque '|V1' and are
// refused with that advice.
var npyDescrs = map[string]DType{"f2": F16, "f4": F32, "f8": F64, "i4": I32, "i8": I64, "u1": U8, "i1": I8}

// parseNpyHeader parses the Python dict literal of an .npy header.
func parseNpyHeader(s string) (*npyHeader, error) {
	p := &pyParser{s: s}
	v, err := p.parseValue(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.s) {
		return nil, fmt.Errorf("unexpected %s after the dictionary", p.describe())
	}
	d, ok := v.(pyDict)
	if !ok {
		return nil, errors.New("not a Python dict literal")
	}
	for _, k := range d.keys {
		if k != "descr" && k != "fortran_order" && k != "shape" {
			return nil, fmt.Errorf("unexpected key %q", k)
		}
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if _, ok := d.vals[k]; !ok {
			return nil, fmt.Errorf("missing key %q", k)
		}
	}
	h := &npyHeader{}
	descr, ok := d.vals["descr"].(string)
	if !ok {
		return nil, errors.New("descr is not a string (structured dtypes are not supported)")
	}
	order, body := byte('='), descr
	if len(body) > 0 && strings.IndexByte("<>|=", body[0]) >= 0 {
		order, body = body[0], body[1:]
	}
	dt, ok := npyDescrs[body]
	if !ok && body == "V1" {
		return nil, fmt.Errorf("descr %q (an opaque byte, as ml_dtypes' float8 saves) not supported: save FP8 codes as uint8 (a.view(np.uint8)) and declare how to read them", descr)
	}
	if !ok {
		return nil, fmt.Errorf("descr %q not supported (want <f2, <f4, <f8, <i4, <i8, |u1 or |i1)", descr)
	}
	h.dtype = dt
	// '|' (not applicable) and '=' (native) are taken as little-endian:
	// numpy writes '<' or '>' for multi-byte types, and every machine a
	// kernel harness runs on is little-endian.
	h.bigEndian = order == '>'

	shapeT, ok := d.vals["shape"].(pyTuple)
	if !ok {
		return nil, errors.New("shape is not a tuple")
	}
	h.shape = make([]int, len(shapeT))
	for i, e := range shapeT {
		v, ok := e.(int64)
		if !ok {
			return nil, fmt.Errorf("shape element %d is not an integer", i)
		}
		if v < 0 {
			return nil, fmt.Errorf("negative dimension %d at axis %d", v, i)
		}
		if int64(int(v)) != v {
			return nil, fmt.Errorf("dimension %d at axis %d is too large", v, i)
		}
		h.shape[i] = int(v)
	}
	fortran, ok := d.vals["fortran_order"].(bool)
	if !ok {
		return nil, errors.New("fortran_order is not True or False")
	}
	if fortran {
		big := 0
		for _, x := range h.shape {
			if x > 1 {
				big++
			}
		}
		if big > 1 { // with at most one axis longer than 1, both orders are the same
			return nil, fmt.Errorf("fortran_order=True not supported for shape %s; save a C-contiguous array (np.ascontiguousarray)", pyShape(h.shape))
		}
	}
	return h, nil
}

// pyParser parses the subset of Python literals that .npy headers use:
// dicts, tuples, lists, strings, integers (with an optional Python 2 L
// suffix), True, False and None.
type pyParser struct {
	s   string
	pos int
}

type pyDict struct {
	keys []string
	vals map[string]any
}

type pyTuple []any

type pyList []any

type pyNone struct{}

const pyMaxDepth = 32

func (p *pyParser) skipSpace() {
	for p.pos < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.pos]) >= 0 {
		p.pos++
	}
}

func (p *pyParser) describe() string {
	if p.pos >= len(p.s) {
		return "end of header"
	}
	return fmt.Sprintf("%q at offset %d", p.s[p.pos], p.pos)
}

func (p *pyParser) parseValue(depth int) (any, error) {
	if depth > pyMaxDepth {
		return nil, errors.New("nested too deeply")
	}
	p.skipSpace()
	if p.pos >= len(p.s) {
		return nil, errors.New("unexpected end of header")
	}
	switch c := p.s[p.pos]; {
	case c == '{':
		p.pos++
		d := pyDict{vals: map[string]any{}}
		var trailing bool
		err := p.parseSeq('}', func() error {
			k, err := p.parseValue(depth + 1)
			if err != nil {
				return err
			}
			key, ok := k.(string)
			if !ok {
				return errors.New("dict key is not a string")
			}
			p.skipSpace()
			if p.pos >= len(p.s) || p.s[p.pos] != ':' {
				return fmt.Errorf("expected ':' after key %q, found %s", key, p.describe())
			}
			p.pos++
			v, err := p.parseValue(depth + 1)
			if err != nil {
				return err
			}
			if _, dup := d.vals[key]; dup {
				return fmt.Errorf("duplicate key %q", key)
			}
			d.keys = append(d.keys, key)
			d.vals[key] = v
			return nil
		}, &trailing)
		return d, err
	case c == '(' || c == '[':
		p.pos++
		closer := byte(')')
		if c == '[' {
			closer = ']'
		}
		var elems []any
		n := 0
		trailingComma := false
		err := p.parseSeq(closer, func() error {
			v, err := p.parseValue(depth + 1)
			if err != nil {
				return err
			}
			elems = append(elems, v)
			n++
			return nil
		}, &trailingComma)
		if err != nil {
			return nil, err
		}
		if c == '[' {
			return pyList(elems), nil
		}
		if n == 1 && !trailingComma {
			return elems[0], nil // (x) is just x in Python
		}
		return pyTuple(elems), nil
	case c == '\'' || c == '"':
		return p.parseString()
	case c == '-' || c == '+' || (c >= '0' && c <= '9'):
		return p.parseInt()
	default:
		for _, kw := range []struct {
			word string
			val  any
		}{{"True", true}, {"False", false}, {"None", pyNone{}}} {
			if strings.HasPrefix(p.s[p.pos:], kw.word) {
				end := p.pos + len(kw.word)
				if end < len(p.s) && isIdentByte(p.s[end]) {
					break
				}
				p.pos = end
				return kw.val, nil
			}
		}
		return nil, fmt.Errorf("unexpected %s", p.describe())
	}
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// parseSeq parses "elem, elem, ... [,] closer" after the opener, reporting
// whether the last element was followed by a comma.
func (p *pyParser) parseSeq(closer byte, elem func() error, trailingComma *bool) error {
	for {
		p.skipSpace()
		if p.pos >= len(p.s) {
			return fmt.Errorf("unexpected end of header, expected %q", closer)
		}
		if p.s[p.pos] == closer {
			p.pos++
			return nil
		}
		if err := elem(); err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.s) {
			return fmt.Errorf("unexpected end of header, expected %q", closer)
		}
		switch p.s[p.pos] {
		case ',':
			p.pos++
			*trailingComma = true
		case closer:
			p.pos++
			*trailingComma = false
			return nil
		default:
			return fmt.Errorf("expected ',' or %q, found %s", closer, p.describe())
		}
	}
}

func (p *pyParser) parseString() (string, error) {
	quote := p.s[p.pos]
	p.pos++
	var sb strings.Builder
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c == quote:
			p.pos++
			return sb.String(), nil
		case c == '\n':
			return "", errors.New("newline in string literal")
		case c == '\\':
			if p.pos+1 >= len(p.s) {
				return "", errors.New("unterminated string literal")
			}
			e := p.s[p.pos+1]
			p.pos += 2
			switch e {
			case '\\', '\'', '"':
				sb.WriteByte(e)
			case 'n':
				sb.WriteByte('\n')
			case 't':
				sb.WriteByte('\t')
			case 'r':
				sb.WriteByte('\r')
			case '0':
				sb.WriteByte(0)
			case 'x':
				if p.pos+2 > len(p.s) {
					return "", errors.New("bad \\x escape in string literal")
				}
				v, err := strconv.ParseUint(p.s[p.pos:p.pos+2], 16, 8)
				if err != nil {
					return "", errors.New("bad \\x escape in string literal")
				}
				sb.WriteByte(byte(v))
				p.pos += 2
			default:
				return "", fmt.Errorf("unsupported escape \\%c in string literal", e)
			}
		default:
			sb.WriteByte(c)
			p.pos++
		}
	}
	return "", errors.New("unterminated string literal")
}

func (p *pyParser) parseInt() (int64, error) {
	start := p.pos
	if p.s[p.pos] == '-' || p.s[p.pos] == '+' {
		p.pos++
	}
	digits := p.pos
	for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
		p.pos++
	}
	if p.pos == digits {
		return 0, fmt.Errorf("bad number at offset %d", start)
	}
	lit := p.s[start:p.pos]
	if p.pos < len(p.s) && (p.s[p.pos] == 'L' || p.s[p.pos] == 'l') {
		p.pos++ // Python 2 long suffix, written by old numpy
	}
	if p.pos < len(p.s) && (isIdentByte(p.s[p.pos]) || p.s[p.pos] == '.') {
		return 0, fmt.Errorf("bad number at offset %d (only integers are allowed)", start)
	}
	v, err := strconv.ParseInt(lit, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("integer %s out of range", truncate(lit))
	}
	return v, nil
}

// pyShape formats a shape as Python prints a tuple: (), (3,), (2, 3).
func pyShape(shape []int) string {
	var sb strings.Builder
	sb.WriteByte('(')
	for i, d := range shape {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(strconv.Itoa(d))
	}
	if len(shape) == 1 {
		sb.WriteByte(',')
	}
	sb.WriteByte(')')
	return sb.String()
}

// npyPrefix returns the magic, version, header length and header dict of an
// .npy file, laid out as numpy writes it: version 1.0 unless the header
// needs more than 65535 bytes (then 2.0), padded with spaces and a final
// newline so the data starts on a 64-byte boundary.
func npyPrefix(descr string, shape []int) []byte {
	dict := "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + pyShape(shape) + ", }"
	build := func(major byte, lenBytes int) []byte {
		pre := 6 + 2 + lenBytes
		total := pre + len(dict) + 1
		pad := (64 - total%64) % 64
		hlen := len(dict) + pad + 1
		out := make([]byte, 0, pre+hlen)
		out = append(out, npyMagic...)
		out = append(out, major, 0)
		if lenBytes == 2 {
			out = binary.LittleEndian.AppendUint16(out, uint16(hlen))
		} else {
			out = binary.LittleEndian.AppendUint32(out, uint32(hlen))
		}
		out = append(out, dict...)
		for range pad {
			out = append(out, ' ')
		}
		return append(out, '\n')
	}
	if v1 := build(1, 2); len(v1)-10 <= 0xffff {
		return v1
	}
	return build(2, 4)
}

// WriteNpz writes f as a numpy .npz archive (what numpy.savez writes):
// stored members "<name>.npy", sorted by name, in npy format 1.0 with
// little-endian descrs. BF16 has no numpy dtype and is written exactly as
// '<f4'. Metadata is not written (.npz has no place for it). Output is
// deterministic (fixed timestamps).
func (f *File) WriteNpz(w io.Writer) error {
	names := sortedNames(f)
	for _, name := range names {
		t := f.Tensors[name]
		if err := checkName(name, t, false); err != nil {
			return err
		}
		if _, err := t.check(); err != nil {
			return err
		}
		if len(name)+4 > 0xffff {
			return tensorErrorf(name, "name is too long for a zip archive")
		}
	}
	zw := zip.NewWriter(w)
	for _, name := range names {
		t := f.Tensors[name]
		descr := map[DType]string{BF16: "<f4", F16: "<f2", F32: "<f4", F64: "<f8", I32: "<i4", I64: "<i8",
			U8: "|u1", I8: "|i1", F8E4M3: "|u1", F8E5M2: "|u1"}[t.DType] // FP8: its codes (numpy has no FP8 dtype)
		prefix := npyPrefix(descr, t.Shape)
		crc := crc32.Update(0, crc32.IEEETable, prefix)
		dataLen := uint64(len(t.Data))
		if t.DType == BF16 {
			dataLen *= 2
			_ = forBF16AsF32(t.Data, func(chunk []byte) error {
				crc = crc32.Update(crc, crc32.IEEETable, chunk)
				return nil
			})
		} else {
			crc = crc32.Update(crc, crc32.IEEETable, t.Data)
		}
		size := uint64(len(prefix)) + dataLen
		fh := &zip.FileHeader{
			Name:               name + ".npy",
			Method:             zip.Store,
			CRC32:              crc,
			CompressedSize64:   size,
			UncompressedSize64: size,
			ModifiedDate:       0x21, // 1980-01-01, for deterministic output
			CreatorVersion:     20,
			ReaderVersion:      20,
		}
		if !isASCII(fh.Name) && utf8.ValidString(fh.Name) {
			fh.Flags |= 0x800 // UTF-8 name; CreateRaw does not set this itself
		}
		mw, err := zw.CreateRaw(fh)
		if err != nil {
			return tensorErrorf(name, "npz: %v", err)
		}
		if _, err := mw.Write(prefix); err != nil {
			return err
		}
		if t.DType == BF16 {
			err = forBF16AsF32(t.Data, func(chunk []byte) error {
				_, err := mw.Write(chunk)
				return err
			})
		} else {
			_, err = mw.Write(t.Data)
		}
		if err != nil {
			return err
		}
	}
	return zw.Close()
}

// forBF16AsF32 widens BF16 data to F32 (exact) in chunks, calling fn on each.
func forBF16AsF32(data []byte, fn func([]byte) error) error {
	const chunkElems = 16 << 10
	buf := make([]byte, 4*min(chunkElems, len(data)/2))
	for len(data) >= 2 {
		n := min(chunkElems, len(data)/2)
		for i := range n {
			buf[4*i] = 0
			buf[4*i+1] = 0
			buf[4*i+2] = data[2*i]
			buf[4*i+3] = data[2*i+1]
		}
		if err := fn(buf[:4*n]); err != nil {
			return err
		}
		data = data[2*n:]
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
