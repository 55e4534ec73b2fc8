package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/data"
	"github.com/mami-lab/mami/experiments"
	"github.com/mami-lab/mami/models"
	"github.com/mami-lab/mami/report"
	"github.com/mami-lab/mami/runs"
)

const dim = 8

// fakeLoader returns a small deterministic split: 300 test memes whose
// image embedding leans towards the label, so a model scores above chance
// only by accident of its random weights; enough for curves and intervals.
func fakeLoader(_ context.Context, _ configs.DataConfig, seed int64) (*data.Splits, error) {
	rng := rand.New(rand.NewPCG(uint64(seed), 99))
	mk := func(n int) *data.Set {
		s := &data.Set{Dim: dim, Image: make([]float32, n*dim), Text: make([]float32, n*dim)}
		for i := range n {
			y := 0
			if rng.Float64() < 0.45 {
				y = 1
			}
			s.Memes = append(s.Memes, data.Meme{FileName: fmt.Sprintf("%d.jpg", i), Misogynous: y})
			for j := range dim {
				s.Image[i*dim+j] = float32(rng.NormFloat64() + 0.8*float64(y))
				s.Text[i*dim+j] = float32(rng.NormFloat64())
			}
		}
		return s
	}
	return &data.Splits{Train: mk(50), Val: mk(50), Test: mk(300)}, nil
}

type runSpec struct {
	id, fusion, head, sweep string
	lr                      float64
	seed                    int64
	finalF1                 float64 // val/f1_macro at the last epoch
	epochs                  int
	checkpoint              bool
	seedPreset              bool
	recordedTP              int // when > 0, the summary records this confusion matrix: TP, 1, 1, 1
}

