package clip_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mami-lab/mami/data/clip"
)

func TestReadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("defaults are ViT-B/32", func(t *testing.T) {
		c, err := clip.ReadConfig(write("empty.json", `{}`))
		if err != nil {
			t.Fatal(err)
		}
		if c.ProjectionDim != 512 || c.Vision.HiddenSize != 768 || c.Vision.PatchSize != 32 || c.Text.NumAttentionHeads != 8 || c.Text.MaxPositionEmbeddings != 77 {
			t.Errorf("got %+v", c)
		}
	})
	t.Run("old *_config_dict keys", func(t *testing.T) {
		c, err := clip.ReadConfig(write("old.json", `{"projection_dim": 768, "text_config_dict": {"hidden_size": 768, "num_attention_heads": 12},
			"vision_config_dict": {"hidden_size": 1024, "patch_size": 14, "num_attention_heads": 16, "num_hidden_layers": 24}}`))
		if err != nil {
			t.Fatal(err)
		}
		if c.Text.HiddenSize != 768 || c.Vision.HiddenSize != 1024 || c.Vision.PatchSize != 14 || c.Vision.NumHiddenLayers != 24 {
			t.Errorf("got %+v", c)
		}
	})
	for _, tc := range []struct{ name, body string }{
		{"not json", `{`},
		{"heads do not divide", `{"text_config": {"hidden_size": 30, "num_attention_heads": 4}}`},
		{"unknown activation", `{"vision_config": {"hidden_act": "relu"}}`},
		{"patch does not divide", `{"vision_config": {"image_size": 100, "patch_size": 32}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := clip.ReadConfig(write(tc.name+".json", tc.body)); err == nil {
				t.Error("got nil error")
			}
		})
	}
	if _, err := clip.ReadConfig(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing file: got nil error")
	}
}
