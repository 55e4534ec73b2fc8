package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mami-lab/mami/data/npy"
	"github.com/mami-lab/mami/runs"
)

// mami runs the command line in-process and returns its output and error.
func mami(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"--log-level", "warn"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func readHistory(t *testing.T, dir string) []map[string]any {
	t.Helper()
	run, err := runs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	h, err := run.History()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func readSummary(t *testing.T, dir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("summary.json: %v", err)
	}
	return s
}

// TestTrainSeedRecord trains the study's preset (two epochs, to stay quick) and checks the run record, the
// study's starting loss and that a second run gives the same history.
func TestTrainSeedRecord(t *testing.T) {
	work := t.TempDir()
	for _, id := range []string{"s1", "s2"} {
		if out, err := mami(t, "train", "-c", "seed", "--set", "run.id="+id, "--set", "workdir="+work,
			"--set", "tracking.mode=offline", "--set", "train.epochs=2"); err != nil {
			t.Fatalf("train %s: %v\n%s", id, err, out)
		}
	}
	dir := filepath.Join(work, "runs", "s1")
	for _, f := range []string{"config.yaml", "history.jsonl", "summary.json", "run.json", "output.log",
		"checkpoints/best.safetensors", "checkpoints/best.yaml", "plots/loss.png", "plots/loss.svg"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("run record lacks %s (%v)", f, err)
		}
	}
	h1, h2 := readHistory(t, dir), readHistory(t, filepath.Join(work, "runs", "s2"))
	if got, want := len(h1), 2*113; got != want {
		t.Fatalf("history has %d rows, want %d (2 epochs of 113 steps)", got, want)
	}
	first, _ := h1[0]["train/loss"].(float64)
	if math.Abs(first-0.69) > 0.02 {
		t.Errorf("first train/loss = %.4f, want 0.69 ± 0.02", first)
	}
	if len(h2) != len(h1) {
		t.Fatalf("second run has %d rows, want %d", len(h2), len(h1))
	}
	for i := range h1 {
		for k, v := range h1[i] {
			if k == "_runtime" || k == "_timestamp" || strings.HasPrefix(k, "perf/") {
				continue
			}
			if fmt.Sprint(h2[i][k]) != fmt.Sprint(v) {
				t.Fatalf("row %d key %s: second run %v, first %v", i, k, h2[i][k], v)
			}
		}
	}
	s := readSummary(t, dir)
	for _, k := range []string{"val/f1_macro", "test/f1_macro", "perf/train_samples_per_s", "train/epoch_loss"} {
		if _, ok := s[k]; !ok {
			t.Errorf("summary lacks %s", k)
		}
	}
}

