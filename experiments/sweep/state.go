package sweep

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/mami-lab/mami/internal/atomicfile"
)

// StateVersion is the version of the state.json format.
const StateVersion = 1

// StateFile is the name of the sweep state file inside the sweep directory.
const StateFile = "state.json"

// State is the persistent state of a sweep, <workdir>/sweeps/<id>/state.json.
type State struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	Name    string `json:"name"`
	File    string `json:"file"`
	Method  string `json:"method"`
	Metric  string `json:"metric"`
	Goal    string `json:"goal"`
	// Total is the number of trials the sweep runs (0: unbounded).
	Total  int            `json:"total"`
	Trials []*TrialRecord `json:"trials"`
	// ConsecutiveFailures counts failed attempts since the last success.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// StoppedReason is set when the sweep stopped itself (too many failures in a row).
	StoppedReason string `json:"stopped_reason,omitempty"`
}

// TrialRecord is one trial of a sweep.
type TrialRecord struct {
	Index         int            `json:"index"`
	RunID         string         `json:"run_id"`
	Params        map[string]any `json:"params"`
	State         string         `json:"state"`
	Attempts      int            `json:"attempts"` // attempts started (interrupted ones excluded)
	Failures      int            `json:"failures"` // attempts that failed
	Metric        *Value         `json:"metric,omitempty"`
	Curve         []Value        `json:"curve,omitempty"` // sweep metric at each epoch end of the latest attempt
	StopRequested bool           `json:"stop_requested,omitempty"`
	StoppedAt     int            `json:"stopped_at,omitempty"` // rung (epoch) where hyperband stopped it
	RunDir        string         `json:"run_dir,omitempty"`
	Error         string         `json:"error,omitempty"`
	StartedAt     *time.Time     `json:"started_at,omitempty"`
	EndedAt       *time.Time     `json:"ended_at,omitempty"`
}

func (s *State) clone() *State {
	out := *s
	out.Trials = make([]*TrialRecord, len(s.Trials))
	for i, t := range s.Trials {
		c := *t
		c.Params = maps.Clone(t.Params)
		c.Curve = slices.Clone(t.Curve)
		if t.Metric != nil {
			m := *t.Metric
			c.Metric = &m
		}
		out.Trials[i] = &c
	}
	return &out
}

// Counts returns how many trials are done (finished, early terminated or failed), running, and left to
// start (pending or not yet proposed; -1 when the sweep is unbounded).
func (s *State) Counts() (done, running, left int) {
	pending := 0
	for _, t := range s.Trials {
		switch t.State {
		case TrialRunning:
			running++
		case TrialPending:
			pending++
		default:
			done++
		}
	}
	if s.Total == 0 {
		return done, running, -1
	}
	return done, running, max(0, s.Total-len(s.Trials)) + pending
}

// Best returns the finished or early-terminated trial with the best metric under goal, or nil.
func (s *State) Best(m Metric) *TrialRecord {
	var best *TrialRecord
	for _, t := range s.Trials {
		if (t.State != TrialFinished && t.State != TrialEarlyTerminated) || t.Metric == nil {
			continue
		}
		if best == nil || m.Better(float64(*t.Metric), float64(*best.Metric)) {
			best = t
		}
	}
	return best
}

// Dir is the directory of sweep id under workdir: <workdir>/sweeps/<id>.
func Dir(workdir, id string) string { return filepath.Join(workdir, "sweeps", id) }

// LoadState reads dir/state.json; a missing file gives (nil, nil).
func LoadState(dir string) (*State, error) {
	path := filepath.Join(dir, StateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sweep state: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read sweep state %s: %w", path, err)
	}
	if st.Version != StateVersion {
		return nil, fmt.Errorf("read sweep state %s: version %d, want %d", path, st.Version, StateVersion)
	}
	// JSON numbers decode as float64; integral values of integer keys become int again via Spec.Apply.
	return &st, nil
}

// SaveState writes st to dir/state.json atomically (temporary file, fsync, rename).
func SaveState(dir string, st *State) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save sweep state: %w", err)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("save sweep state: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, StateFile), append(b, '\n'), true); err != nil {
		return fmt.Errorf("save sweep state: %w", err)
	}
	return nil
}
