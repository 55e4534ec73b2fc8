package sweep_test

import (
	"math"
	"strings"
	"testing"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/experiments/sweep"
)

func mustParse(t testing.TB, yaml string) *sweep.Spec {
	t.Helper()
	s, err := sweep.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGridOrder(t *testing.T) {
	s := mustParse(t, `method: grid
parameters:
  model.fusion: {values: [concat, late, gmu]}
  train.lr: {values: [0.0001, 0.001]}
  train.epochs: {distribution: int_uniform, min: 2, max: 3}
  model.dropout: {distribution: q_uniform, min: 0.1, max: 0.3, q: 0.1}
  train.schedule: {value: cosine}
`)
	if got := s.TrialCount(); got != 3*2*2*3 {
		t.Fatalf("got %d trials, want 36", got)
	}
	tests := []struct {
		k    int
		want map[string]any
	}{
		{0, map[string]any{"model.fusion": "concat", "train.lr": 0.0001, "train.epochs": 2, "model.dropout": 0.1}},
		{1, map[string]any{"model.fusion": "concat", "train.lr": 0.0001, "train.epochs": 2, "model.dropout": 0.2}},
		{3, map[string]any{"model.fusion": "concat", "train.lr": 0.0001, "train.epochs": 3, "model.dropout": 0.1}},
		{12, map[string]any{"model.fusion": "late", "train.lr": 0.0001, "train.epochs": 2, "model.dropout": 0.1}},
		{35, map[string]any{"model.fusion": "gmu", "train.lr": 0.001, "train.epochs": 3, "model.dropout": 0.3}},
	}
	for _, tt := range tests {
		p, err := s.TrialParams(tt.k)
		if err != nil {
			t.Fatal(err)
		}
		for key, want := range tt.want {
			if p[key] != want {
				t.Errorf("trial %d %s: got %v (%T), want %v", tt.k, key, p[key], p[key], want)
			}
		}
		if p["train.schedule"] != "cosine" {
			t.Errorf("trial %d: constant: got %v", tt.k, p["train.schedule"])
		}
	}
	if _, err := s.TrialParams(36); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("trial 36: got %v, want out of range", err)
	}
	capped := mustParse(t, "method: grid\nrun_cap: 2\nparameters:\n  train.lr: {values: [0.1, 0.2, 0.3]}\n")
	if capped.TrialCount() != 2 {
		t.Errorf("run_cap: got %d trials, want 2", capped.TrialCount())
	}
}

func TestRandomTrialsReproducible(t *testing.T) {
	src := `method: random
run_cap: 4000
seed: 11
parameters:
  train.lr: {distribution: log_uniform_values, min: 1.0e-5, max: 0.1}
  model.dropout: {distribution: uniform, min: 0.0, max: 0.5}
  train.epochs: {distribution: int_uniform, min: 1, max: 4}
  train.batch_size: {distribution: q_uniform, min: 16, max: 128, q: 16}
  train.beta1: {distribution: normal, mu: 0.9, sigma: 0.01}
  train.weight_decay: {distribution: log_uniform, min: -9.2, max: -2.3}
  model.fusion: {values: [concat, gmu], probabilities: [0.8, 0.2]}
`
	a, b := mustParse(t, src), mustParse(t, src)
	other := mustParse(t, strings.Replace(src, "seed: 11", "seed: 12", 1))
	var logLR, drop, beta1 []float64
	epochs := map[int]int{}
	gmu := 0
	for k := range 4000 {
		pa, _ := a.TrialParams(k)
		// a trial computed alone, in another order, on another "machine", is the same
		pb, _ := b.TrialParams(3999 - k)
		pb, _ = b.TrialParams(k)
		po, _ := other.TrialParams(k)
		for key, v := range pa {
			if pb[key] != v {
				t.Fatalf("trial %d %s: got %v and %v from the same file", k, key, v, pb[key])
			}
		}
		if k < 5 && po["train.lr"] == pa["train.lr"] {
			t.Errorf("trial %d: another seed gave the same lr %v", k, pa["train.lr"])
		}
		lr := pa["train.lr"].(float64)
		if lr < 1e-5 || lr > 0.1 {
			t.Fatalf("lr %g out of [1e-5, 0.1]", lr)
		}
		logLR = append(logLR, math.Log10(lr))
		drop = append(drop, pa["model.dropout"].(float64))
		beta1 = append(beta1, pa["train.beta1"].(float64))
		epochs[pa["train.epochs"].(int)]++
		bs := pa["train.batch_size"].(int)
		if bs%16 != 0 || bs < 16 || bs > 128 {
			t.Fatalf("batch size %d is not a multiple of 16 in [16, 128]", bs)
		}
		wd := pa["train.weight_decay"].(float64)
		if wd < math.Exp(-9.2)-1e-12 || wd > math.Exp(-2.3)+1e-12 {
			t.Fatalf("weight decay %g outside [e^-9.2, e^-2.3]", wd)
		}
		if pa["model.fusion"] == "gmu" {
			gmu++
		}
	}
	checkMean := func(name string, xs []float64, want, tol float64) {
		m := 0.0
		for _, x := range xs {
			m += x
		}
		m /= float64(len(xs))
		if math.Abs(m-want) > tol {
			t.Errorf("%s: mean %g, want %g ± %g", name, m, want, tol)
		}
	}
	checkMean("log10 lr (log-uniform)", logLR, -3, 0.06)
	checkMean("dropout", drop, 0.25, 0.01)
	checkMean("beta1", beta1, 0.9, 0.001)
	for e := 1; e <= 4; e++ {
		if n := epochs[e]; n < 900 || n > 1100 {
			t.Errorf("int_uniform: epoch %d drawn %d times of 4000, want about 1000", e, n)
		}
	}
	if gmu < 700 || gmu > 900 {
		t.Errorf("probabilities: gmu drawn %d times of 4000, want about 800", gmu)
	}
}

