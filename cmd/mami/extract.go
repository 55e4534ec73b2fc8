package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mami-lab/mami/data"
	"github.com/mami-lab/mami/data/clip"
)

func init() { register(newExtractCmd) }

func newExtractCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "extract --data MAMI_DIR --model CLIP_DIR --out FEATURES",
		Short: "Compute the CLIP image and text features of MAMI's memes once, for training",
		Long: `Embeds every meme of MAMI_DIR (training.csv, and Test.csv when present; images next to the CSV
files or in training/, test/ or images/ below them) with the Hugging Face CLIPModel checkpoint in
CLIP_DIR (config.json, model.safetensors, preprocessor_config.json, vocab.json + merges.txt) and
writes L2-normalised image and text features to FEATURES (safetensors), the file data.features
points mami train at.

It uses all cores, in batches, and is resumable: finished batches are kept in FEATURES.work/, so
an extraction that is killed continues where it stopped when the same command runs again. An
unreadable image stops it with the image's name, unless --skip-bad, which leaves such memes out
and lists them at the end.`,
		Args: cobra.NoArgs,
		RunE: runExtract,
	}
	cmd.Flags().String("data", "", "MAMI folder with training.csv (and Test.csv) (required)")
	cmd.Flags().String("model", "", "CLIPModel directory (required)")
	cmd.Flags().String("tokenizer", "", "tokenizer if not in the model directory: vocab.json+merges.txt directory or bpe_simple_vocab_16e6.txt.gz")
	cmd.Flags().String("out", "", "output feature file, .safetensors (required)")
	cmd.Flags().Bool("skip-bad", false, "leave out memes whose image cannot be read (they are listed) instead of failing")
	cmd.Flags().Int("batch", 16, "memes per forward pass")
	for _, f := range []string{"data", "model", "out"} {
		cmd.MarkFlagRequired(f)
	}
	return cmd
}

func runExtract(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	dir, _ := cmd.Flags().GetString("data")
	modelDir, _ := cmd.Flags().GetString("model")
	tokPath, _ := cmd.Flags().GetString("tokenizer")
	out, _ := cmd.Flags().GetString("out")
	skipBad, _ := cmd.Flags().GetBool("skip-bad")
	batch, _ := cmd.Flags().GetInt("batch")
	if batch <= 0 {
		return fmt.Errorf("--batch %d: must be positive", batch)
	}
	items, err := clip.MAMIItems(ctx, dir)
	if err != nil {
		return err
	}
	b, err := clip.LoadBundle(modelDir, tokPath)
	if err != nil {
		return err
	}
	stderr := cmd.ErrOrStderr()
	work := out + ".work"
	pr := newExtractProgress(stderr)
	res, err := clip.Extract(ctx, items, clip.ExtractOptions{
		Model: b.Model, Tokenizer: b.Tokenizer, Preprocessor: b.Preprocessor,
		WorkDir: work, Fingerprint: b.Fingerprint, Batch: batch, SkipBad: skipBad,
		Progress: pr.update,
	})
	pr.finish()
	if err != nil {
		return err
	}
	if len(res.Names) == 0 {
		return fmt.Errorf("extract: no meme could be embedded (%d skipped)", len(res.Skipped))
	}
	feats := res.DataFeatures("clip " + filepath.Base(filepath.Clean(modelDir)) + " " + b.Fingerprint)
	if err := data.WriteFeatures(ctx, out, feats); err != nil {
		return err
	}
	if err := clip.RemoveWorkDir(work); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %d memes (dim %d) to %s\n", len(res.Names), res.Dim, out)
	if len(res.Skipped) > 0 {
		fmt.Fprintf(stderr, "skipped %d memes whose image could not be read:\n", len(res.Skipped))
		for _, s := range res.Skipped {
			fmt.Fprintf(stderr, "  %s: %v\n", s.Name, s.Err)
		}
	}
	return nil
}

// extractProgress draws memes/s and ETA on stderr: redrawn in place on a
// terminal, a line every 10 s otherwise.
type extractProgress struct {
	w        io.Writer
	tty      bool
	last     time.Time
	drawn    bool
	lastLine string
}

func newExtractProgress(w io.Writer) *extractProgress {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &extractProgress{w: w, tty: tty}
}

func (p *extractProgress) update(s clip.Progress) {
	eta := "?"
	if s.ETA > 0 || s.Done == s.Total {
		eta = s.ETA.Round(time.Second).String()
	}
	line := fmt.Sprintf("extract %d/%d memes (%d resumed)  %.1f memes/s  ETA %s", s.Done, s.Total, s.Resumed, s.Rate, eta)
	now := time.Now()
	final := s.Done == s.Total
	switch {
	case p.tty && (now.Sub(p.last) >= 200*time.Millisecond || final):
		fmt.Fprintf(p.w, "\r%s   ", line)
		p.drawn = true
	case !p.tty && (now.Sub(p.last) >= 10*time.Second || final) && line != p.lastLine:
		fmt.Fprintln(p.w, line)
		p.lastLine = line
	default:
		return
	}
	p.last = now
}

func (p *extractProgress) finish() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}
