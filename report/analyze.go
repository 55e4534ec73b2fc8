package report

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/data"
	"github.com/mami-lab/mami/experiments"
	"github.com/mami-lab/mami/models"
	"github.com/mami-lab/mami/plots"
	"github.com/mami-lab/mami/runs"
)

// Cell is the final validation macro-F1 of the seeds of one arm at one
// learning rate.
type Cell struct {
	Mean, SD float64
	N        int
	Runs     []*Run
}

// Arm is one model variant the report compares: a fusion, or a fusion and
// head when the selection mixes heads.
type Arm struct {
	Name, Fusion, Head string
	// Cells by learning rate; LRs sorted ascending.
	Cells map[float64]*Cell
	LRs   []float64
	// BestLR has the highest mean final validation macro-F1; Best is the
	// run (seed) at BestLR with the highest final validation macro-F1.
	BestLR float64
	Best   *Run
	// Test is Best scored on the test split.
	Test *TestResult
}

// BestCell is the cell at BestLR.
func (a *Arm) BestCell() *Cell { return a.Cells[a.BestLR] }

// TestResult is a model's scores on the test split.
type TestResult struct {
	// Scores are the per-sample probabilities; nil when the checkpoint
	// could not be scored and the numbers come from the run's summary.
	Scores     *plots.TestScores
	F1         CI
	Acc, AUROC float64
	AP         float64
	Confusion  experiments.Confusion
	// Note says where the numbers come from when not from Scores.
	Note string
}

// Analysis is what the report says about a set of runs.
type Analysis struct {
	Runs []*Run
	Arms []*Arm
	// LRs is the union of every arm's learning rates, ascending.
	LRs []float64
	// Winner is the arm with the highest mean validation macro-F1 at its
	// best learning rate (test scores are not used to choose).
	Winner *Arm
}

// AnalyzeOptions configures Analyze; the zero value uses the defaults.
type AnalyzeOptions struct {
	// Resamples and Seed drive the bootstrap (DefaultResamples, seed 1).
	Resamples int
	Seed      uint64
	// Load loads a run's data for scoring; a cache over data.Load when nil.
	Load   plots.DataLoader
	Logger *slog.Logger
}

// DefaultResamples is the number of bootstrap resamples of the confidence
// intervals.
const DefaultResamples = 1000

