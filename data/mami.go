package data

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ParseError reports bad input in a MAMI file: the file, the 1-based line
// the record starts on (0 when the whole file is at fault), the column
// when one is at fault, and what is wrong.
type ParseError struct {
	File  string
	Line  int
	Field string
	Err   error
}

// Error formats the error as `training.csv:17: column "misogynous": want 0
// or 1, got "2"`.
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": column %q", e.Field)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *ParseError) Unwrap() error { return e.Err }

// Column names of the MAMI release.
const (
	ColFileName        = "file_name"
	ColMisogynous      = "misogynous"
	ColShaming         = "shaming"
	ColStereotype      = "stereotype"
	ColObjectification = "objectification"
	ColViolence        = "violence"
	ColText            = "Text Transcription"
)

// labelColumns are the label columns in Meme field order.
var labelColumns = []string{ColMisogynous, ColShaming, ColStereotype, ColObjectification, ColViolence}

// labelPtrs returns pointers to m's labels in labelColumns order.
func labelPtrs(m *Meme) []*int {
	return []*int{&m.Misogynous, &m.Shaming, &m.Stereotype, &m.Objectification, &m.Violence}
}

// newTSVReader returns a CSV reader for a tab-separated MAMI file, with the
// UTF-8 byte order mark skipped. Quoted fields may hold tabs, newlines and
// "" escapes; a stray quote inside an unquoted field is kept literally.
func newTSVReader(r io.Reader) *csv.Reader {
	br := bufio.NewReaderSize(r, 1<<16)
	if b, err := br.Peek(3); err == nil && string(b) == "\uFEFF" {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.Comma = '\t'
	cr.LazyQuotes = true
	cr.FieldsPerRecord = -1
	return cr
}

// csvError converts an encoding/csv error into a ParseError.
func csvError(file string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &ParseError{File: file, Line: pe.StartLine, Err: pe.Err}
	}
	return &ParseError{File: file, Err: err}
}

// ReadMAMI reads a MAMI meme table: training.csv (file_name, the five
// labels and Text Transcription) or Test.csv (file_name and Text
// Transcription; labels are then -1). Columns are found by header name in
// any order (names are matched ignoring case and surrounding spaces); extra
// columns are ignored. The file is tab-separated, may start with a UTF-8
// byte order mark and use CRLF line ends, and transcriptions may be quoted
// (with "" escapes) to hold tabs or newlines. Errors are *ParseError.
func ReadMAMI(ctx context.Context, path string) ([]Meme, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read MAMI table: %w", err)
	}
	memes, err := DecodeMAMI(ctx, f, path)
	return memes, errors.Join(err, f.Close())
}