func TestTrialConfigAndID(t *testing.T) {
	s := mustParse(t, "name: lr\nmethod: grid\nparameters:\n  train.lr: {values: [0.01, 0.02]}\n  train.epochs: {value: 3}\n")
	base := configs.Default()
	id, err := sweep.ID(s, base)
	if err != nil {
		t.Fatal(err)
	}
	moved := base.Clone()
	moved.Workdir = "/elsewhere"
	if id2, _ := sweep.ID(s, moved); id2 != id {
		t.Errorf("work directory changed the sweep id: %s vs %s", id, id2)
	}
	seeded := base.Clone()
	seeded.Run.Seed = 99
	if id3, _ := sweep.ID(s, seeded); id3 == id {
		t.Errorf("a different base config gave the same sweep id %s", id)
	}
	s2 := mustParse(t, "name: lr\nmethod: grid\nparameters:\n  train.lr: {values: [0.01, 0.03]}\n  train.epochs: {value: 3}\n")
	if id4, _ := sweep.ID(s2, base); id4 == id {
		t.Errorf("a different sweep file gave the same id %s", id)
	}
	p, _ := s.TrialParams(1)
	cfg, err := s.TrialConfig(base, id, 1, p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Train.LR != 0.02 || cfg.Train.Epochs != 3 || cfg.Run.ID != id+"-t1" || cfg.Run.SweepID != id || cfg.Run.Group != "lr" {
		t.Errorf("got lr %g epochs %d id %q sweep %q group %q", cfg.Train.LR, cfg.Train.Epochs, cfg.Run.ID, cfg.Run.SweepID, cfg.Run.Group)
	}
	if base.Train.LR == 0.02 {
		t.Error("TrialConfig changed the base config")
	}
	// values that round-trip through state.json come back as float64
	if cfg, err := s.TrialConfig(base, id, 0, map[string]any{"train.lr": 0.01, "train.epochs": float64(3)}); err != nil || cfg.Train.Epochs != 3 {
		t.Errorf("float epochs: got %v, %v", cfg, err)
	}
	bad := mustParse(t, "method: grid\nparameters:\n  model.head: {values: [double_softmax]}\n  model.fusion: {values: [concat, late]}\n")
	if _, err := bad.Apply(base, map[string]any{"model.head": "double_softmax", "model.fusion": "concat"}); err != nil {
		t.Errorf("double_softmax with concat: %v", err)
	}
	err = bad.Check(base)
	if err == nil || !strings.Contains(err.Error(), "trial 1") || !strings.Contains(err.Error(), "double_softmax needs model.fusion concat") {
		t.Errorf("Check: got %v, want trial 1 refused by the config validator", err)
	}
}

func TestParseTrialRunID(t *testing.T) {
	tests := []struct {
		in    string
		id    string
		k     int
		valid bool
	}{
		{"sw12ab34cd-t0", "sw12ab34cd", 0, true},
		{"sw12ab34cd-t27", "sw12ab34cd", 27, true},
		{"my-tag-t3", "my-tag", 3, true},
		{"sw1-t", "", 0, false},
		{"sw1-t01", "", 0, false},
		{"sw1-t-1", "", 0, false},
		{"abcdefgh", "", 0, false},
		{"-t3", "", 0, false},
	}
	for _, tt := range tests {
		id, k, ok := sweep.ParseTrialRunID(tt.in)
		if ok != tt.valid || id != tt.id || k != tt.k {
			t.Errorf("ParseTrialRunID(%q) = %q, %d, %v; want %q, %d, %v", tt.in, id, k, ok, tt.id, tt.k, tt.valid)
		}
		if ok && sweep.TrialRunID(id, k) != tt.in {
			t.Errorf("TrialRunID(%q, %d) does not give back %q", id, k, tt.in)
		}
	}
}
