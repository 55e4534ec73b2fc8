package data

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mami-lab/mami/configs"
)

// MAMI release file names inside configs.DataConfig.Path.
const (
	TrainingFile   = "training.csv"
	TestFile       = "Test.csv"
	TestLabelsFile = "test_labels.txt"
	// DefaultFeaturesFile is looked for in the MAMI folder when
	// configs.DataConfig.Features is empty.
	DefaultFeaturesFile = "features.safetensors"
)

// ErrUnknownDataset is wrapped when configs.DataConfig.Dataset names no
// known dataset.
var ErrUnknownDataset = errors.New("data: unknown dataset")

// Load loads the dataset cfg names and splits its labelled memes with
// [StratifiedSplit](labels, cfg.ValFraction, cfg.TestFraction, seed).
//
// For "synthetic-mami" (or "") the 10,000 generated training memes are
// split and the 1,000 generated test memes are Official. For "mami" it reads
// cfg.Path/training.csv and the features at cfg.Features (default
// cfg.Path/features.safetensors); when cfg.Path/Test.csv exists its memes
// form Official, labelled from cfg.Path/test_labels.txt when that exists
// (unlabelled, -1, otherwise). Every meme must have features.
func Load(ctx context.Context, cfg configs.DataConfig, seed int64) (*Splits, error) {
	var all, official *Set
	switch cfg.Dataset {
	case "", SyntheticName:
		all, official = Synthetic()
	case "mami":
		var err error
		if all, official, err = loadMAMI(ctx, cfg); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w %q: want %q or \"mami\"", ErrUnknownDataset, cfg.Dataset, SyntheticName)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	train, val, test := StratifiedSplit(all.Labels(), cfg.ValFraction, cfg.TestFraction, seed)
	return &Splits{Train: all.Subset(train), Val: all.Subset(val), Test: all.Subset(test), Official: official}, nil
}

func loadMAMI(ctx context.Context, cfg configs.DataConfig) (train, official *Set, err error) {
	if cfg.Path == "" {
		return nil, nil, errors.New("load mami: data.path is empty: want the folder holding training.csv")
	}
	trainPath := filepath.Join(cfg.Path, TrainingFile)
	memes, err := ReadMAMI(ctx, trainPath)
	if err != nil {
		return nil, nil, fmt.Errorf("load mami: %w", err)
	}
	for i, m := range memes {
		if !m.Labeled() {
			return nil, nil, fmt.Errorf("load mami: %w", &ParseError{File: trainPath, Field: ColMisogynous,
				Err: fmt.Errorf("no label columns (meme %q, the %d. row): training memes must be labelled", m.FileName, i+1)})
		}
	}
	featPath := cfg.Features
	if featPath == "" {
		featPath = filepath.Join(cfg.Path, DefaultFeaturesFile)
	}
	feats, err := ReadFeatures(ctx, featPath)
	if err != nil {
		return nil, nil, fmt.Errorf("load mami: %w", err)
	}
	index := feats.Index()
	if train, err = attach(memes, feats, index, trainPath, featPath); err != nil {
		return nil, nil, fmt.Errorf("load mami: %w", err)
	}
	testPath := filepath.Join(cfg.Path, TestFile)
	if _, err := os.Stat(testPath); errors.Is(err, os.ErrNotExist) {
		return train, nil, nil
	}
	tmemes, err := ReadMAMI(ctx, testPath)
	if err != nil {
		return nil, nil, fmt.Errorf("load mami: %w", err)
	}
	labelPath := filepath.Join(cfg.Path, TestLabelsFile)
	if _, err := os.Stat(labelPath); err == nil {
		labels, err := ReadTestLabels(ctx, labelPath)
		if err != nil {
			return nil, nil, fmt.Errorf("load mami: %w", err)
		}
		for i := range tmemes {
			l, ok := labels[tmemes[i].FileName]
			if !ok {
				return nil, nil, fmt.Errorf("load mami: %s: meme %q of %s has no labels", labelPath, tmemes[i].FileName, TestFile)
			}
			tmemes[i].Misogynous, tmemes[i].Shaming, tmemes[i].Stereotype = l.Misogynous, l.Shaming, l.Stereotype
			tmemes[i].Objectification, tmemes[i].Violence = l.Objectification, l.Violence
		}
	}
	if official, err = attach(tmemes, feats, index, testPath, featPath); err != nil {
		return nil, nil, fmt.Errorf("load mami: %w", err)
	}
	return train, official, nil
}

// attach builds a Set from memes and their feature rows.
func attach(memes []Meme, f *Features, index map[string]int, memeFile, featFile string) (*Set, error) {
	s := &Set{Memes: memes, Dim: f.Dim, Image: make([]float32, len(memes)*f.Dim), Text: make([]float32, len(memes)*f.Dim)}
	for i, m := range memes {
		row, ok := index[m.FileName]
		if !ok {
			return nil, &FeatureError{File: featFile, Meme: m.FileName, Row: -1,
				Err: fmt.Errorf("missing: meme of %s (the %d. meme) has no features", filepath.Base(memeFile), i+1)}
		}
		copy(s.ImageRow(i), f.Image[row*f.Dim:(row+1)*f.Dim])
		copy(s.TextRow(i), f.Text[row*f.Dim:(row+1)*f.Dim])
	}
	return s, nil
}
