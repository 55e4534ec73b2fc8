package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migration is one schema version: SQL, then (optionally) Go code, in one transaction.
type migration struct {
	sql  string
	then func(ctx context.Context, tx *sql.Tx) error
}

// migrations is the schema history. Append new versions; never edit an applied one.
var migrations = []migration{
	// 1: projects, runs, history, console output, files, keys, sessions.
	{sql: `
CREATE TABLE projects (
	id         INTEGER PRIMARY KEY,
	entity     TEXT NOT NULL,
	name       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	UNIQUE (entity, name)
);
CREATE TABLE runs (
	id             INTEGER PRIMARY KEY,
	project_id     INTEGER NOT NULL REFERENCES projects(id),
	name           TEXT NOT NULL,
	display_name   TEXT NOT NULL DEFAULT '',
	group_name     TEXT NOT NULL DEFAULT '',
	job_type       TEXT NOT NULL DEFAULT '',
	description    TEXT NOT NULL DEFAULT '',
	notes          TEXT NOT NULL DEFAULT '',
	tags           TEXT NOT NULL DEFAULT '[]',
	config         TEXT NOT NULL DEFAULT '{}',
	host           TEXT NOT NULL DEFAULT '',
	program        TEXT NOT NULL DEFAULT '',
	commit_hash    TEXT NOT NULL DEFAULT '',
	sweep          TEXT NOT NULL DEFAULT '',
	state          TEXT NOT NULL DEFAULT 'running',
	exit_code      INTEGER,
	stop_requested INTEGER NOT NULL DEFAULT 0,
	summary        TEXT NOT NULL DEFAULT '{}',
	history_lines  INTEGER NOT NULL DEFAULT 0,
	events_lines   INTEGER NOT NULL DEFAULT 0,
	log_lines      INTEGER NOT NULL DEFAULT 0,
	created_at     INTEGER NOT NULL,
	updated_at     INTEGER NOT NULL,
	heartbeat_at   INTEGER NOT NULL,
	finished_at    INTEGER,
	UNIQUE (project_id, name)
);
CREATE INDEX runs_state ON runs (state, heartbeat_at);
CREATE TABLE history (
	run_id INTEGER NOT NULL,
	line   INTEGER NOT NULL,
	step   INTEGER,
	row    TEXT NOT NULL,
	PRIMARY KEY (run_id, line)
) WITHOUT ROWID;
CREATE TABLE metrics (
	run_id INTEGER NOT NULL,
	key    TEXT NOT NULL,
	line   INTEGER NOT NULL,
	step   INTEGER,
	value  REAL,
	PRIMARY KEY (run_id, key, line)
) WITHOUT ROWID;
CREATE TABLE run_keys (
	run_id INTEGER NOT NULL,
	key    TEXT NOT NULL,
	PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE TABLE events (
	run_id INTEGER NOT NULL,
	line   INTEGER NOT NULL,
	row    TEXT NOT NULL,
	PRIMARY KEY (run_id, line)
) WITHOUT ROWID;
CREATE TABLE logs (
	run_id INTEGER NOT NULL,
	line   INTEGER NOT NULL,
	text   TEXT NOT NULL,
	PRIMARY KEY (run_id, line)
) WITHOUT ROWID;
CREATE TABLE files (
	run_id     INTEGER NOT NULL,
	name       TEXT NOT NULL,
	size       INTEGER NOT NULL DEFAULT 0,
	uploaded   INTEGER NOT NULL DEFAULT 0,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
CREATE TABLE api_keys (
	id         INTEGER PRIMARY KEY,
	hash       TEXT NOT NULL UNIQUE,
	label      TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL
);
CREATE TABLE sessions (
	hash       TEXT PRIMARY KEY,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);
CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
`},
	// 2: sweeps hosted for W&B agents (sweeps.go); runs looked up by sweep.
	{sql: sweepsMigration},
	// 3: metric values packed into blocks (blocks.go); the rows already stored are packed.
	{sql: blocksMigration, then: packAllMigration},
}

// SchemaVersion is the version the migrations bring a database to.
func SchemaVersion() int { return len(migrations) }

// migrate applies the missing migrations up to version upTo.
func migrate(ctx context.Context, db *sql.DB, upTo int) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var have int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if have > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this binary's %d", have, len(migrations))
	}
	for v := have + 1; v <= upTo; v++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
		m := migrations[v-1]
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", v, err)
		}
		if m.then != nil {
			if err := m.then(ctx, tx); err != nil {
				tx.Rollback()
				return fmt.Errorf("migration %d: %w", v, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
			v, time.Now().UnixMilli()); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", v, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
	}
	return nil
}
