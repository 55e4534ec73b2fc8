package runs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// The record's JSON is standard JSON extended, as W&B's files are, with the
// bare literals NaN, Infinity and -Infinity for non-finite floats (what
// Python's json module writes). Encoding is done here rather than with
// encoding/json, which refuses non-finite floats and is several times slower
// for the small flat maps of a history row.

// AppendJSON appends v encoded as one line of record JSON (no newline):
// object keys sorted, non-finite floats as NaN, Infinity, -Infinity. It
// handles nil, bool, string, every integer and float type, json.Number,
// map[string]any, []any and the common typed slices and maps directly, and
// falls back to encoding/json for anything else.
func AppendJSON(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case string:
		return appendString(b, x), nil
	case float64:
		return appendFloat(b, x, 64), nil
	case float32:
		return appendFloat(b, float64(x), 32), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int16:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int8:
		return strconv.AppendInt(b, int64(x), 10), nil
	case uint:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint16:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint8:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case json.Number:
		if !json.Valid([]byte(x)) {
			return b, fmt.Errorf("invalid json.Number %q", string(x))
		}
		return append(b, x...), nil
	case map[string]any:
		return appendObject(b, x)
	case map[string]float64:
		return appendObject(b, x)
	case map[string]int:
		return appendObject(b, x)
	case map[string]string:
		return appendObject(b, x)
	case []any:
		return appendArray(b, x)
	case []float64:
		return appendArray(b, x)
	case []float32:
		return appendArray(b, x)
	case []int:
		return appendArray(b, x)
	case []int64:
		return appendArray(b, x)
	case []string:
		return appendArray(b, x)
	}
	js, err := json.Marshal(v)
	if err != nil {
		return b, fmt.Errorf("encode %T: %w", v, err)
	}
	return append(b, js...), nil
}

// appendObject writes m with its keys sorted; up to 32 keys need no allocation (a history row).
func appendObject[V any](b []byte, m map[string]V) ([]byte, error) {
	var stack [32]string
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = AppendJSON(b, m[k]); err != nil {
			return b, fmt.Errorf("key %q: %w", k, err)
		}
	}
	return append(b, '}'), nil
}

func appendArray[V any](b []byte, s []V) ([]byte, error) {
	if s == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '[')
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = AppendJSON(b, v); err != nil {
			return b, fmt.Errorf("index %d: %w", i, err)
		}
	}
	return append(b, ']'), nil
}

// appendFloat writes f as encoding/json does (shortest repr, exponent form
// below 1e-6 and from 1e21 on), and non-finite values as W&B literals.
func appendFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Markers stand in for the bare literals while encoding/json decodes a line;
// the NUL byte keeps them from meeting a real value in practice (a string
// that is exactly one of them would be read back as the float).
const (
	markNaN    = "\x00NaN"
	markPosInf = "\x00Infinity"
	markNegInf = "\x00-Infinity"
)

// UnmarshalJSON decodes one value of record JSON: standard JSON plus the bare
// literals NaN, Infinity and -Infinity. Numbers decode as float64, objects as
// map[string]any, arrays as []any.
func UnmarshalJSON(data []byte) (any, error) {
	quoted, changed := quoteLiterals(data)
	var v any
	if err := json.Unmarshal(quoted, &v); err != nil {
		return nil, err
	}
	if changed {
		v = restoreLiterals(v)
	}
	return v, nil
}

// quoteLiterals rewrites bare NaN/Infinity/-Infinity outside strings into
// marker strings. It returns data itself when there is nothing to rewrite.
func quoteLiterals(data []byte) ([]byte, bool) {
	if !bytes.Contains(data, []byte("NaN")) && !bytes.Contains(data, []byte("Infinity")) {
		return data, false
	}
	out := make([]byte, 0, len(data)+16)
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inString {
			out = append(out, c)
			switch c {
			case '\\':
				if i+1 < len(data) {
					i++
					out = append(out, data[i])
				}
			case '"':
				inString = false
			}
			continue
		}
		switch {
		case c == '"':
			inString = true
			out = append(out, c)
		case bytes.HasPrefix(data[i:], []byte("NaN")):
			out = append(out, `"\u0000NaN"`...)
			i += len("NaN") - 1
		case bytes.HasPrefix(data[i:], []byte("Infinity")):
			out = append(out, `"\u0000Infinity"`...)
			i += len("Infinity") - 1
		case bytes.HasPrefix(data[i:], []byte("-Infinity")):
			out = append(out, `"\u0000-Infinity"`...)
			i += len("-Infinity") - 1
		default:
			out = append(out, c)
		}
	}
	return out, true
}

func restoreLiterals(v any) any {
	switch x := v.(type) {
	case string:
		switch x {
		case markNaN:
			return math.NaN()
		case markPosInf:
			return math.Inf(1)
		case markNegInf:
			return math.Inf(-1)
		}
	case map[string]any:
		for k, e := range x {
			x[k] = restoreLiterals(e)
		}
	case []any:
		for i, e := range x {
			x[i] = restoreLiterals(e)
		}
	}
	return v
}

// unmarshalObject decodes one line that must hold a JSON object.
func unmarshalObject(data []byte) (map[string]any, error) {
	v, err := UnmarshalJSON(data)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want a JSON object, got %s", describe(v))
	}
	return m, nil
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}
