package configs_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mami-lab/mami/configs"
)

func TestSetGet(t *testing.T) {
	tests := []struct {
		key   string
		value any
		want  any
	}{
		{"train.lr", 3e-4, 3e-4},
		{"train.lr", 2, 2.0}, // integers are numbers
		{"train.epochs", 5, 5},
		{"train.epochs", 5.0, 5},      // JSON numbers are float64
		{"train.epochs", int64(6), 6}, // YAML may decode int64
		{"run.seed", 7, int64(7)},
		{"run.seed", uint8(8), int64(8)},
		{"model.hidden", []any{256, 128.0}, []int{256, 128}},
		{"model.hidden", []int{32}, []int{32}},
		{"model.hidden", 64, []int{64}},
		{"model.hidden", nil, []int{}},
		{"run.tags", []any{"a", "b"}, []string{"a", "b"}},
		{"run.tags", "solo", []string{"solo"}},
		{"run.name", 12, "12"},
		{"run.name", 0.5, "0.5"},
		{"model.fusion", "gmu", "gmu"},
		{"train.early_stop.metric", "", ""},
		{"train.eval_test", false, false},
		{"tracking.upload_checkpoints", true, true},
	}
	for _, tt := range tests {
		c := configs.Default()
		if err := c.Set(tt.key, tt.value); err != nil {
			t.Errorf("Set(%s, %#v): %v", tt.key, tt.value, err)
			continue
		}
		got, err := c.Get(tt.key)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Set(%s, %#v); Get = %#v, want %#v", tt.key, tt.value, got, tt.want)
		}
	}
}

