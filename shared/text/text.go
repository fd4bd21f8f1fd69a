// Package text holds the string handling that more than one package needs.
package text

import "unicode/utf8"

// Unit is what a length limit counts.
type Unit int

const (
	// Bytes counts the bytes of the UTF-8 encoding (the API server's limits).
	Bytes Unit = iota
	// Runes counts characters (GitHub's limits).
	Runes
)

// Ellipsis ends a truncated string.
const Ellipsis = "…"

// length is the length of s in unit u.
func (u Unit) length(s string) int {
	if u == Runes {
		return utf8.RuneCountInString(s)
	}
	return len(s)
}

// Truncate cuts s to at most n units, ellipsis included, on a character
// boundary; s is returned as it is when it fits. A cut string is valid
// UTF-8: an invalid byte in the part kept becomes U+FFFD.
func Truncate(s string, n int, u Unit) string {
	if u.length(s) <= n {
		return s
	}
	room := n - u.length(Ellipsis)
	var out []byte
	for _, r := range s {
		size := 1
		if u == Bytes {
			size = utf8.RuneLen(r)
		}
		if size > room {
			break
		}
		room -= size
		out = utf8.AppendRune(out, r)
	}
	return string(append(out, Ellipsis...))
}
