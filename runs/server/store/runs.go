package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Run states.
const (
	StateRunning  = "running"
	StateFinished = "finished"
	StateFailed   = "failed"
	StateCrashed  = "crashed"
	StateStopped  = "stopped"
)

// Run is one run as stored. Config and Summary hold JSON objects as received (Config in either the
// {"k": {"value": v}} or the plain {"k": v} shape).
type Run struct {
	ID            int64
	Entity        string
	Project       string
	Name          string
	DisplayName   string
	Group         string
	JobType       string
	Description   string
	Notes         string
	Tags          []string
	Config        json.RawMessage
	Host          string
	Program       string
	Commit        string
	Sweep         string
	State         string
	ExitCode      *int
	StopRequested bool
	Summary       json.RawMessage
	HistoryLines  int64
	EventsLines   int64
	LogLines      int64
	CreatedAt     time.Time
	UpdatedAt     time.Time
	HeartbeatAt   time.Time
	FinishedAt    *time.Time
}

// Project is an entity's project with its run count.
type Project struct {
	ID        int64     `json:"-"`
	Entity    string    `json:"entity"`
	Name      string    `json:"name"`
	Runs      int       `json:"runs"`
	Running   int       `json:"running"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// RunKey names a run.
type RunKey struct{ Entity, Project, Name string }

func (k RunKey) String() string { return k.Entity + "/" + k.Project + "/" + k.Name }

// Upsert creates or updates a run. Nil fields are left as they are.
type Upsert struct {
	RunKey
	DisplayName, Group, JobType, Description, Notes *string
	Config, Host, Program, Commit, Sweep, State     *string
	Summary                                         *string
	Tags                                            []string
	SetTags                                         bool
}

const runColumns = `r.id, p.entity, p.name, r.name, r.display_name, r.group_name, r.job_type, r.description,
	r.notes, r.tags, r.config, r.host, r.program, r.commit_hash, r.sweep, r.state, r.exit_code,
	r.stop_requested, r.summary, r.history_lines, r.events_lines, r.log_lines, r.created_at, r.updated_at,
	r.heartbeat_at, r.finished_at`

type scanner interface{ Scan(dest ...any) error }

func scanRun(sc scanner) (*Run, error) {
	var r Run
	var tags, config, summary string
	var exit, finished sql.NullInt64
	var stop int
	var created, updated, heartbeat int64
	if err := sc.Scan(&r.ID, &r.Entity, &r.Project, &r.Name, &r.DisplayName, &r.Group, &r.JobType,
		&r.Description, &r.Notes, &tags, &config, &r.Host, &r.Program, &r.Commit, &r.Sweep, &r.State, &exit,
		&stop, &summary, &r.HistoryLines, &r.EventsLines, &r.LogLines, &created, &updated, &heartbeat,
		&finished); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(tags), &r.Tags); err != nil {
		r.Tags = nil
	}
	r.Config = json.RawMessage(config)
	r.Summary = json.RawMessage(summary)
	if exit.Valid {
		c := int(exit.Int64)
		r.ExitCode = &c
	}
	r.StopRequested = stop != 0
	r.CreatedAt = time.UnixMilli(created).UTC()
	r.UpdatedAt = time.UnixMilli(updated).UTC()
	r.HeartbeatAt = time.UnixMilli(heartbeat).UTC()
	if finished.Valid {
		t := time.UnixMilli(finished.Int64).UTC()
		r.FinishedAt = &t
	}
	return &r, nil
}

func projectID(ctx context.Context, tx *sql.Tx, entity, project string, now int64) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM projects WHERE entity = ? AND name = ?`, entity, project).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("find project %s/%s: %w", entity, project, err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO projects (entity, name, created_at) VALUES (?, ?, ?)`, entity, project, now)
	if err != nil {
		return 0, fmt.Errorf("create project %s/%s: %w", entity, project, err)
	}
	return res.LastInsertId()
}

// ensureRun finds or creates the run; created reports whether it was created.
func ensureRun(ctx context.Context, tx *sql.Tx, k RunKey, now int64) (id int64, created bool, err error) {
	pid, err := projectID(ctx, tx, k.Entity, k.Project, now)
	if err != nil {
		return 0, false, err
	}
	err = tx.QueryRowContext(ctx, `SELECT id FROM runs WHERE project_id = ? AND name = ?`, pid, k.Name).Scan(&id)
	if err == nil {
		return id, false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, false, fmt.Errorf("find run %s: %w", k, err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO runs (project_id, name, display_name, created_at, updated_at,
		heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)`, pid, k.Name, k.Name, now, now, now)
	if err != nil {
		return 0, false, fmt.Errorf("create run %s: %w", k, err)
	}
	id, err = res.LastInsertId()
	return id, true, err
}

