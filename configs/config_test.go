package configs_test

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mami-lab/mami/configs"
)

func TestDefaultIsValid(t *testing.T) {
	if err := configs.Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestPresetsLoadAndValidate(t *testing.T) {
	want := []string{"bench-seed-head", "default", "seed"}
	if got := configs.Presets(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Presets() = %q, want %q", got, want)
	}
	for _, name := range configs.Presets() {
		t.Run(name, func(t *testing.T) {
			cfg, err := configs.Load(configs.LoadOptions{File: name})
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPresetValues pins the presets to the study they reproduce.
func TestPresetValues(t *testing.T) {
	tests := []struct {
		preset string
		want   map[string]any
	}{
		{"seed", map[string]any{
			"data.dataset": "synthetic-mami", "model.fusion": "concat", "model.head": "double_softmax",
			"model.hidden": []int{512}, "model.dropout": 0.1, "train.optimizer": "adamw", "train.lr": 1e-3,
			"train.beta1": 0.9, "train.beta2": 0.999, "train.eps": 1e-8, "train.weight_decay": 0.01,
			"train.batch_size": 4, "train.accumulate": 16, "train.clip_norm": 1.0, "train.epochs": 10,
			"run.seed": int64(42), "train.schedule": "constant", "data.val_fraction": 0.1,
			"data.test_fraction": 0.2, "run.project": "mami",
		}},
		{"bench-seed-head", map[string]any{
			"model.fusion": "concat", "model.hidden": []int{512}, "model.head": "bce", "train.batch_size": 64,
			"train.accumulate": 1, "train.optimizer": "adam", "train.lr": 1e-4, "train.weight_decay": 0.0,
			"model.dropout": 0.2, "train.epochs": 10, "train.clip_norm": 0.0, "train.early_stop.metric": "",
			"tracking.mode": "disabled", "train.eval_test": false,
		}},
	}
	for _, tt := range tests {
		cfg, err := configs.Load(configs.LoadOptions{File: tt.preset})
		if err != nil {
			t.Fatal(err)
		}
		for key, want := range tt.want {
			got, err := cfg.Get(key)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s = %#v, want %#v", tt.preset, key, got, want)
			}
		}
	}
	seed, _ := configs.Load(configs.LoadOptions{File: "seed"})
	if got := seed.EffectiveBatch(); got != 64 {
		t.Errorf("seed EffectiveBatch() = %d, want 64", got)
	}
}

// yamlKeys returns the dot keys of the leaves of a YAML mapping.
func yamlKeys(t *testing.T, data []byte) []string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var walk func(prefix string, n *yaml.Node)
	walk = func(prefix string, n *yaml.Node) {
		for i := 0; i < len(n.Content); i += 2 {
			k, v := prefix+n.Content[i].Value, n.Content[i+1]
			if v.Kind == yaml.MappingNode {
				walk(k+".", v)
				continue
			}
			keys = append(keys, k)
		}
	}
	walk("", doc.Content[0])
	return keys
}

// TestDefaultYAMLIsTheReference checks default.yaml writes out every key, in order, with Default's values.
func TestDefaultYAMLIsTheReference(t *testing.T) {
	data, err := configs.Preset("default")
	if err != nil {
		t.Fatal(err)
	}
	if got := yamlKeys(t, data); !reflect.DeepEqual(got, configs.Keys()) {
		t.Errorf("default.yaml keys\n got %q\nwant %q", got, configs.Keys())
	}
	cfg, err := configs.Parse("default.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if want := configs.Default(); !reflect.DeepEqual(cfg, want) {
		t.Errorf("default.yaml\n got %+v\nwant %+v", cfg, want)
	}
	for _, key := range configs.Keys() {
		leaf := key[strings.LastIndexByte(key, '.')+1:]
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), leaf+":") && !strings.Contains(line, "#") {
				t.Errorf("default.yaml: %s has no comment: %q", key, line)
			}
		}
	}
}

