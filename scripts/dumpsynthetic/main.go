// Command dumpsynthetic writes the synthetic-mami dataset to a folder in the
// NumPy feature layout, so that scripts/calibrate_synthetic.py (or any other
// tool) can train on exactly what the Go workbench generates:
//
//	go run ./scripts/dumpsynthetic -out DIR [-params '{"label_noise":0.1}'] [-mami]
//
// DIR receives image_embeds.npy and text_embeds.npy ([11000, 512] float32,
// training memes first, then the official test memes), names.txt (one
// file_name per row) and labels.tsv (file_name, split, misogynous, shaming,
// stereotype, objectification, violence). With -mami it also writes the
// memes in the MAMI release layout (training.csv, Test.csv,
// test_labels.txt). -params overrides fields of data.DefaultSynthetic by
// their JSON names.
package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/mami-lab/mami/data"
	"github.com/mami-lab/mami/data/npy"
)

func main() {
	out := flag.String("out", "", "output folder (required)")
	params := flag.String("params", "", "JSON object overriding fields of data.DefaultSynthetic")
	mami := flag.Bool("mami", false, "also write training.csv, Test.csv and test_labels.txt")
	flag.Parse()
	if err := run(*out, *params, *mami); err != nil {
		fmt.Fprintln(os.Stderr, "dumpsynthetic:", err)
		os.Exit(1)
	}
}

func run(out, params string, mami bool) error {
	if out == "" {
		return errors.New("-out is required")
	}
	p := data.DefaultSynthetic
	if params != "" {
		if err := json.Unmarshal([]byte(params), &p); err != nil {
			return fmt.Errorf("-params: %w", err)
		}
	}
	train, official, err := data.GenerateSynthetic(p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	n, dim := train.Len()+official.Len(), train.Dim
	img := append(append([]float32(nil), train.Image...), official.Image...)
	txt := append(append([]float32(nil), train.Text...), official.Text...)
	for name, v := range map[string][]float32{"image_embeds.npy": img, "text_embeds.npy": txt} {
		if err := writeFile(filepath.Join(out, name), func(w *bufio.Writer) error {
			return npy.Write(w, []int{n, dim}, v)
		}); err != nil {
			return err
		}
	}
	err = writeFile(filepath.Join(out, "names.txt"), func(w *bufio.Writer) error {
		for _, s := range []*data.Set{train, official} {
			for _, m := range s.Memes {
				fmt.Fprintln(w, m.FileName)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = writeFile(filepath.Join(out, "labels.tsv"), func(w *bufio.Writer) error {
		fmt.Fprintln(w, "file_name\tsplit\tmisogynous\tshaming\tstereotype\tobjectification\tviolence")
		for _, part := range []struct {
			name string
			set  *data.Set
		}{{"train", train}, {"test", official}} {
			for _, m := range part.set.Memes {
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%d\n", m.FileName, part.name,
					m.Misogynous, m.Shaming, m.Stereotype, m.Objectification, m.Violence)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if mami {
		if err := writeMAMI(out, train, official); err != nil {
			return err
		}
	}
	fmt.Printf("wrote %d memes (%d train, %d test) × %d dims to %s\n", n, train.Len(), official.Len(), dim, out)
	return nil
}

// writeMAMI writes the memes in the layout of the MAMI release.
func writeMAMI(dir string, train, official *data.Set) error {
	labels := func(m data.Meme) []string {
		return []string{strconv.Itoa(m.Misogynous), strconv.Itoa(m.Shaming), strconv.Itoa(m.Stereotype),
			strconv.Itoa(m.Objectification), strconv.Itoa(m.Violence)}
	}
	err := writeFile(filepath.Join(dir, "training.csv"), func(w *bufio.Writer) error {
		cw := csv.NewWriter(w)
		cw.Comma = '\t'
		cw.Write([]string{"file_name", "misogynous", "shaming", "stereotype", "objectification", "violence", "Text Transcription"})
		for _, m := range train.Memes {
			cw.Write(append(append([]string{m.FileName}, labels(m)...), m.Text))
		}
		cw.Flush()
		return cw.Error()
	})
	if err != nil {
		return err
	}
	err = writeFile(filepath.Join(dir, "Test.csv"), func(w *bufio.Writer) error {
		cw := csv.NewWriter(w)
		cw.Comma = '\t'
		cw.Write([]string{"file_name", "Text Transcription"})
		for _, m := range official.Memes {
			cw.Write([]string{m.FileName, m.Text})
		}
		cw.Flush()
		return cw.Error()
	})
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "test_labels.txt"), func(w *bufio.Writer) error {
		for _, m := range official.Memes {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", append([]any{m.FileName}, anySlice(labels(m))...)...)
		}
		return nil
	})
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func writeFile(path string, fill func(*bufio.Writer) error) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	w := bufio.NewWriterSize(f, 1<<20)
	if err := fill(w); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
