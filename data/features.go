package data

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mami-lab/mami/data/npy"
	"github.com/mami-lab/mami/data/safetensors"
)

// Tensor names and metadata keys of a feature file (docs/format/features.md).
const (
	TensorImage = "image_embeds"
	TensorText  = "text_embeds"
	MetaNames   = "names" // JSON list of file names, one per row
	MetaModel   = "model" // encoder that produced the embeddings
	MetaDim     = "dim"   // embedding size, decimal
	MetaCount   = "count" // number of rows, decimal
)

// Features are precomputed image and text embeddings keyed by meme file
// name: row i of Image and Text belongs to Names[i].
type Features struct {
	Dim      int
	Names    []string
	Image    []float32 // len(Names)*Dim, row-major
	Text     []float32 // len(Names)*Dim, row-major
	Metadata map[string]string
	// Normalized counts the rows (image and text counted separately) that
	// were not unit length in the file and were L2-normalised on load.
	Normalized int
}

// Len returns the number of rows.
func (f *Features) Len() int { return len(f.Names) }

// Index returns the row of every name.
func (f *Features) Index() map[string]int {
	m := make(map[string]int, len(f.Names))
	for i, n := range f.Names {
		m[n] = i
	}
	return m
}

// FeatureError reports a bad row of a feature file, naming the file, the
// meme and its row: `features.npy: meme "123.jpg" (row 5): image_embeds has
// NaN`.
type FeatureError struct {
	File string
	Meme string // "" when no meme is at fault
	Row  int    // 0-based; -1 when no row is at fault
	Err  error
}

// Error formats the error.
func (e *FeatureError) Error() string {
	switch {
	case e.Meme == "" && e.Row < 0:
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	case e.Row < 0:
		return fmt.Sprintf("%s: meme %q: %v", e.File, e.Meme, e.Err)
	}
	return fmt.Sprintf("%s: meme %q (row %d): %v", e.File, e.Meme, e.Row, e.Err)
}

// Unwrap returns the underlying error.
func (e *FeatureError) Unwrap() error { return e.Err }

// normTolerance is how far from 1 a row norm may be before it is
// renormalised.
const normTolerance = 1e-3

// ReadFeatures reads a feature file. path is either
//
//   - a .safetensors file with tensors image_embeds and text_embeds [N, D]
//     (F32, F16 or BF16) and the row names in the "names" metadata entry, or
//   - NumPy arrays: a directory holding image_embeds.npy, text_embeds.npy and
//     names.txt (one file name per line) or names.json (a JSON list); or a
//     prefix P naming P+"image_embeds.npy" etc.; or one of the .npy files
//     itself. Arrays are [N, D] float16/32/64 in C order, .npy version 1–3.
//
// Names must be unique; every value must be finite and no row may be zero.
// Rows that are not unit length are L2-normalised (counted in
// Features.Normalized).
func ReadFeatures(ctx context.Context, path string) (*Features, error) {
	if strings.HasSuffix(strings.ToLower(path), ".safetensors") {
		return readSafetensorsFeatures(ctx, path)
	}
	return readNPYFeatures(ctx, path)
}

func readSafetensorsFeatures(ctx context.Context, path string) (_ *Features, err error) {
	r, err := safetensors.Open(path)
	if err != nil {
		return nil, &FeatureError{File: path, Row: -1, Err: err}
	}
	defer func() { err = errors.Join(err, r.Close()) }()
	f := &Features{Metadata: r.Metadata}
	raw, ok := r.Metadata[MetaNames]
	if !ok {
		return nil, &FeatureError{File: path, Row: -1, Err: fmt.Errorf("metadata lacks %q (a JSON list of file names)", MetaNames)}
	}
	if err := json.Unmarshal([]byte(raw), &f.Names); err != nil {
		return nil, &FeatureError{File: path, Row: -1, Err: fmt.Errorf("metadata %q: want a JSON list of strings: %v", MetaNames, err)}
	}
	var shapes [2][]int
	for k, name := range []string{TensorImage, TensorText} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		v, shape, err := r.Float32(name)
		if err != nil {
			return nil, &FeatureError{File: path, Row: -1, Err: err}
		}
		shapes[k] = shape
		if k == 0 {
			f.Image = v
		} else {
			f.Text = v
		}
	}
	if err := f.check(ctx, path, path, shapes[0], shapes[1]); err != nil {
		return nil, err
	}
	return f, nil
}

// npyPaths resolves the image, text and names files of a NumPy feature set.
func npyPaths(path string) (image, text string, names []string) {
	prefix := path
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		prefix = path + string(filepath.Separator)
	} else {
		for _, base := range []string{TensorImage + ".npy", TensorText + ".npy"} {
			if strings.HasSuffix(path, base) {
				prefix = strings.TrimSuffix(path, base)
			}
		}
	}
	return prefix + TensorImage + ".npy", prefix + TensorText + ".npy",
		[]string{prefix + "names.txt", prefix + "names.json"}
}

func readNPYFeatures(ctx context.Context, path string) (*Features, error) {
	imgPath, txtPath, namePaths := npyPaths(path)
	f := &Features{Metadata: map[string]string{}}
	var namesFile string
	for _, p := range namePaths {
		if _, err := os.Stat(p); err == nil {
			namesFile = p
			break
		}
	}
	if namesFile == "" {
		return nil, &FeatureError{File: path, Row: -1, Err: fmt.Errorf("no names file: want %s or %s", namePaths[0], namePaths[1])}
	}
	names, err := readNames(namesFile)
	if err != nil {
		return nil, err
	}
	f.Names = names
	var shapes [2][]int
	for k, p := range []string{imgPath, txtPath} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		v, h, err := npy.ReadFile(p)
		if err != nil {
			return nil, &FeatureError{File: p, Row: -1, Err: err}
		}
		shapes[k] = h.Shape
		if k == 0 {
			f.Image = v
		} else {
			f.Text = v
		}
	}
	if err := f.check(ctx, imgPath, txtPath, shapes[0], shapes[1]); err != nil {
		return nil, err
	}
	return f, nil
}

