package runs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/internal/atomicfile"
)

// Run states written to run.json.
const (
	StateRunning  = "running"
	StateFinished = "finished"
	StateFailed   = "failed"
	StateCrashed  = "crashed"
	StateStopped  = "stopped"
)

// File and folder names inside a run directory.
const (
	ConfigFile     = "config.yaml"
	MetaFile       = "run.json"
	HistoryFile    = "history.jsonl"
	SummaryFile    = "summary.json"
	OutputFile     = "output.log"
	CheckpointsDir = "checkpoints"
	PlotsDir       = "plots"
)

// FlushRows and FlushInterval bound how long a history row may sit in the
// Recorder's buffer before it is handed to the operating system: at most
// FlushRows rows, and no longer than FlushInterval once the next row comes.
// Epoch-end rows, Sync and Finish flush at once. With FlushRows 1 every row
// reaches the operating system before Log returns, so a process killed with
// -9 loses no row (one write per row costs about a microsecond); the fsync at
// epoch ends protects against the machine itself going down.
const (
	FlushRows     = 1
	FlushInterval = time.Second
)

// EpochEndKey is the history key whose presence marks the last row of an
// epoch; the Recorder fsyncs history.jsonl after writing such a row.
const EpochEndKey = "train/epoch_loss"

// Errors callers branch on.
var (
	ErrRunExists   = errors.New("runs: run already exists")
	ErrRunNotFound = errors.New("runs: run not found")
	ErrFinished    = errors.New("runs: recorder already finished")
)

// Sink has the method set of experiments.Sink. It is declared here so that
// MultiSink can be typed without runs importing the trainer; any Sink is an
// experiments.Sink and the other way round.
type Sink interface {
	Log(ctx context.Context, row map[string]any) error
	Summary(ctx context.Context, summary map[string]any) error
}

// Recorder writes one run's record while it trains. It is safe for
// concurrent use. The ctx arguments of its methods satisfy the Sink
// interface; local writes are not cancelled by them, so a trainer stopped by
// Ctrl-C can still record its last rows.
type Recorder struct {
	dir string

	mu       sync.Mutex
	meta     Meta
	hist     *os.File
	w        *bufio.Writer
	line     []byte
	out      *os.File
	pending  int       // rows written to w since the last flush
	flushed  time.Time // time of the last flush
	syncReq  chan struct{}
	syncDone chan struct{}
	finished bool
	err      error // first write error; later writes fail with it
}

var _ Sink = (*Recorder)(nil)

