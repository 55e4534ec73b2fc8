package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mami-lab/mami/plots"
)

// Options configures Generate.
type Options struct {
	// Workdir holds runs/ and sweeps/.
	Workdir string
	// SweepID selects the runs of one sweep; RunIDs selects runs by id.
	// With neither, the latest sweep (LatestSweep) is reported.
	SweepID string
	RunIDs  []string
	// Out is the report folder; <workdir>/reports/<sweep id> when empty
	// (<workdir>/reports/runs-<first id> for RunIDs).
	Out string
	// ReproRuns are the ids of the reproduction pair (double_softmax run,
	// softmax_ce run); when empty the pair is looked for among the selected
	// runs, then among all runs of the work directory.
	ReproRuns []string
	// Resamples and Seed drive the bootstrap; DPI is the PNG resolution.
	Resamples int
	Seed      uint64
	DPI       int
	// Load loads a run's data for scoring (a cache over data.Load when nil).
	Load   plots.DataLoader
	Logger *slog.Logger
	// Now is the clock of the "generated" stamp (time.Now when nil).
	Now func() time.Time
}

// Report is a generated report.
type Report struct {
	// Title heads report.md and report.html.
	Title string
	// Selection says how the runs were chosen.
	Selection string
	Sweep     *Sweep
	Analysis  *Analysis
	Repro     *Repro
	Figures   []*FigureInfo
	// Code, Machine and Generated are the report's provenance.
	Code, Machine string
	Generated     time.Time
	Workdir, Out  string
	// Varied are the config keys whose values differ among the runs, with
	// their values.
	Varied map[string][]string
	// Files are the paths written, relative to Out.
	Files []string
}

// Report file names inside the report folder.
const (
	MarkdownFile   = "report.md"
	HTMLFile       = "report.html"
	TeXFile        = "results.tex"
	ProvenanceFile = "provenance.json"
	FiguresDir     = "figures"
)

// Generate selects runs, analyses them, draws every figure into
// <out>/figures/ (PDF, SVG, PNG) and writes report.md, report.html,
// results.tex and provenance.json into out.
func Generate(ctx context.Context, opts Options) (*Report, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	rep := &Report{Workdir: opts.Workdir, Code: CodeVersion(), Machine: Machine(), Generated: now().UTC()}
	var selected []*Run
	var err error
	switch {
	case len(opts.RunIDs) > 0 && opts.SweepID != "":
		return nil, errors.New("report: give a sweep or run ids, not both")
	case len(opts.RunIDs) > 0:
		selected, err = SelectRuns(opts.Workdir, opts.RunIDs)
		rep.Selection = fmt.Sprintf("%d runs given by id", len(selected))
		rep.Title = "MAMI report: " + shortList(opts.RunIDs, 4)
	default:
		id := opts.SweepID
		if id == "" {
			if id, err = LatestSweep(opts.Workdir); err != nil {
				return nil, err
			}
		}
		sw := readSweep(opts.Workdir, id)
		rep.Sweep = &sw
		selected, err = SelectSweep(opts.Workdir, id)
		rep.Selection = fmt.Sprintf("the %d runs of sweep %s", len(selected), id)
		rep.Title = "MAMI report: sweep " + id
		if sw.Name != "" && sw.Name != id {
			rep.Title += " (" + sw.Name + ")"
		}
	}
	if err != nil {
		return nil, err
	}
	rep.Out = opts.Out
	if rep.Out == "" {
		name := "runs-" + selected[0].ID
		if rep.Sweep != nil {
			name = rep.Sweep.ID
		}
		rep.Out = filepath.Join(opts.Workdir, "reports", name)
	}
	log.Info("report: analysing", "runs", len(selected), "out", rep.Out)
	an, err := Analyze(ctx, selected, AnalyzeOptions{Resamples: opts.Resamples, Seed: opts.Seed, Load: opts.Load, Logger: log})
	if err != nil {
		return nil, err
	}
	rep.Analysis = an
	rep.Varied = varied(selected)
	switch {
	case len(opts.ReproRuns) == 2:
		pair, err := SelectRuns(opts.Workdir, opts.ReproRuns)
		if err != nil {
			return nil, fmt.Errorf("report: reproduction runs: %w", err)
		}
		rep.Repro = &Repro{Faithful: pair[0], Correct: pair[1]}
	case len(opts.ReproRuns) != 0:
		return nil, fmt.Errorf("report: reproduction runs: got %d ids, want 2 (double_softmax run, softmax_ce run)", len(opts.ReproRuns))
	default:
		rep.Repro = FindRepro(selected)
		if rep.Repro == nil {
			rep.Repro = FindRepro(ReproCandidates(opts.Workdir))
		}
	}
	rep.Figures = buildFigures(an, rep.Repro)
	figDir := filepath.Join(rep.Out, FiguresDir)
	for _, fi := range rep.Figures {
		if fi.Skipped != "" {
			log.Warn("report: figure skipped", "figure", fi.Name, "reason", fi.Skipped)
			continue
		}
		paths, err := fi.fig.Save(figDir, opts.DPI)
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			fi.Files = append(fi.Files, filepath.ToSlash(filepath.Join(FiguresDir, filepath.Base(p))))
		}
		rep.Files = append(rep.Files, fi.Files...)
	}
	writers := []struct {
		name  string
		write func() ([]byte, error)
	}{
		{MarkdownFile, rep.markdown},
		{HTMLFile, rep.html},
		{TeXFile, rep.tex},
		{ProvenanceFile, rep.provenance},
	}
	for _, w := range writers {
		b, err := w.write()
		if err != nil {
			return nil, fmt.Errorf("report: %s: %w", w.name, err)
		}
		if err := writeAtomic(filepath.Join(rep.Out, w.name), b); err != nil {
			return nil, err
		}
		rep.Files = append(rep.Files, w.name)
	}
	log.Info("report: written", "dir", rep.Out, "files", len(rep.Files))
	return rep, nil
}

func writeAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("report: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("report: write %s: %w", path, err)
	}
	return nil
}

// varied returns the config keys (dot paths) whose values differ among rs,
// each with its distinct values, leaving out run identity keys.
func varied(rs []*Run) map[string][]string {
	vals := map[string]map[string]bool{}
	for _, r := range rs {
		b, err := r.Config.Marshal()
		if err != nil {
			continue
		}
		var m map[string]any
		if yaml.Unmarshal(b, &m) != nil {
			continue
		}
		flat := map[string]string{}
		flatten("", m, flat)
		for k, v := range flat {
			if vals[k] == nil {
				vals[k] = map[string]bool{}
			}
			vals[k][v] = true
		}
	}
	out := map[string][]string{}
	for k, vs := range vals {
		switch k {
		case "run.id", "run.name", "run.notes", "run.tags", "workdir":
			continue
		}
		if len(vs) > 1 {
			out[k] = slices.Sorted(maps.Keys(vs))
		}
	}
	return out
}

func flatten(prefix string, v any, out map[string]string) {
	if m, ok := v.(map[string]any); ok {
		for k, x := range m {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			flatten(key, x, out)
		}
		return
	}
	out[prefix] = strings.TrimSpace(fmt.Sprint(v))
}

// provenance is provenance.json: everything needed to trace each figure
// back to its runs and code.
func (r *Report) provenance() ([]byte, error) {
	type runInfo struct {
		ID      string `json:"id"`
		Dir     string `json:"dir"`
		Config  string `json:"config"`
		State   string `json:"state"`
		Version string `json:"version"`
		Host    string `json:"host"`
	}
	type figInfo struct {
		Name    string   `json:"name"`
		Files   []string `json:"files"`
		Runs    []string `json:"runs"`
		Skipped string   `json:"skipped,omitempty"`
	}
	var doc struct {
		Generated time.Time           `json:"generated"`
		Code      string              `json:"code"`
		Machine   string              `json:"machine"`
		Selection string              `json:"selection"`
		Sweep     *Sweep              `json:"sweep,omitempty"`
		Varied    map[string][]string `json:"varied_keys"`
		Figures   []figInfo           `json:"figures"`
		Runs      []runInfo           `json:"runs"`
	}
	doc.Generated, doc.Code, doc.Machine, doc.Selection, doc.Sweep, doc.Varied = r.Generated, r.Code, r.Machine, r.Selection, r.Sweep, r.Varied
	for _, f := range r.Figures {
		doc.Figures = append(doc.Figures, figInfo{Name: f.Name, Files: f.Files, Runs: f.Runs, Skipped: f.Skipped})
	}
	seen := map[string]bool{}
	all := slices.Clone(r.Analysis.Runs)
	if r.Repro != nil {
		all = append(all, r.Repro.Faithful, r.Repro.Correct)
	}
	for _, run := range all {
		if seen[run.ID] {
			continue
		}
		seen[run.ID] = true
		doc.Runs = append(doc.Runs, runInfo{ID: run.ID, Dir: run.Dir, Config: filepath.Join(run.Dir, "config.yaml"),
			State: run.State, Version: run.Version, Host: run.Host})
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	return append(b, '\n'), err
}
