package configs

import (
	"bytes"
	"fmt"
	"slices"

	"gopkg.in/yaml.v3"
)

// Config is the fully resolved configuration of one experiment run.
type Config struct {
	Workdir  string         `mapstructure:"workdir"  yaml:"workdir"`  // where runs, checkpoints and caches are written
	Device   string         `mapstructure:"device"   yaml:"device"`   // cpu | cuda | auto
	Run      RunConfig      `mapstructure:"run"      yaml:"run"`      // identity and bookkeeping of the run
	Data     DataConfig     `mapstructure:"data"     yaml:"data"`     // dataset and splits
	Model    ModelConfig    `mapstructure:"model"    yaml:"model"`    // network architecture
	Train    TrainConfig    `mapstructure:"train"    yaml:"train"`    // optimisation
	Tracking TrackingConfig `mapstructure:"tracking" yaml:"tracking"` // W&B-compatible streaming
}

// RunConfig names a run and seeds it.
type RunConfig struct {
	ID      string   `mapstructure:"id"       yaml:"id"`        // run directory name; "" = generate with NewRunID
	Name    string   `mapstructure:"name"     yaml:"name"`      // display name
	Project string   `mapstructure:"project"  yaml:"project"`   // W&B project
	Group   string   `mapstructure:"group"    yaml:"group"`     // W&B group
	Tags    []string `mapstructure:"tags"     yaml:"tags,flow"` // W&B tags
	Notes   string   `mapstructure:"notes"    yaml:"notes"`     // free text
	Seed    int64    `mapstructure:"seed"     yaml:"seed"`      // seeds splits, init, dropout and shuffling
	SweepID string   `mapstructure:"sweep_id" yaml:"sweep_id"`  // set by the sweep engine
}

// DataConfig selects the dataset and how it is split.
type DataConfig struct {
	Dataset      string  `mapstructure:"dataset"       yaml:"dataset"`       // synthetic-mami | mami
	Path         string  `mapstructure:"path"          yaml:"path"`          // MAMI folder when Dataset is "mami"
	Features     string  `mapstructure:"features"      yaml:"features"`      // CLIP feature file when Dataset is "mami"
	ValFraction  float64 `mapstructure:"val_fraction"  yaml:"val_fraction"`  // of what remains after the test split
	TestFraction float64 `mapstructure:"test_fraction" yaml:"test_fraction"` // of the labelled memes
}

// ModelConfig describes the fusion network.
type ModelConfig struct {
	Fusion  string  `mapstructure:"fusion"   yaml:"fusion"`      // concat late align cross gmu image_only text_only
	Head    string  `mapstructure:"head"     yaml:"head"`        // double_softmax softmax_ce bce
	Hidden  []int   `mapstructure:"hidden"   yaml:"hidden,flow"` // hidden layer sizes of the classifier
	Dropout float64 `mapstructure:"dropout"  yaml:"dropout"`     // dropout probability in [0,1)
	ProjDim int     `mapstructure:"proj_dim" yaml:"proj_dim"`    // projection size of the align/cross/gmu fusions
}

// TrainConfig describes the optimisation.
type TrainConfig struct {
	Epochs      int             `mapstructure:"epochs"       yaml:"epochs"`
	BatchSize   int             `mapstructure:"batch_size"   yaml:"batch_size"`
	Accumulate  int             `mapstructure:"accumulate"   yaml:"accumulate"` // micro-batches per optimizer step
	LR          float64         `mapstructure:"lr"           yaml:"lr"`
	Optimizer   string          `mapstructure:"optimizer"    yaml:"optimizer"` // adamw | adam | sgd
	Beta1       float64         `mapstructure:"beta1"        yaml:"beta1"`
	Beta2       float64         `mapstructure:"beta2"        yaml:"beta2"`
	Eps         float64         `mapstructure:"eps"          yaml:"eps"`
	WeightDecay float64         `mapstructure:"weight_decay" yaml:"weight_decay"`
	ClipNorm    float64         `mapstructure:"clip_norm"    yaml:"clip_norm"` // 0 = off
	Schedule    string          `mapstructure:"schedule"     yaml:"schedule"`  // constant | cosine
	WarmupSteps int             `mapstructure:"warmup_steps" yaml:"warmup_steps"`
	EarlyStop   EarlyStopConfig `mapstructure:"early_stop"   yaml:"early_stop"`
	EvalTest    bool            `mapstructure:"eval_test"    yaml:"eval_test"` // score the test split at the end
}

