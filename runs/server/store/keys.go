package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// AddKey stores the hash of an API key (hex sha256); adding a known hash is not an error.
func (s *Store) AddKey(ctx context.Context, hash, label string) error {
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO api_keys (hash, label, created_at) VALUES (?, ?, ?)`,
			hash, label, s.nowMS())
		if err != nil {
			return fmt.Errorf("add api key: %w", err)
		}
		return nil
	})
}

// KeyHashes returns every stored key hash.
func (s *Store) KeyHashes(ctx context.Context) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT hash FROM api_keys`)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("list api keys: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// AddSession stores a dashboard session (hash of its token) valid until expires.
func (s *Store) AddSession(ctx context.Context, hash string, expires time.Time) error {
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		now := s.nowMS()
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < ?`, now); err != nil {
			return fmt.Errorf("prune sessions: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (hash, created_at, expires_at) VALUES (?, ?, ?)`,
			hash, now, expires.UnixMilli()); err != nil {
			return fmt.Errorf("add session: %w", err)
		}
		return nil
	})
}

// SessionValid reports whether a session hash exists and has not expired.
func (s *Store) SessionValid(ctx context.Context, hash string) (bool, error) {
	var exp int64
	err := s.read.QueryRowContext(ctx, `SELECT expires_at FROM sessions WHERE hash = ?`, hash).Scan(&exp)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read session: %w", err)
	}
	return exp > s.nowMS(), nil
}

// DeleteSession removes a session.
func (s *Store) DeleteSession(ctx context.Context, hash string) error {
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE hash = ?`, hash)
		return err
	})
}

// Setting returns a stored setting, creating it with gen() the first time.
func (s *Store) Setting(ctx context.Context, key string, gen func() string) (string, error) {
	var v string
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read setting %s: %w", key, err)
		}
		v = gen()
		if _, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)`, key, v); err != nil {
			return fmt.Errorf("write setting %s: %w", key, err)
		}
		return nil
	})
	return v, err
}
