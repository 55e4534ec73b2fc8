package runs_test

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/mami-lab/mami/runs"
)

func TestAppendJSON(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"nil", nil, "null"},
		{"bool", true, "true"},
		{"int", 42, "42"},
		{"int64", int64(-7), "-7"},
		{"float", 0.5, "0.5"},
		{"float integral", 3.0, "3"},
		{"float small", 1e-7, "1e-7"},
		{"float large", 1e21, "1e+21"},
		{"float32 shortest", float32(0.1), "0.1"},
		{"NaN", math.NaN(), "NaN"},
		{"+Inf", math.Inf(1), "Infinity"},
		{"-Inf", math.Inf(-1), "-Infinity"},
		{"float32 NaN", float32(math.NaN()), "NaN"},
		{"string escapes", "a\"b\\c\nd\te\x01", `"a\"b\\c\nd\te\u0001"`},
		{"unicode kept", "héllo ✓", `"héllo ✓"`},
		{"invalid utf8", "a\xffb", `"a\ufffdb"`},
		{"sorted object", map[string]any{"b": 1, "a": math.Inf(1), "_step": 3}, `{"_step":3,"a":Infinity,"b":1}`},
		{"nested", map[string]any{"m": map[string]float64{"y": math.NaN(), "x": 1}}, `{"m":{"x":1,"y":NaN}}`},
		{"slices", []any{1, "x", []float32{0.25, float32(math.Inf(-1))}}, `[1,"x",[0.25,-Infinity]]`},
		{"json.Number", json.Number("1.50"), "1.50"},
		{"fallback struct", struct{ A int }{2}, `{"A":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runs.AppendJSON(nil, tt.in)
			if err != nil {
				t.Fatalf("AppendJSON(%#v): %v", tt.in, err)
			}
			if string(got) != tt.want {
				t.Errorf("AppendJSON(%#v) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	// For finite values the encoder must agree with encoding/json byte for
	// byte, so files stay readable by every JSON tool.
	vals := []any{0.0, -0.0, 1.0, 123456789.0, 1e20, 1e-6, 9.99e-7, 0.1 + 0.2, math.MaxFloat64,
		math.SmallestNonzeroFloat64, float32(1e-7), float32(3.4e38), "<&>", "\u2028", -12, uint64(1 << 63)}
	for _, v := range vals {
		got, err := runs.AppendJSON(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(v)
		// encoding/json escapes <, >, & and U+2028 for HTML; both forms are
		// the same JSON value.
		var a, b any
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("AppendJSON(%#v) = %s: not JSON: %v", v, got, err)
		}
		_ = json.Unmarshal(want, &b)
		if !reflect.DeepEqual(a, b) || (isNumber(v) && string(got) != string(want)) {
			t.Errorf("AppendJSON(%#v) = %s, encoding/json = %s", v, got, want)
		}
	}
}

func isNumber(v any) bool {
	switch v.(type) {
	case string:
		return false
	}
	return true
}

func TestUnmarshalJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want any
	}{
		{"literals", `{"a":NaN,"b":Infinity,"c":-Infinity,"d":1}`, map[string]any{"a": math.NaN(), "b": math.Inf(1), "c": math.Inf(-1), "d": 1.0}},
		{"literal text in strings kept", `{"NaN":"NaN","s":"-Infinity x","e":"\"NaN"}`, map[string]any{"NaN": "NaN", "s": "-Infinity x", "e": `"NaN`}},
		{"nested", `{"m":{"x":[NaN,2]}}`, map[string]any{"m": map[string]any{"x": []any{math.NaN(), 2.0}}}},
		{"spaces", `{ "a" : Infinity }`, map[string]any{"a": math.Inf(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runs.UnmarshalJSON([]byte(tt.in))
			if err != nil {
				t.Fatalf("UnmarshalJSON(%s): %v", tt.in, err)
			}
			if !equalNaN(got, tt.want) {
				t.Errorf("UnmarshalJSON(%s) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
	for _, bad := range []string{`{"a":}`, `{"a":NaNa}`, `{"a":Inf}`, `nan`} {
		if _, err := runs.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("UnmarshalJSON(%s) succeeded, want an error", bad)
		}
	}
}

// equalNaN is reflect.DeepEqual with NaN equal to NaN.
func equalNaN(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || math.IsNaN(x) && math.IsNaN(y))
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equalNaN(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalNaN(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// FuzzUnmarshalJSON checks that whatever decodes re-encodes to something
// that decodes to the same value.
func FuzzUnmarshalJSON(f *testing.F) {
	for _, s := range []string{
		`{"_step":1,"train/loss":NaN}`, `{"a":"NaN","b":[Infinity,-Infinity]}`, `[1,2,{"x":null}]`,
		`"\u0000NaN"`, `{"s":"\\\"NaN"}`, `-Infinity`, `{"a":1e308,"b":-0}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := runs.UnmarshalJSON(data)
		if err != nil {
			return
		}
		enc, err := runs.AppendJSON(nil, v)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", v, err)
		}
		w, err := runs.UnmarshalJSON(enc)
		if err != nil {
			t.Fatalf("decode of re-encoded %s: %v", enc, err)
		}
		if !equalNaN(v, w) {
			t.Fatalf("round trip changed value: %#v -> %s -> %#v", v, enc, w)
		}
	})
}

func TestRowRoundTripKeepsKeys(t *testing.T) {
	row := map[string]any{"_step": 12, "_runtime": 1.25, "_timestamp": 1.7e9, "train/loss": math.NaN(), "epoch": 2, "note": strings.Repeat("x", 3)}
	enc, err := runs.AppendJSON(nil, row)
	if err != nil {
		t.Fatal(err)
	}
	got, err := runs.UnmarshalJSON(enc)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"_step": 12.0, "_runtime": 1.25, "_timestamp": 1.7e9, "train/loss": math.NaN(), "epoch": 2.0, "note": "xxx"}
	if !equalNaN(got, want) {
		t.Errorf("round trip = %#v, want %#v", got, want)
	}
}

// FuzzReadHistory feeds arbitrary files to the history reader: it must not
// panic, and every row it returns must survive a write/read round trip.
func FuzzReadHistory(f *testing.F) {
	f.Add([]byte("{\"_step\":1,\"train/loss\":NaN}\n{\"_step\":2}\n"))
	f.Add([]byte("{\"_step\":1}\n{\"_st"))
	f.Add([]byte("\n\n{}\n[1]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := runs.ReadHistory(strings.NewReader(string(data)), "fuzz")
		if err != nil {
			return
		}
		var buf []byte
		for _, r := range rows {
			var err error
			if buf, err = runs.AppendJSON(buf, r); err != nil {
				t.Fatalf("re-encode %v: %v", r, err)
			}
			buf = append(buf, '\n')
		}
		again, err := runs.ReadHistory(strings.NewReader(string(buf)), "again")
		if err != nil || len(again) != len(rows) {
			t.Fatalf("re-read: %d rows, %v; want %d", len(again), err, len(rows))
		}
		for i := range rows {
			if !equalNaN(map[string]any(rows[i]), map[string]any(again[i])) {
				t.Fatalf("row %d changed: %v -> %v", i, rows[i], again[i])
			}
		}
	})
}