// EarlyStopConfig stops training when a validation metric stops improving.
type EarlyStopConfig struct {
	Metric   string `mapstructure:"metric"   yaml:"metric"`   // "" = off, or val/loss val/acc val/f1_macro val/auroc
	Patience int    `mapstructure:"patience" yaml:"patience"` // epochs without improvement before stopping
}

// TrackingConfig controls streaming to a W&B-compatible server.
type TrackingConfig struct {
	Mode              string `mapstructure:"mode"               yaml:"mode"` // auto | offline | online | disabled
	BaseURL           string `mapstructure:"base_url"           yaml:"base_url"`
	APIKey            string `mapstructure:"api_key"            yaml:"api_key"` // never written by Marshal
	Entity            string `mapstructure:"entity"             yaml:"entity"`
	UploadCheckpoints bool   `mapstructure:"upload_checkpoints" yaml:"upload_checkpoints"`
}

// Default returns the built-in defaults; configs/default.yaml writes the same values out with comments.
func Default() *Config {
	return &Config{
		Workdir: ".mami",
		Device:  "cpu",
		Run: RunConfig{
			Project: "mami",
			Seed:    42,
		},
		Data: DataConfig{
			Dataset:      "synthetic-mami",
			ValFraction:  0.1,
			TestFraction: 0.2,
		},
		Model: ModelConfig{
			Fusion:  "concat",
			Head:    "softmax_ce",
			Hidden:  []int{512},
			Dropout: 0.1,
			ProjDim: 64,
		},
		Train: TrainConfig{
			Epochs:      10,
			BatchSize:   64,
			Accumulate:  1,
			LR:          1e-3,
			Optimizer:   "adamw",
			Beta1:       0.9,
			Beta2:       0.999,
			Eps:         1e-8,
			WeightDecay: 0.01,
			ClipNorm:    1.0,
			Schedule:    "constant",
			WarmupSteps: 0,
			EarlyStop:   EarlyStopConfig{Metric: "", Patience: 3},
			EvalTest:    true,
		},
		Tracking: TrackingConfig{
			Mode:    "auto",
			BaseURL: "https://api.wandb.ai",
		},
	}
}

// EffectiveBatch is the number of samples per optimizer step: BatchSize*Accumulate.
func (c *Config) EffectiveBatch() int { return c.Train.BatchSize * c.Train.Accumulate }

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	d := *c
	d.Run.Tags = slices.Clone(c.Run.Tags)
	d.Model.Hidden = slices.Clone(c.Model.Hidden)
	return &d
}

// Marshal writes the fully resolved config as YAML, every key present, in the layout of default.yaml.
// The secret tracking.api_key is always written empty, so run records never hold it; Load of the
// output gives back c apart from that key.
func (c *Config) Marshal() ([]byte, error) {
	d := c.Clone()
	d.Tracking.APIKey = ""
	if d.Run.Tags == nil {
		d.Run.Tags = []string{}
	}
	if d.Model.Hidden == nil {
		d.Model.Hidden = []int{}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	return buf.Bytes(), nil
}

// normalize makes equal configs compare equal with reflect.DeepEqual: empty lists become nil.
func (c *Config) normalize() {
	if len(c.Run.Tags) == 0 {
		c.Run.Tags = nil
	}
	if len(c.Model.Hidden) == 0 {
		c.Model.Hidden = nil
	}
}
