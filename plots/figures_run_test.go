package plots_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/data"
	"github.com/mami-lab/mami/experiments"
	"github.com/mami-lab/mami/models"
	"github.com/mami-lab/mami/plots"
	"github.com/mami-lab/mami/runs"
)

// recordRun writes a finished run with a seeded history and, when
// checkpoint is set, a best checkpoint of an untrained small model.
func recordRun(t *testing.T, checkpoint bool) string {
	t.Helper()
	ctx := context.Background()
	wd := t.TempDir()
	cfg := configs.Default()
	cfg.Workdir = wd
	cfg.Run.ID = "r1"
	cfg.Model.Hidden = []int{4}
	rec, err := runs.Create(ctx, wd, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range fusionHistory(rand.New(rand.NewPCG(1, 1)), 3, 0.3, 2) {
		if err := rec.Log(ctx, row); err != nil {
			t.Fatal(err)
		}
	}
	if checkpoint {
		net, err := models.New(models.SpecFrom(cfg.Model, testDim), 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := experiments.SaveCheckpoint(rec.CheckpointDir(), net, cfg, experiments.CheckpointMeta{Epoch: 3, Metric: "val/f1_macro"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Finish(ctx, runs.StateFinished, 0); err != nil {
		t.Fatal(err)
	}
	return rec.Dir()
}

const testDim = 8

// smallData is a 200-meme test split with 8-dimensional embeddings that
// lean towards the label. Seeded.
func smallData(_ context.Context, _ configs.DataConfig, seed int64) (*data.Splits, error) {
	rng := rand.New(rand.NewPCG(uint64(seed), 5))
	const n = 200
	s := &data.Set{Dim: testDim, Image: make([]float32, n*testDim), Text: make([]float32, n*testDim)}
	for i := range n {
		y := rng.IntN(2)
		s.Memes = append(s.Memes, data.Meme{FileName: "m.jpg", Misogynous: y})
		for j := range testDim {
			s.Image[i*testDim+j] = float32(rng.NormFloat64() + float64(y))
			s.Text[i*testDim+j] = float32(rng.NormFloat64())
		}
	}
	return &data.Splits{Train: s, Val: s, Test: s}, nil
}

func TestRunFigures(t *testing.T) {
	tests := []struct {
		name       string
		checkpoint bool
		want       []string
	}{
		{"with checkpoint", true, []string{"confusion.pdf", "confusion.png", "confusion.svg", "metrics.pdf", "metrics.png", "metrics.svg", "roc_pr.pdf", "roc_pr.png", "roc_pr.svg"}},
		{"without checkpoint", false, []string{"metrics.pdf", "metrics.png", "metrics.svg"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := recordRun(t, tt.checkpoint)
			paths, err := plots.RunFiguresWith(context.Background(), dir, plots.RunFigureOptions{DPI: 40, Load: smallData})
			if err != nil {
				t.Fatalf("RunFigures: %v", err)
			}
			var got []string
			for _, p := range paths {
				if filepath.Dir(p) != filepath.Join(dir, "plots") {
					t.Errorf("%s written outside the run's plots folder", p)
				}
				got = append(got, filepath.Base(p))
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if len(b) == 0 {
					t.Errorf("%s is empty", p)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("wrote %v, want %v", got, tt.want)
			}
		})
	}
}

func TestScoreTestNoCheckpoint(t *testing.T) {
	dir := recordRun(t, false)
	if _, err := plots.ScoreTest(context.Background(), dir, nil); !errors.Is(err, plots.ErrNoCheckpoint) {
		t.Fatalf("ScoreTest of a run without checkpoint: err = %v, want ErrNoCheckpoint", err)
	}
}
