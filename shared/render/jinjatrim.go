package render

import "strings"

// jinja2Defaults makes a template mean under the Jinja engine what it
// means under the Python runboat's jinja2.Template. The engine applies the
// defaults of chat templates, trim_blocks and lstrip_blocks, where
// jinja2.Template has them off: a block or comment tag ({% %}, {# #})
// without its "-" eats one newline of the text after it and the indentation
// of the text before it (the nearest text, even across other tags). Both
// would break the YAML of kubefiles. So, around each text between tags:
// as many newlines are added at its start as the tags before it will eat,
// and the indentation at its end is printed from an expression (which the
// engine does not strip) when a tag after it would strip it.
//
// Tags are found as the engine finds them: "{%" to the first "%}" and "{{"
// to the first "}}" outside quotes, "{#" to the first "#}". Not undone: a
// "-" on a tag that is not next to the text (as in "{% if %}{%- if %}"),
// which the engine applies to the nearest text; and raw blocks.
func jinja2Defaults(src string) string {
	segs := jinjaSegments(src)
	var b strings.Builder
	b.Grow(len(src) + len(src)/8)
	seenText := false // a text came before
	for i, s := range segs {
		if s.tag != 0 {
			b.WriteString(s.src)
			continue
		}
		first := !seenText
		seenText = true
		text := s.src
		// The tags before: each without "-%}" eats one newline.
		eats, trimmed := 0, false
		for j := i - 1; j >= 0 && segs[j].tag != 0; j-- {
			trimmed = trimmed || segs[j].trimRight
			if segs[j].block() && !segs[j].trimRight {
				eats++
			}
		}
		if !trimmed && eats > 0 {
			if strings.HasPrefix(text, "\r\n") {
				text = strings.Repeat("\r\n", eats) + text
			} else if strings.HasPrefix(text, "\n") {
				text = strings.Repeat("\n", eats) + text
			}
		}
		// The tags after: one without "{%-" strips the indentation.
		strips, trimmed := false, false
		for j := i + 1; j < len(segs) && segs[j].tag != 0; j++ {
			trimmed = trimmed || segs[j].trimLeft
			strips = strips || segs[j].block() && !segs[j].trimLeft
		}
		indent := ""
		if strips && !trimmed {
			cut := strings.TrimRight(text, " \t")
			if cut != text && (strings.HasSuffix(cut, "\n") || cut == "" && first) {
				indent, text = text[len(cut):], cut
			}
		}
		b.WriteString(text)
		if indent != "" {
			b.WriteString(`{{ "` + indent + `" }}`)
		}
	}
	return b.String()
}

// jinjaSegment is a text of a template (tag 0) or a tag: '%' a statement,
// '#' a comment, '{' an expression.
type jinjaSegment struct {
	src                 string
	tag                 byte
	trimLeft, trimRight bool
}

// block tells whether the engine applies its trim_blocks and lstrip_blocks
// to the tag.
func (s jinjaSegment) block() bool { return s.tag == '%' || s.tag == '#' }

// jinjaSegments cuts src into texts and tags.
func jinjaSegments(src string) []jinjaSegment {
	var segs []jinjaSegment
	text := 0
	for i := 0; i+1 < len(src); {
		kind := src[i+1]
		if src[i] != '{' || (kind != '%' && kind != '#' && kind != '{') {
			i++
			continue
		}
		if text < i {
			segs = append(segs, jinjaSegment{src: src[text:i]})
		}
		closer := string(kind) + "}"
		if kind == '{' {
			closer = "}}"
		}
		end := tagEnd(src, i+2, closer, kind != '#')
		tag := src[i:end]
		segs = append(segs, jinjaSegment{
			src: tag, tag: kind,
			trimLeft:  len(tag) > 2 && tag[2] == '-',
			trimRight: len(tag) >= 5 && strings.HasSuffix(tag, "-"+closer),
		})
		i, text = end, end
	}
	if text < len(src) {
		segs = append(segs, jinjaSegment{src: src[text:]})
	}
	return segs
}

// tagEnd returns the index just past closer, searched from i (outside
// quoted strings when quotes count); len(src) when there is none (the
// engine reports the unclosed tag).
func tagEnd(src string, i int, closer string, quotes bool) int {
	var quote byte
	for ; i < len(src); i++ {
		c := src[i]
		switch {
		case quote != 0:
			switch c {
			case '\\':
				i++
			case quote:
				quote = 0
			}
		case quotes && (c == '"' || c == '\''):
			quote = c
		case strings.HasPrefix(src[i:], closer):
			return i + len(closer)
		}
	}
	return len(src)
}
