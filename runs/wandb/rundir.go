package wandb

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"syscall"

	"gopkg.in/yaml.v3"

	"github.com/mami-lab/mami/internal/atomicfile"
)

// Files of a run directory (the write-ahead log, see docs/format/run-record.md) and the ones this package adds.
const (
	HistoryFile = "history.jsonl"
	SummaryFile = "summary.json"
	ConfigFile  = "config.yaml"
	RunFile     = "run.json"
	OutputFile  = "output.log"
	// EventsFile holds the system metrics rows the stream samples (CPU, memory, GPU), one JSON object a line.
	EventsFile = "wandb-events.jsonl"
	// StateFile holds what the server acknowledged, so that a sender or `mami sync` resumes where it stopped.
	StateFile = "wandb-sync.json"
	lockFile  = "wandb-sync.lock"
)

// cursor is the position of the next line to send from one local file: Line is the remote line offset (the
// file_stream `offset`), Byte the local byte offset.
type cursor struct {
	Line int64 `json:"line"`
	Byte int64 `json:"byte"`
}

// syncState is the content of wandb-sync.json.
type syncState struct {
	Version int    `json:"version"`
	Dest    string `json:"destination"` // base URL, configured entity, project and run id: a new destination starts over
	Entity  string `json:"entity"`      // as the server named them
	Project string `json:"project"`
	RunID   string `json:"run_id"`
	Created bool   `json:"created"`

	History cursor `json:"history"`
	Events  cursor `json:"events"`
	Output  cursor `json:"output"`
	// StepOffset is added to every _step sent, when the run resumed a server run that already had steps.
	StepOffset int64 `json:"step_offset,omitempty"`

	ConfigSHA  string            `json:"config_sha256,omitempty"` // of the config last sent with UpsertBucket
	SummarySHA string            `json:"summary_sha256,omitempty"`
	Uploaded   map[string]string `json:"uploaded,omitempty"` // file name → signature of the uploaded version
	Reported   map[string]bool   `json:"reported,omitempty"` // uploaded names acknowledged in a file_stream `uploaded` list
	Complete   bool              `json:"complete"`
	ExitCode   *int              `json:"exit_code,omitempty"`
	// Skipped lists the records the server refused as too large: they are never sent again.
	Skipped []SkippedRecord `json:"skipped,omitempty"`
}

func destination(s Settings, runID string) string {
	return s.BaseURL + "|" + s.Entity + "|" + s.Project + "|" + runID
}

// loadState reads the state of dir for the destination; another destination's state is discarded.
func loadState(dir, dest string) (*syncState, error) {
	st := &syncState{Version: 1, Dest: dest}
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, StateFile), err)
	}
	var old syncState
	if err := json.Unmarshal(b, &old); err != nil {
		return nil, fmt.Errorf("parse %s: %w (delete it to upload the run again from the start)", filepath.Join(dir, StateFile), err)
	}
	if old.Dest != dest {
		return st, nil
	}
	return &old, nil
}

// save replaces the state file atomically.
func (st *syncState) save(dir string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, StateFile), append(b, '\n'))
}

func (st *syncState) clone() *syncState {
	c := *st
	c.Uploaded = cloneMap(st.Uploaded)
	c.Reported = cloneMap(st.Reported)
	c.Skipped = slices.Clone(st.Skipped)
	if st.ExitCode != nil {
		e := *st.ExitCode
		c.ExitCode = &e
	}
	return &c
}

