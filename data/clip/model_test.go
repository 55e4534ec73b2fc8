package clip_test

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/mami-lab/mami/data/clip"
	"github.com/mami-lab/mami/data/safetensors"
)

type refText struct {
	Text       string    `json:"text"`
	InputIDs   []int     `json:"input_ids"`
	EOTIndex   int       `json:"eot_index"`
	Embeds     []float32 `json:"text_embeds"`
	EmbedsNorm []float32 `json:"text_embeds_normalized"`
}

type refPixels struct {
	Name        string    `json:"name"`
	PixelValues []float32 `json:"pixel_values"`
	Embeds      []float32 `json:"image_embeds"`
	EmbedsNorm  []float32 `json:"image_embeds_normalized"`
}

type refImage struct {
	File          string    `json:"file"`
	Mode          string    `json:"mode"`
	Width         int       `json:"width"`
	Height        int       `json:"height"`
	ResizedWidth  int       `json:"resized_width"`
	ResizedHeight int       `json:"resized_height"`
	CropLeft      int       `json:"crop_left"`
	CropTop       int       `json:"crop_top"`
	Decoded       []int     `json:"decoded_rgb_uint8"`
	Cropped       []int     `json:"cropped_rgb_uint8"`
	PixelValues   []float32 `json:"pixel_values"`
	Embeds        []float32 `json:"image_embeds"`
	EmbedsNorm    []float32 `json:"image_embeds_normalized"`
}

type reference struct {
	LogitScaleExp  float32     `json:"logit_scale_exp"`
	Texts          []refText   `json:"texts"`
	PixelInputs    []refPixels `json:"pixel_inputs"`
	Images         []refImage  `json:"images"`
	LogitsPerImage [][]float32 `json:"logits_per_image"`
}

var (
	refOnce sync.Once
	refData reference
	refErr  error
)

func tinyDir(t testing.TB) string { return filepath.Join(fixtureDir(t), "tiny") }

func loadReference(t testing.TB) *reference {
	t.Helper()
	dir := tinyDir(t)
	refOnce.Do(func() {
		raw, err := os.ReadFile(filepath.Join(dir, "reference.json"))
		if err != nil {
			refErr = err
			return
		}
		refErr = json.Unmarshal(raw, &refData)
	})
	if refErr != nil {
		t.Fatal(refErr)
	}
	return &refData
}

func assertClose(t *testing.T, what string, got, want []float32, atol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	worst, at := 0.0, 0
	for i := range got {
		if d := math.Abs(float64(got[i]) - float64(want[i])); d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	if worst > atol || math.IsNaN(worst) {
		t.Errorf("%s: max |diff| %.3g at %d (got %v, want %v), tolerance %g", what, worst, at, got[at], want[at], atol)
	}
}

func loadTiny(t testing.TB) *clip.Model { return tinyBundle(t).Model }

func TestModelMatchesReference(t *testing.T) {
	ref := loadReference(t)
	m := loadTiny(t)
	if d := math.Abs(float64(m.LogitScale() - ref.LogitScaleExp)); d > 1e-5 {
		t.Errorf("LogitScale() = %v, want %v", m.LogitScale(), ref.LogitScaleExp)
	}
	var ids [][]int
	for _, tx := range ref.Texts {
		ids = append(ids, tx.InputIDs)
		if got := clip.EOTIndex(tx.InputIDs); got != tx.EOTIndex {
			t.Errorf("EOTIndex(%q) = %d, want %d", tx.Text, got, tx.EOTIndex)
		}
	}
	textEmb, err := m.EncodeText(ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, tx := range ref.Texts {
		assertClose(t, "text_embeds "+tx.Text, textEmb[i], tx.Embeds, 1e-4)
		assertClose(t, "text_embeds_normalized "+tx.Text, clip.Normalize(textEmb[i]), tx.EmbedsNorm, 1e-4)
	}
	// One text at a time (and unpadded ids) gives the same as the batch.
	tok := tinyBundle(t).Tokenizer
	single, err := m.EncodeText([][]int{tok.Tokenize(ref.Texts[3].Text)})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "unpadded single text", single[0], ref.Texts[3].Embeds, 1e-4)

	var pixels [][]float32
	for _, p := range ref.PixelInputs {
		pixels = append(pixels, p.PixelValues)
	}
	imgEmb, err := m.EncodeImages(pixels)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ref.PixelInputs {
		assertClose(t, "image_embeds "+p.Name, imgEmb[i], p.Embeds, 1e-4)
		assertClose(t, "image_embeds_normalized "+p.Name, clip.Normalize(imgEmb[i]), p.EmbedsNorm, 1e-4)
	}

	// Logits from the image files' pixel tensors × the 8 texts.
	var filePixels [][]float32
	for _, im := range ref.Images {
		filePixels = append(filePixels, im.PixelValues)
	}
	fileEmb, err := m.EncodeImages(filePixels)
	if err != nil {
		t.Fatal(err)
	}
	for i, im := range ref.Images {
		assertClose(t, "image_embeds "+im.File, fileEmb[i], im.Embeds, 1e-4)
	}
	logits := m.Logits(fileEmb, textEmb)
	for i := range logits {
		assertClose(t, "logits_per_image row", logits[i], ref.LogitsPerImage[i], 1e-3)
	}
}

func TestEncodeErrors(t *testing.T) {
	m := loadTiny(t)
	long := make([]int, 80)
	long[79] = clip.EndOfText
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"empty ids", func() error { _, err := m.EncodeText([][]int{{}}); return err }},
		{"eot beyond context", func() error { _, err := m.EncodeText([][]int{long}); return err }},
		{"id out of vocab", func() error { _, err := m.EncodeText([][]int{{clip.StartOfText, 60000, clip.EndOfText}}); return err }},
		{"wrong pixel count", func() error { _, err := m.EncodeImages([][]float32{make([]float32, 10)}); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); err == nil {
				t.Fatal("got nil error")
			}
		})
	}
}

