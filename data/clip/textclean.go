package clip

import (
	"html"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// cleanText reproduces the reference tokenizer's text cleaning: the subset of
// ftfy.fix_text (6.x, default options) that changes tokens in practice, then
// HTML-unescaping twice, whitespace collapsing and Python-style lowercasing.
func cleanText(s string) string {
	s = fixText(s)
	s = html.UnescapeString(html.UnescapeString(s))
	s = collapseSpace(s)
	return pyLower(s)
}

var terminalEscape = regexp.MustCompile(`\x1b\[[0-9;]*[a-zA-Z]`)

// fixText applies, in ftfy's order: HTML unescaping when the text does not
// look like HTML, terminal-escape removal, mojibake repair, C1 controls to
// Windows-1252, Latin ligatures, fullwidth forms, curly quotes, line breaks,
// control-character removal and NFC.
func fixText(s string) string {
	if !strings.Contains(s, "<") {
		s = html.UnescapeString(s)
	}
	s = terminalEscape.ReplaceAllString(s, "")
	s = fixMojibake(s)
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		switch {
		case r >= 0x80 && r <= 0x9f:
			if w := cp1252High[r-0x80]; w != 0 {
				b.WriteRune(w)
			} else {
				b.WriteRune(r)
			}
		case ligatures[r] != "":
			b.WriteString(ligatures[r])
		case r == 0x3000:
			b.WriteByte(' ')
		case r >= 0xff01 && r < 0xfff0:
			b.WriteString(norm.NFKC.String(string(r)))
		case r == 0x02bc || (r >= 0x2018 && r <= 0x201b):
			b.WriteByte('\'')
		case r >= 0x201c && r <= 0x201f:
			b.WriteByte('"')
		case r == '\r':
			if i+1 >= len(s) || s[i+1] != '\n' {
				b.WriteByte('\n')
			}
		case r == 0x2028 || r == 0x2029:
			b.WriteByte('\n')
		case isControlToRemove(r):
		default:
			b.WriteRune(r)
		}
	}
	return norm.NFC.String(b.String())
}

var ligatures = map[rune]string{
	'Ĳ': "IJ", 'ĳ': "ij", 'ﬀ': "ff", 'ﬁ': "fi", 'ﬂ': "fl",
	'ﬃ': "ffi", 'ﬄ': "ffl", 'ﬅ': "ſt", 'ﬆ': "st",
}

func isControlToRemove(r rune) bool {
	switch {
	case r <= 0x08, r == 0x0b, r >= 0x0e && r <= 0x1f, r == 0x7f:
		return true
	case r >= 0x206a && r <= 0x206f, r == 0xfeff, r >= 0xfff9 && r <= 0xfffc:
		return true
	case r >= 0x1d173 && r <= 0x1d17a, r >= 0xe0000 && r <= 0xe007f:
		return true
	}
	return false
}

// cp1252High maps bytes 0x80..0x9F of Windows-1252 to runes (0 = undefined).
var cp1252High = [32]rune{
	0x20ac, 0, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
	0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017d, 0,
	0, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
	0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0, 0x017e, 0x0178,
}

// sloppy1252Byte returns the byte that r decodes from in "sloppy"
// Windows-1252 (undefined bytes decode to the C1 control of the same value).
func sloppy1252Byte(r rune) (byte, bool) {
	if r < 0x80 {
		return byte(r), true
	}
	if r >= 0x80 && r <= 0xff {
		if r <= 0x9f && cp1252High[r-0x80] != 0 {
			return 0, false
		}
		return byte(r), true
	}
	for i, w := range cp1252High {
		if w == r {
			return byte(0x80 + i), true
		}
	}
	return 0, false
}

// fixMojibake repairs UTF-8 that was decoded as Windows-1252 or Latin-1: a
// lead character (Â..ô) followed by the right number of continuation
// characters whose bytes form one valid multi-byte UTF-8 sequence is
// replaced by the character that sequence encodes. This covers the common
// single-layer case ftfy's fix_encoding repairs ("schÃ¶n" → "schön",
// "â€™" → "’") without its statistical badness heuristic.
func fixMojibake(s string) string {
	rs := []rune(s)
	var out []rune
	changed := false
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		need := 0
		switch {
		case r >= 0xc2 && r <= 0xdf:
			need = 1
		case r >= 0xe0 && r <= 0xef:
			need = 2
		case r >= 0xf0 && r <= 0xf4:
			need = 3
		}
		if need > 0 && i+need < len(rs) {
			buf := []byte{byte(r)}
			ok := true
			for k := 1; k <= need; k++ {
				c, good := sloppy1252Byte(rs[i+k])
				if !good || c < 0x80 || c > 0xbf {
					ok = false
					break
				}
				buf = append(buf, c)
			}
			if ok {
				if dr, size := utf8.DecodeRune(buf); dr != utf8.RuneError && size == len(buf) {
					if !changed {
						out = append(out, rs[:i]...)
						changed = true
					}
					out = append(out, dr)
					i += need
					continue
				}
			}
		}
		if changed {
			out = append(out, r)
		}
	}
	if !changed {
		return s
	}
	return string(out)
}

// isPySpace reports whether Python's str.isspace (and re's \s) holds for r.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// collapseSpace replaces every run of Python whitespace by one space and
// strips both ends.
func collapseSpace(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	pending := false
	for _, r := range s {
		if isPySpace(r) {
			pending = b.Len() > 0
			continue
		}
		if pending {
			b.WriteByte(' ')
			pending = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// pyLower lowercases like Python's str.lower: Unicode full case mapping for
// U+0130 and the Final_Sigma context rule, simple mapping otherwise.
func pyLower(s string) string {
	if !strings.ContainsRune(s, 'Σ') && !strings.ContainsRune(s, 'İ') {
		return strings.ToLower(s)
	}
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		switch r {
		case 'İ':
			b.WriteString("i\u0307")
		case 'Σ':
			if finalSigma(rs, i) {
				b.WriteRune('ς')
			} else {
				b.WriteRune('σ')
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

func isCased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r)
}

func isCaseIgnorable(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk) ||
		r == '\'' || r == '.' || r == ':' || r == 0x2019 || r == 0xb7
}

// finalSigma implements Unicode's Final_Sigma condition at position i.
func finalSigma(rs []rune, i int) bool {
	before := false
	for j := i - 1; j >= 0; j-- {
		if isCaseIgnorable(rs[j]) {
			continue
		}
		before = isCased(rs[j])
		break
	}
	if !before {
		return false
	}
	for j := i + 1; j < len(rs); j++ {
		if isCaseIgnorable(rs[j]) {
			continue
		}
		return !isCased(rs[j])
	}
	return true
}
