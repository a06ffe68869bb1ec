package summary

import (
	"io"
	"strings"

	"github.com/attnvet/attnvet/internal/safeio"
)

// printableLines escapes control characters (safeio.Printable) in what
// is written through it, line by line, keeping the newlines: the merge
// summary echoes labels, target names, edge classes and cases from the
// merged files, which are input.
type printableLines struct{ w io.Writer }

func (p printableLines) Write(b []byte) (int, error) {
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		lines[i] = safeio.Printable(l)
	}
	if _, err := io.WriteString(p.w, strings.Join(lines, "\n")); err != nil {
		return 0, err
	}
	return len(b), nil
}

// clipAtComma is s cut to at most n bytes at its last ", " before n, or
// at a rune boundary when it has none there.
func clipAtComma(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if i := strings.LastIndex(s[:n], ","); i >= 0 {
		return s[:i]
	}
	for n > 0 && n < len(s) && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}
