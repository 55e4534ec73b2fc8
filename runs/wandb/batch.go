package wandb

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"time"
)

// The line files a file_stream request carries, in the order their records are counted when a batch is cut.
const (
	fileHistory = iota
	fileEvents
	fileOutput
	numFiles
)

// streamFiles names each line file in the run directory and on the server.
var streamFiles = [numFiles]struct{ local, remote string }{
	{HistoryFile, "wandb-history.jsonl"},
	{EventsFile, "wandb-events.jsonl"},
	{OutputFile, "output.log"},
}

// cursorOf returns the cursor of line file f.
func (st *syncState) cursorOf(f int) *cursor {
	switch f {
	case fileHistory:
		return &st.History
	case fileEvents:
		return &st.Events
	}
	return &st.Output
}

// SkippedRecord is a record the server refused as too large (413 Request Entity Too Large), or one larger
// than Options.MaxRequestBytes on its own. It stays in the run directory, is listed in wandb-sync.json and
// is never sent again; the records after it are.
type SkippedRecord struct {
	File   string `json:"file"`           // HistoryFile, EventsFile, OutputFile or SummaryFile
	Step   *int64 `json:"step,omitempty"` // the _step of a history row, as history.jsonl has it
	Offset int64  `json:"offset"`         // byte offset of the line in File (0 for the summary)
	Bytes  int64  `json:"bytes"`          // its size in File
	Reason string `json:"reason"`
}

func (r SkippedRecord) String() string {
	what := r.File + " line at byte " + fmt.Sprint(r.Offset)
	switch {
	case r.File == SummaryFile:
		what = SummaryFile
	case r.Step != nil:
		what = fmt.Sprintf("%s row at step %d", r.File, *r.Step)
	}
	return fmt.Sprintf("%s (%d bytes): %s", what, r.Bytes, r.Reason)
}

// addSkipped records r once: a line by its place in its file, the summary by its latest version only.
func addSkipped(list []SkippedRecord, r SkippedRecord) []SkippedRecord {
	for i, s := range list {
		if s.File == r.File && (s.Offset == r.Offset || r.File == SummaryFile) {
			list[i] = r
			return list
		}
	}
	return append(list, r)
}

// part is what a batch carries of one line file: lines from local byte start, and end, the local offset
// once the part is acknowledged (past blank or torn lines the read consumed).
type part struct {
	text       []string
	spans      []span // where each line lies in the local file
	start, end int64
}

// cut splits p after its first t lines.
func (p part) cut(t int) (part, part) {
	switch {
	case t >= len(p.text):
		return p, part{start: p.end, end: p.end}
	case t <= 0:
		return part{start: p.start, end: p.start}, p
	}
	mid := p.spans[t-1].end
	return part{text: p.text[:t], spans: p.spans[:t], start: p.start, end: mid},
		part{text: p.text[t:], spans: p.spans[t:], start: mid, end: p.end}
}

// batch is one file_stream request: the records it carries (history, system metrics and output lines, the
// summary) and what it reports. It is acknowledged against the state at the time it is sent (ack), so a
// batch can be cut into parts sent one after the other.
type batch struct {
	files      [numFiles]part
	summary    string // the whole summary on one line; "" when unchanged
	summarySHA string // of summary, or of a summary too large to read
	bigSummary int64  // size of a changed summary.json larger than MaxRequestBytes: skipped, not sent
	uploaded   []string
	preempting bool
	complete   bool
	exitCode   int
	more       bool // the limits stopped the read: build again at once
}

func (b *batch) empty() bool {
	return b.records() == 0 && len(b.uploaded) == 0 && b.bigSummary == 0 && !b.preempting && !b.complete
}

// records counts the lines and summary b carries.
func (b *batch) records() int {
	n := 0
	for _, p := range b.files {
		n += len(p.text)
	}
	if b.summary != "" {
		n++
	}
	return n
}

// split cuts b in two halves by records, in the order history, events, output, summary. The first half
// carries only records; the second also what b reports (uploaded names, preempting, complete).
func (b *batch) split() (*batch, *batch) {
	k := b.records() / 2
	first := &batch{}
	second := &batch{uploaded: b.uploaded, preempting: b.preempting, complete: b.complete, exitCode: b.exitCode}
	for f, p := range b.files {
		t := min(k, len(p.text))
		k -= t
		first.files[f], second.files[f] = p.cut(t)
	}
	if b.summary != "" {
		if k > 0 {
			first.summary, first.summarySHA = b.summary, b.summarySHA
		} else {
			second.summary, second.summarySHA = b.summary, b.summarySHA
		}
	}
	return first, second
}

// takeOne removes the only record of b and returns it as a batch of its own, with where it lies as a
// SkippedRecord without a reason.
func (b *batch) takeOne(stepOffset int64) (*batch, SkippedRecord) {
	only := b.nothing()
	for f := range b.files {
		p := b.files[f]
		if len(p.text) == 0 {
			continue
		}
		sp := p.spans[0]
		rec := SkippedRecord{File: streamFiles[f].local, Offset: sp.start, Bytes: sp.end - sp.start}
		if f == fileHistory {
			if s, ok := lineStep([]byte(p.text[0])); ok {
				s -= stepOffset
				rec.Step = &s
			}
		}
		only.files[f] = p
		b.files[f] = part{start: p.end, end: p.end}
		return only, rec
	}
	only.summary, only.summarySHA = b.summary, b.summarySHA
	b.summary = ""
	return only, SkippedRecord{File: SummaryFile, Bytes: int64(len(only.summary))}
}

