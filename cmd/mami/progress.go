package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress reports training progress: a redrawn bar per epoch on a terminal, a log line per epoch otherwise.
// It is safe for concurrent use.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	epoch    int
	epochs   int
	total    int
	done     int
	loss     float64
	start    time.Time
	lastDraw time.Time
}

// newProgress returns a progress reporter writing to stderr; bars only when stderr is a terminal.
func newProgress(epochs int) *progress {
	return &progress{w: os.Stderr, tty: term.IsTerminal(int(os.Stderr.Fd())), epochs: epochs}
}

// Start begins epoch (1-based), which has total optimizer steps.
func (p *progress) Start(epoch, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.epoch, p.total, p.done = epoch, total, 0
	p.start = time.Now()
	p.lastDraw = time.Time{}
}

// Step records that done of the epoch's steps have finished, the last with training loss loss.
func (p *progress) Step(done int, loss float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.loss = done, loss
	if !p.tty {
		return
	}
	if now := time.Now(); now.Sub(p.lastDraw) >= 100*time.Millisecond || done == p.total {
		p.lastDraw = now
		p.draw()
	}
}

// Done ends the epoch; the trainer logs its metrics.
func (p *progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		p.draw()
		fmt.Fprintln(p.w)
	}
}

func (p *progress) draw() {
	const width = 30
	frac := 0.0
	if p.total > 0 {
		frac = float64(p.done) / float64(p.total)
	}
	filled := int(frac * width)
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	elapsed := time.Since(p.start)
	eta := "?"
	if p.done > 0 {
		left := time.Duration(float64(elapsed) / float64(p.done) * float64(p.total-p.done))
		eta = left.Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "\repoch %d/%d [%s] %d/%d loss %.4f ETA %s   ", p.epoch, p.epochs, bar, p.done, p.total, p.loss, eta)
}
