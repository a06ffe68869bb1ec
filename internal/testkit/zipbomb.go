// Package testkit holds what several packages' tests build the same way:
// the zip-bomb .npz of issue 14 and the kill-a-campaign-then-resume steps.
// Only tests import it.
package testkit

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
)

// NpzBomb is an .npz whose one member, NAME.npy, is an F32 vector of
// zeros that inflates to about total bytes from about total/1000: a zip
// bomb made without holding the inflated bytes (a flushed deflate chunk
// of zeros of up to 16 MiB, repeated: its back-references see only
// zeros). The zip headers tell the inflated size and CRC truthfully.
func NpzBomb(name string, total int64) ([]byte, error) {
	chunk := min(int64(16<<20), total/4*4)
	if chunk <= 0 {
		return nil, fmt.Errorf("NpzBomb: total %d: want at least 4 bytes", total)
	}
	n := (total + chunk - 1) / chunk
	hdr := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }", n*chunk/4)
	hdr += strings.Repeat(" ", 63-(10+len(hdr))%64) + "\n"
	prefix := append(binary.LittleEndian.AppendUint16([]byte("\x93NUMPY\x01\x00"), uint16(len(hdr))), hdr...)
	var z bytes.Buffer
	fw, err := flate.NewWriter(&z, flate.BestCompression)
	if err != nil {
		return nil, err
	}
	zeros := make([]byte, chunk)
	fw.Write(prefix)
	fw.Write(zeros)
	fw.Flush()
	head := z.Len()
	fw.Write(zeros)
	fw.Flush()
	rep := append([]byte(nil), z.Bytes()[head:]...)
	z.Truncate(head)
	crc := crc32.Update(crc32.Update(0, crc32.IEEETable, prefix), crc32.IEEETable, zeros)
	for i := int64(1); i < n; i++ {
		z.Write(rep)
		crc = crc32.Update(crc, crc32.IEEETable, zeros)
	}
	z.Write([]byte{0x03, 0x00}) // a final empty block
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: name + ".npy", Method: zip.Deflate, CRC32: crc,
		CompressedSize64: uint64(z.Len()), UncompressedSize64: uint64(len(prefix)) + uint64(n*chunk)})
	if err != nil {
		return nil, err
	}
	w.Write(z.Bytes())
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
