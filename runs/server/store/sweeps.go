package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// sweepsMigration creates the sweeps table: one row per sweep a server hosts for W&B agents, holding the
// sweep file and the controller's state as an opaque JSON document owned by the server package.
const sweepsMigration = `
CREATE TABLE sweeps (
	id         TEXT PRIMARY KEY,
	entity     TEXT NOT NULL,
	project    TEXT NOT NULL,
	config     TEXT NOT NULL,
	state      TEXT NOT NULL DEFAULT 'RUNNING',
	data       TEXT NOT NULL DEFAULT '{}',
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE INDEX runs_sweep ON runs (sweep);
`

// Sweep is a hosted sweep as stored. Data is the controller's state, a JSON document the store does not read.
type Sweep struct {
	ID        string
	Entity    string
	Project   string
	Config    string // the sweep file (YAML) as received
	State     string // RUNNING, PAUSED, CANCELED or FINISHED (W&B's words)
	Data      json.RawMessage
	CreatedAt time.Time
	UpdatedAt time.Time
}

// PutSweep creates or replaces a sweep. It returns once the write has committed.
func (s *Store) PutSweep(ctx context.Context, sw Sweep) error {
	if sw.ID == "" {
		return fmt.Errorf("put sweep: empty id")
	}
	data := string(sw.Data)
	if data == "" {
		data = "{}"
	}
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		now := s.nowMS()
		_, err := tx.ExecContext(ctx, `INSERT INTO sweeps (id, entity, project, config, state, data, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET entity = excluded.entity, project = excluded.project,
				config = excluded.config, state = excluded.state, data = excluded.data, updated_at = excluded.updated_at`,
			sw.ID, sw.Entity, sw.Project, sw.Config, sw.State, data, now, now)
		if err != nil {
			return fmt.Errorf("put sweep %s: %w", sw.ID, err)
		}
		return nil
	})
}

// Sweeps returns every stored sweep, oldest first.
func (s *Store) Sweeps(ctx context.Context) ([]Sweep, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, entity, project, config, state, data, created_at, updated_at
		FROM sweeps ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list sweeps: %w", err)
	}
	defer rows.Close()
	var out []Sweep
	for rows.Next() {
		var sw Sweep
		var data string
		var created, updated int64
		if err := rows.Scan(&sw.ID, &sw.Entity, &sw.Project, &sw.Config, &sw.State, &data, &created, &updated); err != nil {
			return nil, fmt.Errorf("list sweeps: %w", err)
		}
		sw.Data = json.RawMessage(data)
		sw.CreatedAt = time.UnixMilli(created).UTC()
		sw.UpdatedAt = time.UnixMilli(updated).UTC()
		out = append(out, sw)
	}
	return out, rows.Err()
}

// SweepRuns returns the runs whose UpsertBucket named sweep id, in any project.
func (s *Store) SweepRuns(ctx context.Context, id string) ([]*Run, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+runColumns+` FROM runs r JOIN projects p ON p.id = r.project_id
		WHERE r.sweep = ? ORDER BY r.id`, id)
	if err != nil {
		return nil, fmt.Errorf("list runs of sweep %s: %w", id, err)
	}
	defer rows.Close()
	var out []*Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs of sweep %s: %w", id, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