// DecodeMAMI is [ReadMAMI] on a reader; file names the input in errors.
func DecodeMAMI(ctx context.Context, r io.Reader, file string) ([]Meme, error) {
	cr := newTSVReader(r)
	header, err := cr.Read()
	if err == io.EOF {
		return nil, &ParseError{File: file, Line: 1, Err: errors.New("empty file: want a header line")}
	}
	if err != nil {
		return nil, csvError(file, err)
	}
	cols := map[string]int{}
	for i, h := range header {
		key := strings.ToLower(strings.TrimSpace(h))
		if _, dup := cols[key]; dup && key != "" {
			return nil, &ParseError{File: file, Line: 1, Field: strings.TrimSpace(h), Err: errors.New("duplicate column")}
		}
		cols[key] = i
	}
	col := func(name string) (int, bool) { i, ok := cols[strings.ToLower(name)]; return i, ok }
	need := []string{ColFileName, ColText}
	_, labelled := col(ColMisogynous)
	if labelled {
		need = append(need, labelColumns...)
	}
	idx := map[string]int{}
	for _, name := range need {
		i, ok := col(name)
		if !ok {
			return nil, &ParseError{File: file, Line: 1, Field: name, Err: fmt.Errorf("missing from the header (have %s)", quoteList(header))}
		}
		idx[name] = i
	}
	var memes []Meme
	seen := map[string]int{}
	for {
		if len(memes)%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvError(file, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) > len(header) {
			return nil, &ParseError{File: file, Line: line, Err: fmt.Errorf("row has %d fields, header has %d (unquoted tab in a transcription?)", len(rec), len(header))}
		}
		if len(rec) < len(header) {
			// Name the first needed column (in header order) the row lacks.
			first := ""
			for _, name := range need {
				if i := idx[name]; i >= len(rec) && (first == "" || i < idx[first]) {
					first = name
				}
			}
			if first != "" {
				return nil, &ParseError{File: file, Line: line, Field: first, Err: fmt.Errorf("missing: row has %d of %d fields", len(rec), len(header))}
			}
		}
		m := Meme{Misogynous: -1, Shaming: -1, Stereotype: -1, Objectification: -1, Violence: -1}
		get := func(name string) string { return rec[idx[name]] }
		m.FileName = strings.TrimSpace(get(ColFileName))
		if m.FileName == "" {
			return nil, &ParseError{File: file, Line: line, Field: ColFileName, Err: errors.New("empty")}
		}
		if prev, dup := seen[m.FileName]; dup {
			return nil, &ParseError{File: file, Line: line, Field: ColFileName, Err: fmt.Errorf("duplicate meme %q (first on line %d)", m.FileName, prev)}
		}
		seen[m.FileName] = line
		m.Text = get(ColText)
		if labelled {
			for k, p := range labelPtrs(&m) {
				if *p, err = parseLabel(get(labelColumns[k])); err != nil {
					return nil, &ParseError{File: file, Line: line, Field: labelColumns[k], Err: err}
				}
			}
		}
		memes = append(memes, m)
	}
	return memes, nil
}

func parseLabel(s string) (int, error) {
	switch strings.TrimSpace(s) {
	case "0":
		return 0, nil
	case "1":
		return 1, nil
	}
	return 0, fmt.Errorf("want 0 or 1, got %q", s)
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// ReadTestLabels reads MAMI's test_labels.txt: no header, one meme per line
// as file_name<TAB>misogynous<TAB>shaming<TAB>stereotype<TAB>objectification
// <TAB>violence. It returns the labelled memes (Text empty) by file name.
// Errors are *ParseError.
func ReadTestLabels(ctx context.Context, path string) (map[string]Meme, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read MAMI test labels: %w", err)
	}
	labels, err := readTestLabels(ctx, f, path)
	return labels, errors.Join(err, f.Close())
}

func readTestLabels(ctx context.Context, r io.Reader, file string) (map[string]Meme, error) {
	cr := newTSVReader(r)
	out := map[string]Meme{}
	lines := map[string]int{}
	for {
		if len(out)%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvError(file, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) < 1+len(labelColumns) {
			return nil, &ParseError{File: file, Line: line, Field: labelColumns[max(len(rec)-1, 0)],
				Err: fmt.Errorf("missing: row has %d of %d fields", len(rec), 1+len(labelColumns))}
		}
		if len(rec) > 1+len(labelColumns) {
			return nil, &ParseError{File: file, Line: line, Err: fmt.Errorf("row has %d fields, want %d", len(rec), 1+len(labelColumns))}
		}
		m := Meme{FileName: strings.TrimSpace(rec[0])}
		if m.FileName == "" {
			return nil, &ParseError{File: file, Line: line, Field: ColFileName, Err: errors.New("empty")}
		}
		if prev, dup := lines[m.FileName]; dup {
			return nil, &ParseError{File: file, Line: line, Field: ColFileName, Err: fmt.Errorf("duplicate meme %q (first on line %d)", m.FileName, prev)}
		}
		for k, p := range labelPtrs(&m) {
			if *p, err = parseLabel(rec[1+k]); err != nil {
				return nil, &ParseError{File: file, Line: line, Field: labelColumns[k], Err: err}
			}
		}
		lines[m.FileName] = line
		out[m.FileName] = m
	}
	return out, nil
}
