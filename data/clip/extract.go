package clip

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"
)

// Item is one meme to embed: its name (the key in the feature file), its
// transcription and its image file.
type Item struct {
	Name, Text, ImagePath string
}

// BadItem is an item whose image could not be read.
type BadItem struct {
	Item
	Err error
}

// Progress is a snapshot of an extraction's progress.
type Progress struct {
	Done, Total int           // items finished (including ones resumed from the work dir) and all items
	Resumed     int           // items found already done in the work dir
	Rate        float64       // items per second in this session
	ETA         time.Duration // estimated time left (0 when unknown)
}

// ExtractOptions configures [Extract].
type ExtractOptions struct {
	Model        *Model
	Tokenizer    *Tokenizer
	Preprocessor *Preprocessor
	// WorkDir holds the resumable partial results (created if missing).
	WorkDir string
	// Fingerprint identifies the model; a work dir started with another
	// fingerprint is refused rather than mixed.
	Fingerprint string
	// Batch is the number of memes per forward pass (default 16).
	Batch int
	// SkipBad lists unreadable images in the result instead of failing.
	SkipBad bool
	// Progress, if set, is called after every batch.
	Progress func(Progress)
}

// Features are L2-normalised embeddings aligned with Names (rows of Dim).
type Features struct {
	Dim         int
	Names       []string
	Image, Text []float32
}

// ExtractResult is what [Extract] computed.
type ExtractResult struct {
	Features
	Skipped []BadItem // items left out because their image was unreadable (SkipBad)
}

const (
	partFile     = "features.part"
	manifestFile = "extract.json"
)

type manifest struct {
	Version     int    `json:"version"`
	Fingerprint string `json:"fingerprint"`
	Dim         int    `json:"dim"`
}

// Extract embeds the image and text of every item (names must be unique)
// with all cores, in batches. Finished batches are appended to
// WorkDir/features.part (fsync'd, checksummed records), so an extraction that
// is killed or cancelled continues where it stopped when run again with the
// same WorkDir. An unreadable image fails the extraction with its path
// unless SkipBad is set.
func Extract(ctx context.Context, items []Item, opts ExtractOptions) (*ExtractResult, error) {
	if opts.Model == nil || opts.Tokenizer == nil || opts.Preprocessor == nil {
		return nil, errors.New("extract: model, tokenizer and preprocessor are required")
	}
	if opts.Batch <= 0 {
		opts.Batch = 16
	}
	seen := make(map[string]bool, len(items))
	for i, it := range items {
		if seen[it.Name] {
			return nil, fmt.Errorf("extract: item %d: duplicate name %q", i, it.Name)
		}
		seen[it.Name] = true
	}
	dim := opts.Model.cfg.ProjectionDim
	if err := os.MkdirAll(opts.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	if err := checkManifest(opts.WorkDir, manifest{Version: 1, Fingerprint: opts.Fingerprint, Dim: dim}); err != nil {
		return nil, err
	}
	done, f, err := openPart(filepath.Join(opts.WorkDir, partFile), dim)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	var todo []Item
	for _, it := range items {
		if _, ok := done[it.Name]; !ok {
			todo = append(todo, it)
		}
	}
	resumed := len(items) - len(todo)
	var skipped []BadItem
	start := time.Now()
	report := func(n int) {
		if opts.Progress == nil {
			return
		}
		p := Progress{Done: resumed + n, Total: len(items), Resumed: resumed}
		if el := time.Since(start).Seconds(); n > 0 && el > 0 {
			p.Rate = float64(n) / el
			p.ETA = time.Duration(float64(len(todo)-n) / p.Rate * float64(time.Second))
		}
		opts.Progress(p)
	}
	report(0)

	batches := make(chan *prepared, 1)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(batches)
		for lo := 0; lo < len(todo); lo += opts.Batch {
			b := prepare(todo[lo:min(len(todo), lo+opts.Batch)], opts)
			select {
			case batches <- b:
			case <-pctx.Done():
				return
			}
		}
	}()
	processed := 0
	w := bufio.NewWriter(f)
	for b := range batches {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("extract: %w (finished batches are kept in %s)", err, opts.WorkDir)
		}
		var good []int
		for i, it := range b.items {
			if b.errs[i] == nil {
				good = append(good, i)
				continue
			}
			if !opts.SkipBad {
				return nil, fmt.Errorf("extract: meme %s: %w (use --skip-bad to leave it out)", it.Name, b.errs[i])
			}
			skipped = append(skipped, BadItem{Item: it, Err: b.errs[i]})
		}
		if len(good) > 0 {
			px := make([][]float32, len(good))
			ids := make([][]int, len(good))
			for k, i := range good {
				px[k], ids[k] = b.pixels[i], b.ids[i]
			}
			img, err := opts.Model.EncodeImages(px)
			if err != nil {
				return nil, fmt.Errorf("extract: %w", err)
			}
			txt, err := opts.Model.EncodeText(ids)
			if err != nil {
				return nil, fmt.Errorf("extract: %w", err)
			}
			for k, i := range good {
				rec := record{name: b.items[i].Name, image: Normalize(img[k]), text: Normalize(txt[k])}
				if err := rec.write(w); err != nil {
					return nil, fmt.Errorf("extract: write %s: %w", f.Name(), err)
				}
				done[rec.name] = rec
			}
			if err := w.Flush(); err != nil {
				return nil, fmt.Errorf("extract: write %s: %w", f.Name(), err)
			}
			if err := f.Sync(); err != nil {
				return nil, fmt.Errorf("extract: sync %s: %w", f.Name(), err)
			}
		}
		processed += len(b.items)
		report(processed)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("extract: %w (finished batches are kept in %s)", err, opts.WorkDir)
	}
	res := &ExtractResult{Features: Features{Dim: dim}, Skipped: skipped}
	for _, it := range items {
		rec, ok := done[it.Name]
		if !ok {
			continue
		}
		res.Names = append(res.Names, it.Name)
		res.Image = append(res.Image, rec.image...)
		res.Text = append(res.Text, rec.text...)
	}
	return res, nil
}