// nothing is a batch that carries nothing and leaves the offsets where b starts.
func (b *batch) nothing() *batch {
	n := &batch{}
	for f, p := range b.files {
		n.files[f] = part{start: p.start, end: p.start}
	}
	return n
}

// ack applies b, acknowledged by the server, to st. placed is false for a record skipped without being
// sent: its bytes are passed over but it takes no line on the server.
func (b *batch) ack(st *syncState, placed bool) error {
	for f, p := range b.files {
		c := st.cursorOf(f)
		if c.Byte != p.start {
			return fmt.Errorf("%s: a batch read from byte %d acknowledged at byte %d", streamFiles[f].local, p.start, c.Byte)
		}
		if placed {
			c.Line += int64(len(p.text))
		}
		c.Byte = p.end
	}
	if b.summary != "" || b.bigSummary > 0 {
		st.SummarySHA = b.summarySHA
	}
	for _, name := range b.uploaded {
		if st.Reported == nil {
			st.Reported = map[string]bool{}
		}
		st.Reported[name] = true
	}
	if b.complete {
		code := b.exitCode
		st.Complete, st.ExitCode = true, &code
	}
	return nil
}

type fileChunk struct {
	Offset  int64    `json:"offset"`
	Content []string `json:"content"`
}

type fileStreamBody struct {
	Files      map[string]fileChunk `json:"files,omitempty"`
	Uploaded   []string             `json:"uploaded,omitempty"`
	Preempting *bool                `json:"preempting,omitempty"`
	Complete   *bool                `json:"complete,omitempty"`
	ExitCode   *int                 `json:"exitcode,omitempty"`
}

// encode is the request body of b sent when from is the acknowledged state: lines go at from's offsets.
func (b *batch) encode(from *syncState) ([]byte, error) {
	body := fileStreamBody{Files: map[string]fileChunk{}, Uploaded: b.uploaded}
	for f, p := range b.files {
		if len(p.text) > 0 {
			body.Files[streamFiles[f].remote] = fileChunk{Offset: from.cursorOf(f).Line, Content: p.text}
		}
	}
	if b.summary != "" {
		body.Files["wandb-summary.json"] = fileChunk{Offset: 0, Content: []string{b.summary}}
	}
	t := true
	if b.preempting {
		body.Preempting = &t
	}
	if b.complete {
		body.Complete, body.ExitCode = &t, &b.exitCode
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// build reads what is not yet acknowledged, within the batch limits. In final mode the last unterminated
// line of output.log is read too.
func (sn *sender) build(final bool) (*batch, error) {
	from := sn.state()
	b := &batch{}
	maxB := sn.opts.MaxBatchBytes
	budget := [numFiles]int{maxB * 6 / 10, maxB * 2 / 10, maxB * 2 / 10}
	for f := range numFiles {
		keep, partial := keepJSONObject, false
		if f == fileOutput {
			keep, partial = keepAny, final
		}
		off := from.cursorOf(f).Byte
		text, spans, next, more, err := readSpans(sn.path(streamFiles[f].local), off, sn.opts.MaxBatchLines, budget[f], partial, keep)
		if err != nil {
			return nil, err
		}
		b.files[f] = part{text: text, spans: spans, start: off, end: next}
		b.more = b.more || more
	}
	if from.StepOffset != 0 {
		for i, l := range b.files[fileHistory].text {
			b.files[fileHistory].text[i] = shiftStep(l, from.StepOffset)
		}
	}
	if out := b.files[fileOutput].text; len(out) > 0 {
		ts := time.Now().UTC().Format("2006-01-02T15:04:05.000000 ")
		for i, l := range out {
			out[i] = ts + l
		}
	}
	sum, sha, size, err := readSummary(sn.path(SummaryFile), sn.opts.MaxRequestBytes)
	switch {
	case err != nil:
		return nil, err
	case sha == "" || sha == from.SummarySHA:
	case size > 0:
		b.bigSummary, b.summarySHA = size, sha
	default:
		b.summary, b.summarySHA = sum, sha
	}
	for name, rep := range from.Reported {
		if !rep {
			b.uploaded = append(b.uploaded, name)
		}
	}
	sort.Strings(b.uploaded)
	if sn.preempting != nil && !sn.preemptAck && sn.preempting() {
		b.preempting = true
	}
	return b, nil
}

// readSummary returns summary.json on one line and its hash; "" when there is none. A summary larger than
// limit bytes is not read into memory: only the hash of its bytes and its size come back, for it to be
// skipped.
func readSummary(path string, limit int) (line, sha string, tooBig int64, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", 0, nil
	}
	if err != nil {
		return "", "", 0, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > int64(limit) {
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			return "", "", 0, fmt.Errorf("read %s: %w", path, err)
		}
		return "", hex.EncodeToString(h.Sum(nil)), max(n, 1), nil
	}
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)))
	if err != nil {
		return "", "", 0, fmt.Errorf("read %s: %w", path, err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' || b[len(b)-1] != '}' {
		return "", "", 0, nil // absent, or caught mid-replace by a non-atomic writer: try again later
	}
	var buf bytes.Buffer
	if json.Compact(&buf, b) == nil {
		b = buf.Bytes()
	} else { // NaN or Infinity literals: newlines in JSON text are whitespace, never inside strings
		b = bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r"), nil), []byte("\n"), nil)
	}
	h := sha256.Sum256(b)
	return string(b), hex.EncodeToString(h[:]), 0, nil
}
