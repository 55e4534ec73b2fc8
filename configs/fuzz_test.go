package configs_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/mami-lab/mami/configs"
)

// FuzzParse feeds arbitrary YAML to Parse: it must not panic, must explain every failure with a
// *FieldError, and whatever it accepts must be valid and survive Marshal and Parse unchanged.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, name := range configs.Presets() {
		data, _ := configs.Preset(name)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := configs.Parse("fuzz.yaml", data)
		if err != nil {
			var fe *configs.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error without a *FieldError: %v", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid config: %v", err)
		}
		out, err := cfg.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := configs.Parse("marshalled.yaml", out)
		if err != nil {
			t.Fatalf("Parse(Marshal(c)): %v\n%s", err, out)
		}
		want := cfg.Clone()
		want.Tracking.APIKey = ""
		if !reflect.DeepEqual(again, want) {
			t.Fatalf("Parse(Marshal(c))\n got %+v\nwant %+v", again, want)
		}
	})
}

// FuzzSet feeds arbitrary --set entries to Load with the same expectations as FuzzParse.
func FuzzSet(f *testing.F) {
	for _, s := range []string{"model.hidden=[256,128]", "run.tags=a,b", "train.lr=1e-3", "run.notes=a: b",
		"train.epochs=ten", "train.lrr=1", "=", "run.id=", "model.hidden=256,x", `run.name="q"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, entry string) {
		cfg, err := configs.Load(configs.LoadOptions{Sets: []string{entry}})
		if err != nil {
			var fe *configs.FieldError
			if !errors.As(err, &fe) || fe.File != configs.SourceSet {
				t.Fatalf("error without a --set *FieldError: %v", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Load accepted an invalid config: %v", err)
		}
		out, err := cfg.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := configs.Parse("marshalled.yaml", out)
		if err != nil {
			t.Fatalf("Parse(Marshal(c)): %v\n%s", err, out)
		}
		want := cfg.Clone()
		want.Tracking.APIKey = ""
		if !reflect.DeepEqual(again, want) {
			t.Fatalf("Parse(Marshal(c))\n got %+v\nwant %+v", again, want)
		}
	})
}