func cloneMap[V any](m map[string]V) map[string]V {
	if m == nil {
		return nil
	}
	c := make(map[string]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func writeAtomic(path string, b []byte) error {
	if err := atomicfile.WriteFile(path, b, true); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// readLines reads the lines of path from byte offset off: at most maxLines lines and about maxBytes bytes
// (a single longer line is still returned alone). Only lines ending in a newline are read, unless partial
// is set, when a last unterminated line is read too. Lines for which keep returns false (blank or torn ones)
// are skipped but their bytes consumed. more reports that the limits stopped the read.
func readLines(path string, off int64, maxLines, maxBytes int, partial bool, keep func([]byte) bool) (lines []string, next int64, more bool, err error) {
	lines, _, next, more, err = readSpans(path, off, maxLines, maxBytes, partial, keep)
	return lines, next, more, err
}

// span is where one line read by readSpans lies in its file: [start, end), its newline included.
type span struct{ start, end int64 }

// readSpans is readLines that also returns where each line lies in the file, so that a batch can be cut
// after any of its lines.
func readSpans(path string, off int64, maxLines, maxBytes int, partial bool, keep func([]byte) bool) (lines []string, spans []span, next int64, more bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, off, false, nil
	}
	if err != nil {
		return nil, nil, off, false, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, nil, off, false, fmt.Errorf("read %s: %w", path, err)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	next = off
	size := 0
	for len(lines) < maxLines {
		b, rerr := br.ReadBytes('\n')
		if len(b) > 0 && b[len(b)-1] == '\n' {
			if len(lines) > 0 && size+len(b) > maxBytes {
				return lines, spans, next, true, nil
			}
			start := next
			next += int64(len(b))
			line := bytes.TrimRight(b, "\r\n")
			if keep(line) {
				lines = append(lines, string(line))
				spans = append(spans, span{start, next})
				size += len(b)
			}
		} else if len(b) > 0 && partial && rerr == io.EOF {
			if len(lines) > 0 && size+len(b) > maxBytes {
				return lines, spans, next, true, nil
			}
			start := next
			next += int64(len(b))
			if keep(b) {
				lines = append(lines, string(b))
				spans = append(spans, span{start, next})
			}
		}
		if rerr == io.EOF {
			return lines, spans, next, false, nil
		}
		if rerr != nil {
			return lines, spans, next, false, fmt.Errorf("read %s: %w", path, rerr)
		}
	}
	_, perr := br.Peek(1)
	return lines, spans, next, perr == nil, nil
}

// keepJSONObject keeps lines that look like a whole JSON object (a torn last write does not).
func keepJSONObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) >= 2 && b[0] == '{' && b[len(b)-1] == '}'
}

func keepAny(b []byte) bool { return true }

var stepRE = regexp.MustCompile(`"_step"\s*:\s*(-?[0-9]+)`)

// lineStep returns the _step of a history line.
func lineStep(line []byte) (int64, bool) {
	m := stepRE.FindSubmatch(line)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(string(m[1]), 10, 64)
	return n, err == nil
}

// shiftStep adds off to the _step of a history line.
func shiftStep(line string, off int64) string {
	loc := stepRE.FindStringSubmatchIndex(line)
	if off == 0 || loc == nil {
		return line
	}
	n, err := strconv.ParseInt(line[loc[2]:loc[3]], 10, 64)
	if err != nil {
		return line
	}
	return line[:loc[2]] + strconv.FormatInt(n+off, 10) + line[loc[3]:]
}

// runMeta is what this package reads from run.json.
type runMeta struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Project  string   `json:"project"`
	Group    string   `json:"group"`
	Tags     []string `json:"tags"`
	Notes    string   `json:"notes"`
	SweepID  string   `json:"sweep_id"`
	State    string   `json:"state"`
	PID      int      `json:"pid"`
	Host     string   `json:"host"`
	ExitCode *int     `json:"exit_code"`
}

func readRunMeta(dir string) (*runMeta, error) {
	b, err := os.ReadFile(filepath.Join(dir, RunFile))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, RunFile), err)
	}
	var m runMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, RunFile), err)
	}
	return &m, nil
}

// wandbConfig converts the run's config.yaml to the W&B shape {"key": {"value": v}}, without the API key.
func wandbConfig(dir string) (map[string]any, error) {
	path := filepath.Join(dir, ConfigFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]any{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	out := make(map[string]any, len(raw))
	for k, v := range raw {
		v = plainYAML(v)
		if tr, ok := v.(map[string]any); ok && k == "tracking" {
			delete(tr, "api_key")
		}
		out[k] = map[string]any{"value": v}
	}
	return out, nil
}

// plainYAML turns YAML maps with non-string keys into JSON-encodable maps.
func plainYAML(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = plainYAML(x)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[fmt.Sprint(k)] = plainYAML(x)
		}
		return m
	case []any:
		for i, x := range t {
			t[i] = plainYAML(x)
		}
		return t
	}
	return v
}

// lockDir takes the run directory's sender lock without waiting; the returned function releases it.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrBusy, dir)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// ErrBusy is returned when another process (a live stream or another sync) is sending the run.
var ErrBusy = errors.New("wandb: another process is sending this run")

// processAlive reports whether pid runs on this machine.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
