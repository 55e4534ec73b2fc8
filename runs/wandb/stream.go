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

// DefaultMaxRequestBytes is the default Options.MaxRequestBytes: W&B's own clients keep a request under
// about 10 MiB.
const DefaultMaxRequestBytes = 10 << 20

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

	MaxBatchBytes int // about the most bytes of lines in one request; default 4 MiB, at most MaxRequestBytes
	MaxBatchLines int // the most lines of one file in one request; default 10,000
	// MaxRequestBytes caps the body of one file_stream request; default 10 MiB. A batch that would be larger
	// goes out in several requests; a single record larger than this is skipped (see SkippedRecord).
	MaxRequestBytes int

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
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = min(4<<20, o.MaxRequestBytes/2)
	}
	o.MaxBatchBytes = max(1, min(o.MaxBatchBytes, o.MaxRequestBytes))
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
	lastErr  error     // of the last failed attempt
	downN    int       // attempts in a row that found no server (see serverDown)
	downFrom time.Time // when the first of them failed
	notice   chan struct{}

	ctx        context.Context         // the sender's; canceled, with a cause, when Finish stops sending
	cancel     context.CancelCauseFunc // cancels ctx
	interrupt  context.CancelFunc      // ends the sending of the run phase, for Finish's flush to start at once
	done       chan struct{}           // closed when the sender goroutine ends
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
		wake: make(chan struct{}, 1), stopped: make(chan struct{}), done: make(chan struct{}), notice: make(chan struct{}, 1),
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
	sn.c.observe = st.observe
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
	st.ctx, st.cancel = context.WithCancelCause(context.WithoutCancel(ctx))
	run, interrupt := context.WithCancel(st.ctx)
	st.interrupt = interrupt
	st.stopSample = startSampler(runDir, opts.SystemMetrics, opts.Logger)
	go st.loop(st.ctx, run)
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
// Interval (more when catching up), a heartbeat when idle, and the final request on Finish. Until Finish,
// requests go under run; Finish cancels run, so that a request waiting to be retried does not hold up the
// final flush, which goes under ctx.
func (st *Stream) loop(ctx, run context.Context) {
	defer close(st.done)
	sn := st.sn
	flush := func() context.Context {
		// Within FlushTimeout, waits of up to a minute between tries would leave one or two.
		p := &sn.c.policy
		p.MaxBackoff = min(p.MaxBackoff, max(p.MinBackoff, st.opts.FlushTimeout/10))
		return ctx
	}
	phase := func() context.Context {
		if run.Err() == nil {
			return run
		}
		return flush()
	}
	for !sn.ready {
		err := sn.init(phase())
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
			st.setResult(sn.finish(flush(), code))
			return
		}
		if now := time.Now(); !now.Before(next) {
			if sn.configChanged() { // debounced by the interval, like every request
				if err := sn.upsert(run); err != nil && run.Err() == nil {
					st.log.Warn("wandb: update the run's config", "err", err)
				}
			}
			b, err := sn.build(false)
			if err != nil {
				st.log.Warn("wandb: read run directory", "err", err)
			} else if !b.empty() || now.Sub(lastSend) >= st.opts.Heartbeat {
				if err := sn.send(run, b); err != nil {
					if run.Err() != nil && ctx.Err() == nil {
						continue // Finish: the final flush sends it
					}
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
		case <-run.Done(): // Finish
		case <-st.wake:
		case <-timer.C:
		}
	}
}

// observe follows the outcome of every attempt (see client.observe). After Finish it wakes Finish to say
// what it waits for, and stops the flush early when the server is clearly gone: giveUpAttempts attempts in
// a row found no server, over at least giveUpSpan, the last of them after Finish.
func (st *Stream) observe(err error) {
	if errors.Is(err, context.Canceled) {
		return // Finish interrupted the request, the server did nothing
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	now := time.Now()
	switch {
	case err == nil:
		st.downN = 0
		return
	case serverDown(err):
		if st.downN == 0 {
			st.downFrom = now
		}
		st.downN++
	default:
		st.downN = 0
	}
	st.lastErr = err
	if !st.final {
		return
	}
	if span := now.Sub(st.downFrom); st.downN >= giveUpAttempts && span >= st.giveUpSpan() {
		st.cancel(fmt.Errorf("the server at %s is down: %d attempts in a row over %v found no server, so Finish gave up before its %v",
			st.sn.s.BaseURL, st.downN, span.Round(time.Millisecond), st.opts.FlushTimeout))
		return
	}
	select {
	case st.notice <- struct{}{}:
	default:
	}
}

// Finish gives up before FlushTimeout when giveUpAttempts attempts in a row, over at least giveUpSpan, found
// no server (see serverDown). In the flush, attempts are at most FlushTimeout/10 apart: with the defaults, a
// server gone since Finish is given up after 10 to 15 s of the 30, one gone for longer after one more try.
const giveUpAttempts = 3

func (st *Stream) giveUpSpan() time.Duration { return min(10*time.Second, st.opts.FlushTimeout/3) }

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
	return fmt.Sprintf("wandb: the run is recorded completely in %s, but the server has not acknowledged %d history rows, %d system metrics rows, %d output lines or the end of the run (%v); `mami sync %s` uploads the rest",
		e.Dir, e.History, e.Events, e.Output, e.Cause, e.Dir)
}

func (e *IncompleteError) Unwrap() error { return e.Cause }

// Finish ends the stream: it sends what is left for at most FlushTimeout (or until ctx ends), uploads the
// run files and marks the run complete with exitCode (non-zero means failed). A request waiting to be
// retried is tried again at once. When the flush does not end quickly, one log line says what it waits for;
// when the server is clearly gone (connections refused, no such host, several times in a row) it gives up
// before FlushTimeout. What could not be sent stays in the run directory for Sync, and the returned
// *IncompleteError says so. Call it after the recorder wrote its last row and summary. Finish is idempotent.
func (st *Stream) Finish(ctx context.Context, exitCode int) error {
	st.finishOnce.Do(func() { st.finishErr = st.finish(ctx, exitCode) })
	return st.finishErr
}

// noticeAfter is how long a flush may take before Finish says what it waits for, unless an attempt fails
// sooner.
const noticeAfter = 3 * time.Second

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
	st.interrupt()
	st.nudge()
	t0 := time.Now()
	deadline := time.NewTimer(st.opts.FlushTimeout)
	defer deadline.Stop()
	grace := time.NewTimer(min(noticeAfter, st.opts.FlushTimeout/2))
	defer grace.Stop()
	noticed := false
	notice := func() {
		if noticed {
			return
		}
		noticed = true
		st.mu.Lock()
		last := st.lastErr
		st.mu.Unlock()
		h, e, o := st.sn.pending()
		attrs := []any{"run", st.sn.state().RunID, "url", st.sn.s.BaseURL, "history_rows", h, "system_rows", e, "output_lines", o}
		if last != nil {
			attrs = append(attrs, "last_err", last.Error())
		}
		left := (st.opts.FlushTimeout - time.Since(t0)).Round(time.Second)
		st.log.Warn(fmt.Sprintf("wandb: waiting up to %v for the server to take the end of the run (%d history rows, %d output lines left); then `mami sync %s` uploads the rest", left, h, o, st.dir), attrs...)
	}
wait:
	for {
		select {
		case <-st.done:
			break wait
		case <-deadline.C:
			st.cancel(fmt.Errorf("no answer within the flush timeout of %v", st.opts.FlushTimeout))
			break wait
		case <-ctx.Done():
			st.cancel(ctx.Err())
			break wait
		case <-st.notice:
			notice()
		case <-grace.C:
			notice()
		}
	}
	<-st.done
	st.cancel(nil)
	st.mu.Lock()
	res, last := st.result, st.lastErr
	st.mu.Unlock()
	if st.sn.state().Complete {
		if res != nil {
			return fmt.Errorf("wandb: run complete on the server, but some files were not uploaded (`mami sync %s` retries): %w", st.dir, res)
		}
		return nil
	}
	switch cause := context.Cause(st.ctx); {
	case res == nil:
		res = errors.New("flush ended early")
	case cause != nil && errors.Is(res, context.Canceled) && last != nil:
		res = fmt.Errorf("%w (last error: %w)", cause, last)
	case cause != nil && errors.Is(res, context.Canceled):
		res = cause
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