// Create starts the record of a new run under <workdir>/runs/<run.id>/ and
// marks it running. When cfg.Run.ID is empty it generates an id and stores
// it in cfg.Run.ID, so every sink of the run sees the same id. It fails with
// ErrRunExists ("run X already exists in DIR") when that directory already
// holds a history, whatever the state of that run.
func Create(ctx context.Context, workdir string, cfg *configs.Config) (*Recorder, error) {
	if cfg == nil {
		return nil, errors.New("runs: create: nil config")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("runs: create: %w", err)
	}
	if cfg.Run.ID == "" {
		cfg.Run.ID, _ = NewID()
	}
	id := cfg.Run.ID
	if err := checkID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(workdir, "runs", id)
	for _, d := range []string{dir, filepath.Join(dir, CheckpointsDir), filepath.Join(dir, PlotsDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("runs: create %s: %w", d, err)
		}
	}
	// O_EXCL makes the existence check and the claim one step, so two
	// processes given the same id cannot both record into it.
	hist, err := os.OpenFile(filepath.Join(dir, HistoryFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("run %s already exists in %s: %w", id, dir, ErrRunExists)
	}
	if err != nil {
		return nil, fmt.Errorf("runs: create history: %w", err)
	}
	r := &Recorder{dir: dir, hist: hist, w: bufio.NewWriterSize(hist, 64<<10), flushed: time.Now()}
	fail := func(err error) (*Recorder, error) {
		_ = hist.Close()
		if r.out != nil {
			_ = r.out.Close()
		}
		_ = os.Remove(filepath.Join(dir, HistoryFile))
		return nil, err
	}
	yml, err := cfg.Marshal()
	if err != nil {
		return fail(fmt.Errorf("runs: create: %w", err))
	}
	if err := writeFileAtomic(filepath.Join(dir, ConfigFile), yml, false); err != nil {
		return fail(err)
	}
	if r.out, err = os.OpenFile(filepath.Join(dir, OutputFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
		return fail(fmt.Errorf("runs: create output log: %w", err))
	}
	host, _ := os.Hostname()
	r.meta = Meta{
		ID: id, Name: cfg.Run.Name, Project: cfg.Run.Project, Group: cfg.Run.Group,
		Tags: append([]string{}, cfg.Run.Tags...), Notes: cfg.Run.Notes, SweepID: cfg.Run.SweepID,
		State: StateRunning, PID: os.Getpid(), Host: host,
		StartedAt: time.Now().UTC(), Version: version(),
	}
	if err := r.writeMeta(); err != nil {
		return fail(err)
	}
	r.syncReq, r.syncDone = make(chan struct{}, 1), make(chan struct{})
	go r.syncLoop()
	return r, nil
}

// Dir is the run directory, <workdir>/runs/<id>.
func (r *Recorder) Dir() string { return r.dir }

// ID is the run id.
func (r *Recorder) ID() string { return r.meta.ID }

// CheckpointDir is the folder for the run's checkpoints.
func (r *Recorder) CheckpointDir() string { return filepath.Join(r.dir, CheckpointsDir) }

// PlotDir is the folder for the run's figures.
func (r *Recorder) PlotDir() string { return filepath.Join(r.dir, PlotsDir) }

// Log appends row to history.jsonl as one line. Rows are buffered and handed
// to the operating system every FlushRows rows, after FlushInterval, and
// with every epoch-end row (one carrying EpochEndKey), which is also
// fsynced to disk in the background so training does not wait for the disk.
func (r *Recorder) Log(_ context.Context, row map[string]any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usable(); err != nil {
		return err
	}
	line, err := appendObject(r.line[:0], row)
	if err != nil {
		return fmt.Errorf("runs: log row: %w", err)
	}
	line = append(line, '\n')
	r.line = line
	if _, err := r.w.Write(line); err != nil {
		return r.fail(fmt.Errorf("runs: write history: %w", err))
	}
	r.pending++
	_, epochEnd := row[EpochEndKey]
	now := time.Now()
	if epochEnd || r.pending >= FlushRows || now.Sub(r.flushed) >= FlushInterval {
		if err := r.w.Flush(); err != nil {
			return r.fail(fmt.Errorf("runs: write history: %w", err))
		}
		r.pending, r.flushed = 0, now
	}
	if epochEnd {
		select {
		case r.syncReq <- struct{}{}:
		default: // a sync is already queued; it will cover this row
		}
	}
	return nil
}

// syncLoop fsyncs history.jsonl on request until syncReq is closed.
func (r *Recorder) syncLoop() {
	defer close(r.syncDone)
	for range r.syncReq {
		if err := r.hist.Sync(); err != nil {
			r.mu.Lock()
			r.fail(fmt.Errorf("runs: sync history: %w", err))
			r.mu.Unlock()
		}
	}
}

// Summary replaces summary.json with s (write to a temporary file, fsync,
// rename), so a reader sees either the old or the new summary.
func (r *Recorder) Summary(_ context.Context, s map[string]any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usable(); err != nil {
		return err
	}
	b, err := appendIndentedObject(nil, s)
	if err != nil {
		return fmt.Errorf("runs: summary: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(r.dir, SummaryFile), b, true); err != nil {
		return r.fail(err)
	}
	return nil
}

// Sync flushes and fsyncs history.jsonl.
func (r *Recorder) Sync(_ context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usable(); err != nil {
		return err
	}
	return r.sync()
}

func (r *Recorder) sync() error {
	if err := r.w.Flush(); err != nil {
		return r.fail(fmt.Errorf("runs: write history: %w", err))
	}
	if err := r.hist.Sync(); err != nil {
		return r.fail(fmt.Errorf("runs: sync history: %w", err))
	}
	return nil
}

// Output is the run's output.log, for the CLI to tee its log into. Writes
// are unbuffered appends; after Finish they fail with ErrFinished.
func (r *Recorder) Output() io.Writer { return outputWriter{r} }

type outputWriter struct{ r *Recorder }

func (o outputWriter) Write(p []byte) (int, error) {
	o.r.mu.Lock()
	defer o.r.mu.Unlock()
	if o.r.finished {
		return 0, ErrFinished
	}
	n, err := o.r.out.Write(p)
	if err != nil {
		return n, fmt.Errorf("runs: write output log: %w", err)
	}
	return n, nil
}

// Finish ends the record: it flushes and fsyncs the history, closes the
// files and writes run.json with state (one of finished, failed, crashed,
// stopped), exit code and end time. A second Finish returns ErrFinished.
func (r *Recorder) Finish(_ context.Context, state string, exitCode int) error {
	switch state {
	case StateFinished, StateFailed, StateCrashed, StateStopped:
	default:
		return fmt.Errorf("runs: finish: state %q: want finished, failed, crashed or stopped", state)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return ErrFinished
	}
	r.finished = true
	// Stop the background syncer; it may take mu to record an error, so
	// wait for it without holding mu.
	close(r.syncReq)
	r.mu.Unlock()
	<-r.syncDone
	r.mu.Lock()
	var errs []error
	if r.err == nil {
		if err := r.sync(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := r.hist.Close(); err != nil {
		errs = append(errs, fmt.Errorf("runs: close history: %w", err))
	}
	if err := r.out.Close(); err != nil {
		errs = append(errs, fmt.Errorf("runs: close output log: %w", err))
	}
	now := time.Now().UTC()
	r.meta.State = state
	r.meta.EndedAt = &now
	r.meta.ExitCode = &exitCode
	if err := r.writeMeta(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (r *Recorder) usable() error {
	if r.finished {
		return ErrFinished
	}
	return r.err
}

func (r *Recorder) fail(err error) error {
	if r.err == nil {
		r.err = err
	}
	return err
}

func (r *Recorder) writeMeta() error {
	b, err := marshalMeta(r.meta)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(r.dir, MetaFile), b, true)
}

// writeFileAtomic writes data to path through a temporary file in the same
// folder and a rename; with sync the temporary file is fsynced first.
func writeFileAtomic(path string, data []byte, sync bool) error {
	if err := atomicfile.WriteFile(path, data, sync); err != nil {
		return fmt.Errorf("runs: write %s: %w", path, err)
	}
	return nil
}

// appendIndentedObject writes m with one top-level key per line, for files
// people open (summary.json); nested values stay on their key's line.
func appendIndentedObject(b []byte, m map[string]any) ([]byte, error) {
	keys := sortedKeys(m)
	if len(keys) == 0 {
		return append(b, "{}\n"...), nil
	}
	b = append(b, "{\n"...)
	for i, k := range keys {
		b = append(b, "  "...)
		b = appendString(b, k)
		b = append(b, ": "...)
		var err error
		if b, err = AppendJSON(b, m[k]); err != nil {
			return b, fmt.Errorf("key %q: %w", k, err)
		}
		if i < len(keys)-1 {
			b = append(b, ',')
		}
		b = append(b, '\n')
	}
	return append(b, "}\n"...), nil
}

// NewID returns a fresh run id (configs.NewRunID: UTC time to the second
// and six random characters, e.g. "20261128-083412-ab12cd"). The error is
// always nil; it is kept so callers need not change if ids ever come from
// somewhere that can fail.
func NewID() (string, error) {
	return configs.NewRunID(time.Now(), nil), nil
}

// checkID rejects ids that are not a single safe path element.
func checkID(id string) error {
	if id == "." || id == ".." || len(id) > 128 {
		return fmt.Errorf("runs: run id %q: not a valid directory name", id)
	}
	for _, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("runs: run id %q: only letters, digits, '-', '_' and '.' are allowed", id)
		}
	}
	return nil
}

// version is the main module's version from the build info, "(devel)" for
// a plain go build.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