// readNames reads names.txt (one name per line; blank trailing lines
// ignored) or names.json (a JSON list of strings).
func readNames(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read feature names: %w", err)
	}
	if strings.HasSuffix(path, ".json") {
		var names []string
		if err := json.Unmarshal(b, &names); err != nil {
			return nil, &FeatureError{File: path, Row: -1, Err: fmt.Errorf("want a JSON list of strings: %v", err)}
		}
		return names, nil
	}
	var names []string
	sc := bufio.NewScanner(strings.NewReader(strings.TrimPrefix(string(b), "\uFEFF")))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		names = append(names, strings.TrimRight(sc.Text(), "\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, &FeatureError{File: path, Row: -1, Err: err}
	}
	for len(names) > 0 && strings.TrimSpace(names[len(names)-1]) == "" {
		names = names[:len(names)-1]
	}
	return names, nil
}

// check validates shapes, names and values, and normalises rows.
func (f *Features) check(ctx context.Context, imgFile, txtFile string, imgShape, txtShape []int) error {
	n := len(f.Names)
	for _, c := range []struct {
		file, tensor string
		shape        []int
	}{{imgFile, TensorImage, imgShape}, {txtFile, TensorText, txtShape}} {
		if len(c.shape) != 2 {
			return &FeatureError{File: c.file, Row: -1, Err: fmt.Errorf("%s has shape %v, want [N, D]", c.tensor, c.shape)}
		}
		if c.shape[0] != n {
			return &FeatureError{File: c.file, Row: -1, Err: fmt.Errorf("%s has %d rows, but there are %d names", c.tensor, c.shape[0], n)}
		}
		if c.shape[1] <= 0 {
			return &FeatureError{File: c.file, Row: -1, Err: fmt.Errorf("%s has dimension %d", c.tensor, c.shape[1])}
		}
	}
	if imgShape[1] != txtShape[1] {
		return &FeatureError{File: txtFile, Row: -1, Err: fmt.Errorf("wrong dimension: %s is %d-d but %s is %d-d", TensorText, txtShape[1], TensorImage, imgShape[1])}
	}
	f.Dim = imgShape[1]
	if want, ok := f.Metadata[MetaDim]; ok && want != strconv.Itoa(f.Dim) {
		return &FeatureError{File: imgFile, Row: -1, Err: fmt.Errorf("wrong dimension: metadata says %s, tensors are %d-d", want, f.Dim)}
	}
	rows := make(map[string]int, n)
	for i, name := range f.Names {
		if name == "" || strings.TrimSpace(name) != name {
			return &FeatureError{File: imgFile, Meme: name, Row: i, Err: errors.New("empty name or name with surrounding spaces")}
		}
		if j, dup := rows[name]; dup {
			return &FeatureError{File: imgFile, Meme: name, Row: i, Err: fmt.Errorf("duplicate name (also row %d)", j)}
		}
		rows[name] = i
	}
	for _, c := range []struct {
		file, tensor string
		v            []float32
	}{{imgFile, TensorImage, f.Image}, {txtFile, TensorText, f.Text}} {
		for i := range n {
			if i%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			row := c.v[i*f.Dim : (i+1)*f.Dim]
			var ss float64
			for _, x := range row {
				switch {
				case math.IsNaN(float64(x)):
					return &FeatureError{File: c.file, Meme: f.Names[i], Row: i, Err: fmt.Errorf("%s has NaN", c.tensor)}
				case math.IsInf(float64(x), 0):
					return &FeatureError{File: c.file, Meme: f.Names[i], Row: i, Err: fmt.Errorf("%s has Inf", c.tensor)}
				}
				ss += float64(x) * float64(x)
			}
			norm := math.Sqrt(ss)
			if norm == 0 {
				return &FeatureError{File: c.file, Meme: f.Names[i], Row: i, Err: fmt.Errorf("%s is all zeros", c.tensor)}
			}
			if math.Abs(norm-1) > normTolerance {
				inv := float32(1 / norm)
				for d := range row {
					row[d] *= inv
				}
				f.Normalized++
			}
		}
	}
	return nil
}

// WriteFeatures writes f as a safetensors feature file at path (atomically):
// F32 tensors image_embeds and text_embeds [N, D] and metadata holding
// f.Metadata plus names (JSON list), dim and count.
func WriteFeatures(ctx context.Context, path string, f *Features) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n := len(f.Names)
	if f.Dim <= 0 || len(f.Image) != n*f.Dim || len(f.Text) != n*f.Dim {
		return fmt.Errorf("write features %s: %d names × %d dims do not match %d image and %d text values", path, n, f.Dim, len(f.Image), len(f.Text))
	}
	names, err := json.Marshal(f.Names)
	if err != nil {
		return fmt.Errorf("write features %s: %w", path, err)
	}
	meta := map[string]string{}
	for k, v := range f.Metadata {
		meta[k] = v
	}
	meta[MetaNames] = string(names)
	meta[MetaDim] = strconv.Itoa(f.Dim)
	meta[MetaCount] = strconv.Itoa(n)
	tensors := []safetensors.Tensor{
		safetensors.NewF32(TensorImage, []int{n, f.Dim}, f.Image),
		safetensors.NewF32(TensorText, []int{n, f.Dim}, f.Text),
	}
	if err := safetensors.WriteFile(path, tensors, meta); err != nil {
		return fmt.Errorf("write features: %w", err)
	}
	return nil
}