func nonDefault() *configs.Config {
	c := configs.Default()
	c.Workdir, c.Device = "/tmp/w", "cuda"
	c.Run = configs.RunConfig{ID: "r-1.x", Name: "a: b # c", Project: "p", Group: "g", Tags: []string{"t1", "t 2", "007"},
		Notes: "multi\nline", Seed: -9, SweepID: "sw1"}
	c.Data = configs.DataConfig{Dataset: "mami", Path: "/d", Features: "/f.npy", ValFraction: 0.125, TestFraction: 1.0 / 3}
	c.Model = configs.ModelConfig{Fusion: "cross", Head: "bce", Hidden: []int{1024, 7}, Dropout: 0.5, ProjDim: 3}
	c.Train = configs.TrainConfig{Epochs: 2, BatchSize: 3, Accumulate: 5, LR: 1.5e-7, Optimizer: "sgd", Beta1: 0, Beta2: 0.5,
		Eps: 1e-12, WeightDecay: 0, ClipNorm: 0.25, Schedule: "cosine", WarmupSteps: 9,
		EarlyStop: configs.EarlyStopConfig{Metric: "val/acc", Patience: 1}, EvalTest: false}
	c.Tracking = configs.TrackingConfig{Mode: "online", BaseURL: "https://example.org/wb", Entity: "lab", UploadCheckpoints: true}
	return c
}

func TestMarshalRoundTrip(t *testing.T) {
	noHidden := configs.Default()
	noHidden.Model.Hidden = nil
	tests := map[string]*configs.Config{"default": configs.Default(), "non-default": nonDefault(), "no hidden layers": noHidden}
	for name, c := range tests {
		t.Run(name, func(t *testing.T) {
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			data, err := c.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if got := yamlKeys(t, data); !reflect.DeepEqual(got, configs.Keys()) {
				t.Errorf("Marshal keys\n got %q\nwant %q", got, configs.Keys())
			}
			got, err := configs.Parse("marshalled", data)
			if err != nil {
				t.Fatalf("%v\n%s", err, data)
			}
			if !reflect.DeepEqual(got, c) {
				t.Errorf("Parse(Marshal(c))\n got %+v\nwant %+v\n%s", got, c, data)
			}
		})
	}
}

func TestMarshalLeavesOutAPIKey(t *testing.T) {
	c := nonDefault()
	c.Tracking.APIKey = "sk-very-secret"
	data, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("sk-very-secret")) {
		t.Fatalf("Marshal wrote the API key:\n%s", data)
	}
	if c.Tracking.APIKey != "sk-very-secret" {
		t.Error("Marshal cleared the caller's API key")
	}
	got, err := configs.Parse("m", data)
	if err != nil {
		t.Fatal(err)
	}
	want := c.Clone()
	want.Tracking.APIKey = ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestClone(t *testing.T) {
	a := nonDefault()
	b := a.Clone()
	b.Run.Tags[0], b.Model.Hidden[0] = "changed", -1
	if a.Run.Tags[0] != "t1" || a.Model.Hidden[0] != 1024 {
		t.Error("Clone shares list storage with the original")
	}
}

func TestEffectiveBatch(t *testing.T) {
	c := configs.Default()
	c.Train.BatchSize, c.Train.Accumulate = 6, 7
	if got := c.EffectiveBatch(); got != 42 {
		t.Errorf("EffectiveBatch() = %d, want 42", got)
	}
}

func TestKeysMatchContract(t *testing.T) {
	want := []string{"workdir", "device",
		"run.id", "run.name", "run.project", "run.group", "run.tags", "run.notes", "run.seed", "run.sweep_id",
		"data.dataset", "data.path", "data.features", "data.val_fraction", "data.test_fraction",
		"model.fusion", "model.head", "model.hidden", "model.dropout", "model.proj_dim",
		"train.epochs", "train.batch_size", "train.accumulate", "train.lr", "train.optimizer", "train.beta1",
		"train.beta2", "train.eps", "train.weight_decay", "train.clip_norm", "train.schedule", "train.warmup_steps",
		"train.early_stop.metric", "train.early_stop.patience", "train.eval_test",
		"tracking.mode", "tracking.base_url", "tracking.api_key", "tracking.entity", "tracking.upload_checkpoints"}
	if got := configs.Keys(); !slices.Equal(got, want) {
		t.Errorf("Keys()\n got %q\nwant %q", got, want)
	}
}
