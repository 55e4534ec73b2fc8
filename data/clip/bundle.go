package clip

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Bundle is everything needed to embed memes with one checkpoint.
type Bundle struct {
	Model        *Model
	Tokenizer    *Tokenizer
	Preprocessor *Preprocessor
	// Fingerprint identifies the checkpoint (hash of its configs and the
	// weight file's size) for resumable extraction.
	Fingerprint string
}

// LoadBundle loads a Hugging Face CLIPModel directory: config.json,
// model.safetensors, preprocessor_config.json (optional: without it the
// reference preprocessing at the model's image size is used) and the
// tokenizer from tokenizerPath (a file or directory, see [LoadTokenizer]; ""
// means the model directory).
func LoadBundle(dir, tokenizerPath string) (*Bundle, error) {
	m, err := Load(dir)
	if err != nil {
		return nil, err
	}
	if tokenizerPath == "" {
		tokenizerPath = dir
	}
	tok, err := LoadTokenizer(tokenizerPath)
	if err != nil {
		return nil, err
	}
	var pre *Preprocessor
	ppath := filepath.Join(dir, "preprocessor_config.json")
	if _, err := os.Stat(ppath); errors.Is(err, os.ErrNotExist) {
		p := DefaultPreprocessor
		p.ShortestEdge, p.CropWidth, p.CropHeight = m.cfg.Vision.ImageSize, m.cfg.Vision.ImageSize, m.cfg.Vision.ImageSize
		pre = &p
	} else if pre, err = ReadPreprocessor(ppath); err != nil {
		return nil, err
	}
	if pre.CropWidth != m.cfg.Vision.ImageSize || pre.CropHeight != m.cfg.Vision.ImageSize {
		return nil, fmt.Errorf("load clip %s: crop %dx%d does not match the model's image_size %d", dir, pre.CropWidth, pre.CropHeight, m.cfg.Vision.ImageSize)
	}
	h := sha256.New()
	for _, name := range []string{"config.json", "preprocessor_config.json"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			h.Write(b)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "model.safetensors")); err == nil {
		fmt.Fprintf(h, "model.safetensors:%d", st.Size())
	}
	return &Bundle{Model: m, Tokenizer: tok, Preprocessor: pre, Fingerprint: hex.EncodeToString(h.Sum(nil))[:16]}, nil
}