// prepared is a batch with its decoded inputs.
type prepared struct {
	items  []Item
	pixels [][]float32
	ids    [][]int
	errs   []error
}

func prepare(items []Item, opts ExtractOptions) *prepared {
	b := &prepared{items: items, pixels: make([][]float32, len(items)), ids: make([][]int, len(items)), errs: make([]error, len(items))}
	parallelFor(len(items), opts.Model.workers(), 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			b.ids[i] = opts.Tokenizer.TokenizeContext(items[i].Text, opts.Model.cfg.Text.MaxPositionEmbeddings)
			b.pixels[i], b.errs[i] = opts.Preprocessor.PixelsFromFile(items[i].ImagePath)
		}
	})
	return b
}

// RemoveWorkDir deletes an extraction's work directory once its result has
// been written.
func RemoveWorkDir(dir string) error {
	for _, name := range []string{partFile, manifestFile} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove work dir: %w", err)
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove work dir: %w", err)
	}
	return nil
}

func checkManifest(dir string, want manifest) error {
	path := filepath.Join(dir, manifestFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		js, _ := json.MarshalIndent(want, "", "  ")
		if err := os.WriteFile(path, append(js, '\n'), 0o644); err != nil {
			return fmt.Errorf("extract: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	var got manifest
	if err := json.Unmarshal(raw, &got); err != nil {
		return fmt.Errorf("extract: %s: %w", path, err)
	}
	if got != want {
		return fmt.Errorf("extract: work dir %s belongs to another extraction (model %q dim %d, now %q dim %d); remove it to start over",
			dir, got.Fingerprint, got.Dim, want.Fingerprint, want.Dim)
	}
	return nil
}

// record is one finished meme in features.part: u32 name length, name, dim
// float32 image values, dim float32 text values, u32 CRC-32 (IEEE) of all
// the preceding bytes of the record; little-endian.
type record struct {
	name        string
	image, text []float32
}

func (r record) write(w io.Writer) error {
	buf := make([]byte, 0, 8+len(r.name)+8*len(r.image))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(r.name)))
	buf = append(buf, r.name...)
	for _, v := range r.image {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
	}
	for _, v := range r.text {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
	}
	buf = binary.LittleEndian.AppendUint32(buf, crc32.ChecksumIEEE(buf))
	_, err := w.Write(buf)
	return err
}

// openPart reads the valid records of a partial file, truncates a torn or
// corrupt tail (a write cut short by a kill), and returns the file open for
// appending.
func openPart(path string, dim int) (map[string]record, *os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("extract: %w", err)
	}
	done := map[string]record{}
	r := bufio.NewReader(f)
	var good int64
	for {
		rec, n, err := readRecord(r, dim)
		if err != nil {
			break // io.EOF, or a torn/corrupt tail that is dropped below
		}
		done[rec.name] = rec
		good += n
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("extract: truncate %s: %w", path, err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("extract: %w", err)
	}
	return done, f, nil
}

var errBadRecord = errors.New("bad record")

func readRecord(r io.Reader, dim int) (record, int64, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return record{}, 0, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n > 1<<16 {
		return record{}, 0, errBadRecord
	}
	body := make([]byte, int(n)+8*dim+4)
	if _, err := io.ReadFull(r, body); err != nil {
		return record{}, 0, err
	}
	all := append(hdr[:], body[:len(body)-4]...)
	if crc32.ChecksumIEEE(all) != binary.LittleEndian.Uint32(body[len(body)-4:]) {
		return record{}, 0, errBadRecord
	}
	rec := record{name: string(body[:n]), image: make([]float32, dim), text: make([]float32, dim)}
	vals := body[n:]
	for i := 0; i < dim; i++ {
		rec.image[i] = math.Float32frombits(binary.LittleEndian.Uint32(vals[4*i:]))
		rec.text[i] = math.Float32frombits(binary.LittleEndian.Uint32(vals[4*(dim+i):]))
	}
	return rec, int64(4 + len(body)), nil
}
