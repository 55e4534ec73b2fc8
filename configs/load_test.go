package configs_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/mami-lab/mami/configs"
)

// fieldErrors returns every *FieldError joined in err.
func fieldErrors(t *testing.T, err error) []*configs.FieldError {
	t.Helper()
	var out []*configs.FieldError
	var walk func(error)
	walk = func(e error) {
		var fe *configs.FieldError
		if errors.As(e, &fe) && fe == e {
			out = append(out, fe)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	if len(out) == 0 {
		t.Fatalf("error %q holds no *FieldError", err)
	}
	return out
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		file    string
		field   string // Field of the first FieldError
		line    int    // Line of the first FieldError
		want    string // the whole first error message (File is testdata/<file>)
		unknown bool   // errors.Is(err, ErrUnknownKey)
	}{
		{"unknown_key.yaml", "train.lrr", 4, `unknown key "train.lrr" (did you mean "train.lr"?)`, true},
		{"unknown_section.yaml", "trian", 1, `unknown key "trian" (did you mean "train"?)`, true},
		{"misplaced_key.yaml", "lr", 1, `unknown key "lr" (did you mean "train.lr"?)`, true},
		{"merge_key.yaml", "", 1, `want a plain key (anchors merged with << are not supported)`, false},
		{"bad_int.yaml", "train.epochs", 2, `train.epochs: want an integer, got "ten"`, false},
		{"fractional_int.yaml", "train.epochs", 2, `train.epochs: want an integer, got 2.5`, false},
		{"bad_float.yaml", "train.lr", 2, `train.lr: want a number, got "fast"`, false},
		{"bad_bool.yaml", "train.eval_test", 2, `train.eval_test: want true or false, got "yes"`, false},
		{"bad_list.yaml", "model.hidden", 2, `model.hidden: want a list of integers, got [256, "x"]`, false},
		{"bad_enum.yaml", "model.fusion", 2, `model.fusion: must be one of concat, late, align, cross, gmu, image_only, text_only, got "foo"`, false},
		{"negative_lr.yaml", "train.lr", 3, `train.lr: must be > 0, got -1`, false},
		{"malformed.yaml", "", 3, `invalid YAML: did not find expected key`, false},
		{"unclosed.yaml", "", 3, `invalid YAML: did not find expected ',' or ']'`, false},
		{"duplicate.yaml", "train.lr", 4, `train.lr: duplicate key, first set on line 2`, false},
		{"section_scalar.yaml", "train", 1, `train: want a mapping of train.* keys, got "5"`, false},
		{"not_mapping.yaml", "", 1, `want a mapping of config keys, got a list`, false},
		{"two_documents.yaml", "", 3, `want one YAML document, found a second`, false},
		{"double_softmax_late.yaml", "model.head", 3, `model.head: double_softmax needs model.fusion concat, got fusion "late"`, false},
		{"fraction_sum.yaml", "data.val_fraction", 2, `data.val_fraction: data.val_fraction + data.test_fraction must be < 1, got 0.5 + 0.5`, false},
		{"mami_without_files.yaml", "data.path", 2, `data.path: must be set when data.dataset is mami (the folder with training.csv)`, false},
		{"bad_metric.yaml", "train.early_stop.metric", 3, `train.early_stop.metric: must be one of "", val/loss, val/acc, val/f1_macro, val/auroc, got "val/f1"`, false},
		{"zero_patience.yaml", "train.early_stop.patience", 4, `train.early_stop.patience: must be >= 1 when train.early_stop.metric is set, got 0`, false},
		{"bad_run_id.yaml", "run.id", 2, `run.id: must contain only letters, digits, "_", "." and "-", got "../escape"`, false},
		{"cyclic_alias.yaml", "model.hidden", 2, `model.hidden: want a list of integers, got [1, [...]]`, false},
		{"hidden_zero.yaml", "model.hidden", 2, `model.hidden: sizes must be > 0, got [256, 0]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			cfg, err := configs.Load(configs.LoadOptions{File: path})
			if err == nil {
				t.Fatalf("Load(%s) = %+v, want an error", path, cfg)
			}
			fe := fieldErrors(t, err)[0]
			if fe.Field != tt.field || fe.Line != tt.line || fe.File != path {
				t.Errorf("FieldError{Field: %q, File: %q, Line: %d}, want {%q, %q, %d}", fe.Field, fe.File, fe.Line, tt.field, path, tt.line)
			}
			want := path + ":" + strconv.Itoa(tt.line) + ": " + tt.want
			if tt.line == 0 {
				want = path + ": " + tt.want
			}
			if got := fe.Error(); got != want {
				t.Errorf("error\n got %s\nwant %s", got, want)
			}
			if got := errors.Is(err, configs.ErrUnknownKey); got != tt.unknown {
				t.Errorf("errors.Is(err, ErrUnknownKey) = %v, want %v", got, tt.unknown)
			}
		})
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	_, err := configs.Load(configs.LoadOptions{
		File:    filepath.Join("testdata", "hidden_zero.yaml"),
		Environ: []string{"MAMI_TRAIN_LRR=1"},
		Sets:    []string{"train.epochs=ten", "model.fusion=foo"},
	})
	var got []string
	for _, fe := range fieldErrors(t, err) {
		got = append(got, fe.Field)
	}
	want := []string{"", "train.epochs", "model.fusion", "model.hidden", "model.dropout"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fields with errors = %q, want %q\n%v", got, want, err)
	}
}

func TestLoadValidFiles(t *testing.T) {
	tests := []struct {
		file string
		want func(*configs.Config)
	}{
		{"empty.yaml", func(*configs.Config) {}},
		{"comment_only.yaml", func(*configs.Config) {}},
		{"dotted.yaml", func(c *configs.Config) { c.Train.LR = 0.5; c.Model.Hidden = []int{128} }},
		{"anchor.yaml", func(c *configs.Config) { c.Model.Hidden = []int{64}; c.Train.Epochs = 2 }},
		{"literal_strings.yaml", func(c *configs.Config) { c.Run.ID = "0042"; c.Run.Tags = []string{"1", "true"} }},
		{"full.yaml", func(c *configs.Config) {
			c.Workdir, c.Device = "/tmp/mami-work", "auto"
			c.Run.ID, c.Run.Name, c.Run.Tags, c.Run.Seed = "0042", "2026", []string{"a", "b c"}, -7
			c.Data = configs.DataConfig{Dataset: "mami", Path: "/data/MAMI", Features: "feats.safetensors", ValFraction: 0.15, TestFraction: 0.25}
			c.Model = configs.ModelConfig{Fusion: "gmu", Head: "bce", Hidden: []int{256, 128}, Dropout: 0, ProjDim: 32}
			c.Train.Epochs, c.Train.LR, c.Train.Eps, c.Train.ClipNorm = 3, 3e-4, 1e-6, 0
			c.Train.Schedule, c.Train.WarmupSteps, c.Train.EvalTest = "cosine", 100, false
			c.Train.EarlyStop = configs.EarlyStopConfig{Metric: "val/auroc", Patience: 2}
			c.Tracking.Mode, c.Tracking.BaseURL, c.Tracking.UploadCheckpoints = "online", "http://localhost:8080", true
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := configs.Load(configs.LoadOptions{File: filepath.Join("testdata", tt.file)})
			if err != nil {
				t.Fatal(err)
			}
			want := configs.Default()
			tt.want(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestLoadPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("workdir: from-file\ntrain:\n  lr: 0.1\n  epochs: 3\n  batch_size: 8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(configs.LoadOptions{
		File:    file,
		Environ: []string{"HOME=/root", "MAMI_TRAIN_LR=0.2", "MAMI_TRAIN_EPOCHS=4", "PATH=/bin"},
		Sets:    []string{"train.lr=0.3", "train.lr=0.4"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key  string
		want any
	}{
		{"workdir", "from-file"},     // file over default
		{"train.batch_size", 8},      // file only
		{"train.epochs", 4},          // env over file
		{"train.lr", 0.4},            // last --set over earlier --set, env and file
		{"train.accumulate", 1},      // default
		{"model.hidden", []int{512}}, // default list
		{"train.eval_test", true},    // default bool
		{"tracking.mode", "auto"},    // default string
		{"run.seed", int64(42)},      // default int64
		{"data.val_fraction", 0.1},   // default float
		{"train.early_stop.patience", 3},
	}
	for _, tt := range tests {
		got, err := cfg.Get(tt.key)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.key, got, tt.want)
		}
	}
}

// TestLoadEmptyOverride checks an empty value given later replaces a file's list instead of
// falling back to it.
func TestLoadEmptyOverride(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("run:\n  tags: [from-file]\n  name: file\nmodel:\n  hidden: [8]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(configs.LoadOptions{File: file, Environ: []string{"MAMI_RUN_NAME="}, Sets: []string{"run.tags=", "model.hidden=[]"}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Run.Tags != nil || cfg.Model.Hidden != nil || cfg.Run.Name != "" {
		t.Errorf("tags %q, hidden %v, name %q: want all empty", cfg.Run.Tags, cfg.Model.Hidden, cfg.Run.Name)
	}
}

func TestLoadSets(t *testing.T) {
	tests := []struct {
		set  string
		key  string
		want any
	}{
		{"model.hidden=[256,128]", "model.hidden", []int{256, 128}},
		{"model.hidden=256,128", "model.hidden", []int{256, 128}},
		{"model.hidden=64", "model.hidden", []int{64}},
		{"model.hidden=[]", "model.hidden", []int(nil)},
		{"run.tags=[a,b]", "run.tags", []string{"a", "b"}},
		{"run.tags=a, b", "run.tags", []string{"a", "b"}},
		{"run.tags=solo", "run.tags", []string{"solo"}},
		{"run.tags=", "run.tags", []string(nil)},
		{"train.lr=3e-4", "train.lr", 3e-4},
		{"train.lr=1", "train.lr", 1.0},
		{"train.epochs=7", "train.epochs", 7},
		{"train.eval_test=false", "train.eval_test", false},
		{"run.notes=lr sweep: try 1e-4", "run.notes", "lr sweep: try 1e-4"},
		{`run.name="quoted name"`, "run.name", "quoted name"},
		{"run.name=007", "run.name", "007"},
		{"run.id=", "run.id", ""},
		{"run.seed=-3", "run.seed", int64(-3)},
		{"train.early_stop.metric=val/f1_macro", "train.early_stop.metric", "val/f1_macro"},
		{" train.epochs =2", "train.epochs", 2},
	}
	for _, tt := range tests {
		t.Run(tt.set, func(t *testing.T) {
			cfg, err := configs.Load(configs.LoadOptions{Sets: []string{tt.set}})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := cfg.Get(tt.key)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %#v, want %#v", tt.key, got, tt.want)
			}
		})
	}
}

func TestLoadSetErrors(t *testing.T) {
	tests := []struct {
		set  string
		want string
	}{
		{"train.lrr=0.1", `--set train.lrr: unknown key (did you mean "train.lr"?)`},
		{"lr=0.1", `--set lr: unknown key (did you mean "train.lr"?)`},
		{"model.hiden=[1]", `--set model.hiden: unknown key (did you mean "model.hidden"?)`},
		{"zzzzzzzzzzzz=1", `--set zzzzzzzzzzzz: unknown key`},
		{"train=1", `--set train: names a group of keys; set one key, e.g. train.epochs`},
		{"train.lr", `--set train.lr: want key=value, e.g. --set train.lr=3e-4`},
		{"train.epochs=ten", `--set train.epochs: want an integer, got "ten"`},
		{"train.lr=", `--set train.lr: want a number, got null`},
		{"train.lr=-1", `--set train.lr: must be > 0, got -1`},
		{"model.hidden=[256,x]", `--set model.hidden: want a list of integers, got [256, "x"]`},
		{"model.fusion=foo", `--set model.fusion: must be one of concat, late, align, cross, gmu, image_only, text_only, got "foo"`},
		{"model.head=double_softmax", ``},
		{"model.dropout=1", `--set model.dropout: must be in [0, 1), got 1`},
		{"run.id=a/b", `--set run.id: must contain only letters, digits, "_", "." and "-", got "a/b"`},
		{"train.eval_test=1", `--set train.eval_test: want true or false, got 1`},
		{"tracking.base_url=ftp://x", `--set tracking.base_url: must be an http or https URL, got "ftp://x"`},
	}
	for _, tt := range tests {
		t.Run(tt.set, func(t *testing.T) {
			_, err := configs.Load(configs.LoadOptions{Sets: []string{tt.set}})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %s", tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error\n got %s\nwant %s", got, tt.want)
			}
			if fe := fieldErrors(t, err)[0]; fe.File != configs.SourceSet {
				t.Errorf("File = %q, want %q", fe.File, configs.SourceSet)
			}
		})
	}
}

func TestLoadEnv(t *testing.T) {
	cfg, err := configs.Load(configs.LoadOptions{Environ: []string{
		"MAMI_TRAIN_LR=1e-4",
		"MAMI_WORKDIR=/scratch/mami",
		"MAMI_TRAIN_EARLY_STOP_METRIC=val/loss",
		"MAMI_RUN_TAGS=x,y",
		"MAMI_MODEL_HIDDEN=[32, 16]",
		"MAMI_TRACKING_API_KEY=secret",
		"MAMI_API_KEY=ignored", // read by the tracking client, not a config key
		"MAMI_LOG_LEVEL=debug", // documented non-config variable
		"MAMI_HOME=/somewhere", // does not look like a config key
		"WANDB_API_KEY=also-ignored",
		"NOEQUALS",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Train.LR != 1e-4 || cfg.Workdir != "/scratch/mami" || cfg.Train.EarlyStop.Metric != "val/loss" ||
		!reflect.DeepEqual(cfg.Run.Tags, []string{"x", "y"}) || !reflect.DeepEqual(cfg.Model.Hidden, []int{32, 16}) ||
		cfg.Tracking.APIKey != "secret" {
		t.Errorf("env not applied: %+v", cfg)
	}
}

func TestLoadEnvErrors(t *testing.T) {
	tests := []struct {
		env  string
		want string
	}{
		{"MAMI_TRAIN_LRR=1", `$MAMI_TRAIN_LRR: unknown config variable (did you mean MAMI_TRAIN_LR?)`},
		{"MAMI_WORKDR=x", `$MAMI_WORKDR: unknown config variable (did you mean MAMI_WORKDIR?)`},
		{"MAMI_MODEL_SIZE=3", `$MAMI_MODEL_SIZE: unknown config variable`},
		{"MAMI_TRAIN_LR=fast", `$MAMI_TRAIN_LR: train.lr: want a number, got "fast"`},
		{"MAMI_TRAIN_LR=-1", `$MAMI_TRAIN_LR: train.lr: must be > 0, got -1`},
		{"MAMI_DEVICE=gpu", `$MAMI_DEVICE: device: must be one of cpu, cuda, auto, got "gpu"`},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			_, err := configs.Load(configs.LoadOptions{Environ: []string{tt.env}})
			if err == nil {
				t.Fatalf("no error, want %s", tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := configs.Load(configs.LoadOptions{File: path})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("err = %v, want fs.ErrNotExist naming %s", err, path)
	}
	_, err = configs.Load(configs.LoadOptions{File: "sed"})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "sed") || !strings.Contains(err.Error(), "presets: bench-seed-head, default, seed") {
		t.Errorf("err = %v, want fs.ErrNotExist naming sed and listing the presets", err)
	}
}

func TestLoadPresetByName(t *testing.T) {
	for _, name := range []string{"seed", "seed.yaml"} {
		cfg, err := configs.Load(configs.LoadOptions{File: name})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Model.Head != "double_softmax" || cfg.Train.Accumulate != 16 {
			t.Errorf("-c %s did not load the seed preset: %+v", name, cfg)
		}
	}
	// A file on disk wins over the preset of the same name.
	t.Chdir(t.TempDir())
	if err := os.WriteFile("seed", []byte("train:\n  epochs: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(configs.LoadOptions{File: "seed"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Train.Epochs != 1 || cfg.Model.Head != "softmax_ce" {
		t.Errorf("-c seed with ./seed on disk: got epochs %d head %s, want the file (1, softmax_ce)", cfg.Train.Epochs, cfg.Model.Head)
	}
}

func TestLoadPresetErrorsNamePreset(t *testing.T) {
	_, err := configs.Load(configs.LoadOptions{File: "seed", Sets: []string{"model.fusion=late"}})
	want := `preset seed.yaml:18: model.head: double_softmax needs model.fusion concat, got fusion "late"`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}
