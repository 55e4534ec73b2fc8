package data_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mami-lab/mami/data"
)

func TestReadMAMI(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		path string
		want []data.Meme
	}{
		{"bom crlf quoted tabs and newlines", "testdata/mami/quirks/training.csv", []data.Meme{
			{FileName: "1.jpg", Text: "Milk Milk.zip"},
			{FileName: "2.jpg", Text: "WHEN SHE\tSAYS\nSHE CAN PARK", Misogynous: 1, Stereotype: 1},
			{FileName: "3.jpg", Text: `she said "no" "again"`, Misogynous: 1, Shaming: 1, Objectification: 1, Violence: 1},
			{FileName: "4.jpg", Text: `it's 5" tall`},
			{FileName: "5.jpg", Text: "", Misogynous: 1, Violence: 1},
		}},
		{"columns in any order plus extra", "testdata/mami/reordered/training.csv", []data.Meme{
			{FileName: "a.jpg", Text: "hello", Misogynous: 1, Violence: 1},
			{FileName: "b.jpg", Text: "multi\nline"},
		}},
		{"test csv is unlabelled", "testdata/mami/quirks/Test.csv", []data.Meme{
			{FileName: "6.jpg", Text: "TWO\nLINES", Misogynous: -1, Shaming: -1, Stereotype: -1, Objectification: -1, Violence: -1},
			{FileName: "7.jpg", Text: "one line", Misogynous: -1, Shaming: -1, Stereotype: -1, Objectification: -1, Violence: -1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := data.ReadMAMI(ctx, tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestReadMAMIErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		path      string
		line      int
		field     string
		wantInMsg string
	}{
		{"label 2", "testdata/mami/bad_label/training.csv", 5, "misogynous",
			`training.csv:5: column "misogynous": want 0 or 1, got "2"`},
		{"missing column", "testdata/mami/missing_column/training.csv", 1, "violence",
			`training.csv:1: column "violence": missing from the header`},
		{"row with missing columns", "testdata/mami/short_row/training.csv", 3, "stereotype",
			`training.csv:3: column "stereotype": missing: row has 3 of 7 fields`},
		{"duplicate meme", "testdata/mami/duplicate/training.csv", 3, "file_name",
			`training.csv:3: column "file_name": duplicate meme "1.jpg" (first on line 2)`},
		{"unquoted tab", "testdata/mami/extra_field/training.csv", 2, "",
			`training.csv:2: row has 8 fields, header has 7`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := data.ReadMAMI(ctx, tc.path)
			var pe *data.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v (%T), want *data.ParseError", err, err)
			}
			if pe.Line != tc.line || pe.Field != tc.field || pe.File != tc.path {
				t.Errorf("ParseError{File %q, Line %d, Field %q}, want {%q, %d, %q}", pe.File, pe.Line, pe.Field, tc.path, tc.line, tc.field)
			}
			if !strings.Contains(err.Error(), tc.wantInMsg) {
				t.Errorf("message %q does not contain %q", err, tc.wantInMsg)
			}
		})
	}
}

func TestReadMAMIEmptyAndMissing(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "training.csv")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := data.ReadMAMI(context.Background(), empty); err == nil || !strings.Contains(err.Error(), "training.csv:1: empty file") {
		t.Errorf("empty file: err = %v", err)
	}
	if _, err := data.ReadMAMI(context.Background(), filepath.Join(dir, "nope.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want os.ErrNotExist", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := data.ReadMAMI(ctx, "testdata/mami/quirks/training.csv"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}

func TestReadTestLabels(t *testing.T) {
	got, err := data.ReadTestLabels(context.Background(), "testdata/mami/quirks/test_labels.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]data.Meme{
		"6.jpg": {FileName: "6.jpg", Misogynous: 1, Objectification: 1},
		"7.jpg": {FileName: "7.jpg"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	for _, tc := range []struct{ path, want string }{
		{"testdata/mami/bad_test_labels/test_labels.txt", `test_labels.txt:2: column "stereotype": want 0 or 1, got "x"`},
		{"testdata/mami/short_test_labels/test_labels.txt", `test_labels.txt:2: column "shaming": missing: row has 2 of 6 fields`},
	} {
		_, err := data.ReadTestLabels(context.Background(), tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tc.path, err, tc.want)
		}
	}
}

// FuzzReadMAMI checks that any input either parses into memes with labels in
// {-1, 0, 1} and unique non-empty names, or fails with a *ParseError that
// names the file.
func FuzzReadMAMI(f *testing.F) {
	for _, p := range []string{
		"testdata/mami/quirks/training.csv", "testdata/mami/quirks/Test.csv", "testdata/mami/reordered/training.csv",
		"testdata/mami/bad_label/training.csv", "testdata/mami/short_row/training.csv",
	} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const path = "training.csv"
		memes, err := data.DecodeMAMI(context.Background(), bytes.NewReader(in), path)
		if err != nil {
			var pe *data.ParseError
			if !errors.As(err, &pe) || pe.File != path || !strings.HasPrefix(err.Error(), path) {
				t.Fatalf("err = %v (%T), want a *ParseError naming %s", err, err, path)
			}
			return
		}
		seen := map[string]bool{}
		for _, m := range memes {
			if m.FileName == "" || seen[m.FileName] {
				t.Fatalf("empty or duplicate name %q", m.FileName)
			}
			seen[m.FileName] = true
			for _, v := range []int{m.Misogynous, m.Shaming, m.Stereotype, m.Objectification, m.Violence} {
				if v < -1 || v > 1 {
					t.Fatalf("meme %q: label %d", m.FileName, v)
				}
			}
		}
		if bytes.Count(in, []byte("\n"))+1 < len(memes) {
			t.Fatalf("%d memes from %d lines", len(memes), bytes.Count(in, []byte("\n"))+1)
		}
	})
}
