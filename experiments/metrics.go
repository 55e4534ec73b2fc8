package experiments

import (
	"encoding/json"
	"math"
	"slices"
)

// Threshold is the decision rule for a predicted label: a meme is predicted
// misogynous when P(misogynous) > Threshold. With two-logit heads this is
// the argmax of the logits, ties going to class 0 as torch.argmax does.
const Threshold = 0.5

// Confusion is the binary confusion matrix, class 1 (misogynous) positive.
type Confusion struct {
	TP, FP, TN, FN int
}

// NewConfusion counts labels against predicted labels (both 0/1).
func NewConfusion(labels, pred []int) Confusion {
	var c Confusion
	for i, y := range labels {
		switch {
		case y == 1 && pred[i] == 1:
			c.TP++
		case y == 1:
			c.FN++
		case pred[i] == 1:
			c.FP++
		default:
			c.TN++
		}
	}
	return c
}

// N is the number of samples counted.
func (c Confusion) N() int { return c.TP + c.FP + c.TN + c.FN }

// Accuracy is (TP+TN)/N, NaN when N is 0.
func (c Confusion) Accuracy() float64 {
	if c.N() == 0 {
		return math.NaN()
	}
	return float64(c.TP+c.TN) / float64(c.N())
}

// MacroF1 is the unweighted mean of the F1 of class 1 and of class 0, as
// sklearn's f1_score(average='macro') computes it (the official MAMI
// Sub-task A metric): the mean runs over the classes present in the labels
// or the predictions, so a sample where both are all one class scores that
// class's F1 alone. NaN when N is 0.
func (c Confusion) MacroF1() float64 {
	if c.N() == 0 {
		return math.NaN()
	}
	var sum float64
	var classes int
	// Class 1: TP, FP, FN as counted. Class 0: its TP is TN, its FP is FN,
	// its FN is FP.
	for _, k := range [][3]int{{c.TP, c.FP, c.FN}, {c.TN, c.FN, c.FP}} {
		tp, fp, fn := k[0], k[1], k[2]
		if tp+fp+fn == 0 { // class in neither labels nor predictions
			continue
		}
		classes++
		sum += 2 * float64(tp) / float64(2*tp+fp+fn)
	}
	return sum / float64(classes)
}

// Accuracy is the share of pred equal to labels; NaN for no samples.
func Accuracy(labels, pred []int) float64 { return NewConfusion(labels, pred).Accuracy() }

// MacroF1 is Confusion.MacroF1 of labels against pred.
func MacroF1(labels, pred []int) float64 { return NewConfusion(labels, pred).MacroF1() }

// PredictLabels applies Threshold to probabilities.
func PredictLabels(prob []float32) []int {
	out := make([]int, len(prob))
	for i, p := range prob {
		if p > Threshold {
			out[i] = 1
		}
	}
	return out
}

// AUROC is the area under the ROC curve of score against labels (1
// positive), like sklearn's roc_auc_score: tied scores count one half, which
// equals the trapezoid over the ROC curve. NaN when either class is absent
// or a score is NaN.
func AUROC(labels []int, score []float32) float64 {
	order := rankOrder(score)
	if order == nil {
		return math.NaN()
	}
	// Sum the (average) ranks of the positives, walking tie groups.
	var pos, neg int
	var rankSum float64
	for lo := 0; lo < len(order); {
		hi := lo + 1
		for hi < len(order) && score[order[hi]] == score[order[lo]] {
			hi++
		}
		avg := float64(lo+hi+1) / 2 // ranks lo+1..hi, 1-based
		for _, i := range order[lo:hi] {
			if labels[i] == 1 {
				pos++
				rankSum += avg
			} else {
				neg++
			}
		}
		lo = hi
	}
	if pos == 0 || neg == 0 {
		return math.NaN()
	}
	p, n := float64(pos), float64(neg)
	return (rankSum - p*(p+1)/2) / (p * n)
}

// rankOrder returns indexes of score in ascending order, nil when a score is
// NaN or there are none.
func rankOrder(score []float32) []int {
	if len(score) == 0 {
		return nil
	}
	order := make([]int, len(score))
	for i, s := range score {
		if s != s {
			return nil
		}
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case score[a] < score[b]:
			return -1
		case score[a] > score[b]:
			return 1
		}
		return 0
	})
	return order
}

// Curve is a list of points of a ROC or precision-recall curve with the
// score threshold of each (a sample is positive when score >= threshold).
type Curve struct {
	X, Y       []float64
	Thresholds []float64
}

// ROC returns the ROC curve like sklearn's roc_curve with
// drop_intermediate=False: X is the false positive rate and Y the true
// positive rate at each distinct score, from the highest threshold down;
// the first point is (0, 0) with threshold +Inf. Empty when either class is
// absent or a score is NaN.
func ROC(labels []int, score []float32) Curve {
	pts, pos, neg := thresholdCounts(labels, score)
	if pos == 0 || neg == 0 {
		return Curve{}
	}
	c := Curve{X: []float64{0}, Y: []float64{0}, Thresholds: []float64{math.Inf(1)}}
	for _, p := range pts {
		c.X = append(c.X, float64(p.fp)/float64(neg))
		c.Y = append(c.Y, float64(p.tp)/float64(pos))
		c.Thresholds = append(c.Thresholds, p.threshold)
	}
	return c
}

