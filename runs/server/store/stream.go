package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// Chunk is a run of lines of one streamed file starting at line Offset (a negative Offset appends).
type Chunk struct {
	Offset int64
	Lines  []string
}

// StreamUpdate is one file_stream request, decoded.
type StreamUpdate struct {
	History  *Chunk
	Events   *Chunk
	Log      *Chunk
	Summary  *string // the whole summary as a JSON object
	Uploaded []string
	Complete bool
	ExitCode *int
}

// StreamResult is what the client is told.
type StreamResult struct {
	Stopped bool   // the run was stopped from the dashboard
	State   string // the run's state after the update
}

// Stream applies one file_stream request to a run, creating the run if needed. History and event lines
// are stored at their line numbers; a line number already stored is left unchanged, so re-sending a
// request never duplicates rows. Console lines at an existing line number replace it.
func (s *Store) Stream(ctx context.Context, k RunKey, u StreamUpdate) (StreamResult, error) {
	if err := validKey(k); err != nil {
		return StreamResult{}, err
	}
	var summary string
	if u.Summary != nil {
		var err error
		if summary, err = normalizeObject(*u.Summary); err != nil {
			return StreamResult{}, fmt.Errorf("wandb-summary.json: %w", err)
		}
	}
	type hrow struct {
		line int64
		step sql.NullInt64
		row  string
		nums map[string]float64
	}
	var hist []hrow
	if u.History != nil {
		for i, l := range u.History.Lines {
			b := SanitizeJSON([]byte(l))
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				return StreamResult{}, fmt.Errorf("wandb-history.jsonl line %d: not a JSON object: %w", u.History.Offset+int64(i), err)
			}
			h := hrow{line: int64(i), row: string(b), nums: map[string]float64{}}
			if st, ok := m["_step"].(float64); ok && st == math.Trunc(st) {
				h.step = sql.NullInt64{Int64: int64(st), Valid: true}
			}
			flatten("", m, h.nums)
			hist = append(hist, h)
		}
	}
	var res StreamResult
	now := s.nowMS()
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		id, _, err := ensureRun(ctx, tx, k, now)
		if err != nil {
			return err
		}
		var histN, eventsN, logN int64
		var stop int
		if err := tx.QueryRowContext(ctx, `SELECT history_lines, events_lines, log_lines, stop_requested FROM runs
			WHERE id = ?`, id).Scan(&histN, &eventsN, &logN, &stop); err != nil {
			return fmt.Errorf("read run %s: %w", k, err)
		}
		if u.History != nil && len(hist) > 0 {
			base := u.History.Offset
			if base < 0 {
				base = histN
			}
			insH, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO history (run_id, line, step, row) VALUES (?, ?, ?, ?)`)
			if err != nil {
				return fmt.Errorf("prepare history insert: %w", err)
			}
			defer insH.Close()
			insM, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO metrics (run_id, key, line, step, value) VALUES (?, ?, ?, ?, ?)`)
			if err != nil {
				return fmt.Errorf("prepare metric insert: %w", err)
			}
			defer insM.Close()
			known, err := runKeySet(ctx, tx, id)
			if err != nil {
				return err
			}
			for _, h := range hist {
				line := base + h.line
				r, err := insH.ExecContext(ctx, id, line, h.step, h.row)
				if err != nil {
					return fmt.Errorf("insert history line %d: %w", line, err)
				}
				if n, _ := r.RowsAffected(); n == 0 {
					continue // already stored: a retried request
				}
				for key, v := range h.nums {
					if _, err := insM.ExecContext(ctx, id, key, line, h.step, v); err != nil {
						return fmt.Errorf("insert metric %s line %d: %w", key, line, err)
					}
					s.noteRows(id, key, 1)
					if !known[key] {
						if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO run_keys (run_id, key) VALUES (?, ?)`, id, key); err != nil {
							return fmt.Errorf("insert key %s: %w", key, err)
						}
						known[key] = true
					}
				}
			}
			histN = max(histN, base+int64(len(hist)))
			if !u.Complete {
				s.packDue(ctx, tx, id)
			}
		}
		if u.Events != nil && len(u.Events.Lines) > 0 {
			base := u.Events.Offset
			if base < 0 {
				base = eventsN
			}
			for i, l := range u.Events.Lines {
				if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO events (run_id, line, row) VALUES (?, ?, ?)`,
					id, base+int64(i), string(SanitizeJSON([]byte(l)))); err != nil {
					return fmt.Errorf("insert event line %d: %w", base+int64(i), err)
				}
			}
			eventsN = max(eventsN, base+int64(len(u.Events.Lines)))
		}
		if u.Log != nil && len(u.Log.Lines) > 0 {
			base := u.Log.Offset
			if base < 0 {
				base = logN
			}
			for i, l := range u.Log.Lines {
				if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO logs (run_id, line, text) VALUES (?, ?, ?)`,
					id, base+int64(i), l); err != nil {
					return fmt.Errorf("insert output line %d: %w", base+int64(i), err)
				}
			}
			logN = max(logN, base+int64(len(u.Log.Lines)))
		}
		for _, name := range u.Uploaded {
			clean, err := CleanFileName(name)
			if err != nil {
				continue // a name we would not have accepted an upload for
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO files (run_id, name, uploaded, updated_at) VALUES (?, ?, 1, ?)
				ON CONFLICT (run_id, name) DO UPDATE SET uploaded = 1`, id, clean, now); err != nil {
				return fmt.Errorf("record uploaded file %s: %w", clean, err)
			}
		}
		sets := []string{"history_lines = ?", "events_lines = ?", "log_lines = ?", "updated_at = ?", "heartbeat_at = ?"}
		args := []any{histN, eventsN, logN, now, now}
		if u.Summary != nil {
			sets = append(sets, "summary = ?")
			args = append(args, summary)
		}
		switch {
		case u.Complete:
			code := 0
			if u.ExitCode != nil {
				code = *u.ExitCode
			}
			res.State = StateFinished
			if code != 0 {
				res.State = StateFailed
			}
			if stop != 0 {
				res.State = StateStopped
			}
			sets = append(sets, "state = ?", "exit_code = ?", "finished_at = ?")
			args = append(args, res.State, code, now)
			s.packFinal(ctx, tx, id)
		default:
			// Any request is a sign of life: a run marked crashed, or resumed after finishing, runs again.
			sets = append(sets, "state = 'running'", "exit_code = NULL", "finished_at = NULL")
			res.State = StateRunning
		}
		args = append(args, id)
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET `+strings.Join(sets, ", ")+` WHERE id = ?`, args...); err != nil {
			return fmt.Errorf("update run %s: %w", k, err)
		}
		res.Stopped = stop != 0
		return nil
	})
	return res, err
}

func runKeySet(ctx context.Context, tx *sql.Tx, runID int64) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT key FROM run_keys WHERE run_id = ?`, runID)
	if err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("read keys: %w", err)
		}
		out[k] = true
	}
	return out, rows.Err()
}

