package data_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/mami-lab/mami/data"
)

func balanced(n int) []int {
	labels := make([]int, n)
	for i := range labels {
		labels[i] = i % 2
	}
	return labels
}

func TestStratifiedSplitSizes(t *testing.T) {
	odd := append(balanced(9), 1, 1, 1, 1) // 13 memes: 4 of class 0, 9 of class 1
	skew := make([]int, 1000)
	for i := range 150 {
		skew[i*6] = 1
	}
	for _, tc := range []struct {
		name               string
		labels             []int
		val, test          float64
		nTrain, nVal, nTst int
	}{
		{"study 10,000 balanced", balanced(10000), 0.1, 0.2, 7200, 800, 2000},
		{"no validation", balanced(100), 0, 0.2, 80, 0, 20},
		{"no test", balanced(100), 0.1, 0, 90, 10, 0},
		{"odd sizes", odd, 0.1, 0.2, 9, 1, 3},
		{"skewed", skew, 0.1, 0.2, 720, 80, 200},
		{"empty", nil, 0.1, 0.2, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			train, val, test := data.StratifiedSplit(tc.labels, tc.val, tc.test, 42)
			if len(train) != tc.nTrain || len(val) != tc.nVal || len(test) != tc.nTst {
				t.Fatalf("sizes %d/%d/%d, want %d/%d/%d", len(train), len(val), len(test), tc.nTrain, tc.nVal, tc.nTst)
			}
			all := slices.Concat(train, val, test)
			slices.Sort(all)
			for i, v := range all {
				if v != i {
					t.Fatalf("parts do not partition the indices: position %d holds %d", i, v)
				}
			}
			for _, part := range [][]int{train, val, test} {
				if !slices.IsSorted(part) {
					t.Error("part not sorted")
				}
			}
			// Class proportions are kept to within one meme per part.
			total, pos := len(tc.labels), 0
			for _, y := range tc.labels {
				pos += y
			}
			for _, part := range [][]int{train, val, test} {
				p := 0
				for _, i := range part {
					p += tc.labels[i]
				}
				if total > 0 {
					want := float64(len(part)) * float64(pos) / float64(total)
					if d := float64(p) - want; d > 1 || d < -1 {
						t.Errorf("part of %d holds %d positives, want %.1f ± 1", len(part), p, want)
					}
				}
			}
		})
	}
}

func TestStratifiedSplitSeed(t *testing.T) {
	labels := balanced(10000)
	a1, b1, c1 := data.StratifiedSplit(labels, 0.1, 0.2, 42)
	a2, b2, c2 := data.StratifiedSplit(labels, 0.1, 0.2, 42)
	if !reflect.DeepEqual(a1, a2) || !reflect.DeepEqual(b1, b2) || !reflect.DeepEqual(c1, c2) {
		t.Error("same seed gave different splits")
	}
	_, _, c3 := data.StratifiedSplit(labels, 0.1, 0.2, 43)
	if reflect.DeepEqual(c1, c3) {
		t.Error("seeds 42 and 43 gave the same test part")
	}
	// Pinned: the seed-42 split must not change between versions, or
	// recorded runs stop being reproducible.
	if got, want := c1[:5], []int{1, 5, 6, 12, 13}; !reflect.DeepEqual(got, want) {
		t.Errorf("seed 42 test part starts %v, want %v", got, want)
	}
}

func TestBatches(t *testing.T) {
	rng := data.NewRand(42)
	e1, err := data.Batches(10, 4, rng)
	if err != nil {
		t.Fatal(err)
	}
	e2, _ := data.Batches(10, 4, rng)
	if len(e1) != 3 || len(e1[0]) != 4 || len(e1[2]) != 2 {
		t.Fatalf("batch sizes %v, want 4, 4, 2", e1)
	}
	flat := slices.Concat(e1...)
	slices.Sort(flat)
	if !reflect.DeepEqual(flat, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Errorf("epoch covers %v, want every index once", flat)
	}
	if reflect.DeepEqual(e1, e2) {
		t.Error("second epoch has the same order: not reshuffled")
	}
	r1, _ := data.Batches(10, 4, data.NewRand(42))
	if !reflect.DeepEqual(r1, e1) {
		t.Error("same seed gave a different first epoch")
	}
	if _, err := data.Batches(10, 0, rng); err == nil {
		t.Error("batch size 0: no error")
	}
	if b, err := data.Batches(0, 4, rng); len(b) != 0 || err != nil {
		t.Errorf("0 samples gave %d batches", len(b))
	}
}
