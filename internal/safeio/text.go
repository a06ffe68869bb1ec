package safeio

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// unsafeRune reports runes that must not reach a terminal raw: C0 and C1
// controls and DEL (escape sequences, carriage returns, newlines that
// break a one-line message), line and paragraph separators, and the
// bidirectional overrides that reorder what is shown.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x2028, r == 0x2029, r == 0x061c, r == 0x200e, r == 0x200f,
		r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// Printable returns s with every control character, bidirectional
// override and invalid UTF-8 byte escaped as Go escapes them (\n, \t,
// \x1b, \u202e, \xff), for echoing text taken from input (tensor names,
// paths, a worker's messages) on a terminal. Plain text is unchanged.
func Printable(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return r == utf8.RuneError || unsafeRune(r) })
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.WriteString(s[:i])
	for s = s[i:]; s != ""; {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80 && unsafeRune(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:=@%+,-]+$`)

// ShellQuote quotes s as one POSIX shell word, so a printed command runs
// what it shows when pasted: bare when every byte is plainly safe, else in
// single quotes (nothing inside them is special; a quote in s closes them,
// is written escaped, and reopens them). A word
// holding control characters or invalid UTF-8, which must not reach the
// terminal raw, is written in dollar-single quotes with \xHH escapes
// (POSIX.1-2024, bash, ksh, zsh; an older sh such as dash 0.5.12 reads
// it as a different word, never as a command).
func ShellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	if Printable(s) == s {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	var b strings.Builder
	b.WriteString("$'")
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1, unsafeRune(r), r == '\\', r == '\'':
			// No quote or backslash inside: a shell without $'…' then
			// reads one plain single-quoted word.
			for _, c := range []byte(s[i : i+n]) {
				fmt.Fprintf(&b, `\x%02x`, c)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	b.WriteByte('\'')
	return b.String()
}

// OneLine makes a message one printable line: newlines become "; " and
// other control characters from input are escaped.
func OneLine(s string) string {
	return Printable(strings.ReplaceAll(strings.TrimSpace(s), "\n", "; "))
}
