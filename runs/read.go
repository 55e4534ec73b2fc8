package runs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/mami-lab/mami/configs"
)

// Meta is the content of run.json: who the run is and how it ended.
type Meta struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Project   string     `json:"project"`
	Group     string     `json:"group"`
	Tags      []string   `json:"tags"`
	Notes     string     `json:"notes"`
	SweepID   string     `json:"sweep_id"`
	State     string     `json:"state"` // running finished failed crashed stopped
	PID       int        `json:"pid"`
	Host      string     `json:"host"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at"`  // null while running
	ExitCode  *int       `json:"exit_code"` // null while running
	Version   string     `json:"version"`   // version of the mami binary
}

func marshalMeta(m Meta) ([]byte, error) {
	if m.Tags == nil {
		m.Tags = []string{}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("runs: encode run.json: %w", err)
	}
	return append(b, '\n'), nil
}

// Run is a recorded run opened for reading. Its files are read on each
// call, so a Run of a run still training sees its progress.
type Run struct {
	dir  string
	meta Meta
}

// Open reads the run in dir. It fails with ErrRunNotFound when dir has no
// run.json.
func Open(dir string) (*Run, error) {
	b, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open run %s: %w", dir, ErrRunNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open run %s: %w", dir, err)
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("open run: %s: %w", filepath.Join(dir, MetaFile), err)
	}
	return &Run{dir: dir, meta: m}, nil
}

// Dir is the run directory.
func (r *Run) Dir() string { return r.dir }

// ID is the run id.
func (r *Run) ID() string { return r.meta.ID }

// Meta is run.json as read by Open, except that a run recorded as running
// by a process of this host that no longer exists is reported as crashed
// (run.json is left untouched).
func (r *Run) Meta() Meta {
	m := r.meta
	m.Tags = slices.Clone(m.Tags)
	if m.State == StateRunning && m.PID > 0 {
		if host, err := os.Hostname(); err == nil && host == m.Host && !processAlive(m.PID) {
			m.State = StateCrashed
		}
	}
	return m
}

// History reads history.jsonl: one map per row, numbers as float64 and the
// literals NaN, Infinity, -Infinity as the float values. A last line cut
// short by a crash (no newline, not valid JSON) is skipped; any other bad
// line is an error naming the file and line.
func (r *Run) History() ([]map[string]any, error) {
	path := filepath.Join(r.dir, HistoryFile)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	defer f.Close()
	return ReadHistory(f, path)
}

// ReadHistory parses a history.jsonl stream; name is used in errors.
func ReadHistory(rd io.Reader, name string) ([]map[string]any, error) {
	br := bufio.NewReaderSize(rd, 64<<10)
	var rows []map[string]any
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return rows, fmt.Errorf("read history %s: %w", name, err)
		}
		complete := len(line) > 0 && line[len(line)-1] == '\n'
		trimmed := bytes.TrimSpace(line)
		if len(trimmed) > 0 {
			row, perr := unmarshalObject(trimmed)
			switch {
			case perr == nil:
				rows = append(rows, row)
			case !complete:
				// The process died mid-write; the row was never whole.
			default:
				return rows, fmt.Errorf("read history %s:%d: %w", name, lineNo, perr)
			}
		}
		if err != nil { // io.EOF
			return rows, nil
		}
	}
}

// Summary reads summary.json; a run that has not written one yet has an
// empty summary.
func (r *Run) Summary() (map[string]any, error) {
	path := filepath.Join(r.dir, SummaryFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]any{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read summary: %w", err)
	}
	m, err := unmarshalObject(b)
	if err != nil {
		return nil, fmt.Errorf("read summary %s: %w", path, err)
	}
	return m, nil
}

// Config reads and validates config.yaml (configs.Parse: over the
// defaults, so keys added after the run was recorded take their defaults).
func (r *Run) Config() (*configs.Config, error) {
	path := filepath.Join(r.dir, ConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := configs.Parse(path, b)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return cfg, nil
}

// List opens every run under <workdir>/runs, oldest first (by started_at,
// then id). Folders without run.json are skipped; a workdir without runs
// gives an empty list.
func List(workdir string) ([]*Run, error) {
	root := filepath.Join(workdir, "runs")
	ents, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	var out []*Run
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		r, err := Open(filepath.Join(root, e.Name()))
		if errors.Is(err, ErrRunNotFound) {
			continue
		}
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *Run) int {
		if c := a.meta.StartedAt.Compare(b.meta.StartedAt); c != 0 {
			return c
		}
		return compareStrings(a.meta.ID, b.meta.ID)
	})
	return out, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
