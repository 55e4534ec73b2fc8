package wandb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune a Stream or a Sync. The zero value means the documented defaults.
type Options struct {
	HTTPClient *http.Client // default: a plain http.Client (each attempt has its own timeout)
	Logger     *slog.Logger // default: discard

	Interval      time.Duration // least time between two file_stream requests while the run goes on; default 5 s
	Heartbeat     time.Duration // an empty request after this long without one; default 30 s
	StartTimeout  time.Duration // Start waits this long for the server before going on in the background; default 15 s
	FlushTimeout  time.Duration // Finish sends for at most this long; default 30 s
	SystemMetrics time.Duration // period of the system metrics rows; default 15 s; negative: none
	Retry         RetryPolicy   // Sync defaults MaxAttempts to 10; a Stream retries until Finish's deadline

	MaxBatchBytes int // about the most bytes of lines in one request; default 4 MiB
	MaxBatchLines int // the most lines of one file in one request; default 10,000

	UploadCheckpoints bool // also upload checkpoints/ (tracking.upload_checkpoints)
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.Interval, 5*time.Second)
	def(&o.Heartbeat, 30*time.Second)
	def(&o.StartTimeout, 15*time.Second)
	def(&o.FlushTimeout, 30*time.Second)
	def(&o.SystemMetrics, 15*time.Second)
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = 4 << 20
	}
	if o.MaxBatchLines <= 0 {
		o.MaxBatchLines = 10000
	}
	return o
}

// Stream sends one run to a W&B server while it is recorded. Its Log and Summary implement the trainer's
// Sink without ever waiting on the network: the run directory is the write-ahead log, and a background
// sender reads it from the acknowledged offsets. Log, Summary, Preempting and Stopped are safe for concurrent
// use; Finish is called once, after the local recorder has written its last rows.
type Stream struct {
	dir     string
	mode    string
	log     *slog.Logger
	opts    Options
	sn      *sender
	wake    chan struct{}
	stopped chan struct{}
	stopOne sync.Once
	preempt atomic.Bool

	mu       sync.Mutex
	final    bool
	exitCode int
	result   error

	cancel     context.CancelFunc
	done       chan struct{} // closed when the sender goroutine ends
	stopSample func()
	unlock     func()

	finishOnce sync.Once
	finishErr  error
}

