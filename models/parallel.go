package models

import (
	"runtime"
	"sync"
)

// A small worker pool for the optimizers and gradient clipping: handing out work allocates nothing,
// so an optimizer step stays allocation-free.

// ranger processes the elements [lo, hi) of some flat index space.
type ranger interface {
	runRange(part, lo, hi int)
}

type task struct {
	r        ranger
	part     int
	lo, hi   int
	finished *sync.WaitGroup
}

var (
	poolOnce  sync.Once
	poolTasks chan task
)

func startPool() {
	poolTasks = make(chan task)
	for range max(runtime.GOMAXPROCS(0)-1, 1) {
		go func() {
			for t := range poolTasks {
				t.r.runRange(t.part, t.lo, t.hi)
				t.finished.Done()
			}
		}()
	}
}

// minParallel is the smallest index space worth splitting across cores.
const minParallel = 1 << 15

// maxParts bounds the number of parts a parallelFor splits into (and so per-part scratch space).
const maxParts = 16

// numParts returns how many parts parallelFor will use for n elements.
func numParts(n int) int {
	if n < minParallel {
		return 1
	}
	return min(runtime.GOMAXPROCS(0), maxParts)
}

// runParts runs r.runRange(part, 0, 0) for every part in [0, parts), the caller doing part 0.
func runParts(r ranger, parts int, wg *sync.WaitGroup) {
	if parts == 1 {
		r.runRange(0, 0, 0)
		return
	}
	poolOnce.Do(startPool)
	wg.Add(parts - 1)
	for i := 1; i < parts; i++ {
		poolTasks <- task{r: r, part: i, finished: wg}
	}
	r.runRange(0, 0, 0)
	wg.Wait()
}

// parallelFor runs r over [0, n) split into numParts(n) contiguous parts; the caller's goroutine does the
// first. wg must not be in use.
func parallelFor(r ranger, n int, wg *sync.WaitGroup) {
	p := numParts(n)
	if p == 1 {
		r.runRange(0, 0, n)
		return
	}
	poolOnce.Do(startPool)
	wg.Add(p - 1)
	for i := 1; i < p; i++ {
		poolTasks <- task{r: r, part: i, lo: i * n / p, hi: (i + 1) * n / p, finished: wg}
	}
	r.runRange(0, 0, n/p)
	wg.Wait()
}
