package experiments

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/data/safetensors"
	"github.com/mami-lab/mami/internal/atomicfile"
	"github.com/mami-lab/mami/models"
)

// Checkpoint file names inside a checkpoint folder.
const (
	CheckpointWeights  = "best.safetensors" // one F32 tensor per models.Param, named by Param.Name
	CheckpointConfig   = "best.yaml"        // the run's resolved config (configs.Config.Marshal)
	CheckpointMetaFile = "best.json"        // CheckpointMeta
)

// checkpointFormat is stored in the safetensors metadata under "format".
const checkpointFormat = "mami-checkpoint/1"

// CheckpointMeta describes a saved checkpoint (best.json).
type CheckpointMeta struct {
	Epoch  int     `json:"epoch"`  // epoch whose weights these are
	Step   int     `json:"step"`   // optimizer steps done by then
	Metric string  `json:"metric"` // the selection metric, e.g. "val/f1_macro"
	Value  float64 `json:"-"`      // its value (NaN is written as null)
	// Filled by SaveCheckpoint from the net.
	ImageDim  int `json:"image_dim"`
	TextDim   int `json:"text_dim"`
	NumParams int `json:"num_params"`
}

type checkpointMetaJSON struct {
	CheckpointMeta
	Value *float64 `json:"value"`
}

// SaveCheckpoint writes net's weights, cfg and meta into dir (created if
// needed) as best.safetensors, best.yaml and best.json, each replaced
// atomically; best.json is written last.
func SaveCheckpoint(dir string, net *models.Net, cfg *configs.Config, meta CheckpointMeta) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	spec := net.Spec()
	meta.ImageDim, meta.TextDim, meta.NumParams = spec.ImageDim, spec.TextDim, net.NumParams()
	params := net.Params()
	tensors := make([]safetensors.Tensor, len(params))
	for i, p := range params {
		tensors[i] = safetensors.NewF32(p.Name, p.Shape, p.Value)
	}
	md := map[string]string{
		"format":    checkpointFormat,
		"fusion":    spec.Fusion,
		"head":      spec.Head,
		"image_dim": strconv.Itoa(spec.ImageDim),
		"text_dim":  strconv.Itoa(spec.TextDim),
		"epoch":     strconv.Itoa(meta.Epoch),
	}
	if err := safetensors.WriteFile(filepath.Join(dir, CheckpointWeights), tensors, md); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	yml, err := cfg.Marshal()
	if err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	if err := writeAtomic(filepath.Join(dir, CheckpointConfig), yml); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	mj := checkpointMetaJSON{CheckpointMeta: meta}
	if !math.IsNaN(meta.Value) && !math.IsInf(meta.Value, 0) {
		v := meta.Value
		mj.Value = &v
	}
	js, err := json.MarshalIndent(mj, "", "  ")
	if err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	if err := writeAtomic(filepath.Join(dir, CheckpointMetaFile), append(js, '\n')); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}

// ReadCheckpointMeta reads dir/best.json.
func ReadCheckpointMeta(dir string) (CheckpointMeta, error) {
	path := filepath.Join(dir, CheckpointMetaFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return CheckpointMeta{}, fmt.Errorf("read checkpoint: %w", err)
	}
	var mj checkpointMetaJSON
	if err := json.Unmarshal(b, &mj); err != nil {
		return CheckpointMeta{}, fmt.Errorf("read checkpoint %s: %w", path, err)
	}
	m := mj.CheckpointMeta
	m.Value = math.NaN()
	if mj.Value != nil {
		m.Value = *mj.Value
	}
	return m, nil
}

// LoadCheckpoint rebuilds the Net saved in dir by SaveCheckpoint (a run's
// checkpoints/ folder) and returns it with the run's config.
func LoadCheckpoint(dir string) (*models.Net, *configs.Config, error) {
	cpath := filepath.Join(dir, CheckpointConfig)
	yml, err := os.ReadFile(cpath)
	if err != nil {
		return nil, nil, fmt.Errorf("load checkpoint: %w", err)
	}
	cfg, err := configs.Parse(cpath, yml)
	if err != nil {
		return nil, nil, fmt.Errorf("load checkpoint: %w", err)
	}
	meta, err := ReadCheckpointMeta(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("load checkpoint: %w", err)
	}
	spec := models.SpecFrom(cfg.Model, meta.ImageDim)
	spec.TextDim = meta.TextDim
	net, err := models.New(spec, cfg.Run.Seed)
	if err != nil {
		return nil, nil, fmt.Errorf("load checkpoint: %w", err)
	}
	wpath := filepath.Join(dir, CheckpointWeights)
	r, err := safetensors.Open(wpath)
	if err != nil {
		return nil, nil, fmt.Errorf("load checkpoint: %w", err)
	}
	defer r.Close()
	for _, p := range net.Params() {
		vals, shape, err := r.Float32(p.Name)
		if err != nil {
			return nil, nil, fmt.Errorf("load checkpoint %s: %w", wpath, err)
		}
		if !slices.Equal(shape, p.Shape) || len(vals) != len(p.Value) {
			return nil, nil, fmt.Errorf("load checkpoint %s: tensor %q has shape %v, the model wants %v", wpath, p.Name, shape, p.Shape)
		}
		copy(p.Value, vals)
	}
	return net, cfg, nil
}

// writeAtomic writes data to path through a temporary file, fsync and
// rename.
func writeAtomic(path string, data []byte) error {
	return atomicfile.WriteFile(path, data, true)
}
