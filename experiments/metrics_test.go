package experiments_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mami-lab/mami/experiments"
)

func near(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) < 1e-9
}

func TestMacroF1(t *testing.T) {
	tests := []struct {
		name         string
		labels, pred []int
		want         float64
	}{
		// class 1: tp 1, fp 0, fn 1 → 2/3; class 0: tp 2, fp 1, fn 0 → 4/5.
		{"one miss", []int{1, 1, 0, 0}, []int{1, 0, 0, 0}, (2.0/3 + 4.0/5) / 2},
		// class 1: tp 2, fp 1, fn 1 → 4/6; class 0: tp 1, fp 1, fn 1 → 2/4.
		{"mixed", []int{1, 0, 1, 0, 1}, []int{1, 1, 0, 0, 1}, (4.0/6 + 2.0/4) / 2},
		{"perfect", []int{0, 1, 0, 1}, []int{0, 1, 0, 1}, 1},
		{"all wrong", []int{0, 1}, []int{1, 0}, 0},
		// sklearn averages over the classes present in labels or preds.
		{"single class both", []int{1, 1, 1}, []int{1, 1, 1}, 1},
		{"predict all positive", []int{0, 0, 1, 1}, []int{1, 1, 1, 1}, (2.0/3 + 0) / 2},
		{"labels one class, preds other", []int{0, 0}, []int{1, 1}, 0},
		{"empty", nil, nil, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := experiments.MacroF1(tt.labels, tt.pred); !near(got, tt.want) {
				t.Errorf("MacroF1(%v, %v) = %v, want %v", tt.labels, tt.pred, got, tt.want)
			}
		})
	}
}

func TestConfusionAndAccuracy(t *testing.T) {
	labels := []int{1, 1, 1, 0, 0, 0, 0}
	pred := []int{1, 0, 1, 1, 0, 0, 0}
	c := experiments.NewConfusion(labels, pred)
	if want := (experiments.Confusion{TP: 2, FN: 1, FP: 1, TN: 3}); c != want {
		t.Errorf("confusion = %+v, want %+v", c, want)
	}
	if got := experiments.Accuracy(labels, pred); !near(got, 5.0/7) {
		t.Errorf("accuracy = %v, want 5/7", got)
	}
	if got := experiments.PredictLabels([]float32{0.2, 0.5, 0.5000001, 0.9}); got[0] != 0 || got[1] != 0 || got[2] != 1 || got[3] != 1 {
		t.Errorf("PredictLabels = %v, want [0 0 1 1] (0.5 is class 0, as argmax ties go)", got)
	}
}