func TestSetErrors(t *testing.T) {
	tests := []struct {
		key     string
		value   any
		want    string
		allowed bool // FieldError.Allowed is filled
	}{
		{"train.lrr", 0.1, `train.lrr: unknown key (did you mean "train.lr"?)`, false},
		{"train.epochs", "ten", `train.epochs: want an integer, got "ten"`, false},
		{"train.epochs", 2.5, `train.epochs: want an integer, got 2.5`, false},
		{"train.epochs", 0, `train.epochs: must be >= 1, got 0`, false},
		{"train.epochs", int64(math.MaxInt64), ``, false},
		{"train.batch_size", -4, `train.batch_size: must be >= 1, got -4`, false},
		{"train.accumulate", 0, `train.accumulate: must be >= 1, got 0`, false},
		{"train.lr", -1, `train.lr: must be > 0, got -1`, false},
		{"train.lr", math.Inf(1), `train.lr: must be > 0, got +Inf`, false},
		{"train.lr", math.NaN(), `train.lr: must be > 0, got NaN`, false},
		{"train.lr", "1e-3", `train.lr: want a number, got "1e-3"`, false},
		{"train.lr", nil, `train.lr: want a number, got null`, false},
		{"train.clip_norm", -0.5, `train.clip_norm: must be >= 0, got -0.5`, false},
		{"train.weight_decay", -1, `train.weight_decay: must be >= 0, got -1`, false},
		{"train.eps", 0, `train.eps: must be > 0, got 0`, false},
		{"train.beta1", 1, `train.beta1: must be in [0, 1), got 1`, false},
		{"train.warmup_steps", -1, `train.warmup_steps: must be >= 0, got -1`, false},
		{"train.optimizer", "lion", `train.optimizer: must be one of adamw, adam, sgd, got "lion"`, true},
		{"train.schedule", "linear", `train.schedule: must be one of constant, cosine, got "linear"`, true},
		{"tracking.mode", "offline ", `tracking.mode: must be one of auto, offline, online, disabled, got "offline "`, true},
		{"device", "gpu", `device: must be one of cpu, cuda, auto, got "gpu"`, true},
		{"data.dataset", "imdb", `data.dataset: must be one of synthetic-mami, mami, got "imdb"`, true},
		{"model.head", "focal", `model.head: must be one of double_softmax, softmax_ce, bce, got "focal"`, true},
		{"data.val_fraction", 0, `data.val_fraction: must be in (0, 1), got 0`, false},
		{"data.test_fraction", 1, `data.test_fraction: must be in (0, 1), got 1`, false},
		{"model.dropout", -0.1, `model.dropout: must be in [0, 1), got -0.1`, false},
		{"model.proj_dim", 0, `model.proj_dim: must be >= 1, got 0`, false},
		{"model.hidden", []any{256, -1}, `model.hidden: sizes must be > 0, got [256, -1]`, false},
		{"model.hidden", []any{"x"}, `model.hidden: want a list of integers, got ["x"]`, false},
		{"model.hidden", map[string]any{"a": 1}, `model.hidden: want a list of integers, got a mapping`, false},
		{"run.tags", []any{"a", ""}, `run.tags: tags must not be empty, got ["a", ""]`, false},
		{"run.tags", []any{[]any{"a"}}, `run.tags: want a list of strings, got [["a"]]`, false},
		{"run.id", "..", `run.id: must not start with "." or "-", got ".."`, false},
		{"run.id", "-x", `run.id: must not start with "." or "-", got "-x"`, false},
		{"run.id", "a b", `run.id: must contain only letters, digits, "_", "." and "-", got "a b"`, false},
		{"run.id", strings.Repeat("a", 129), `run.id: must be at most 128 characters, got 129`, false},
		{"run.sweep_id", "x/y", `run.sweep_id: must contain only letters, digits, "_", "." and "-", got "x/y"`, false},
		{"run.project", "", `run.project: must not be empty`, false},
		{"workdir", "", `workdir: must not be empty`, false},
		{"run.name", []any{"a"}, `run.name: want a string, got ["a"]`, false},
		{"train.eval_test", "true", `train.eval_test: want true or false, got "true"`, false},
		{"tracking.base_url", "localhost:8080", `tracking.base_url: must be an http or https URL, got "localhost:8080"`, false},
	}
	for _, tt := range tests {
		c := configs.Default()
		err := c.Set(tt.key, tt.value)
		if tt.want == "" {
			if err != nil {
				t.Errorf("Set(%s, %v): %v", tt.key, tt.value, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("Set(%s, %#v) = nil, want %s", tt.key, tt.value, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("Set(%s, %#v)\n got %s\nwant %s", tt.key, tt.value, err, tt.want)
		}
		var fe *configs.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.key || (len(fe.Allowed) > 0) != tt.allowed {
			t.Errorf("Set(%s): error %#v, want a *FieldError for %s (Allowed filled: %v)", tt.key, err, tt.key, tt.allowed)
		}
		if !reflect.DeepEqual(c, configs.Default()) {
			t.Errorf("Set(%s, %#v) failed but changed the config", tt.key, tt.value)
		}
	}
}

func TestGetUnknown(t *testing.T) {
	_, err := configs.Default().Get("model.fusionn")
	if !errors.Is(err, configs.ErrUnknownKey) || !strings.Contains(err.Error(), `did you mean "model.fusion"`) {
		t.Errorf("Get(model.fusionn) error = %v, want ErrUnknownKey suggesting model.fusion", err)
	}
}

// TestSetEveryKeyRoundTrips sets each key to its current value through Set and expects no change.
func TestSetEveryKeyRoundTrips(t *testing.T) {
	c := nonDefault()
	for _, key := range configs.Keys() {
		v, err := c.Get(key)
		if err != nil {
			t.Fatal(err)
		}
		d := c.Clone()
		if err := d.Set(key, v); err != nil {
			t.Errorf("Set(%s, Get(%s)): %v", key, key, err)
		}
		if !reflect.DeepEqual(c, d) {
			t.Errorf("Set(%s, Get(%s)) changed the config", key, key)
		}
	}
}

func TestReference(t *testing.T) {
	ref := configs.Reference()
	if len(ref) != len(configs.Keys()) {
		t.Fatalf("Reference has %d keys, Keys %d", len(ref), len(configs.Keys()))
	}
	envs := map[string]bool{}
	for i, k := range ref {
		if k.Key != configs.Keys()[i] {
			t.Errorf("Reference()[%d].Key = %s, want %s", i, k.Key, configs.Keys()[i])
		}
		if k.Help == "" || k.Type == "" {
			t.Errorf("%s: missing help or type", k.Key)
		}
		if envs[k.Env] {
			t.Errorf("%s: environment variable %s used twice", k.Key, k.Env)
		}
		envs[k.Env] = true
	}
	lr := ref[slicesIndex(configs.Keys(), "train.lr")]
	if lr.Env != "MAMI_TRAIN_LR" || lr.Default != "0.001" || lr.Type != "number" {
		t.Errorf("train.lr reference = %+v", lr)
	}
	es := ref[slicesIndex(configs.Keys(), "train.early_stop.metric")]
	if es.Env != "MAMI_TRAIN_EARLY_STOP_METRIC" || !reflect.DeepEqual(es.Allowed, []string{"", "val/loss", "val/acc", "val/f1_macro", "val/auroc"}) {
		t.Errorf("train.early_stop.metric reference = %+v", es)
	}
	if h := ref[slicesIndex(configs.Keys(), "model.hidden")]; h.Type != "list of integers" || h.Default != "[512]" {
		t.Errorf("model.hidden reference = %+v", h)
	}
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestNewRunID(t *testing.T) {
	now := time.Date(2026, 11, 28, 9, 34, 12, 0, time.FixedZone("CET", 3600))
	id := configs.NewRunID(now, rand.New(rand.NewPCG(1, 2)))
	if !regexp.MustCompile(`^20261128-083412-[a-z0-9]{6}$`).MatchString(id) {
		t.Errorf("NewRunID = %q, want 20261128-083412-xxxxxx (UTC)", id)
	}
	if again := configs.NewRunID(now, rand.New(rand.NewPCG(1, 2))); again != id {
		t.Errorf("same rng seed gave %q then %q", id, again)
	}
	c := configs.Default()
	if err := c.Set("run.id", id); err != nil {
		t.Errorf("generated id does not validate: %v", err)
	}
	seen := map[string]bool{}
	for range 5000 {
		id := configs.NewRunID(now, nil)
		if seen[id] {
			t.Fatalf("NewRunID repeated %q within 5000 calls", id)
		}
		seen[id] = true
	}
}
