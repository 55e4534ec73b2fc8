package clip_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/data"
	"github.com/mami-lab/mami/data/clip"
	"github.com/mami-lab/mami/experiments"
)

// makeMAMI builds a MAMI-format folder: n PNG memes in training/ and a
// tab-separated training.csv with labels and transcriptions.
func makeMAMI(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "training"), 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("file_name\tmisogynous\tshaming\tstereotype\tobjectification\tviolence\tText Transcription\n")
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("%d.png", i)
		writePNG(t, filepath.Join(dir, "training", name), 30+3*i, 50-2*i, i)
		fmt.Fprintf(&b, "%s\t%d\t0\t%d\t0\t0\tWHEN SHE SAYS %d THINGS\n", name, i%2, i%2, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "training.csv"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestExtractMAMIFolder extracts a MAMI folder with the tiny model, writes
// the trainer's feature file and loads it back the way `mami train` does.
func TestExtractMAMIFolder(t *testing.T) {
	ctx := context.Background()
	dir := makeMAMI(t, 12)
	b := tinyBundle(t)
	items, err := clip.MAMIItems(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 12 || items[0].ImagePath != filepath.Join(dir, "training", "1.png") || items[0].Text != "WHEN SHE SAYS 1 THINGS" {
		t.Fatalf("items %d, first %+v", len(items), items[0])
	}
	out := filepath.Join(t.TempDir(), "features.safetensors")
	res, err := clip.Extract(ctx, items, clip.ExtractOptions{Model: b.Model, Tokenizer: b.Tokenizer, Preprocessor: b.Preprocessor,
		WorkDir: out + ".work", Fingerprint: b.Fingerprint, Batch: 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := data.WriteFeatures(ctx, out, res.DataFeatures("clip tiny")); err != nil {
		t.Fatal(err)
	}
	got, err := data.ReadFeatures(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	if got.Dim != 16 || !slices.Equal(got.Names, res.Names) || got.Normalized != 0 {
		t.Fatalf("read back dim %d names %v normalized %d; want 16, %v, 0", got.Dim, got.Names, got.Normalized, res.Names)
	}
	assertClose(t, "image features read back", got.Image, res.Image, 0)
	assertClose(t, "text features read back", got.Text, res.Text, 0)

	splits, err := data.Load(ctx, configs.DataConfig{Dataset: "mami", Path: dir, Features: out, ValFraction: 0.25, TestFraction: 0.25}, 1)
	if err != nil {
		t.Fatalf("data.Load of the extracted features: %v", err)
	}
	if n := splits.Train.Len() + splits.Val.Len() + splits.Test.Len(); n != 12 || splits.Train.Dim != 16 {
		t.Fatalf("splits hold %d memes of dim %d, want 12 of 16", n, splits.Train.Dim)
	}

	// And the trainer trains on them (what `mami train` runs).
	cfg := configs.Default()
	cfg.Data = configs.DataConfig{Dataset: "mami", Path: dir, Features: out, ValFraction: 0.25, TestFraction: 0.25}
	cfg.Train.Epochs, cfg.Train.BatchSize = 2, 4
	cfg.Model.Hidden = []int{8}
	sink := &recordingSink{}
	result, err := experiments.Train(ctx, cfg, splits, sink, experiments.Options{})
	if err != nil {
		t.Fatalf("training on the extracted features: %v", err)
	}
	loss, ok := result.Summary["train/epoch_loss"].(float64)
	if !ok || math.IsNaN(loss) || sink.rows == 0 {
		t.Errorf("training summary train/epoch_loss = %v after %d history rows, want a finite loss", result.Summary["train/epoch_loss"], sink.rows)
	}
}

type recordingSink struct{ rows int }

func (s *recordingSink) Log(context.Context, map[string]any) error     { s.rows++; return nil }
func (s *recordingSink) Summary(context.Context, map[string]any) error { return nil }

func TestMAMIItemsErrors(t *testing.T) {
	if _, err := clip.MAMIItems(context.Background(), t.TempDir()); err == nil {
		t.Error("empty folder: got nil error")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "training.csv"), []byte("no\theader\there\n\"x"), 0o644)
	if _, err := clip.MAMIItems(context.Background(), dir); err == nil {
		t.Error("malformed training.csv: got nil error")
	}
}
