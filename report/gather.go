package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/plots"
	"github.com/mami-lab/mami/runs"
)

// ErrNoRuns is returned when a selection matches no usable run.
var ErrNoRuns = errors.New("report: no runs selected")

// ErrNoSweep is returned when the work directory has no sweep to report.
var ErrNoSweep = errors.New("report: no sweep found")

// Run is one recorded run as the report uses it.
type Run struct {
	ID, Dir, State string
	// Version is the mami version that trained the run (run.json).
	Version string
	Host    string
	Config  *configs.Config
	History []map[string]any
	Summary map[string]any
	// FinalVal is val/f1_macro at the last epoch end (NaN when never
	// evaluated); Epochs is the number of epoch ends recorded.
	FinalVal float64
	Epochs   int
}

// sweepState is the part of <workdir>/sweeps/<id>/state.json the report
// reads; the sweep package owns the format.
type sweepState struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	File   string `json:"file"`
	Method string `json:"method"`
	Metric string `json:"metric"`
}

// Sweep describes the sweep a report covers.
type Sweep struct {
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	File   string `json:"file,omitempty"`
	Method string `json:"method,omitempty"`
	Metric string `json:"metric,omitempty"`
}

// readSweep reads the sweep's state.json; a sweep known only from its
// runs' sweep_id has just an ID.
func readSweep(workdir, id string) Sweep {
	s := Sweep{ID: id}
	b, err := os.ReadFile(filepath.Join(workdir, "sweeps", id, "state.json"))
	if err != nil {
		return s
	}
	var st sweepState
	if json.Unmarshal(b, &st) == nil {
		s.Name, s.File, s.Method, s.Metric = st.Name, st.File, st.Method, st.Metric
	}
	return s
}

// LatestSweep returns the id of the most recently updated sweep under
// workdir: the sweep folder whose state.json changed last, or when there is
// none, the sweep of the most recently started run that has a sweep_id.
func LatestSweep(workdir string) (string, error) {
	ents, err := os.ReadDir(filepath.Join(workdir, "sweeps"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("report: list sweeps: %w", err)
	}
	var best string
	var bestT time.Time
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		fi, err := os.Stat(filepath.Join(workdir, "sweeps", e.Name(), "state.json"))
		if err != nil {
			continue
		}
		if best == "" || fi.ModTime().After(bestT) {
			best, bestT = e.Name(), fi.ModTime()
		}
	}
	if best != "" {
		return best, nil
	}
	all, err := runs.List(workdir)
	if err != nil {
		return "", err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if id := all[i].Meta().SweepID; id != "" {
			return id, nil
		}
	}
	return "", fmt.Errorf("%w under %s (run `mami sweep` first, or pass --runs)", ErrNoSweep, workdir)
}

// SelectSweep loads every run of sweep id: runs whose run.json or config
// names the sweep.
func SelectSweep(workdir, id string) ([]*Run, error) {
	all, err := runs.List(workdir)
	if err != nil {
		return nil, err
	}
	var out []*Run
	for _, r := range all {
		if r.Meta().SweepID != id {
			cfg, err := r.Config()
			if err != nil || cfg.Run.SweepID != id {
				continue
			}
		}
		lr, err := load(r)
		if err != nil {
			return nil, err
		}
		out = append(out, lr)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: sweep %s has no runs under %s", ErrNoRuns, id, filepath.Join(workdir, "runs"))
	}
	return out, nil
}

// SelectRuns loads the runs with the given ids, in that order.
func SelectRuns(workdir string, ids []string) ([]*Run, error) {
	var out []*Run
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		r, err := runs.Open(filepath.Join(workdir, "runs", id))
		if err != nil {
			return nil, fmt.Errorf("report: run %s: %w", id, err)
		}
		lr, err := load(r)
		if err != nil {
			return nil, err
		}
		out = append(out, lr)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no run ids given", ErrNoRuns)
	}
	return out, nil
}

// load reads a run's config, history and summary.
func load(r *runs.Run) (*Run, error) {
	cfg, err := r.Config()
	if err != nil {
		return nil, fmt.Errorf("report: run %s: %w", r.ID(), err)
	}
	hist, err := r.History()
	if err != nil {
		return nil, fmt.Errorf("report: run %s: %w", r.ID(), err)
	}
	sum, err := r.Summary()
	if err != nil {
		return nil, fmt.Errorf("report: run %s: %w", r.ID(), err)
	}
	m := r.Meta()
	out := &Run{ID: r.ID(), Dir: r.Dir(), State: m.State, Version: m.Version, Host: m.Host,
		Config: cfg, History: hist, Summary: sum, FinalVal: math.NaN()}
	for _, row := range hist {
		if _, ok := row[runs.EpochEndKey]; ok {
			out.Epochs++
		}
		if v, ok := plots.Number(row["val/f1_macro"]); ok {
			out.FinalVal = v
		}
	}
	return out, nil
}

// ids returns the ids of rs, sorted.
func ids(rs []*Run) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	slices.Sort(out)
	return out
}