func validKey(k RunKey) error {
	for _, f := range []struct{ name, v string }{{"entity", k.Entity}, {"project", k.Project}, {"run", k.Name}} {
		if f.v == "" {
			return fmt.Errorf("%s: must not be empty", f.name)
		}
		if len(f.v) > 128 || strings.ContainsAny(f.v, "/\\\x00") {
			return fmt.Errorf("%s %q: at most 128 characters, no slashes", f.name, f.v)
		}
	}
	return nil
}

// UpsertRun creates the run (and its project) or updates the given fields; inserted reports creation.
func (s *Store) UpsertRun(ctx context.Context, u Upsert) (run *Run, inserted bool, err error) {
	if err := validKey(u.RunKey); err != nil {
		return nil, false, err
	}
	now := s.nowMS()
	err = s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		id, created, err := ensureRun(ctx, tx, u.RunKey, now)
		if err != nil {
			return err
		}
		inserted = created
		sets := []string{"updated_at = ?", "heartbeat_at = ?"}
		args := []any{now, now}
		add := func(col string, v *string) {
			if v != nil {
				sets = append(sets, col+" = ?")
				args = append(args, *v)
			}
		}
		add("display_name", u.DisplayName)
		add("group_name", u.Group)
		add("job_type", u.JobType)
		add("description", u.Description)
		add("notes", u.Notes)
		add("host", u.Host)
		add("program", u.Program)
		add("commit_hash", u.Commit)
		add("sweep", u.Sweep)
		if u.Config != nil {
			c, err := normalizeObject(*u.Config)
			if err != nil {
				return fmt.Errorf("config: %w", err)
			}
			sets = append(sets, "config = ?")
			args = append(args, c)
		}
		if u.Summary != nil {
			c, err := normalizeObject(*u.Summary)
			if err != nil {
				return fmt.Errorf("summaryMetrics: %w", err)
			}
			sets = append(sets, "summary = ?")
			args = append(args, c)
		}
		if u.SetTags {
			b, _ := json.Marshal(append([]string{}, u.Tags...))
			sets = append(sets, "tags = ?")
			args = append(args, string(b))
		}
		if u.State != nil && *u.State != "" {
			sets = append(sets, "state = ?")
			args = append(args, *u.State)
		} else {
			// A sign of life revives a run that was marked crashed.
			sets = append(sets, "state = CASE state WHEN 'crashed' THEN 'running' ELSE state END")
		}
		args = append(args, id)
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET `+strings.Join(sets, ", ")+` WHERE id = ?`, args...); err != nil {
			return fmt.Errorf("update run %s: %w", u.RunKey, err)
		}
		if u.State != nil && *u.State != StateRunning && *u.State != "" {
			// A run ended through GraphQL rather than file_stream's complete: pack what is left of it too.
			s.packFinal(ctx, tx, id)
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	run, err = s.Run(ctx, u.RunKey)
	return run, inserted, err
}

// normalizeObject checks that s is a JSON object (NaN and Infinity literals allowed) and returns it as
// strict JSON; the empty string is the empty object.
func normalizeObject(s string) (string, error) {
	if strings.TrimSpace(s) == "" || strings.TrimSpace(s) == "null" {
		return "{}", nil
	}
	b := SanitizeJSON([]byte(s))
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return "", fmt.Errorf("not a JSON object: %w", err)
	}
	return string(b), nil
}

// Run returns one run.
func (s *Store) Run(ctx context.Context, k RunKey) (*Run, error) {
	row := s.read.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs r JOIN projects p ON p.id = r.project_id
		WHERE p.entity = ? AND p.name = ? AND r.name = ?`, k.Entity, k.Project, k.Name)
	r, err := scanRun(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("run %s: %w", k, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read run %s: %w", k, err)
	}
	return r, nil
}