// flatten collects the finite numbers of a history row under dotted keys ("a.b" for {"a": {"b": 1}}).
// Media objects (maps with a "_type") are skipped.
func flatten(prefix string, m map[string]any, out map[string]float64) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		switch x := v.(type) {
		case float64:
			if !math.IsNaN(x) && !math.IsInf(x, 0) {
				out[key] = x
			}
		case map[string]any:
			if _, media := x["_type"]; !media && len(key) < 200 {
				flatten(key, x, out)
			}
		}
	}
}

// SanitizeJSON turns the NaN, Infinity and -Infinity literals that W&B clients write (Python's json
// module does) into the strings "NaN", "Infinity" and "-Infinity", leaving everything else as it is, so that
// the result parses as standard JSON when the input otherwise did.
func SanitizeJSON(b []byte) []byte {
	if !needsSanitize(b) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			out = append(out, c)
			if c == '\\' && i+1 < len(b) {
				i++
				out = append(out, b[i])
			} else if c == '"' {
				inString = false
			}
			continue
		}
		switch {
		case c == '"':
			inString = true
			out = append(out, c)
		case hasWord(b, i, "NaN"):
			out = append(out, `"NaN"`...)
			i += len("NaN") - 1
		case hasWord(b, i, "Infinity"):
			out = append(out, `"Infinity"`...)
			i += len("Infinity") - 1
		case c == '-' && hasWord(b, i+1, "Infinity"):
			out = append(out, `"-Infinity"`...)
			i += len("-Infinity") - 1
		default:
			out = append(out, c)
		}
	}
	return out
}

func needsSanitize(b []byte) bool {
	s := string(b)
	return strings.Contains(s, "NaN") || strings.Contains(s, "Infinity")
}

func hasWord(b []byte, i int, w string) bool {
	if i+len(w) > len(b) || string(b[i:i+len(w)]) != w {
		return false
	}
	if i+len(w) < len(b) {
		c := b[i+len(w)]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			return false
		}
	}
	return true
}

