package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// OpenTuned opens a store whose metric blocks hold blockSize values (0: the default), or, with noPack, one
// that never packs (the layout before blocks), migrated to schema version schema (0: the latest).
func OpenTuned(ctx context.Context, path string, blockSize int, noPack bool, schema int) (*Store, error) {
	return open(ctx, path, Options{}, tuning{blockSize: blockSize, noPack: noPack, schema: schema})
}

// PackAll packs every stored series: whole blocks only (as a live run has them), or everything (all).
func (s *Store) PackAll(ctx context.Context, all bool) error {
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return packAllTx(ctx, tx, s, all)
	})
}

// Layout counts the metric rows and blocks stored.
func (s *Store) Layout(ctx context.Context) (rows, blocks int64, err error) {
	if err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM metrics`).Scan(&rows); err != nil {
		return 0, 0, err
	}
	var tables int
	if err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name = 'metric_blocks'`).Scan(&tables); err != nil || tables == 0 {
		return rows, 0, err
	}
	err = s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM metric_blocks`).Scan(&blocks)
	return rows, blocks, err
}

// EncodeBlock and DecodeBlock expose the block format to tests: a step of -1 means NULL (as Series reports it).
func EncodeBlock(lines, steps []int64, values []float64) []byte {
	pts := make([]point, len(lines))
	for i := range pts {
		pts[i] = point{line: lines[i], step: sql.NullInt64{Int64: steps[i], Valid: steps[i] != -1},
			value: sql.NullFloat64{Float64: values[i], Valid: true}}
	}
	return encodeBlock(pts)
}

func DecodeBlock(b []byte) (Series, error) {
	var se Series
	err := decodeBlock(b, &se)
	return se, err
}

// The reads as they were before blocks: SQL over the metric rows only. On a store opened with noPack
// they are the old read path on the old layout.

func (s *Store) MetricRows(ctx context.Context, runID int64, key string) (Series, error) {
	return s.legacySeries(ctx, key, `SELECT line, step, value FROM metrics WHERE run_id = ? AND key = ? ORDER BY line`, runID, key)
}

func (s *Store) MetricBucketsRows(ctx context.Context, runID int64, key string, lines int64, buckets int) (Series, error) {
	if lines <= 0 || buckets <= 0 {
		return Series{}, nil
	}
	q := `SELECT line, step, value FROM (
		SELECT line, step, MIN(value) AS value FROM metrics WHERE run_id = ?1 AND key = ?2 AND value IS NOT NULL
			GROUP BY line * ?3 / ?4
		UNION
		SELECT line, step, MAX(value) AS value FROM metrics WHERE run_id = ?1 AND key = ?2 AND value IS NOT NULL
			GROUP BY line * ?3 / ?4
	) ORDER BY line`
	return s.legacySeries(ctx, key, q, runID, key, int64(buckets), lines)
}

func (s *Store) MetricAtRows(ctx context.Context, runID int64, key string, lines []int64) (Series, error) {
	if len(lines) == 0 {
		return Series{}, nil
	}
	var b strings.Builder
	args := []any{runID, key}
	for i, l := range lines {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('?')
		args = append(args, l)
	}
	return s.legacySeries(ctx, key, `SELECT line, step, value FROM metrics WHERE run_id = ? AND key = ? AND line IN (`+b.String()+`) ORDER BY line`, args...)
}

func (s *Store) legacySeries(ctx context.Context, key, q string, args ...any) (Series, error) {
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return Series{}, fmt.Errorf("read metric %s: %w", key, err)
	}
	defer rows.Close()
	var out Series
	for rows.Next() {
		var l int64
		var st sql.NullInt64
		var v sql.NullFloat64
		if err := rows.Scan(&l, &st, &v); err != nil {
			return Series{}, fmt.Errorf("read metric %s: %w", key, err)
		}
		if !v.Valid {
			continue
		}
		if !st.Valid {
			st.Int64 = -1
		}
		out.Lines = append(out.Lines, l)
		out.Steps = append(out.Steps, st.Int64)
		out.Values = append(out.Values, v.Float64)
	}
	return out, rows.Err()
}
