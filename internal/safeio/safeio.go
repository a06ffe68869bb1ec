// Package safeio reads the files a user names (bundles, case files,
// results to merge) so that no input can take the machine down: only
// regular files are opened (a FIFO or a device would block or never end),
// and nothing is read past a memory limit. It also renders text taken from
// input safe to print (Printable) and to paste into a shell (ShellQuote).
package safeio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/bits"
	"os"
	"strconv"
	"strings"
)

// DefaultLimit is the memory an input may need unless --max-memory says
// otherwise.
const DefaultLimit int64 = 1 << 30

// JSONFactor is how many bytes of memory decoding one byte of JSON may
// take (the bytes, the decoder's tokens and the values built), so a JSON
// file is refused when JSONFactor times its size is over the limit.
const JSONFactor = 8

// LimitError reports an input that needs more memory than the limit.
type LimitError struct {
	What        string // what needs the memory, e.g. "x.npz (tensor data)"
	Need, Limit int64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s needs about %s of memory, over the %s limit (raise it with --max-memory %s)",
		e.What, formatSize(e.Need, math.Ceil), FormatSize(e.Limit), FormatSize(Suggest(e.Need)))
}

// Suggest is a round limit at least n: the next power of two MiB.
func Suggest(n int64) int64 {
	const mib = 1 << 20
	if n <= mib {
		return mib
	}
	if n > 1<<62 {
		return math.MaxInt64
	}
	return 1 << bits.Len64(uint64(n-1))
}

// Check returns a *LimitError when need is over limit.
func Check(what string, need, limit int64) error {
	if need > limit || need < 0 {
		if need < 0 {
			need = math.MaxInt64
		}
		return &LimitError{What: what, Need: need, Limit: limit}
	}
	return nil
}

// NotRegularError reports a path that is not a regular file.
type NotRegularError struct {
	Path string
	Kind string // "a directory", "a named pipe (FIFO)", …
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is %s, not a regular file", Printable(e.Path), e.Kind)
}

// IsDir reports whether err is a NotRegularError for a directory.
func IsDir(err error) bool {
	var nr *NotRegularError
	return errors.As(err, &nr) && nr.Kind == kindDir
}

const kindDir = "a directory"

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return kindDir
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeIrregular != 0:
		return "an irregular file"
	}
	return "not a regular file"
}

// Open opens path for reading if it is a regular file, without blocking
// on a FIFO, and returns it with its FileInfo.
func Open(path string) (*os.File, fs.FileInfo, error) {
	f, err := openNonblock(path)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, &NotRegularError{Path: path, Kind: kind(fi.Mode())}
	}
	return f, fi, nil
}

// ReadFile reads the regular file path whole, refusing it, before reading,
// when its size is over limit (and stopping at limit should it grow).
func ReadFile(path string, limit int64) ([]byte, error) {
	return readFile(path, limit, 1, "")
}

// ReadJSON reads a JSON file whole, refusing it when decoding it may need
// more than limit (JSONFactor times its size).
func ReadJSON(path string, limit int64) ([]byte, error) {
	return readFile(path, limit, JSONFactor, ", read as JSON")
}

func readFile(path string, limit, factor int64, what string) ([]byte, error) {
	f, fi, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	limitBytes := limit / factor
	over := func(n int64) error {
		need := n
		if n > math.MaxInt64/factor {
			need = math.MaxInt64
		} else {
			need *= factor
		}
		return fmt.Errorf("%s: %w", Printable(path), &LimitError{What: fmt.Sprintf("the file (%d bytes%s)", n, what), Need: need, Limit: limit})
	}
	if fi.Size() > limitBytes {
		return nil, over(fi.Size())
	}
	// The size is a hint: read to EOF (files in /proc say 0), never past
	// max. One spare byte sees EOF without growing (and copying) the buffer.
	buf := make([]byte, 0, max(fi.Size(), 511)+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limitBytes {
			return nil, over(int64(len(buf)))
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// ParseSize reads a byte count: a number with an optional unit, B, KiB,
// MiB, GiB, TiB (K, M, G, T are the same), or KB, MB, GB, TB (powers of
// 1000), e.g. 512MiB, 2GiB, 1.5G.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	mult, ok := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40,
		"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	}[strings.ToLower(unit)]
	v, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || num == "" {
		return 0, fmt.Errorf("%q is not a size (want e.g. 512MiB, 2GiB)", s)
	}
	n := v * mult
	if !(n >= 1) || n > float64(math.MaxInt64)/2 {
		return 0, fmt.Errorf("%q is not a size from 1 byte to 4 EiB", s)
	}
	return int64(n), nil
}

// FormatSize writes n in the largest binary unit that keeps it readable:
// 1GiB, 1.5GiB, 512MiB, 100B.
func FormatSize(n int64) string { return formatSize(n, math.Round) }

// formatSize is FormatSize rounding the tenths with round (math.Ceil for
// a need, so one just over the limit does not print as the limit).
func formatSize(n int64, round func(float64) float64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size {
			if n%u.size == 0 {
				return fmt.Sprintf("%d%s", n/u.size, u.name)
			}
			return strconv.FormatFloat(round(float64(n)/float64(u.size)*10)/10, 'f', 1, 64) + u.name
		}
	}
	return fmt.Sprintf("%dB", n)
}
