package configs_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mami-lab/mami/configs"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*configs.Config)
		fields []string // fields of the errors, in order; none means valid
	}{
		{"defaults", func(*configs.Config) {}, nil},
		{"double_softmax with concat", func(c *configs.Config) { c.Model.Head = "double_softmax" }, nil},
		{"double_softmax with late", func(c *configs.Config) { c.Model.Head, c.Model.Fusion = "double_softmax", "late" }, []string{"model.head"}},
		{"every fusion with bce", func(c *configs.Config) { c.Model.Head = "bce"; c.Model.Fusion = "text_only" }, nil},
		{"fractions sum to 1", func(c *configs.Config) { c.Data.ValFraction, c.Data.TestFraction = 0.4, 0.6 }, []string{"data.val_fraction"}},
		{"fractions just below 1", func(c *configs.Config) { c.Data.ValFraction, c.Data.TestFraction = 0.4, 0.59 }, nil},
		{"mami without files", func(c *configs.Config) { c.Data.Dataset = "mami" }, []string{"data.path", "data.features"}},
		{"mami with files", func(c *configs.Config) { c.Data.Dataset, c.Data.Path, c.Data.Features = "mami", "p", "f" }, nil},
		{"early stop without patience", func(c *configs.Config) { c.Train.EarlyStop = configs.EarlyStopConfig{Metric: "val/loss"} }, []string{"train.early_stop.patience"}},
		{"no early stop, zero patience", func(c *configs.Config) { c.Train.EarlyStop.Patience = 0 }, nil},
		{"online without url", func(c *configs.Config) { c.Tracking.Mode, c.Tracking.BaseURL = "online", "" }, []string{"tracking.base_url"}},
		{"disabled without url", func(c *configs.Config) { c.Tracking.Mode, c.Tracking.BaseURL = "disabled", "" }, nil},
		{"empty hidden", func(c *configs.Config) { c.Model.Hidden = nil }, nil},
		{"several at once", func(c *configs.Config) {
			c.Device, c.Train.Epochs, c.Train.LR, c.Model.Dropout = "tpu", 0, 0, 1
		}, []string{"device", "model.dropout", "train.epochs", "train.lr"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := configs.Default()
			tt.mutate(c)
			err := c.Validate()
			if len(tt.fields) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors on %q", tt.fields)
			}
			var got []string
			for _, fe := range fieldErrors(t, err) {
				got = append(got, fe.Field)
				if fe.File != "" || fe.Msg == "" {
					t.Errorf("FieldError %+v: want no File and a message", fe)
				}
			}
			if strings.Join(got, " ") != strings.Join(tt.fields, " ") {
				t.Errorf("error fields = %q, want %q\n%v", got, tt.fields, err)
			}
			var fe *configs.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.fields[0] {
				t.Errorf("errors.As found %+v, want the error on %s", fe, tt.fields[0])
			}
		})
	}
}

func TestFieldErrorFormat(t *testing.T) {
	tests := []struct {
		err  *configs.FieldError
		want string
	}{
		{&configs.FieldError{Field: "train.lr", Msg: "must be > 0, got -1"}, "train.lr: must be > 0, got -1"},
		{&configs.FieldError{Field: "train.lr", File: "c.yaml", Line: 3, Msg: "must be > 0, got -1"}, "c.yaml:3: train.lr: must be > 0, got -1"},
		{&configs.FieldError{Field: "train.lr", File: "c.yaml", Msg: "m"}, "c.yaml: train.lr: m"},
		{&configs.FieldError{File: "c.yaml", Line: 2, Msg: "invalid YAML: x"}, "c.yaml:2: invalid YAML: x"},
		{&configs.FieldError{Field: "train.lrr", File: "configs/foo.yaml", Msg: "unknown key", Err: configs.ErrUnknownKey}, `configs/foo.yaml: unknown key "train.lrr"`},
		{&configs.FieldError{Field: "train.lrr", File: configs.SourceSet, Msg: "unknown key", Err: configs.ErrUnknownKey}, `--set train.lrr: unknown key`},
		{&configs.FieldError{Field: "train.lr", File: "$MAMI_TRAIN_LR", Msg: "m"}, `$MAMI_TRAIN_LR: train.lr: m`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %s, want %s", got, tt.want)
		}
	}
}
