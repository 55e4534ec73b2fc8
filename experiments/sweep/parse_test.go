package sweep_test

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/mami-lab/mami/experiments/sweep"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, s *sweep.Spec)
	}{
		{
			name: "flat keys and inferred distributions",
			yaml: `method: random
metric: {name: val/f1_macro, goal: maximize, target: 0.9}
run_cap: 5
seed: 7
parameters:
  train.lr: {min: 0.0001, max: 0.1}
  train.epochs: {min: 2, max: 5}
  model.fusion: {values: [concat, gmu], probabilities: [0.25, 0.75]}
  model.head: {value: softmax_ce}
`,
			check: func(t *testing.T, s *sweep.Spec) {
				want := []struct{ key, dist string }{
					{"train.lr", "uniform"}, {"train.epochs", "int_uniform"}, {"model.fusion", "categorical"}, {"model.head", "constant"},
				}
				if len(s.Params) != len(want) {
					t.Fatalf("got %d params, want %d", len(s.Params), len(want))
				}
				for i, w := range want {
					if s.Params[i].Key != w.key || s.Params[i].Distribution != w.dist {
						t.Errorf("param %d: got %s %s, want %s %s", i, s.Params[i].Key, s.Params[i].Distribution, w.key, w.dist)
					}
				}
				if s.RunCap != 5 || s.Seed != 7 || !s.Metric.HasTarget || s.Metric.Target != 0.9 || s.Metric.Goal != "maximize" {
					t.Errorf("got run_cap %d seed %d metric %+v", s.RunCap, s.Seed, s.Metric)
				}
				if got := s.Params[2].Probs; len(got) != 2 || got[1] != 0.75 {
					t.Errorf("probabilities: got %v", got)
				}
			},
		},
		{
			name: "nested blocks and hyperband",
			yaml: `method: bayes
metric: {name: val/loss}
early_terminate: {type: hyperband, min_iter: 2, eta: 2}
command: [mami, train]
program: mami
parameters:
  train:
    parameters:
      lr: {distribution: log_uniform_values, min: 1.0e-5, max: 0.1}
      early_stop:
        parameters:
          patience: {distribution: q_uniform, min: 1, max: 9, q: 2}
  model:
    parameters:
      dropout: {distribution: normal, mu: 0.2, sigma: 0.05}
`,
			check: func(t *testing.T, s *sweep.Spec) {
				keys := []string{"train.lr", "train.early_stop.patience", "model.dropout"}
				for i, k := range keys {
					if s.Params[i].Key != k {
						t.Errorf("param %d: got %s, want %s", i, s.Params[i].Key, k)
					}
				}
				if s.Metric.Goal != "minimize" {
					t.Errorf("default goal: got %q, want minimize", s.Metric.Goal)
				}
				if got := s.EarlyTerminate.Rungs(10); len(got) != 3 || got[0] != 2 || got[2] != 8 {
					t.Errorf("rungs: got %v, want [2 4 8]", got)
				}
				if len(s.Command) != 2 || s.Program != "mami" {
					t.Errorf("command %v program %q", s.Command, s.Program)
				}
			},
		},
		{
			name: "max_iter rungs",
			yaml: `method: grid
metric: {name: val/loss}
early_terminate: {type: hyperband, max_iter: 27, s: 2, eta: 3}
parameters:
  train.lr: {values: [0.1, 0.01]}
`,
			check: func(t *testing.T, s *sweep.Spec) {
				if got := s.EarlyTerminate.Rungs(100); len(got) != 2 || got[0] != 3 || got[1] != 9 {
					t.Errorf("rungs: got %v, want [3 9]", got)
				}
				if s.Name != "x" {
					t.Errorf("name from file: got %q, want x", s.Name)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sweep.Parse("sweeps/x.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // substring of the error, file:line first
	}{
		{"unknown key with suggestion", "method: grid\nparameters:\n  train:\n    parameters:\n      lrr: {values: [0.1]}\n",
			"x.yaml:5: parameters.train.parameters.lrr: unknown config key (did you mean train.lr?)"},
		{"flat unknown key", "method: grid\nparameters:\n  model.fusoin: {values: [gmu]}\n",
			"x.yaml:3: parameters.model.fusoin: unknown config key (did you mean model.fusion?)"},
		{"bad enum value", "method: grid\nparameters:\n  model.fusion:\n    values:\n      - concat\n      - gmuu\n",
			"x.yaml:6: parameters.model.fusion.values[1]: must be one of"},
		{"bad method", "method: gird\nparameters:\n  train.lr: {values: [0.1]}\n", "x.yaml:1: method: must be grid, random or bayes"},
		{"missing method", "parameters:\n  train.lr: {values: [0.1]}\n", "method: missing"},
		{"missing parameters", "method: grid\n", "parameters: missing"},
		{"unknown top key", "method: grid\nparamters: {}\n", "x.yaml:2: paramters: unknown sweep key (did you mean parameters?)"},
		{"unknown distribution", "method: random\nrun_cap: 2\nparameters:\n  train.lr: {distribution: loguniform, min: 1, max: 2}\n",
			"x.yaml:4: parameters.train.lr.distribution: unknown distribution \"loguniform\" (did you mean log_uniform?)"},
		{"min above max", "method: random\nparameters:\n  train.lr:\n    distribution: uniform\n    min: 0.5\n    max: 0.1\n",
			"x.yaml:6: parameters.train.lr.max: must be greater than min"},
		{"log values need positive min", "method: random\nparameters:\n  model.dropout: {distribution: log_uniform_values, min: 0, max: 0.5}\n",
			"x.yaml:3: parameters.model.dropout.min: must be > 0"},
		{"config range checked", "method: random\nparameters:\n  model.dropout: {min: 0.1, max: 1.5}\n",
			"x.yaml:3: parameters.model.dropout.max:"},
		{"distribution on string key", "method: random\nparameters:\n  model.fusion: {distribution: uniform, min: 0, max: 1}\n",
			"x.yaml:3: parameters.model.fusion: distribution uniform draws numbers but model.fusion is a string key"},
		{"integer key continuous", "method: random\nparameters:\n  train.epochs: {distribution: uniform, min: 1, max: 5}\n",
			"train.epochs is an integer key"},
		{"grid over continuous", "method: grid\nparameters:\n  train.lr: {distribution: log_uniform_values, min: 0.001, max: 0.1}\n",
			"x.yaml:3: parameters.train.lr: grid search needs values"},
		{"probabilities sum", "method: random\nparameters:\n  model.fusion: {values: [gmu, late], probabilities: [0.5, 0.6]}\n",
			"probabilities: must sum to 1"},
		{"forbidden key", "method: grid\nparameters:\n  run.id: {values: [a]}\n", "run.id cannot be swept"},
		{"duplicate key", "method: grid\nparameters:\n  train.lr: {values: [0.1]}\n  train:\n    parameters:\n      lr: {values: [0.2]}\n",
			"x.yaml:6: parameters.train.parameters.lr: train.lr given twice (first at line 3)"},
		{"hyperband without iter", "method: grid\nmetric: {name: val/loss}\nearly_terminate: {type: hyperband}\nparameters:\n  train.lr: {values: [0.1]}\n",
			"early_terminate: needs min_iter"},
		{"hyperband without metric", "method: grid\nearly_terminate: {type: hyperband, min_iter: 1}\nparameters:\n  train.lr: {values: [0.1]}\n",
			"metric: missing"},
		{"bad eta", "method: grid\nmetric: {name: m}\nearly_terminate: {type: hyperband, min_iter: 1, eta: 1}\nparameters:\n  train.lr: {values: [0.1]}\n",
			"x.yaml:3: early_terminate.eta: must be > 1"},
		{"bad goal", "method: grid\nmetric: {name: m, goal: max}\nparameters:\n  train.lr: {values: [0.1]}\n", "metric.goal: must be minimize or maximize"},
		{"not yaml", "method: [grid\n", "x.yaml:1: invalid YAML"},
		{"wrong type", "method: grid\nrun_cap: many\nparameters:\n  train.lr: {values: [0.1]}\n", "x.yaml:2: run_cap: want an integer"},
		{"unknown param key", "method: grid\nparameters:\n  train.lr: {valeus: [0.1]}\n", "x.yaml:3: parameters.train.lr.valeus: unknown parameter key (did you mean values?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sweep.Parse("configs/sweeps/x.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want it to contain %q", err, tt.want)
			}
			var se *sweep.Error
			if !errors.As(err, &se) || se.File != "configs/sweeps/x.yaml" {
				t.Errorf("got %T %v, want a *sweep.Error naming the file", err, err)
			}
		})
	}
}

func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func TestFusionLRFile(t *testing.T) {
	path := filepath.Join(repoRoot(t), "configs", "sweeps", "fusion-lr.yaml")
	s, err := sweep.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Method != "grid" || s.TrialCount() != 28 || s.Metric.Name != "val/f1_macro" || s.Metric.Goal != "maximize" {
		t.Fatalf("got %s with %d trials, metric %+v; want grid of 28 maximizing val/f1_macro", s.Method, s.TrialCount(), s.Metric)
	}
	fusions := map[string]bool{}
	lrs := map[float64]bool{}
	for k := range 28 {
		p, err := s.TrialParams(k)
		if err != nil {
			t.Fatal(err)
		}
		fusions[p["model.fusion"].(string)] = true
		lrs[p["train.lr"].(float64)] = true
		if p["train.epochs"] != 10 || p["model.head"] != "softmax_ce" {
			t.Errorf("trial %d: got epochs %v head %v, want 10 softmax_ce", k, p["train.epochs"], p["model.head"])
		}
	}
	if len(fusions) != 7 || len(lrs) != 4 {
		t.Errorf("got %d fusions and %d learning rates, want 7 and 4", len(fusions), len(lrs))
	}
}

func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(repoRoot(f), "configs", "sweeps", "*.yaml"))
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("method: random\nrun_cap: 3\nparameters:\n  train.lr: {distribution: q_log_uniform_values, min: 1e-4, max: 1, q: 1e-4}\n  model.dropout: {distribution: normal, mu: 0.2, sigma: 0.1}\n"))
	f.Add([]byte("method: bayes\nmetric: {name: m}\nearly_terminate: {type: hyperband, max_iter: 9, s: 2}\nparameters:\n  train: {parameters: {epochs: {min: 1, max: 3}}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := sweep.Parse("f.yaml", data)
		if err != nil {
			var se *sweep.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *sweep.Error", err)
			}
			return
		}
		if len(s.Params) == 0 {
			t.Fatal("parsed a sweep without parameters")
		}
		n := min(s.TrialCount(), 3)
		if s.Method == "bayes" {
			return
		}
		for k := range n {
			if _, err := s.TrialParams(k); err != nil {
				t.Fatalf("trial %d: %v", k, err)
			}
		}
	})
}