// Runs lists a project's runs, newest first. An empty entity matches every entity.
func (s *Store) Runs(ctx context.Context, entity, project string) ([]*Run, error) {
	q := `SELECT ` + runColumns + ` FROM runs r JOIN projects p ON p.id = r.project_id WHERE p.name = ?`
	args := []any{project}
	if entity != "" {
		q += ` AND p.entity = ?`
		args = append(args, entity)
	}
	rows, err := s.read.QueryContext(ctx, q+` ORDER BY r.created_at DESC, r.id DESC`, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs of %s: %w", project, err)
	}
	defer rows.Close()
	var out []*Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs of %s: %w", project, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Projects lists every project with its run counts, most recently active first.
func (s *Store) Projects(ctx context.Context) ([]Project, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT p.id, p.entity, p.name, p.created_at,
		COUNT(r.id), COALESCE(SUM(r.state = 'running'), 0), COALESCE(MAX(r.updated_at), p.created_at)
		FROM projects p LEFT JOIN runs r ON r.project_id = p.id GROUP BY p.id ORDER BY 7 DESC`)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	defer rows.Close()
	var out []Project
	for rows.Next() {
		var p Project
		var created, updated int64
		if err := rows.Scan(&p.ID, &p.Entity, &p.Name, &created, &p.Runs, &p.Running, &updated); err != nil {
			return nil, fmt.Errorf("list projects: %w", err)
		}
		p.CreatedAt = time.UnixMilli(created).UTC()
		p.UpdatedAt = time.UnixMilli(updated).UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}

// RequestStop marks a run so that its next file_stream answer asks the client to stop.
func (s *Store) RequestStop(ctx context.Context, k RunKey) error {
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE runs SET stop_requested = 1 WHERE name = ? AND project_id =
			(SELECT id FROM projects WHERE entity = ? AND name = ?)`, k.Name, k.Entity, k.Project)
		if err != nil {
			return fmt.Errorf("stop run %s: %w", k, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("run %s: %w", k, ErrNotFound)
		}
		return nil
	})
}

// MarkCrashed sets every running run whose last sign of life is before cutoff to crashed and returns them.
// Their metric rows are packed into blocks as if they had finished.
func (s *Store) MarkCrashed(ctx context.Context, cutoff time.Time) ([]RunKey, error) {
	var out []RunKey
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `UPDATE runs SET state = 'crashed', updated_at = ?
			WHERE state = 'running' AND heartbeat_at < ? RETURNING id, name,
			(SELECT entity FROM projects WHERE id = project_id), (SELECT name FROM projects WHERE id = project_id)`,
			s.nowMS(), cutoff.UnixMilli())
		if err != nil {
			return fmt.Errorf("mark crashed runs: %w", err)
		}
		var ids []int64
		for rows.Next() {
			var id int64
			var k RunKey
			if err := rows.Scan(&id, &k.Name, &k.Entity, &k.Project); err != nil {
				rows.Close()
				return fmt.Errorf("mark crashed runs: %w", err)
			}
			ids = append(ids, id)
			out = append(out, k)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("mark crashed runs: %w", err)
		}
		for _, id := range ids {
			s.packFinal(ctx, tx, id)
		}
		return nil
	})
	return out, err
}
