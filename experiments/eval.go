package experiments

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mami-lab/mami/data"
	"github.com/mami-lab/mami/internal/atomicfile"
	"github.com/mami-lab/mami/models"
)

// Evaluate scores net on a labelled set (every meme labelled 0 or 1): loss,
// accuracy, macro-F1, AUROC and the confusion matrix. It is what `mami
// eval` prints.
func Evaluate(net *models.Net, set *data.Set) (Metrics, error) {
	if set.Len() == 0 {
		return Metrics{}, errors.New("evaluate: empty set")
	}
	labels := set.Labels()
	for i, y := range labels {
		if y != 0 && y != 1 {
			return Metrics{}, fmt.Errorf("evaluate: meme %q has label %d, want 0 or 1", set.Memes[i].FileName, y)
		}
	}
	prob, loss, err := predict(net, set, floatLabels(labels))
	if err != nil {
		return Metrics{}, err
	}
	return Score(labels, prob, loss), nil
}

// Prediction is one meme's predicted probability and label.
type Prediction struct {
	FileName string
	Prob     float32 // P(misogynous)
	Label    int     // 1 when Prob > Threshold
}

// Predict runs net over set, labelled or not, for `mami predict`, labelling
// at Threshold.
func Predict(net *models.Net, set *data.Set) ([]Prediction, error) {
	return PredictAt(net, set, Threshold)
}

// PredictAt is Predict with the label rule P(misogynous) > threshold.
func PredictAt(net *models.Net, set *data.Set, threshold float64) ([]Prediction, error) {
	if set.Len() == 0 {
		return nil, errors.New("predict: empty set")
	}
	// Unlabelled memes (-1) need a placeholder label for the graph's loss,
	// which is not used.
	prob, _, err := predict(net, set, make([]float32, set.Len()))
	if err != nil {
		return nil, err
	}
	out := make([]Prediction, len(prob))
	for i, p := range prob {
		out[i] = Prediction{FileName: set.Memes[i].FileName, Prob: p}
		if float64(p) > threshold {
			out[i].Label = 1
		}
	}
	return out, nil
}

func predict(net *models.Net, set *data.Set, labels []float32) ([]float32, float64, error) {
	if spec := net.Spec(); set.Dim != spec.ImageDim || set.Dim != spec.TextDim {
		return nil, 0, fmt.Errorf("predict: set has embedding size %d, model wants %d (image) and %d (text)", set.Dim, spec.ImageDim, spec.TextDim)
	}
	b := models.Batch{N: set.Len(), Image: set.Image, Text: set.Text, Labels: labels}
	prob, loss, err := net.Predict(b)
	if err != nil {
		return nil, 0, fmt.Errorf("predict: %w", err)
	}
	return prob, loss, nil
}

// WriteAnswer writes predictions in the MAMI submission format of Sub-task
// A (answer.txt): one line per meme, file_name<TAB>label, no header.
func WriteAnswer(w io.Writer, preds []Prediction) error {
	bw := bufio.NewWriter(w)
	for _, p := range preds {
		if strings.ContainsAny(p.FileName, "\t\n\r") {
			return fmt.Errorf("write answer: file name %q contains a tab or newline", p.FileName)
		}
		fmt.Fprintf(bw, "%s\t%d\n", p.FileName, p.Label)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write answer: %w", err)
	}
	return nil
}

// WriteAnswers predicts set with net, labelling P(misogynous) > threshold
// as 1, and writes the answers (see WriteAnswer).
func WriteAnswers(w io.Writer, net *models.Net, set *data.Set, threshold float64) error {
	preds, err := PredictAt(net, set, threshold)
	if err != nil {
		return err
	}
	return WriteAnswer(w, preds)
}

// WriteAnswerFile writes predictions to path (see WriteAnswer) through a
// temporary file and a rename.
func WriteAnswerFile(ctx context.Context, path string, preds []Prediction) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	var werr error
	err = atomicfile.Write(path, false, func(w io.Writer) error {
		werr = WriteAnswer(w, preds)
		return werr
	})
	if werr != nil {
		return fmt.Errorf("%s: %w", path, werr)
	}
	if err != nil {
		return fmt.Errorf("write answer %s: %w", path, err)
	}
	return nil
}