// Analyze groups runs into arms and learning-rate cells, picks each arm's
// best learning rate and run by final validation macro-F1, and scores each
// best run's checkpoint on the test split with a bootstrap 95% interval of
// its macro-F1.
func Analyze(ctx context.Context, rs []*Run, opts AnalyzeOptions) (*Analysis, error) {
	if opts.Resamples == 0 {
		opts.Resamples = DefaultResamples
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Load == nil {
		opts.Load = CachedLoader(data.Load)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	heads := map[string]bool{}
	for _, r := range rs {
		heads[r.Config.Model.Head] = true
	}
	arms := map[string]*Arm{}
	lrs := map[float64]bool{}
	for _, r := range rs {
		if r.Epochs == 0 {
			log.Warn("run skipped: no epoch finished", "run", r.ID, "state", r.State)
			continue
		}
		m := r.Config.Model
		name := m.Fusion
		if len(heads) > 1 {
			name += " · " + m.Head
		}
		a := arms[name]
		if a == nil {
			a = &Arm{Name: name, Fusion: m.Fusion, Head: m.Head, Cells: map[float64]*Cell{}}
			arms[name] = a
		}
		lr := r.Config.Train.LR
		c := a.Cells[lr]
		if c == nil {
			c = &Cell{}
			a.Cells[lr] = c
		}
		c.Runs = append(c.Runs, r)
		lrs[lr] = true
	}
	if len(arms) == 0 {
		return nil, fmt.Errorf("%w: none of %d runs finished an epoch", ErrNoRuns, len(rs))
	}
	an := &Analysis{Runs: rs, LRs: slices.Sorted(maps.Keys(lrs))}
	for _, a := range arms {
		a.LRs = slices.Sorted(maps.Keys(a.Cells))
		a.BestLR = math.NaN()
		bestMean := math.Inf(-1)
		for _, lr := range a.LRs {
			c := a.Cells[lr]
			vals := make([]float64, len(c.Runs))
			for i, r := range c.Runs {
				vals[i] = r.FinalVal
			}
			c.Mean, c.SD, c.N = MeanSD(vals)
			if c.N > 0 && c.Mean > bestMean {
				bestMean, a.BestLR = c.Mean, lr
			}
		}
		if math.IsNaN(a.BestLR) { // no validation scores at all: fall back to the first lr
			a.BestLR = a.LRs[0]
		}
		for _, r := range a.Cells[a.BestLR].Runs {
			if a.Best == nil || r.FinalVal > a.Best.FinalVal || (math.IsNaN(a.Best.FinalVal) && !math.IsNaN(r.FinalVal)) {
				a.Best = r
			}
		}
		an.Arms = append(an.Arms, a)
	}
	order := map[string]int{}
	for i, f := range models.Fusions() {
		order[f] = i
	}
	slices.SortFunc(an.Arms, func(x, y *Arm) int {
		ox, okx := order[x.Fusion]
		oy, oky := order[y.Fusion]
		switch {
		case okx && oky && ox != oy:
			return ox - oy
		case okx != oky:
			if okx {
				return -1
			}
			return 1
		}
		return strings.Compare(x.Name, y.Name)
	})
	for _, a := range an.Arms {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		a.Test = scoreArm(ctx, a, opts, log)
		if c := a.BestCell(); c.N > 0 && (an.Winner == nil || c.Mean > an.Winner.BestCell().Mean) {
			an.Winner = a
		}
	}
	return an, nil
}

// scoreArm scores the arm's best run on the test split, or falls back to
// the test metrics of its summary.
func scoreArm(ctx context.Context, a *Arm, opts AnalyzeOptions, log *slog.Logger) *TestResult {
	s, err := plots.ScoreTest(ctx, a.Best.Dir, opts.Load)
	if err == nil {
		pred := experiments.PredictLabels(s.Prob)
		c := experiments.NewConfusion(s.Labels, pred)
		t := &TestResult{
			Scores:    s,
			F1:        BootstrapMacroF1(s.Labels, s.Prob, opts.Resamples, 0.95, opts.Seed),
			Acc:       c.Accuracy(),
			AUROC:     experiments.AUROC(s.Labels, s.Prob),
			AP:        experiments.AveragePrecision(s.Labels, s.Prob),
			Confusion: c,
		}
		if msg := checkRescore(a.Best.Summary, c); msg != "" {
			log.Warn("rescored test split disagrees with the run's own test scores", "run", a.Best.ID, "detail", msg)
			t.Note = "WARNING: " + msg
		}
		return t
	}
	log.Warn("test split not scored; using the run summary", "run", a.Best.ID, "err", err)
	num := func(k string) float64 {
		if v, ok := plots.Number(a.Best.Summary[k]); ok {
			return v
		}
		return math.NaN()
	}
	t := &TestResult{
		F1:    CI{Value: num("test/f1_macro"), Lo: math.NaN(), Hi: math.NaN()},
		Acc:   num("test/acc"),
		AUROC: num("test/auroc"),
		AP:    math.NaN(),
		Note:  fmt.Sprintf("not rescored (%v); values from summary.json, no interval", err),
	}
	return t
}

// CachedLoader wraps load so each data config and seed is loaded once.
func CachedLoader(load plots.DataLoader) plots.DataLoader {
	var mu sync.Mutex
	cache := map[string]*data.Splits{}
	return func(ctx context.Context, cfg configs.DataConfig, seed int64) (*data.Splits, error) {
		key := fmt.Sprintf("%+v/%d", cfg, seed)
		mu.Lock()
		defer mu.Unlock()
		if ds, ok := cache[key]; ok {
			return ds, nil
		}
		ds, err := load(ctx, cfg, seed)
		if err != nil {
			return nil, err
		}
		cache[key] = ds
		return ds, nil
	}
}

// Repro is the pair of runs of the reproduction figure: the study's model
// with its faithful double-softmax head, and the same configuration with
// the correct softmax cross-entropy head.
type Repro struct {
	Faithful, Correct *Run
}

// reproKey is a run's configuration without its head and identity, so two
// runs with the same key differ only in the head.
func reproKey(cfg *configs.Config) string {
	c := *cfg
	c.Model.Head = ""
	c.Model.Hidden = slices.Clone(cfg.Model.Hidden)
	c.Run = configs.RunConfig{Seed: cfg.Run.Seed}
	c.Workdir, c.Device = "", ""
	c.Tracking = configs.TrackingConfig{}
	b, err := c.Marshal()
	if err != nil {
		return fmt.Sprintf("%+v", c)
	}
	return string(b)
}

// FindRepro looks for a reproduction pair among candidates (in order of
// preference): a finished double_softmax run and a finished softmax_ce run
// whose configurations differ only in the head. A pair whose configuration
// is the seed preset's wins over any other pair. nil when there is none.
func FindRepro(candidates []*Run) *Repro {
	seedKey := ""
	if cfg, err := configs.Load(configs.LoadOptions{File: "seed"}); err == nil {
		seedKey = reproKey(cfg)
	}
	return findRepro(candidates, seedKey, false)
}

// FindReproFor is FindRepro restricted to pairs whose configuration is
// cfg's apart from the head and the run's identity; nil when there is none.
func FindReproFor(candidates []*Run, cfg *configs.Config) *Repro {
	return findRepro(candidates, reproKey(cfg), true)
}

func findRepro(candidates []*Run, seedKey string, only bool) *Repro {
	correct := map[string]*Run{}
	for _, r := range candidates {
		if r.Config.Model.Head == "softmax_ce" && r.State == runs.StateFinished && r.Epochs > 0 {
			k := reproKey(r.Config)
			if correct[k] == nil {
				correct[k] = r
			}
		}
	}
	var found *Repro
	for _, r := range candidates {
		if r.Config.Model.Head != "double_softmax" || r.State != runs.StateFinished || r.Epochs == 0 {
			continue
		}
		k := reproKey(r.Config)
		c := correct[k]
		if c == nil {
			continue
		}
		if k == seedKey {
			return &Repro{Faithful: r, Correct: c}
		}
		if found == nil && !only {
			found = &Repro{Faithful: r, Correct: c}
		}
	}
	return found
}

// ReproCandidates loads the runs of workdir that could form a
// reproduction pair, newest first: finished runs with the double_softmax
// head, and finished softmax_ce runs whose configuration matches one of
// them apart from the head. Only those runs' histories are read; runs that
// cannot be read are skipped (a report is not the place to fail on a broken
// old run).
func ReproCandidates(workdir string) []*Run {
	all, err := runs.List(workdir)
	if err != nil {
		return nil
	}
	type light struct {
		run *runs.Run
		key string
	}
	var faithful, correct []light
	for i := len(all) - 1; i >= 0; i-- {
		r := all[i]
		if r.Meta().State != runs.StateFinished {
			continue
		}
		cfg, err := r.Config()
		if err != nil {
			continue
		}
		switch cfg.Model.Head {
		case "double_softmax":
			faithful = append(faithful, light{r, reproKey(cfg)})
		case "softmax_ce":
			correct = append(correct, light{r, reproKey(cfg)})
		}
	}
	keys := map[string]bool{}
	for _, l := range faithful {
		keys[l.key] = true
	}
	var out []*Run
	for _, l := range slices.Concat(faithful, correct) {
		if !keys[l.key] {
			continue
		}
		if r, err := load(l.run); err == nil {
			out = append(out, r)
		}
	}
	return out
}

// checkRescore compares the confusion matrix of a rescored checkpoint with
// the one the trainer recorded for the same weights (summary test/tp, fp,
// tn, fn, scored with the best epoch's weights). They differ only when the
// data or the code changed since the run was trained; the message says so.
func checkRescore(summary map[string]any, c experiments.Confusion) string {
	var rec [4]float64
	for i, k := range []string{"test/tp", "test/fp", "test/tn", "test/fn"} {
		v, ok := plots.Number(summary[k])
		if !ok {
			return "" // nothing recorded to compare with
		}
		rec[i] = v
	}
	got := [4]float64{float64(c.TP), float64(c.FP), float64(c.TN), float64(c.FN)}
	if rec == got {
		return ""
	}
	return fmt.Sprintf("rescoring the checkpoint gives TP %d FP %d TN %d FN %d on the test split, but the run recorded TP %g FP %g TN %g FN %g for the same weights: the data or the code changed since the run was trained, so these test numbers are not the run's",
		c.TP, c.FP, c.TN, c.FN, rec[0], rec[1], rec[2], rec[3])
}