// PR returns the precision-recall curve like sklearn's
// precision_recall_curve (1.1 and later): X is recall and Y precision at
// each distinct score from the lowest threshold up, then the end point
// (recall 0, precision 1), which has no threshold (Thresholds is one
// shorter than X). Empty when there is no positive or a score is NaN.
func PR(labels []int, score []float32) Curve {
	pts, pos, _ := thresholdCounts(labels, score)
	if pos == 0 {
		return Curve{}
	}
	var c Curve
	for i := len(pts) - 1; i >= 0; i-- {
		p := pts[i]
		c.X = append(c.X, float64(p.tp)/float64(pos))
		c.Y = append(c.Y, float64(p.tp)/float64(p.tp+p.fp))
		c.Thresholds = append(c.Thresholds, p.threshold)
	}
	c.X = append(c.X, 0)
	c.Y = append(c.Y, 1)
	return c
}

// AveragePrecision is sklearn's average_precision_score: Σ (R_k − R_{k−1})
// P_k over the PR curve's thresholds. NaN without positives.
func AveragePrecision(labels []int, score []float32) float64 {
	c := PR(labels, score)
	if len(c.X) == 0 {
		return math.NaN()
	}
	var ap float64
	// PR runs from high recall to 0; walk it backwards.
	for k := len(c.X) - 2; k >= 0; k-- {
		ap += (c.X[k] - c.X[k+1]) * c.Y[k]
	}
	return ap
}

type thresholdPoint struct {
	threshold float64
	tp, fp    int
}

// thresholdCounts returns, for each distinct score from the highest down,
// the true and false positives when that score is the threshold.
func thresholdCounts(labels []int, score []float32) (pts []thresholdPoint, pos, neg int) {
	order := rankOrder(score)
	if order == nil {
		return nil, 0, 0
	}
	slices.Reverse(order)
	var tp, fp int
	for k, i := range order {
		if labels[i] == 1 {
			tp++
		} else {
			fp++
		}
		if k == len(order)-1 || score[order[k+1]] != score[i] {
			pts = append(pts, thresholdPoint{threshold: float64(score[i]), tp: tp, fp: fp})
		}
	}
	return pts, tp, fp
}

// Metrics are the scores of a model on one labelled set.
type Metrics struct {
	N       int     // samples scored
	Loss    float64 // the head's mean loss
	Acc     float64 // accuracy at Threshold
	F1Macro float64 // macro-F1 at Threshold (MAMI Sub-task A's official metric)
	AUROC   float64 // area under the ROC curve, NaN with a single class
	Confusion
}

// MarshalJSON writes the metrics with the row key names (n, loss, acc,
// f1_macro, auroc, tp, fp, tn, fn); a non-finite value (AUROC of a single
// class) is written as null.
func (m Metrics) MarshalJSON() ([]byte, error) {
	num := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	return json.Marshal(struct {
		N       int      `json:"n"`
		Loss    *float64 `json:"loss"`
		Acc     *float64 `json:"acc"`
		F1Macro *float64 `json:"f1_macro"`
		AUROC   *float64 `json:"auroc"`
		TP      int      `json:"tp"`
		FP      int      `json:"fp"`
		TN      int      `json:"tn"`
		FN      int      `json:"fn"`
	}{m.N, num(m.Loss), num(m.Acc), num(m.F1Macro), num(m.AUROC), m.TP, m.FP, m.TN, m.FN})
}

// Score computes Metrics from labels, P(misogynous) and the mean loss.
func Score(labels []int, prob []float32, loss float64) Metrics {
	c := NewConfusion(labels, PredictLabels(prob))
	return Metrics{N: len(labels), Loss: loss, Acc: c.Accuracy(), F1Macro: c.MacroF1(), AUROC: AUROC(labels, prob), Confusion: c}
}

// Keys of the metrics in history rows and the summary, after the split
// prefix ("val/", "test/").
const (
	KeyLoss    = "loss"
	KeyAcc     = "acc"
	KeyF1Macro = "f1_macro"
	KeyAUROC   = "auroc"
)

// Values returns the metrics as row entries named prefix+key: loss, acc,
// f1_macro, auroc and, with confusion, tp, fp, tn, fn.
func (m Metrics) Values(prefix string, confusion bool) map[string]any {
	out := map[string]any{
		prefix + KeyLoss:    m.Loss,
		prefix + KeyAcc:     m.Acc,
		prefix + KeyF1Macro: m.F1Macro,
		prefix + KeyAUROC:   m.AUROC,
	}
	if confusion {
		out[prefix+"tp"], out[prefix+"fp"], out[prefix+"tn"], out[prefix+"fn"] = m.TP, m.FP, m.TN, m.FN
	}
	return out
}

// Get returns the metric named key (loss, acc, f1_macro, auroc).
func (m Metrics) Get(key string) (float64, bool) {
	switch key {
	case KeyLoss:
		return m.Loss, true
	case KeyAcc:
		return m.Acc, true
	case KeyF1Macro:
		return m.F1Macro, true
	case KeyAUROC:
		return m.AUROC, true
	}
	return 0, false
}