func TestAUROC(t *testing.T) {
	tests := []struct {
		name   string
		labels []int
		score  []float32
		want   float64
	}{
		// sklearn's roc_auc_score docstring example.
		{"sklearn example", []int{0, 0, 1, 1}, []float32{0.1, 0.4, 0.35, 0.8}, 0.75},
		{"perfect", []int{0, 0, 1, 1}, []float32{0.1, 0.2, 0.3, 0.4}, 1},
		{"inverted", []int{1, 1, 0, 0}, []float32{0.1, 0.2, 0.3, 0.4}, 0},
		{"all tied", []int{0, 1, 0, 1}, []float32{0.5, 0.5, 0.5, 0.5}, 0.5},
		// pairs (pos, neg): (0.2, 0.2) tie ½, (0.9, 0.2) 1 → 1.5/2.
		{"partial tie", []int{0, 1, 1}, []float32{0.2, 0.2, 0.9}, 0.75},
		// 2 pos × 3 neg; pos 0.6 beats 0.1, 0.5, ties 0.6 → 2.5; pos 0.3 beats 0.1 → 1.
		{"ties across classes", []int{0, 1, 0, 1, 0}, []float32{0.1, 0.6, 0.6, 0.3, 0.5}, 3.5 / 6},
		{"one class", []int{1, 1}, []float32{0.1, 0.9}, math.NaN()},
		{"NaN score", []int{0, 1}, []float32{float32(math.NaN()), 0.9}, math.NaN()},
		{"empty", nil, nil, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := experiments.AUROC(tt.labels, tt.score); !near(got, tt.want) {
				t.Errorf("AUROC = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestAUROCMatchesPairs checks the rank formula against the definition —
// the share of (positive, negative) pairs ordered right, ties half — on
// random scores with many ties.
func TestAUROCMatchesPairs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 50 {
		n := 2 + rng.IntN(60)
		labels := make([]int, n)
		score := make([]float32, n)
		for i := range n {
			labels[i] = rng.IntN(2)
			score[i] = float32(rng.IntN(8)) / 8 // coarse: many ties
		}
		var pairs, good float64
		for i := range n {
			for j := range n {
				if labels[i] != 1 || labels[j] != 0 {
					continue
				}
				pairs++
				switch {
				case score[i] > score[j]:
					good++
				case score[i] == score[j]:
					good += 0.5
				}
			}
		}
		want := math.NaN()
		if pairs > 0 {
			want = good / pairs
		}
		if got := experiments.AUROC(labels, score); !near(got, want) {
			t.Fatalf("trial %d: AUROC = %v, pairwise definition = %v", trial, got, want)
		}
	}
}

func TestROCAndPR(t *testing.T) {
	labels := []int{0, 0, 1, 1}
	score := []float32{0.1, 0.4, 0.35, 0.8}
	roc := experiments.ROC(labels, score)
	// sklearn roc_curve(..., drop_intermediate=False).
	wantFPR := []float64{0, 0, 0.5, 0.5, 1}
	wantTPR := []float64{0, 0.5, 0.5, 1, 1}
	wantThr := []float64{math.Inf(1), 0.8, 0.4, 0.35, 0.1}
	checkSeq(t, "roc fpr", roc.X, wantFPR)
	checkSeq(t, "roc tpr", roc.Y, wantTPR)
	checkSeq(t, "roc thresholds", roc.Thresholds, wantThr)

	pr := experiments.PR(labels, score)
	// sklearn precision_recall_curve docstring example.
	checkSeq(t, "pr precision", pr.Y, []float64{0.5, 2.0 / 3, 0.5, 1, 1})
	checkSeq(t, "pr recall", pr.X, []float64{1, 1, 0.5, 0.5, 0})
	checkSeq(t, "pr thresholds", pr.Thresholds, []float64{0.1, 0.35, 0.4, 0.8})
	// sklearn average_precision_score: 0.5·1 + 0.5·(2/3) = 0.8333.
	if ap := experiments.AveragePrecision(labels, score); !near(ap, 0.5+0.5*2.0/3) {
		t.Errorf("AveragePrecision = %v, want 0.8333", ap)
	}
	if c := experiments.ROC([]int{1, 1}, []float32{0.2, 0.3}); len(c.X) != 0 {
		t.Errorf("ROC with one class = %+v, want empty", c)
	}
}

func checkSeq(t *testing.T, name string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s = %v, want %v", name, got, want)
		return
	}
	for i := range want {
		// float32 scores widen to float64 inexactly; compare loosely.
		if !(math.IsInf(want[i], 1) && math.IsInf(got[i], 1)) && math.Abs(got[i]-want[i]) > 1e-6 {
			t.Errorf("%s = %v, want %v", name, got, want)
			return
		}
	}
}

func TestScoreValues(t *testing.T) {
	m := experiments.Score([]int{1, 0, 1, 0}, []float32{0.9, 0.2, 0.4, 0.6}, 0.5)
	v := m.Values("test/", true)
	want := map[string]any{"test/loss": 0.5, "test/acc": 0.5, "test/f1_macro": 0.5, "test/auroc": 0.75,
		"test/tp": 1, "test/fp": 1, "test/tn": 1, "test/fn": 1}
	if len(v) != len(want) {
		t.Fatalf("Values = %v, want %v", v, want)
	}
	for k, w := range want {
		if v[k] != w {
			t.Errorf("%s = %v, want %v", k, v[k], w)
		}
	}
	if len(m.Values("val/", false)) != 4 {
		t.Errorf("val values carry the confusion matrix: %v", m.Values("val/", false))
	}
}

func TestMetricsJSON(t *testing.T) {
	m := experiments.Score([]int{1, 1}, []float32{0.9, 0.2}, 0.25)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("marshal metrics with NaN AUROC: %v", err)
	}
	want := `{"n":2,"loss":0.25,"acc":0.5,"f1_macro":0.3333333333333333,"auroc":null,"tp":1,"fp":0,"tn":0,"fn":1}`
	if string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
}
