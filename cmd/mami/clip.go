package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/mami-lab/mami/data/clip"
)

func init() { register(newClipCmd) }

func newClipCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "clip",
		Short: "Debugging tools for the Go CLIP implementation (tokenizer, embeddings)",
	}
	cmd.AddCommand(newClipTokenizeCmd(), newClipEmbedCmd())
	return cmd
}

func newClipTokenizeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokenize --tokenizer PATH",
		Short: "Tokenize JSON strings from stdin (one per line) into JSON id arrays (one per line)",
		Long: `Reads one JSON string per line on stdin and prints, for each, one JSON array of CLIP token ids
on stdout: start and end tokens included, no padding, no truncation. PATH is a directory with
vocab.json + merges.txt (Hugging Face layout) or CLIP's bpe_simple_vocab_16e6.txt.gz.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, _ := cmd.Flags().GetString("tokenizer")
			tok, err := clip.LoadTokenizer(path)
			if err != nil {
				return err
			}
			return tokenizeLines(tok, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	cmd.Flags().String("tokenizer", "", "vocab.json+merges.txt directory or bpe_simple_vocab_16e6.txt.gz (required)")
	cmd.MarkFlagRequired("tokenizer")
	return cmd
}

func tokenizeLines(tok *clip.Tokenizer, in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<16), 16<<20)
	w := bufio.NewWriter(out)
	line := 0
	for sc.Scan() {
		line++
		var text string
		if err := json.Unmarshal(sc.Bytes(), &text); err != nil {
			return fmt.Errorf("stdin line %d: want a JSON string: %w", line, err)
		}
		js, err := json.Marshal(tok.Tokenize(text))
		if err != nil {
			return err
		}
		w.Write(js)
		w.WriteByte('\n')
		if err := w.Flush(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("stdin line %d: %w", line+1, err)
	}
	return nil
}

type embedText struct {
	Text             string    `json:"text"`
	InputIDs         []int     `json:"input_ids"`
	Embeds           []float32 `json:"embeds"`
	EmbedsNormalized []float32 `json:"embeds_normalized"`
}

type embedImage struct {
	Path             string    `json:"path"`
	Embeds           []float32 `json:"embeds"`
	EmbedsNormalized []float32 `json:"embeds_normalized"`
}

type embedOutput struct {
	Texts  []embedText  `json:"texts"`
	Images []embedImage `json:"images"`
}

func newClipEmbedCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "embed --model DIR [--text T]... [--image FILE]...",
		Short: "Print CLIP embeddings of texts and image files as JSON",
		Long: `Loads a Hugging Face CLIPModel directory (config.json, model.safetensors, preprocessor_config.json,
vocab.json + merges.txt) and prints {"texts": [{"text", "input_ids", "embeds", "embeds_normalized"}],
"images": [{"path", "embeds", "embeds_normalized"}]}: embeds are the projected features before L2
normalisation; input_ids are the 77 ids the text tower reads (zero-padded, truncated like CLIP).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, _ := cmd.Flags().GetString("model")
			tokPath, _ := cmd.Flags().GetString("tokenizer")
			texts, _ := cmd.Flags().GetStringArray("text")
			images, _ := cmd.Flags().GetStringArray("image")
			b, err := clip.LoadBundle(dir, tokPath)
			if err != nil {
				return err
			}
			out, err := embed(b, texts, images)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			return enc.Encode(out)
		},
	}
	cmd.Flags().String("model", "", "CLIPModel directory (required)")
	cmd.Flags().String("tokenizer", "", "tokenizer path if not in the model directory (vocab.json+merges.txt directory or .txt.gz)")
	cmd.Flags().StringArray("text", nil, "a text to embed (repeatable)")
	cmd.Flags().StringArray("image", nil, "an image file to embed (repeatable)")
	cmd.MarkFlagRequired("model")
	return cmd
}

func embed(b *clip.Bundle, texts, images []string) (*embedOutput, error) {
	out := &embedOutput{Texts: []embedText{}, Images: []embedImage{}}
	if len(texts) > 0 {
		ids := make([][]int, len(texts))
		ctxLen := b.Model.Config().Text.MaxPositionEmbeddings
		for i, t := range texts {
			ids[i] = b.Tokenizer.TokenizeContext(t, ctxLen)
		}
		emb, err := b.Model.EncodeText(ids)
		if err != nil {
			return nil, err
		}
		for i, t := range texts {
			out.Texts = append(out.Texts, embedText{Text: t, InputIDs: ids[i], Embeds: emb[i], EmbedsNormalized: clip.Normalize(emb[i])})
		}
	}
	if len(images) > 0 {
		px := make([][]float32, len(images))
		for i, path := range images {
			var err error
			if px[i], err = b.Preprocessor.PixelsFromFile(path); err != nil {
				return nil, err
			}
		}
		emb, err := b.Model.EncodeImages(px)
		if err != nil {
			return nil, err
		}
		for i, path := range images {
			out.Images = append(out.Images, embedImage{Path: path, Embeds: emb[i], EmbedsNormalized: clip.Normalize(emb[i])})
		}
	}
	return out, nil
}
