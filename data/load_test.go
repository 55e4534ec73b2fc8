package data_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/data"
)

func TestLoadSynthetic(t *testing.T) {
	s, err := data.Load(context.Background(), configs.DataConfig{Dataset: "synthetic-mami", ValFraction: 0.1, TestFraction: 0.2}, 42)
	if err != nil {
		t.Fatal(err)
	}
	if s.Train.Len() != 7200 || s.Val.Len() != 800 || s.Test.Len() != 2000 || s.Official.Len() != 1000 {
		t.Fatalf("sizes %d/%d/%d + %d, want 7200/800/2000 + 1000", s.Train.Len(), s.Val.Len(), s.Test.Len(), s.Official.Len())
	}
	for name, set := range map[string]*data.Set{"train": s.Train, "val": s.Val, "test": s.Test} {
		pos := 0
		for _, y := range set.Labels() {
			pos += y
		}
		if 2*pos != set.Len() {
			t.Errorf("%s: %d of %d misogynous, want half", name, pos, set.Len())
		}
		if err := set.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := data.Load(context.Background(), configs.DataConfig{Dataset: "imagenet"}, 1); !errors.Is(err, data.ErrUnknownDataset) {
		t.Errorf("unknown dataset: err = %v", err)
	}
}

// writeQuirkFeatures writes features for the memes of testdata/mami/quirks
// (1.jpg … 7.jpg) minus those in skip.
func writeQuirkFeatures(t *testing.T, skip string) string {
	t.Helper()
	var names []string
	for _, n := range []string{"1.jpg", "2.jpg", "3.jpg", "4.jpg", "5.jpg", "6.jpg", "7.jpg"} {
		if n != skip {
			names = append(names, n)
		}
	}
	path := filepath.Join(t.TempDir(), "features.safetensors")
	f := &data.Features{Dim: 8, Names: names, Image: unitRows(len(names), 8, 1), Text: unitRows(len(names), 8, 3)}
	if err := data.WriteFeatures(context.Background(), path, f); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadMAMI(t *testing.T) {
	ctx := context.Background()
	cfg := configs.DataConfig{Dataset: "mami", Path: "testdata/mami/quirks", Features: writeQuirkFeatures(t, ""), ValFraction: 0.25, TestFraction: 0.2}
	s, err := data.Load(ctx, cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	if s.Train.Len()+s.Val.Len()+s.Test.Len() != 5 || s.Test.Len() != 1 || s.Val.Len() != 1 {
		t.Errorf("sizes %d/%d/%d, want 3/1/1", s.Train.Len(), s.Val.Len(), s.Test.Len())
	}
	if s.Official.Len() != 2 || s.Official.Memes[0].FileName != "6.jpg" || s.Official.Memes[0].Misogynous != 1 ||
		s.Official.Memes[0].Objectification != 1 || s.Official.Memes[1].Misogynous != 0 {
		t.Errorf("official memes %+v, want 6.jpg (misogynous, objectification) and 7.jpg", s.Official.Memes)
	}
	if s.Official.Memes[0].Text != "TWO\nLINES" {
		t.Errorf("official text %q", s.Official.Memes[0].Text)
	}
	// Features follow the memes: text rows were stored with norm 3 and are
	// unit length after loading.
	for _, set := range []*data.Set{s.Train, s.Val, s.Test, s.Official} {
		if err := set.Validate(); err != nil {
			t.Error(err)
		}
	}
}

func TestLoadMAMIErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cfg  configs.DataConfig
		want []string
	}{
		{"meme without features", configs.DataConfig{Dataset: "mami", Path: "testdata/mami/quirks", Features: writeQuirkFeatures(t, "4.jpg")},
			[]string{"features.safetensors", `meme "4.jpg"`, "training.csv", "no features"}},
		{"official meme without features", configs.DataConfig{Dataset: "mami", Path: "testdata/mami/quirks", Features: writeQuirkFeatures(t, "7.jpg")},
			[]string{`meme "7.jpg"`, "Test.csv", "no features"}},
		{"bad label", configs.DataConfig{Dataset: "mami", Path: "testdata/mami/bad_label", Features: writeQuirkFeatures(t, "")},
			[]string{`training.csv:5: column "misogynous": want 0 or 1, got "2"`}},
		{"no path", configs.DataConfig{Dataset: "mami"}, []string{"data.path is empty"}},
		{"default features missing", configs.DataConfig{Dataset: "mami", Path: "testdata/mami/quirks"}, []string{"features.safetensors"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := data.Load(ctx, tc.cfg, 1)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q lacks %q", err, w)
				}
			}
		})
	}
}
