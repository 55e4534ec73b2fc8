package clip

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mami-lab/mami/data"
)

// MAMIItems lists the memes of a MAMI folder for [Extract]: the rows of
// training.csv, then those of Test.csv when present (a name seen twice is
// kept once). Each image is looked up next to the CSV files, then in the
// training/, TRAINING/, test/ and images/ subfolders; a missing image keeps
// its path next to the CSV files, so Extract reports it by name.
func MAMIItems(ctx context.Context, dir string) ([]Item, error) {
	var items []Item
	seen := map[string]bool{}
	found := false
	for _, name := range []string{data.TrainingFile, data.TestFile} {
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			continue
		}
		found = true
		memes, err := data.ReadMAMI(ctx, path)
		if err != nil {
			return nil, err
		}
		for _, m := range memes {
			if seen[m.FileName] {
				continue
			}
			seen[m.FileName] = true
			items = append(items, Item{Name: m.FileName, Text: m.Text, ImagePath: findImage(dir, m.FileName)})
		}
	}
	if !found {
		return nil, fmt.Errorf("mami items: %s has neither %s nor %s", dir, data.TrainingFile, data.TestFile)
	}
	return items, nil
}

func findImage(dir, name string) string {
	for _, sub := range []string{"", "training", "TRAINING", "test", "images"} {
		p := filepath.Join(dir, sub, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return filepath.Join(dir, name)
}

// DataFeatures converts extracted features to the trainer's feature type,
// recording model as the encoder in the metadata.
func (f *Features) DataFeatures(model string) *data.Features {
	return &data.Features{Dim: f.Dim, Names: f.Names, Image: f.Image, Text: f.Text,
		Metadata: map[string]string{data.MetaModel: model}}
}
