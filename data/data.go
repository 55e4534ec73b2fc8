package data

import (
	"fmt"
	"math"
)

// Meme is one meme: its file name, transcription and labels. The Sub-task B
// labels (Shaming, Stereotype, Objectification, Violence) are 0 or 1 and can
// only be 1 on a misogynous meme. Labels of an unlabelled meme are -1.
type Meme struct {
	FileName        string
	Text            string
	Misogynous      int
	Shaming         int
	Stereotype      int
	Objectification int
	Violence        int
}

// Labeled reports whether the meme carries a Sub-task A label.
func (m Meme) Labeled() bool { return m.Misogynous >= 0 }

// Set is one split: memes with their embeddings aligned row by row.
type Set struct {
	Memes []Meme
	Dim   int       // embedding size per modality
	Image []float32 // len(Memes)*Dim, row-major, L2-normalised rows
	Text  []float32 // len(Memes)*Dim, row-major, L2-normalised rows
}

// Len returns the number of memes.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.Memes)
}

// Labels returns the Sub-task A (misogynous) label of every meme.
func (s *Set) Labels() []int {
	out := make([]int, len(s.Memes))
	for i, m := range s.Memes {
		out[i] = m.Misogynous
	}
	return out
}

// ImageRow returns the image embedding of meme i (aliasing the set).
func (s *Set) ImageRow(i int) []float32 { return s.Image[i*s.Dim : (i+1)*s.Dim] }

// TextRow returns the text embedding of meme i (aliasing the set).
func (s *Set) TextRow(i int) []float32 { return s.Text[i*s.Dim : (i+1)*s.Dim] }

// Subset returns a new set holding copies of the memes at idx, in that order.
func (s *Set) Subset(idx []int) *Set {
	out := &Set{
		Memes: make([]Meme, len(idx)),
		Dim:   s.Dim,
		Image: make([]float32, len(idx)*s.Dim),
		Text:  make([]float32, len(idx)*s.Dim),
	}
	for j, i := range idx {
		out.Memes[j] = s.Memes[i]
		copy(out.ImageRow(j), s.ImageRow(i))
		copy(out.TextRow(j), s.TextRow(i))
	}
	return out
}

// clone returns a deep copy of s.
func (s *Set) clone() *Set {
	return &Set{
		Memes: append([]Meme(nil), s.Memes...),
		Dim:   s.Dim,
		Image: append([]float32(nil), s.Image...),
		Text:  append([]float32(nil), s.Text...),
	}
}

// Validate checks that the embeddings match the memes and are finite and
// unit length (within 1e-3).
func (s *Set) Validate() error {
	if s.Dim <= 0 {
		return fmt.Errorf("set: dimension %d", s.Dim)
	}
	for _, mod := range []struct {
		name string
		v    []float32
	}{{"image", s.Image}, {"text", s.Text}} {
		if len(mod.v) != len(s.Memes)*s.Dim {
			return fmt.Errorf("set: %s embeddings hold %d values, want %d memes × %d", mod.name, len(mod.v), len(s.Memes), s.Dim)
		}
		for i := range s.Memes {
			var ss float64
			for _, x := range mod.v[i*s.Dim : (i+1)*s.Dim] {
				ss += float64(x) * float64(x)
			}
			if math.IsNaN(ss) || math.IsInf(ss, 0) || math.Abs(math.Sqrt(ss)-1) > 1e-3 {
				return fmt.Errorf("set: meme %q (row %d): %s embedding norm %g, want 1", s.Memes[i].FileName, i, mod.name, math.Sqrt(ss))
			}
		}
	}
	return nil
}

// Splits are the parts of a dataset a run uses.
type Splits struct {
	Train, Val, Test *Set
	// Official is the dataset's own test set (the synthetic 1,000 memes, or
	// MAMI's Test.csv with test_labels.txt labels when present). It may be
	// nil; its memes are unlabelled (-1) when no labels were found.
	Official *Set
}
