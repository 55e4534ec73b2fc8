package wandb

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// startSampler appends a system metrics row to the run's wandb-events.jsonl every period until the returned
// function is called; period < 0 turns it off.
func startSampler(dir string, period time.Duration, log *slog.Logger) func() {
	if period < 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sm := newSampler()
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			row := sm.sample()
			if err := appendRow(filepath.Join(dir, EventsFile), row); err != nil {
				log.Warn("wandb: write system metrics", "err", err)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done); wg.Wait() })
	}
}

func appendRow(path string, row map[string]any) error {
	b, err := json.Marshal(row)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// sampler computes CPU use from /proc deltas between samples.
type sampler struct {
	start             time.Time
	lastWall          time.Time
	lastProc          float64 // process CPU seconds
	lastBusy, lastAll uint64  // system jiffies
	ticks             float64
	nvidiaSMI         string
}

func newSampler() *sampler {
	s := &sampler{start: time.Now(), lastWall: time.Now(), ticks: 100}
	s.lastProc, _ = procCPUSeconds(s.ticks)
	s.lastBusy, s.lastAll, _ = systemJiffies()
	if p, err := exec.LookPath("nvidia-smi"); err == nil {
		s.nvidiaSMI = p
	}
	return s
}

// sample returns one wandb-events row: system.cpu (% of all cores, whole machine), system.proc.cpu.percent
// (% of one core, this process), system.memory (% used), system.proc.memory.rssMB, and with nvidia-smi
// system.gpu.N.{gpu,memory,memoryAllocatedBytes,temp,powerWatts}.
func (s *sampler) sample() map[string]any {
	now := time.Now()
	row := map[string]any{
		"_wandb": true, "_timestamp": float64(now.UnixNano()) / 1e9, "_runtime": now.Sub(s.start).Seconds(),
		"system.cpu_count": runtime.NumCPU(),
	}
	if busy, all, err := systemJiffies(); err == nil && all > s.lastAll {
		row["system.cpu"] = round2(100 * float64(busy-s.lastBusy) / float64(all-s.lastAll))
		s.lastBusy, s.lastAll = busy, all
	}
	if p, err := procCPUSeconds(s.ticks); err == nil {
		if wall := now.Sub(s.lastWall).Seconds(); wall > 0 {
			row["system.proc.cpu.percent"] = round2(100 * (p - s.lastProc) / wall)
		}
		s.lastProc = p
	}
	s.lastWall = now
	if rss, err := procRSSBytes(); err == nil {
		row["system.proc.memory.rssMB"] = round2(float64(rss) / (1 << 20))
	}
	if used, err := memUsedPercent(); err == nil {
		row["system.memory"] = round2(used)
	}
	if s.nvidiaSMI != "" {
		for k, v := range gpuMetrics(s.nvidiaSMI) {
			row[k] = v
		}
	}
	return row
}

func round2(x float64) float64 { return float64(int64(x*100+0.5)) / 100 }

// procCPUSeconds is this process's user+system CPU time from /proc/self/stat.
func procCPUSeconds(ticks float64) (float64, error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/self/stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 { // utime and stime are fields 14 and 15 of the line, 12 and 13 here
		return 0, fmt.Errorf("/proc/self/stat: %d fields", len(f))
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/self/stat: bad cpu times")
	}
	return (u + st) / ticks, nil
}

// systemJiffies returns busy and total jiffies of the `cpu` line of /proc/stat.
func systemJiffies() (busy, all uint64, err error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0, fmt.Errorf("/proc/stat: empty")
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line")
	}
	for i, v := range fields[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		all += n
		if i != 3 && i != 4 { // idle and iowait
			busy += n
		}
	}
	return busy, all, nil
}

func procRSSBytes() (int64, error) {
	return kbField("/proc/self/status", "VmRSS:")
}

func memUsedPercent() (float64, error) {
	total, err := kbField("/proc/meminfo", "MemTotal:")
	if err != nil {
		return 0, err
	}
	avail, err := kbField("/proc/meminfo", "MemAvailable:")
	if err != nil || total == 0 {
		return 0, fmt.Errorf("/proc/meminfo: no MemAvailable")
	}
	return 100 * float64(total-avail) / float64(total), nil
}

// kbField reads a "Key: N kB" line as bytes.
func kbField(path, key string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s %s: %w", path, key, err)
			}
			return n * 1024, nil
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}

// gpuMetrics asks nvidia-smi for per-GPU use; an error gives no metrics.
func gpuMetrics(bin string) map[string]any {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin,
		"--query-gpu=index,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw",
		"--format=csv,noheader,nounits").Output()
	if err != nil {
		return nil
	}
	return ParseNvidiaSMI(out)
}

// ParseNvidiaSMI turns the CSV of `nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total,
// temperature.gpu,power.draw --format=csv,noheader,nounits` into W&B system metric keys. Values nvidia-smi
// cannot give ("[N/A]") are left out.
func ParseNvidiaSMI(out []byte) map[string]any {
	m := map[string]any{}
	for line := range strings.SplitSeq(string(out), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 6 {
			continue
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		idx, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		num := func(s string) (float64, bool) {
			v, err := strconv.ParseFloat(s, 64)
			return v, err == nil
		}
		p := "system.gpu." + strconv.Itoa(idx) + "."
		if v, ok := num(f[1]); ok {
			m[p+"gpu"] = v
		}
		used, ok1 := num(f[2])
		total, ok2 := num(f[3])
		if ok1 {
			m[p+"memoryAllocatedBytes"] = used * (1 << 20)
		}
		if ok1 && ok2 && total > 0 {
			m[p+"memory"] = round2(100 * used / total)
		}
		if v, ok := num(f[4]); ok {
			m[p+"temp"] = v
		}
		if v, ok := num(f[5]); ok {
			m[p+"powerWatts"] = v
		}
	}
	return m
}