// float32ToHalf rounds to the nearest IEEE binary16 (ties to even); the tiny
// model's values are all in the normal half range or zero.
func float32ToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int((b>>23)&0xff) - 127 + 15
	mant := b & 0x7fffff
	if exp <= 0 {
		return sign // flush tiny values to zero
	}
	if exp >= 31 {
		return sign | 0x7c00
	}
	h := uint32(exp)<<10 | mant>>13
	rest := mant & 0x1fff
	if rest > 0x1000 || (rest == 0x1000 && h&1 == 1) {
		h++
	}
	return sign | uint16(h)
}

// TestF16Weights converts the tiny model to F16 and checks it computes
// exactly what the F32 model holding the same rounded values computes.
func TestF16Weights(t *testing.T) {
	src, err := safetensors.Open(filepath.Join(tinyDir(t), "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cfgRaw, err := os.ReadFile(filepath.Join(tinyDir(t), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var half, rounded []safetensors.Tensor
	for _, info := range src.Tensors {
		v, shape, err := src.Float32(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, 2*len(v))
		rv := make([]float32, len(v))
		for i, x := range v {
			h := float32ToHalf(x)
			binary.LittleEndian.PutUint16(data[2*i:], h)
			rv[i] = safetensors.HalfToFloat32(h)
		}
		half = append(half, safetensors.Tensor{Name: info.Name, DType: "F16", Shape: slices.Clone(shape), Data: data})
		rounded = append(rounded, safetensors.NewF32(info.Name, shape, rv))
	}
	models := map[string]*clip.Model{}
	for name, ts := range map[string][]safetensors.Tensor{"f16": half, "f32": rounded} {
		dir := filepath.Join(t.TempDir(), name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "config.json"), cfgRaw, 0o644)
		if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
		if models[name], err = clip.Load(dir); err != nil {
			t.Fatal(err)
		}
	}
	ref := loadReference(t)
	px := [][]float32{ref.PixelInputs[0].PixelValues}
	a, err := models["f16"].EncodeImages(px)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := models["f32"].EncodeImages(px)
	if !slices.Equal(a[0], b[0]) {
		t.Errorf("F16 model image embeds %v, want %v", a[0], b[0])
	}
	ta, _ := models["f16"].EncodeText([][]int{ref.Texts[0].InputIDs})
	tb, _ := models["f32"].EncodeText([][]int{ref.Texts[0].InputIDs})
	if !slices.Equal(ta[0], tb[0]) {
		t.Errorf("F16 model text embeds %v, want %v", ta[0], tb[0])
	}
	// And F16 rounding moves the result only slightly from the F32 reference.
	assertClose(t, "f16 image embeds vs reference", a[0], ref.PixelInputs[0].Embeds, 0.05)
}

// TestPortableKernels runs the model with the portable Go kernels (what
// non-AVX2 machines use) against the reference.
func TestPortableKernels(t *testing.T) {
	defer clip.UseAssembly(false)()
	ref := loadReference(t)
	m := loadTiny(t)
	img, err := m.EncodeImages([][]float32{ref.PixelInputs[1].PixelValues})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "portable image_embeds", img[0], ref.PixelInputs[1].Embeds, 1e-4)
	txt, err := m.EncodeText([][]int{ref.Texts[2].InputIDs})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "portable text_embeds", txt[0], ref.Texts[2].Embeds, 1e-4)
}