// Start opens the stream of the run recorded in runDir. In disabled mode it returns a stream that does
// nothing; offline, one that only records system metrics for a later Sync. Online, it checks the key
// (Viewer; a refused key is one clear error, ErrUnauthorized, without retries), asks for the server's
// features, resumes per s.Resume, creates the run (UpsertBucket) and starts the sender. When the server does
// not answer within StartTimeout the run goes on and the sender keeps trying in the background.
func Start(ctx context.Context, runDir string, s Settings, opts Options) (*Stream, error) {
	opts = opts.withDefaults()
	st := &Stream{
		dir: runDir, mode: s.Mode, log: opts.Logger, opts: opts,
		wake: make(chan struct{}, 1), stopped: make(chan struct{}), done: make(chan struct{}),
		stopSample: func() {}, unlock: func() {},
	}
	switch s.Mode {
	case ModeDisabled:
		close(st.done)
		return st, nil
	case ModeOffline:
		st.stopSample = startSampler(runDir, opts.SystemMetrics, opts.Logger)
		close(st.done)
		return st, nil
	case ModeOnline:
	default:
		return nil, &SettingsError{Field: "mode", Value: s.Mode, Source: "settings", Reason: "want online, offline or disabled"}
	}
	unlock, err := lockDir(runDir)
	if err != nil {
		return nil, err
	}
	sn, err := newSender(runDir, s, opts)
	if err != nil {
		unlock()
		return nil, err
	}
	sn.onStop = func() { st.stopOne.Do(func() { close(st.stopped) }) }
	sn.preempting = st.preempt.Load
	st.sn, st.unlock = sn, unlock

	// At start, few tries: a refused key must show at once, and an unreachable server must not hold up
	// training; the sender goes on trying in the background.
	ictx, icancel := context.WithTimeout(ctx, opts.StartTimeout)
	policy := sn.c.policy
	sn.c.policy.MaxAttempts, sn.c.policy.MaxBackoff = 2, min(policy.MaxBackoff, 2*time.Second)
	err = sn.init(ictx)
	sn.c.policy = policy
	icancel()
	switch {
	case err == nil:
	case IsPermanent(err):
		unlock()
		return nil, fmt.Errorf("wandb: start run %s at %s: %w", sn.st.RunID, s.BaseURL, err)
	case ctx.Err() != nil:
		unlock()
		return nil, ctx.Err()
	default:
		opts.Logger.Warn("wandb: server not reachable; the run is recorded locally and sent when it answers",
			"url", s.BaseURL, "err", err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	st.cancel = cancel
	st.stopSample = startSampler(runDir, opts.SystemMetrics, opts.Logger)
	go st.loop(sctx)
	return st, nil
}

// Log notes that a history row was written to the run directory; it never blocks and never fails.
func (st *Stream) Log(ctx context.Context, row map[string]any) error {
	st.nudge()
	return nil
}

// Summary notes that summary.json was replaced; it never blocks and never fails.
func (st *Stream) Summary(ctx context.Context, summary map[string]any) error {
	st.nudge()
	return nil
}

func (st *Stream) nudge() {
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// Preempting tells the server, with the next request, that the process is being preempted and the run
// will go on later.
func (st *Stream) Preempting() {
	st.preempt.Store(true)
	st.nudge()
}

// Stopped is closed when the server asked the run to stop ({"stopped": true}, a stop from the UI).
func (st *Stream) Stopped() <-chan struct{} { return st.stopped }

// Dir is the run directory the stream reads.
func (st *Stream) Dir() string { return st.dir }

// loop is the sender goroutine: it creates the run if Start could not, then sends at most one request per
// Interval (more when catching up), a heartbeat when idle, and the final request on Finish.
func (st *Stream) loop(ctx context.Context) {
	defer close(st.done)
	sn := st.sn
	for !sn.ready {
		err := sn.init(ctx)
		if err == nil {
			break
		}
		if IsPermanent(err) || ctx.Err() != nil {
			st.setResult(err)
			if IsPermanent(err) {
				st.log.Error("wandb: the server refused the run; it is recorded locally for mami sync", "err", err)
			}
			return
		}
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	var next, lastSend time.Time
	lastSend = time.Now()
	for {
		if final, code := st.finalState(); final {
			st.setResult(sn.finish(ctx, code))
			return
		}
		if now := time.Now(); !now.Before(next) {
			if sn.configChanged() { // debounced by the interval, like every request
				if err := sn.upsert(ctx); err != nil && ctx.Err() == nil {
					st.log.Warn("wandb: update the run's config", "err", err)
				}
			}
			b, err := sn.build(false)
			if err != nil {
				st.log.Warn("wandb: read run directory", "err", err)
			} else if !b.empty() || now.Sub(lastSend) >= st.opts.Heartbeat {
				if err := sn.send(ctx, b); err != nil {
					st.setResult(err)
					if ctx.Err() == nil {
						st.log.Error("wandb: the server refused an update; streaming stopped, the run is left for mami sync", "err", err)
					}
					return
				}
				lastSend = time.Now()
				if b.more || sn.restarted {
					sn.restarted = false
					continue
				}
			}
			next = time.Now().Add(st.opts.Interval)
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			st.setResult(ctx.Err())
			return
		case <-st.wake:
		case <-timer.C:
		}
	}
}

func (st *Stream) finalState() (bool, int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.final, st.exitCode
}

func (st *Stream) setResult(err error) {
	st.mu.Lock()
	st.result = err
	st.mu.Unlock()
}

// IncompleteError is returned by Finish when part of the run did not reach the server; `mami sync` sends it.
type IncompleteError struct {
	Dir                     string
	History, Events, Output int64 // lines not acknowledged
	Cause                   error
}

func (e *IncompleteError) Error() string {
	return fmt.Sprintf("wandb: the run in %s was not fully uploaded (%d history rows, %d system metrics rows, %d output lines, or the final state, not acknowledged: %v); upload it with `mami sync %s`",
		e.Dir, e.History, e.Events, e.Output, e.Cause, e.Dir)
}

func (e *IncompleteError) Unwrap() error { return e.Cause }

// Finish ends the stream: it sends what is left for at most FlushTimeout (or until ctx ends), uploads the
// run files and marks the run complete with exitCode (non-zero means failed). What could not be sent stays in
// the run directory for Sync, and the returned *IncompleteError says so. Call it after the recorder wrote
// its last row and summary. Finish is idempotent.
func (st *Stream) Finish(ctx context.Context, exitCode int) error {
	st.finishOnce.Do(func() { st.finishErr = st.finish(ctx, exitCode) })
	return st.finishErr
}

func (st *Stream) finish(ctx context.Context, exitCode int) error {
	st.stopSample()
	if st.sn == nil {
		if st.mode == ModeOffline {
			st.log.Info("wandb: run recorded offline; upload it with `mami sync " + st.dir + "`")
		}
		return nil
	}
	defer st.unlock()
	st.mu.Lock()
	st.final, st.exitCode = true, exitCode
	st.mu.Unlock()
	st.nudge()
	t := time.NewTimer(st.opts.FlushTimeout)
	defer t.Stop()
	select {
	case <-st.done:
	case <-t.C:
	case <-ctx.Done():
	}
	st.cancel()
	<-st.done
	st.mu.Lock()
	res := st.result
	st.mu.Unlock()
	if st.sn.state().Complete {
		if res != nil {
			return fmt.Errorf("wandb: run complete on the server, but some files were not uploaded (`mami sync %s` retries): %w", st.dir, res)
		}
		return nil
	}
	if res == nil {
		res = errors.New("flush timed out")
	}
	if errors.Is(res, context.Canceled) {
		res = fmt.Errorf("no answer within %v: %w", st.opts.FlushTimeout, res)
	}
	h, e, o := st.sn.pending()
	return &IncompleteError{Dir: st.dir, History: h, Events: e, Output: o, Cause: res}
}

// Viewer checks the settings against the server before a run is created: it returns the key's default
// entity, ErrUnauthorized (without retries) for a refused key, or the network error after a couple of tries.
// Disabled and offline settings need no server and return "".
func Viewer(ctx context.Context, s Settings, opts Options) (string, error) {
	if s.Mode != ModeOnline {
		return "", nil
	}
	opts = opts.withDefaults()
	p := opts.Retry
	p.MaxAttempts, p.MaxBackoff = 2, min(p.withDefaults().MaxBackoff, 2*time.Second)
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	return newClient(opts.HTTPClient, s, p, opts.Logger).viewer(ctx)
}