// RunKeys lists the numeric history keys of a run, sorted.
func (s *Store) RunKeys(ctx context.Context, runID int64) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT key FROM run_keys WHERE run_id = ? ORDER BY key`, runID)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// HistoryRows returns a run's raw history rows (strict JSON objects) in line order, starting at line from,
// at most limit of them (limit <= 0: all).
func (s *Store) HistoryRows(ctx context.Context, runID, from int64, limit int) ([]json.RawMessage, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.read.QueryContext(ctx, `SELECT row FROM history WHERE run_id = ? AND line >= ? ORDER BY line LIMIT ?`,
		runID, from, limit)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	defer rows.Close()
	var out []json.RawMessage
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, fmt.Errorf("read history: %w", err)
		}
		out = append(out, json.RawMessage(r))
	}
	return out, rows.Err()
}

// Series is one metric of one run: parallel line numbers, steps (-1 where a row had no integer _step)
// and values, in line order.
type Series struct {
	Lines  []int64
	Steps  []int64
	Values []float64
}

// Metric reads one numeric history key of a run.
func (s *Store) Metric(ctx context.Context, runID int64, key string) (Series, error) {
	return s.readMetric(ctx, runID, key)
}

// LogLine is one console line.
type LogLine struct {
	Line int64  `json:"line"`
	Text string `json:"text"`
}

// Logs returns console lines from line from on, at most limit (<= 0: all).
func (s *Store) Logs(ctx context.Context, runID, from int64, limit int) ([]LogLine, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.read.QueryContext(ctx, `SELECT line, text FROM logs WHERE run_id = ? AND line >= ? ORDER BY line LIMIT ?`,
		runID, from, limit)
	if err != nil {
		return nil, fmt.Errorf("read output: %w", err)
	}
	defer rows.Close()
	var out []LogLine
	for rows.Next() {
		var l LogLine
		if err := rows.Scan(&l.Line, &l.Text); err != nil {
			return nil, fmt.Errorf("read output: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// File is an uploaded (or announced) run file.
type File struct {
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	Uploaded  bool   `json:"uploaded"`
	UpdatedAt int64  `json:"updated_at_ms"`
}

// Files lists a run's files by name.
func (s *Store) Files(ctx context.Context, runID int64) ([]File, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT name, size, uploaded, updated_at FROM files WHERE run_id = ? ORDER BY name`, runID)
	if err != nil {
		return nil, fmt.Errorf("list files: %w", err)
	}
	defer rows.Close()
	var out []File
	for rows.Next() {
		var f File
		var up int
		if err := rows.Scan(&f.Name, &f.Size, &up, &f.UpdatedAt); err != nil {
			return nil, fmt.Errorf("list files: %w", err)
		}
		f.Uploaded = up != 0
		out = append(out, f)
	}
	return out, rows.Err()
}

// RecordFile records a stored upload's size.
func (s *Store) RecordFile(ctx context.Context, runID int64, name string, size int64) error {
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO files (run_id, name, size, uploaded, updated_at) VALUES (?, ?, ?, 1, ?)
			ON CONFLICT (run_id, name) DO UPDATE SET size = excluded.size, uploaded = 1, updated_at = excluded.updated_at`,
			runID, name, size, s.nowMS())
		if err != nil {
			return fmt.Errorf("record file %s: %w", name, err)
		}
		return nil
	})
}

// CleanFileName checks an uploaded file's name (a relative slash-separated path such as
// "media/images/plot_3.png") and returns it cleaned; names that could leave the run's folder are refused.
func CleanFileName(name string) (string, error) {
	if name == "" || len(name) > 512 {
		return "", fmt.Errorf("file name %q: must be 1-512 bytes", name)
	}
	if strings.ContainsAny(name, "\\\x00:") || strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("file name %q: must be a relative path without backslashes or colons", name)
	}
	parts := strings.Split(name, "/")
	var keep []string
	for _, p := range parts {
		switch p {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf("file name %q: must not contain ..", name)
		}
		for _, r := range p {
			if r < 0x20 || r == 0x7f {
				return "", fmt.Errorf("file name %q: control characters", name)
			}
		}
		keep = append(keep, p)
	}
	if len(keep) == 0 {
		return "", fmt.Errorf("file name %q: empty", name)
	}
	return strings.Join(keep, "/"), nil
}

// ProjectKeys lists the numeric history keys used by any run of a project (every entity when entity is
// empty), sorted.
func (s *Store) ProjectKeys(ctx context.Context, entity, project string) ([]string, error) {
	q := `SELECT DISTINCT k.key FROM run_keys k JOIN runs r ON r.id = k.run_id JOIN projects p ON p.id = r.project_id
		WHERE p.name = ?`
	args := []any{project}
	if entity != "" {
		q += ` AND p.entity = ?`
		args = append(args, entity)
	}
	rows, err := s.read.QueryContext(ctx, q+` ORDER BY k.key`, args...)
	if err != nil {
		return nil, fmt.Errorf("list keys of %s: %w", project, err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("list keys of %s: %w", project, err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// MetricBuckets reads a min/max-downsampled metric: the run's lines [0, lines) are cut into buckets
// equal ranges (line * buckets / lines, in integer arithmetic) and each bucket's minimum and maximum rows
// (the first in line order on ties) are returned, in line order.
func (s *Store) MetricBuckets(ctx context.Context, runID int64, key string, lines int64, buckets int) (Series, error) {
	if lines <= 0 || buckets <= 0 {
		return Series{}, nil
	}
	se, err := s.readMetric(ctx, runID, key)
	if err != nil {
		return Series{}, err
	}
	return bucketSeries(se, lines, buckets), nil
}

// MetricAt reads a metric at the given lines only.
func (s *Store) MetricAt(ctx context.Context, runID int64, key string, lines []int64) (Series, error) {
	if len(lines) == 0 {
		return Series{}, nil
	}
	se, err := s.readMetric(ctx, runID, key)
	if err != nil {
		return Series{}, err
	}
	want := make(map[int64]bool, len(lines))
	for _, l := range lines {
		want[l] = true
	}
	var out Series
	for i, l := range se.Lines {
		if want[l] {
			out.Lines = append(out.Lines, l)
			out.Steps = append(out.Steps, se.Steps[i])
			out.Values = append(out.Values, se.Values[i])
		}
	}
	return out, nil
}
