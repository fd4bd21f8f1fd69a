package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    string
		n    int
		u    Unit
		want string
	}{
		{"fits in bytes", "abc", 3, Bytes, "abc"},
		{"fits in runes", "ééé", 3, Runes, "ééé"},
		{"cut in runes", "abcdef", 4, Runes, "abc…"},
		{"cut in runes, wide characters", "éééééé", 4, Runes, "ééé…"},
		{"cut in bytes", "abcdef", 5, Bytes, "ab…"},
		{"cut in bytes on a character boundary", "aéééé", 7, Bytes, "aé…"},
		{"no room but the ellipsis", "abcdef", 1, Runes, "…"},
		{"invalid UTF-8 kept uncut", "a\xffb", 3, Bytes, "a\xffb"},
		{"invalid UTF-8 in a cut becomes U+FFFD", "\xffbcdefgh", 6, Runes, "\uFFFDbcde…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Truncate(tc.s, tc.n, tc.u)
			if got != tc.want {
				t.Fatalf("Truncate(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
			}
			if got != tc.s && (tc.u.length(got) > tc.n || !utf8.ValidString(got)) {
				t.Errorf("Truncate(%q, %d) = %q: over the limit or invalid UTF-8", tc.s, tc.n, got)
			}
		})
	}
}

// The limits of the callers: an Event note (1024 bytes) and a commit status
// description (140 characters).
func TestTruncateLimits(t *testing.T) {
	long := strings.Repeat("é", 2000)
	if got := Truncate(long, 1024, Bytes); len(got) > 1024 || !strings.HasSuffix(got, Ellipsis) || !utf8.ValidString(got) {
		t.Errorf("note cut to %d bytes, want at most 1024 ending with the ellipsis", len(got))
	}
	if got := Truncate(long, 140, Runes); utf8.RuneCountInString(got) != 140 {
		t.Errorf("description cut to %d characters, want 140", utf8.RuneCountInString(got))
	}
}
