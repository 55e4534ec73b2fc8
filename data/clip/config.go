package clip

import (
	"encoding/json"
	"fmt"
	"os"
)

// TowerConfig holds the sizes of one transformer tower (HF text_config /
// vision_config). Zero fields take the openai/clip-vit-base-patch32 defaults.
type TowerConfig struct {
	HiddenSize        int     `json:"hidden_size"`
	IntermediateSize  int     `json:"intermediate_size"`
	NumAttentionHeads int     `json:"num_attention_heads"`
	NumHiddenLayers   int     `json:"num_hidden_layers"`
	LayerNormEps      float64 `json:"layer_norm_eps"`
	HiddenAct         string  `json:"hidden_act"`
	// Text tower only.
	VocabSize             int `json:"vocab_size"`
	MaxPositionEmbeddings int `json:"max_position_embeddings"`
	EOSTokenID            int `json:"eos_token_id"`
	// Vision tower only.
	ImageSize   int `json:"image_size"`
	PatchSize   int `json:"patch_size"`
	NumChannels int `json:"num_channels"`
}

// Config is the part of a Hugging Face CLIPModel config.json the model uses.
type Config struct {
	ProjectionDim int         `json:"projection_dim"`
	Text          TowerConfig `json:"text_config"`
	Vision        TowerConfig `json:"vision_config"`
}

// ReadConfig reads config.json and fills defaults.
func ReadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read clip config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("read clip config %s: %w", path, err)
	}
	// Older transformers versions wrote the tower sizes as *_config_dict.
	var old struct {
		Text   *TowerConfig `json:"text_config_dict"`
		Vision *TowerConfig `json:"vision_config_dict"`
	}
	if err := json.Unmarshal(raw, &old); err == nil {
		if old.Text != nil && c.Text.HiddenSize == 0 {
			c.Text = *old.Text
		}
		if old.Vision != nil && c.Vision.HiddenSize == 0 {
			c.Vision = *old.Vision
		}
	}
	c.fillDefaults()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("read clip config %s: %w", path, err)
	}
	return &c, nil
}

func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

func (c *Config) fillDefaults() {
	orDefault(&c.ProjectionDim, 512)
	t, v := &c.Text, &c.Vision
	orDefault(&t.HiddenSize, 512)
	orDefault(&t.IntermediateSize, 2048)
	orDefault(&t.NumAttentionHeads, 8)
	orDefault(&t.NumHiddenLayers, 12)
	orDefault(&t.LayerNormEps, 1e-5)
	orDefault(&t.HiddenAct, "quick_gelu")
	orDefault(&t.VocabSize, 49408)
	orDefault(&t.MaxPositionEmbeddings, 77)
	orDefault(&t.EOSTokenID, EndOfText)
	orDefault(&v.HiddenSize, 768)
	orDefault(&v.IntermediateSize, 3072)
	orDefault(&v.NumAttentionHeads, 12)
	orDefault(&v.NumHiddenLayers, 12)
	orDefault(&v.LayerNormEps, 1e-5)
	orDefault(&v.HiddenAct, "quick_gelu")
	orDefault(&v.ImageSize, 224)
	orDefault(&v.PatchSize, 32)
	orDefault(&v.NumChannels, 3)
}

func (c *Config) validate() error {
	for _, tw := range []struct {
		name string
		t    *TowerConfig
	}{{"text_config", &c.Text}, {"vision_config", &c.Vision}} {
		if tw.t.HiddenSize%tw.t.NumAttentionHeads != 0 {
			return fmt.Errorf("%s.hidden_size %d: not divisible by num_attention_heads %d", tw.name, tw.t.HiddenSize, tw.t.NumAttentionHeads)
		}
		switch tw.t.HiddenAct {
		case "quick_gelu", "gelu":
		default:
			return fmt.Errorf("%s.hidden_act %q: want quick_gelu or gelu", tw.name, tw.t.HiddenAct)
		}
	}
	if c.Vision.ImageSize%c.Vision.PatchSize != 0 {
		return fmt.Errorf("vision_config.image_size %d: not divisible by patch_size %d", c.Vision.ImageSize, c.Vision.PatchSize)
	}
	if c.Vision.NumChannels != 3 {
		return fmt.Errorf("vision_config.num_channels %d: want 3", c.Vision.NumChannels)
	}
	return nil
}
