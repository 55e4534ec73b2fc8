package wandb

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadLines checks that reading a file in chunks of any size yields exactly its complete lines, in
// order, once each, each with where it lies in the file, whatever the content.
func FuzzReadLines(f *testing.F) {
	f.Add([]byte("{\"_step\":1}\n{\"_step\":2}\n{\"_st"), 1, 10)
	f.Add([]byte("\n\n{}\r\n  \n{\"a\":\"b\\n\"}\n"), 2, 1)
	f.Add([]byte("no newline at all"), 5, 100)
	f.Fuzz(func(t *testing.T, content []byte, maxLines, maxBytes int) {
		if maxLines < 1 || maxLines > 1000 || maxBytes < 1 || maxBytes > 1<<20 {
			t.Skip()
		}
		path := filepath.Join(t.TempDir(), "h.jsonl")
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		var want []string
		full := content[:bytes.LastIndexByte(content, '\n')+1]
		for _, l := range strings.SplitAfter(string(full), "\n") {
			if l = strings.TrimRight(l, "\r\n"); keepJSONObject([]byte(l)) {
				want = append(want, l)
			}
		}
		var got []string
		var off int64
		for range len(content) + 2 {
			lines, spans, next, more, err := readSpans(path, off, maxLines, maxBytes, false, keepJSONObject)
			if err != nil {
				t.Fatal(err)
			}
			if len(spans) != len(lines) {
				t.Fatalf("%d spans for %d lines", len(spans), len(lines))
			}
			for i, sp := range spans {
				if sp.start < off || sp.end > next || sp.start >= sp.end || (i > 0 && sp.start < spans[i-1].end) ||
					strings.TrimRight(string(content[sp.start:sp.end]), "\r\n") != lines[i] || content[sp.end-1] != '\n' {
					t.Fatalf("line %q has span %+v in a read from %d to %d", lines[i], sp, off, next)
				}
			}
			if next < off || next > int64(len(full)) {
				t.Fatalf("offset went from %d to %d in a file with %d bytes of whole lines", off, next, len(full))
			}
			got = append(got, lines...)
			if !more && next == off {
				break
			}
			off = next
		}
		if off != int64(len(full)) {
			t.Errorf("stopped at byte %d, want %d", off, len(full))
		}
		if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

func TestShiftStep(t *testing.T) {
	for in, want := range map[string]string{
		`{"_step":5,"loss":1}`:        `{"_step":105,"loss":1}`,
		`{"loss":1, "_step" : 7}`:     `{"loss":1, "_step" : 107}`,
		`{"loss":NaN}`:                `{"loss":NaN}`,
		`{"_step":1,"x":{"_step":2}}`: `{"_step":101,"x":{"_step":2}}`,
	} {
		if got := shiftStep(in, 100); got != want {
			t.Errorf("shiftStep(%s) = %s, want %s", in, got, want)
		}
	}
}