// TestTrainEveryFusion trains each architecture with the correct head for one epoch.
func TestTrainEveryFusion(t *testing.T) {
	work := t.TempDir()
	for _, fusion := range []string{"concat", "late", "align", "cross", "gmu", "image_only", "text_only"} {
		t.Run(fusion, func(t *testing.T) {
			out, err := mami(t, "train", "--set", "run.id="+fusion, "--set", "workdir="+work, "--set", "model.fusion="+fusion,
				"--set", "model.head=softmax_ce", "--set", "train.epochs=1", "--set", "model.proj_dim=16")
			if err != nil {
				t.Fatalf("train: %v\n%s", err, out)
			}
			if f, ok := readSummary(t, filepath.Join(work, "runs", fusion))["val/f1_macro"].(float64); !ok || f <= 0.5 {
				t.Errorf("val/f1_macro = %v, want a number above chance", f)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	typo := filepath.Join(dir, "typo.yaml")
	os.WriteFile(bad, []byte("train:\n  lr: 0.1\n  epochs: [1\n"), 0o644)
	os.WriteFile(typo, []byte("train:\n  lrr: 0.1\n"), 0o644)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown --set key", []string{"--set", "train.lrr=1"}, []string{"train.lrr", "--set", "train.lr"}},
		{"unknown key in file", []string{"-c", typo}, []string{"train.lrr", "typo.yaml"}},
		{"negative lr", []string{"--set", "train.lr=-1"}, []string{"train.lr", "-1"}},
		{"missing file", []string{"-c", filepath.Join(dir, "nope.yaml")}, []string{"nope.yaml"}},
		{"malformed YAML", []string{"-c", bad}, []string{"bad.yaml:3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"train", "--set", "workdir=" + dir}, tt.args...)
			_, err := mami(t, args...)
			if err == nil {
				t.Fatal("train succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if entries, _ := os.ReadDir(filepath.Join(dir, "runs")); len(entries) > 0 {
				t.Errorf("a bad config left a run directory behind")
			}
		})
	}
}

// mamiFixture writes a MAMI-format folder: training.csv (tab-separated) and NumPy features for n memes.
func mamiFixture(t *testing.T, n int, mutate func(rows []string, names []string, img []float32)) (dataDir, feats string) {
	t.Helper()
	dataDir = t.TempDir()
	const dim = 16
	rng := rand.New(rand.NewPCG(1, 2))
	rows := []string{"file_name\tmisogynous\tshaming\tstereotype\tobjectification\tviolence\tText Transcription"}
	names := make([]string, n)
	img := make([]float32, n*dim)
	txt := make([]float32, n*dim)
	for i := range n {
		names[i] = fmt.Sprintf("%d.jpg", i+1)
		y := i % 2
		rows = append(rows, fmt.Sprintf("%s\t%d\t0\t%d\t0\t0\t\"meme \"\"%d\"\" text\"", names[i], y, y, i))
		for d := range dim {
			img[i*dim+d] = float32(rng.NormFloat64()) + float32(y)*0.5
			txt[i*dim+d] = float32(rng.NormFloat64()) - float32(y)*0.5
		}
	}
	if mutate != nil {
		mutate(rows, names, img)
	}
	os.WriteFile(filepath.Join(dataDir, "training.csv"), []byte(strings.Join(rows, "\n")+"\n"), 0o644)
	feats = filepath.Join(dataDir, "feats")
	os.MkdirAll(feats, 0o755)
	for name, v := range map[string][]float32{"image_embeds.npy": img, "text_embeds.npy": txt} {
		f, err := os.Create(filepath.Join(feats, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := npy.Write(f, []int{n, dim}, v); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	os.WriteFile(filepath.Join(feats, "names.txt"), []byte(strings.Join(names, "\n")+"\n"), 0o644)
	return dataDir, feats
}

func TestTrainMAMIFixture(t *testing.T) {
	train := func(t *testing.T, dataDir, feats string) (string, error) {
		return mami(t, "train", "--set", "workdir="+t.TempDir(), "--set", "run.id=m", "--set", "data.dataset=mami",
			"--set", "data.path="+dataDir, "--set", "data.features="+feats, "--set", "train.epochs=2",
			"--set", "model.head=softmax_ce", "--set", "train.batch_size=8")
	}
	t.Run("trains", func(t *testing.T) {
		d, f := mamiFixture(t, 60, nil)
		if out, err := train(t, d, f); err != nil {
			t.Fatalf("train: %v\n%s", err, out)
		}
	})
	tests := []struct {
		name   string
		mutate func(rows, names []string, img []float32)
		want   []string
	}{
		// rows[k] is line k+1 of training.csv: the header is line 1.
		{"missing column", func(rows, _ []string, _ []float32) { rows[5] = "5.jpg\t1\t0" }, []string{"training.csv:6", "stereotype"}},
		{"label 2", func(rows, _ []string, _ []float32) { rows[3] = strings.Replace(rows[3], "\t0\t", "\t2\t", 1) }, []string{"training.csv:4", "misogynous"}},
		{"meme without features", func(_, names []string, _ []float32) { names[7] = "other.jpg" }, []string{"8.jpg"}},
		{"NaN feature", func(_, _ []string, img []float32) { img[16*4+3] = float32(math.NaN()) }, []string{"5.jpg", "NaN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, f := mamiFixture(t, 60, tt.mutate)
			_, err := train(t, d, f)
			if err == nil {
				t.Fatal("train succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
