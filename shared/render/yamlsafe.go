package render

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// marshalJSON marshals v to JSON that YAML parsers read back unchanged.
//
// Kustomize reads its files as YAML, and JSON is YAML except for a few
// characters that JSON allows raw inside strings but YAML does not (DEL, the
// C1 controls, U+FFFE, U+FFFF) or reads as a line break (U+0085, and U+2028 and
// U+2029 which encoding/json escapes already) or as a byte order mark
// (U+FEFF). Those are written as \u escapes, which both JSON and YAML
// double-quoted strings read as the character itself. They can only appear
// inside JSON strings, so the rewrite changes no structure.
func marshalJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if !needsEscape(b) {
		return b, nil
	}
	var sb strings.Builder
	sb.Grow(len(b) + 16)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if yamlUnsafe(r) {
			fmt.Fprintf(&sb, `\u%04x`, r)
		} else {
			sb.Write(b[i : i+size])
		}
		i += size
	}
	return []byte(sb.String()), nil
}

func needsEscape(b []byte) bool {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if yamlUnsafe(r) {
			return true
		}
		i += size
	}
	return false
}

// yamlUnsafe reports whether r may not appear raw in a YAML double-quoted
// string, or would not be read back as itself. Characters below U+0020 are
// escaped by encoding/json already.
func yamlUnsafe(r rune) bool {
	switch {
	case r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x2028, r == 0x2029, r == 0xfeff, r == 0xfffe, r == 0xffff:
		return true
	}
	return false
}