// makeRun records a finished run with a synthetic history and, if asked,
// a checkpoint of an untrained model.
func makeRun(t *testing.T, workdir string, s runSpec) {
	t.Helper()
	ctx := context.Background()
	var cfg *configs.Config
	if s.seedPreset {
		c, err := configs.Load(configs.LoadOptions{File: "seed"})
		if err != nil {
			t.Fatal(err)
		}
		cfg = c
	} else {
		cfg = configs.Default()
		cfg.Model.Fusion = s.fusion
		cfg.Model.Hidden = []int{8}
		cfg.Model.ProjDim = 8
		cfg.Train.LR = s.lr
		cfg.Run.Seed = s.seed
		cfg.Train.Epochs = s.epochs
	}
	cfg.Model.Head = s.head
	cfg.Workdir = workdir
	cfg.Run.ID = s.id
	cfg.Run.SweepID = s.sweep
	rec, err := runs.Create(ctx, workdir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(s.seed), 7))
	step := 0
	for e := 1; e <= s.epochs; e++ {
		for k := 1; k <= 5; k++ {
			step++
			row := map[string]any{"_step": step, "epoch": e, "train/loss": 0.7 - 0.02*float64(step) + 0.01*rng.NormFloat64(), "train/lr": s.lr}
			if k == 5 {
				frac := float64(e) / float64(s.epochs)
				row["train/epoch_loss"] = 0.7 - 0.1*float64(e)
				row["val/loss"] = 0.72 - 0.09*float64(e)
				row["val/f1_macro"] = 0.5 + (s.finalF1-0.5)*frac
				row["val/acc"] = 0.5 + (s.finalF1-0.5)*frac
				row["val/auroc"] = 0.6
			}
			if err := rec.Log(ctx, row); err != nil {
				t.Fatal(err)
			}
		}
	}
	sum := map[string]any{"test/f1_macro": s.finalF1 - 0.01, "test/acc": 0.6, "test/auroc": 0.65}
	if s.recordedTP > 0 {
		sum["test/tp"], sum["test/fp"], sum["test/tn"], sum["test/fn"] = s.recordedTP, 1, 1, 1
	}
	if err := rec.Summary(ctx, sum); err != nil {
		t.Fatal(err)
	}
	if s.checkpoint {
		net, err := models.New(models.SpecFrom(cfg.Model, dim), s.seed)
		if err != nil {
			t.Fatal(err)
		}
		if err := experiments.SaveCheckpoint(rec.CheckpointDir(), net, cfg, experiments.CheckpointMeta{Epoch: s.epochs, Metric: "val/f1_macro", Value: s.finalF1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Finish(ctx, runs.StateFinished, 0); err != nil {
		t.Fatal(err)
	}
}

// sweepWorkdir is a sweep of 3 fusions × 2 learning rates × 2 seeds (concat
// best at 1e-3, late best at 1e-4), plus a reproduction pair outside it.
func sweepWorkdir(t *testing.T) string {
	t.Helper()
	wd := t.TempDir()
	f1 := map[string]map[float64]float64{
		"concat":    {1e-4: 0.60, 1e-3: 0.70},
		"late":      {1e-4: 0.66, 1e-3: 0.62},
		"text_only": {1e-4: 0.55, 1e-3: 0.58},
	}
	n := 0
	for _, fusion := range []string{"concat", "late", "text_only"} {
		for _, lr := range []float64{1e-4, 1e-3} {
			for seed := int64(1); seed <= 2; seed++ {
				n++
				makeRun(t, wd, runSpec{id: fmt.Sprintf("r%02d", n), fusion: fusion, head: "softmax_ce", sweep: "sw1", lr: lr, seed: seed,
					finalF1: f1[fusion][lr] + 0.01*float64(seed), epochs: 3, checkpoint: true})
			}
		}
	}
	makeRun(t, wd, runSpec{id: "seed-ds", head: "double_softmax", epochs: 10, finalF1: 0.6, seedPreset: true, seed: 42})
	makeRun(t, wd, runSpec{id: "seed-ce", head: "softmax_ce", epochs: 10, finalF1: 0.7, seedPreset: true, seed: 42})
	if err := os.MkdirAll(filepath.Join(wd, "sweeps", "sw1"), 0o755); err != nil {
		t.Fatal(err)
	}
	st := `{"version":1,"id":"sw1","name":"fusion-lr","method":"grid","metric":"val/f1_macro","trials":[]}`
	if err := os.WriteFile(filepath.Join(wd, "sweeps", "sw1", "state.json"), []byte(st), 0o644); err != nil {
		t.Fatal(err)
	}
	return wd
}

var wantFigures = []string{"loss", "lr_sensitivity", "heatmap", "roc_pr", "confusion", "test_f1", "reproduction"}

func TestGenerateSweep(t *testing.T) {
	wd := sweepWorkdir(t)
	rep, err := report.Generate(context.Background(), report.Options{Workdir: wd, Load: fakeLoader, Resamples: 200, DPI: 40})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if want := filepath.Join(wd, "reports", "sw1"); rep.Out != want {
		t.Errorf("Out = %s, want %s (latest sweep)", rep.Out, want)
	}
	for _, f := range rep.Figures {
		if f.Skipped != "" {
			t.Errorf("figure %s skipped: %s", f.Name, f.Skipped)
		}
	}
	for _, name := range wantFigures {
		for _, ext := range []string{"pdf", "svg", "png"} {
			checkFile(t, filepath.Join(rep.Out, "figures", name+"."+ext))
		}
	}
	// Best learning rates and the winner follow the validation scores.
	rows := rep.Rows()
	gotLR := map[string]string{}
	for _, r := range rows {
		gotLR[r.Arm] = r.LR
		if r.Seeds != 2 {
			t.Errorf("%s: %d seeds, want 2", r.Arm, r.Seeds)
		}
		if r.CI == "" {
			t.Errorf("%s: no confidence interval", r.Arm)
		}
	}
	want := map[string]string{"concat": "1e-3", "late": "1e-4", "text_only": "1e-3"}
	for arm, lr := range want {
		if gotLR[arm] != lr {
			t.Errorf("best lr of %s = %s, want %s", arm, gotLR[arm], lr)
		}
	}
	if w := rep.Analysis.Winner; w == nil || w.Name != "concat" || w.Best.ID != "r04" {
		t.Errorf("winner = %+v, want concat run r04", w)
	}
	if rep.Repro == nil || rep.Repro.Faithful.ID != "seed-ds" || rep.Repro.Correct.ID != "seed-ce" {
		t.Errorf("reproduction pair = %+v, want seed-ds and seed-ce", rep.Repro)
	}

	md := readString(t, filepath.Join(rep.Out, report.MarkdownFile))
	for _, s := range []string{"# MAMI report: sweep sw1 (fusion-lr)", "| concat | 1e-3 | 2 |", "figures/loss.png", "figures/reproduction.png",
		"Provenance: runs", "../../runs/r04/config.yaml", "Machine:", "`model.fusion: concat, late, text_only`", "**concat** wins"} {
		if !strings.Contains(md, s) {
			t.Errorf("report.md lacks %q", s)
		}
	}
	html := readString(t, filepath.Join(rep.Out, report.HTMLFile))
	for _, s := range []string{"<!DOCTYPE html>", `<img src="figures/heatmap.svg"`, "<b>concat</b> wins", "text_only"} {
		if !strings.Contains(html, s) {
			t.Errorf("report.html lacks %q", s)
		}
	}
	tex := readString(t, filepath.Join(rep.Out, report.TeXFile))
	for _, s := range []string{`\toprule`, `\midrule`, `\bottomrule`, `text\_only`, `$10^{-3}$`, `\label{tab:mami-results}`} {
		if !strings.Contains(tex, s) {
			t.Errorf("results.tex lacks %q", s)
		}
	}
	if strings.Count(tex, `\textbf{`) != 1 {
		t.Errorf("results.tex should bold exactly one test score:\n%s", tex)
	}
	var prov struct {
		Figures []struct {
			Name string
			Runs []string
		}
		Runs []struct{ ID string }
	}
	if err := json.Unmarshal([]byte(readString(t, filepath.Join(rep.Out, report.ProvenanceFile))), &prov); err != nil {
		t.Fatal(err)
	}
	if len(prov.Figures) != len(wantFigures) || len(prov.Runs) != 14 {
		t.Errorf("provenance has %d figures and %d runs, want %d and 14", len(prov.Figures), len(prov.Runs), len(wantFigures))
	}
	for _, f := range prov.Figures {
		if len(f.Runs) == 0 {
			t.Errorf("figure %s has no runs in its provenance", f.Name)
		}
	}
}

func TestGenerateRunsWithoutCheckpoints(t *testing.T) {
	wd := t.TempDir()
	makeRun(t, wd, runSpec{id: "a", fusion: "concat", head: "softmax_ce", lr: 1e-3, seed: 1, finalF1: 0.7, epochs: 2})
	makeRun(t, wd, runSpec{id: "b", fusion: "gmu", head: "softmax_ce", lr: 1e-3, seed: 1, finalF1: 0.6, epochs: 2})
	out := filepath.Join(t.TempDir(), "rep")
	rep, err := report.Generate(context.Background(), report.Options{Workdir: wd, RunIDs: []string{"a", "b"}, Out: out, Load: fakeLoader, DPI: 40})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	skipped := map[string]bool{}
	for _, f := range rep.Figures {
		if f.Skipped != "" {
			skipped[f.Name] = true
		}
	}
	// Without checkpoints there is nothing to score: the curves are
	// skipped, the rest (test macro-F1 from the summaries) is drawn.
	for _, name := range []string{"roc_pr", "confusion", "reproduction"} {
		if !skipped[name] {
			t.Errorf("figure %s drawn without its inputs", name)
		}
	}
	for _, name := range []string{"loss", "lr_sensitivity", "heatmap", "test_f1"} {
		if skipped[name] {
			t.Errorf("figure %s skipped", name)
		}
	}
	md := readString(t, filepath.Join(out, report.MarkdownFile))
	if !strings.Contains(md, "*Not drawn:*") || !strings.Contains(md, "values from summary.json") {
		t.Errorf("report.md does not say what was not drawn and where the test scores come from:\n%s", md)
	}
}

// TestRescoreMismatchIsReported checks that a checkpoint whose rescored
// test confusion matrix differs from the one the run recorded (the data or
// code changed since training) is flagged in the report.
func TestRescoreMismatchIsReported(t *testing.T) {
	wd := t.TempDir()
	makeRun(t, wd, runSpec{id: "a", fusion: "concat", head: "softmax_ce", lr: 1e-3, seed: 1, finalF1: 0.7, epochs: 1, checkpoint: true, recordedTP: 5})
	out := filepath.Join(t.TempDir(), "rep")
	rep, err := report.Generate(context.Background(), report.Options{Workdir: wd, RunIDs: []string{"a"}, Out: out, Load: fakeLoader, Resamples: 10, DPI: 30})
	if err != nil {
		t.Fatal(err)
	}
	if note := rep.Rows()[0].Note; !strings.Contains(note, "WARNING") || !strings.Contains(note, "changed since the run was trained") {
		t.Errorf("note = %q, want a warning that the rescored numbers are not the run's", note)
	}
	if md := readString(t, filepath.Join(out, report.MarkdownFile)); !strings.Contains(md, "WARNING") {
		t.Error("report.md does not carry the warning")
	}
}

func TestGenerateErrors(t *testing.T) {
	wd := t.TempDir()
	ctx := context.Background()
	if _, err := report.Generate(ctx, report.Options{Workdir: wd}); !errors.Is(err, report.ErrNoSweep) {
		t.Errorf("empty workdir: err = %v, want ErrNoSweep", err)
	}
	if _, err := report.Generate(ctx, report.Options{Workdir: wd, SweepID: "nope"}); !errors.Is(err, report.ErrNoRuns) {
		t.Errorf("unknown sweep: err = %v, want ErrNoRuns", err)
	}
	_, err := report.Generate(ctx, report.Options{Workdir: wd, RunIDs: []string{"missing"}})
	if !errors.Is(err, runs.ErrRunNotFound) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("unknown run: err = %v, want ErrRunNotFound naming the run", err)
	}
	if _, err := report.Generate(ctx, report.Options{Workdir: wd, RunIDs: []string{"a"}, SweepID: "s"}); err == nil {
		t.Error("sweep and runs together: no error")
	}
}

func TestLatestSweepFromRuns(t *testing.T) {
	wd := t.TempDir()
	makeRun(t, wd, runSpec{id: "a", fusion: "concat", head: "softmax_ce", sweep: "old", lr: 1e-3, seed: 1, finalF1: 0.7, epochs: 1})
	makeRun(t, wd, runSpec{id: "b", fusion: "concat", head: "softmax_ce", sweep: "new", lr: 1e-3, seed: 1, finalF1: 0.7, epochs: 1})
	got, err := report.LatestSweep(wd)
	if err != nil || got != "new" {
		t.Errorf("LatestSweep = %q, %v; want new", got, err)
	}
}

func checkFile(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Error(err)
		return
	}
	switch filepath.Ext(path) {
	case ".pdf":
		if !bytes.HasPrefix(b, []byte("%PDF-")) {
			t.Errorf("%s does not start with %%PDF-", path)
		}
	case ".svg":
		d := xml.NewDecoder(bytes.NewReader(b))
		for {
			_, err := d.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Errorf("%s: not XML: %v", path, err)
				break
			}
		}
	case ".png":
		if _, err := png.Decode(bytes.NewReader(b)); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var _ = math.NaN
