// Package store keeps the tracking server's data in one SQLite database (pure Go, no cgo): projects, runs,
// their history, console output, uploaded-file records, API keys and dashboard sessions.
//
// # Concurrency
//
// The database runs in WAL mode. Reads go through a pool of read-only connections; every write goes
// through one writer goroutine that owns the only writing connection and commits the writes that are
// waiting together in one transaction (group commit), each inside its own savepoint so that one failing
// write does not undo the others. Writers therefore never meet SQLITE_BUSY, and a write is acknowledged
// only once its transaction has committed.
//
// # Schema
//
// The schema is versioned: migrations is an ordered list, and the schema_migrations table records which
// versions were applied. Open applies the missing ones.
//
// # Metric values
//
// Each numeric history value is written as one row of the metrics table, in the transaction that
// acknowledges its request; the writer then packs a run's rows into blocks of 512 values per key
// (metric_blocks) as they accumulate and when the run ends, so that reading a metric reads a few BLOBs
// instead of one row per value. blocks.go describes the layout and the block format.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// ErrNotFound is returned when a project, run or file does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("store: closed")

// DefaultMaxBatch is the most writes committed in one transaction.
const DefaultMaxBatch = 512

// Store is an open database. Its methods are safe for concurrent use.
type Store struct {
	path  string
	read  *sql.DB
	write *sql.DB

	metricStmt *sql.Stmt // metricQuery, prepared on the read connections
	log        *slog.Logger
	jobs       chan *job
	stop       chan struct{}
	done       chan struct{}
	once       sync.Once
	now        func() time.Time

	mu       sync.RWMutex // held for reading while a job is queued, for writing by Close
	isClosed bool

	// Packing metric rows into blocks (blocks.go); unpacked is touched by the writer goroutine only.
	blockSize int
	noPack    bool
	unpacked  map[int64]map[string]int
}

// Options configures Open. The zero value is usable.
type Options struct {
	Logger *slog.Logger     // nil discards
	Clock  func() time.Time // nil means time.Now
}

type job struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx *sql.Tx) error
	done chan error
}

func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) the database file at path, applies the migrations and starts the writer.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	return open(ctx, path, opts, tuning{})
}

// tuning holds what tests vary: the values in a metric block (0: defaultBlock), no packing at all (the
// layout before blocks), and the schema version to migrate to (0: the latest).
type tuning struct {
	blockSize int
	noPack    bool
	schema    int
}

func open(ctx context.Context, path string, opts Options, tu tuning) (*Store, error) {
	if tu.blockSize <= 0 {
		tu.blockSize = defaultBlock
	}
	if tu.schema <= 0 {
		tu.schema = len(migrations)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	w, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := migrate(ctx, w, tu.schema); err != nil {
		w.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	var metricStmt *sql.Stmt
	if tu.schema >= blocksVersion { // a test may stop before the table exists
		if metricStmt, err = r.PrepareContext(ctx, metricQuery); err != nil {
			r.Close()
			w.Close()
			return nil, fmt.Errorf("open %s: prepare metric read: %w", path, err)
		}
	}
	s := &Store{
		path: path, read: r, write: w, metricStmt: metricStmt, log: opts.Logger, now: opts.Clock,
		jobs: make(chan *job, 1024), stop: make(chan struct{}), done: make(chan struct{}),
		blockSize: tu.blockSize, noPack: tu.noPack, unpacked: map[int64]map[string]int{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	go s.writer()
	return s, nil
}

// Path returns the database file.
func (s *Store) Path() string { return s.path }

// Close stops the writer after the queued writes and closes the database.
func (s *Store) Close(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		s.mu.Lock() // waits for jobs being queued; none is queued after this
		s.isClosed = true
		s.mu.Unlock()
		close(s.stop)
		select {
		case <-s.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if _, e := s.write.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); e != nil {
			s.log.Warn("checkpoint", "err", e)
		}
		if s.metricStmt != nil {
			err = errors.Join(err, s.metricStmt.Close())
		}
		err = errors.Join(err, s.read.Close(), s.write.Close())
	})
	return err
}

// Write runs fn inside the writer's transaction and returns once that transaction has committed (or fn's
// error, in which case fn's changes are rolled back and nothing else is affected).
func (s *Store) Write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	j := &job{ctx: ctx, fn: fn, done: make(chan error, 1)}
	s.mu.RLock()
	if s.isClosed {
		s.mu.RUnlock()
		return ErrClosed
	}
	select {
	case s.jobs <- j:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	// Once queued, wait for the outcome even if ctx ends: the job may already be committed.
	return <-j.done
}

func (s *Store) writer() {
	defer close(s.done)
	batch := make([]*job, 0, DefaultMaxBatch)
	for {
		var first *job
		select {
		case first = <-s.jobs:
		case <-s.stop:
			// Drain what is queued, then stop.
			for {
				select {
				case j := <-s.jobs:
					s.commit([]*job{j})
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
	fill:
		for len(batch) < DefaultMaxBatch {
			select {
			case j := <-s.jobs:
				batch = append(batch, j)
			default:
				break fill
			}
		}
		s.commit(batch)
	}
}

func (s *Store) commit(batch []*job) {
	ctx := context.Background()
	errs := make([]error, len(batch))
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		for _, j := range batch {
			j.done <- fmt.Errorf("begin: %w", err)
		}
		return
	}
	for i, j := range batch {
		if err := j.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if _, err := tx.ExecContext(ctx, "SAVEPOINT job"); err != nil {
			errs[i] = fmt.Errorf("savepoint: %w", err)
			continue
		}
		if err := j.fn(ctx, tx); err != nil {
			errs[i] = err
			if _, e := tx.ExecContext(ctx, "ROLLBACK TO job"); e != nil {
				errs[i] = errors.Join(err, fmt.Errorf("rollback to savepoint: %w", e))
			}
		}
		if _, err := tx.ExecContext(ctx, "RELEASE job"); err != nil && errs[i] == nil {
			errs[i] = fmt.Errorf("release savepoint: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		for _, j := range batch {
			j.done <- fmt.Errorf("commit: %w", err)
		}
		return
	}
	for i, j := range batch {
		j.done <- errs[i]
	}
}

func (s *Store) nowMS() int64 { return s.now().UnixMilli() }
