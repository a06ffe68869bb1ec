package worker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxFrame is the largest reply accepted (1 GiB).
const DefaultMaxFrame = 1 << 30

// errFrameTooLarge marks a length prefix beyond the limit: almost always a
// worker that printed text to stdout, which the protocol reserves.
var errFrameTooLarge = errors.New("frame too large")

// WriteFrame writes one frame: the payload's length as 8 bytes little
// endian, then the payload.
func WriteFrame(w io.Writer, payload []byte) error {
	var hdr [8]byte
	binary.LittleEndian.PutUint64(hdr[:], uint64(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// ReadFrame reads one frame of at most max bytes. A clean end of stream
// before the frame is io.EOF; an end inside it is io.ErrUnexpectedEOF; a
// length beyond max is an error wrapping errFrameTooLarge that shows the
// prefix bytes (text a worker printed to stdout shows as such).
func ReadFrame(r io.Reader, max int64) ([]byte, error) {
	return readFrame(r, max, "")
}

// readFrame is ReadFrame with what the limit is, for its error message.
func readFrame(r io.Reader, max int64, limit string) ([]byte, error) {
	if limit == "" {
		limit = fmt.Sprintf("the %d-byte limit", max)
	}
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint64(hdr[:])
	if n > uint64(max) {
		return nil, fmt.Errorf("%w: length prefix %d exceeds %s (rejected unread; prefix bytes %q: the worker must write only frames to stdout; logs go to stderr)",
			errFrameTooLarge, n, limit, hdr[:])
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}
