package data_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mami-lab/mami/data"
	"github.com/mami-lab/mami/data/npy"
	"github.com/mami-lab/mami/data/safetensors"
)

// unitRows returns n rows of dim values, row i pointing mostly along axis
// i%dim, each of unit length.
func unitRows(n, dim int, scale float32) []float32 {
	v := make([]float32, n*dim)
	for i := range n {
		row := v[i*dim : (i+1)*dim]
		for d := range row {
			row[d] = 0.1
		}
		row[i%dim] = 1
		var ss float64
		for _, x := range row {
			ss += float64(x) * float64(x)
		}
		for d := range row {
			row[d] = row[d] / float32(math.Sqrt(ss)) * scale
		}
	}
	return v
}

// writeNPYSet writes a NumPy feature set into dir.
func writeNPYSet(t *testing.T, dir string, names []string, img, txt []float32, dim int, namesFile string) {
	t.Helper()
	for file, v := range map[string][]float32{"image_embeds.npy": img, "text_embeds.npy": txt} {
		f, err := os.Create(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if err := npy.Write(f, []int{len(v) / dim, dim}, v); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	var content string
	if strings.HasSuffix(namesFile, ".json") {
		content = `["` + strings.Join(names, `","`) + `"]`
	} else {
		content = strings.Join(names, "\r\n") + "\r\n\r\n"
	}
	if err := os.WriteFile(filepath.Join(dir, namesFile), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFeaturesRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	names := []string{"1.jpg", "2.jpg", "3.jpg"}
	want := &data.Features{Dim: 4, Names: names, Image: unitRows(3, 4, 1), Text: unitRows(3, 4, 1),
		Metadata: map[string]string{"model": "openai/clip-vit-base-patch32"}}
	path := filepath.Join(dir, "features.safetensors")
	if err := data.WriteFeatures(ctx, path, want); err != nil {
		t.Fatal(err)
	}
	got, err := data.ReadFeatures(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Names, names) || got.Dim != 4 || !reflect.DeepEqual(got.Image, want.Image) || !reflect.DeepEqual(got.Text, want.Text) {
		t.Errorf("round trip: got %+v", got)
	}
	if got.Metadata["model"] != "openai/clip-vit-base-patch32" || got.Metadata["dim"] != "4" || got.Metadata["count"] != "3" || got.Normalized != 0 {
		t.Errorf("metadata %v, normalized %d", got.Metadata, got.Normalized)
	}
	// The documented layout is readable with the safetensors package alone.
	r, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if info, ok := r.Lookup("image_embeds"); !ok || info.DType != "F32" || !reflect.DeepEqual(info.Shape, []int{3, 4}) {
		t.Errorf("image_embeds: %+v", info)
	}
	if r.Metadata["names"] != `["1.jpg","2.jpg","3.jpg"]` {
		t.Errorf("names metadata %q", r.Metadata["names"])
	}
}

func TestReadFeaturesNPY(t *testing.T) {
	ctx := context.Background()
	names := []string{"a.jpg", "b.jpg"}
	for _, tc := range []struct {
		name, namesFile, arg string
	}{
		{"directory with names.txt", "names.txt", ""},
		{"directory with names.json", "names.json", ""},
		{"prefix", "names.txt", "clip_"},
		{"one of the npy files", "names.txt", "clip_image_embeds.npy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sub := dir
			prefix := ""
			if tc.arg != "" {
				prefix = "clip_"
			}
			writeNPYSet(t, sub, names, unitRows(2, 3, 2), unitRows(2, 3, 1), 3, tc.namesFile)
			if prefix != "" {
				for _, f := range []string{"image_embeds.npy", "text_embeds.npy", tc.namesFile} {
					if err := os.Rename(filepath.Join(dir, f), filepath.Join(dir, prefix+f)); err != nil {
						t.Fatal(err)
					}
				}
			}
			f, err := data.ReadFeatures(ctx, filepath.Join(dir, tc.arg))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(f.Names, names) || f.Dim != 3 {
				t.Fatalf("names %v dim %d", f.Names, f.Dim)
			}
			// Image rows had norm 2: normalised on load and counted.
			if f.Normalized != 2 || !reflect.DeepEqual(f.Image, unitRows(2, 3, 1)) {
				t.Errorf("normalized %d rows, image %v; want 2 rows rescaled to unit length", f.Normalized, f.Image)
			}
		})
	}
}

func TestReadFeaturesErrors(t *testing.T) {
	ctx := context.Background()
	names := []string{"1.jpg", "2.jpg", "123.jpg"}
	nan := unitRows(3, 4, 1)
	nan[2*4+1] = float32(math.NaN())
	inf := unitRows(3, 4, 1)
	inf[0] = float32(math.Inf(-1))
	for _, tc := range []struct {
		name     string
		names    []string
		img, txt []float32
		dim      int
		want     string
	}{
		{"NaN", names, nan, unitRows(3, 4, 1), 4, `image_embeds.npy: meme "123.jpg" (row 2): image_embeds has NaN`},
		{"Inf", names, unitRows(3, 4, 1), inf, 4, `text_embeds.npy: meme "1.jpg" (row 0): text_embeds has Inf`},
		{"duplicate", []string{"1.jpg", "2.jpg", "1.jpg"}, unitRows(3, 4, 1), unitRows(3, 4, 1), 4, `meme "1.jpg" (row 2): duplicate name (also row 0)`},
		{"names count", names[:2], unitRows(3, 4, 1), unitRows(3, 4, 1), 4, "image_embeds has 3 rows, but there are 2 names"},
		{"wrong dimension", names, unitRows(3, 4, 1), unitRows(3, 3, 1), 0, "wrong dimension: text_embeds is 3-d but image_embeds is 4-d"},
		{"zero row", names, make([]float32, 12), unitRows(3, 4, 1), 4, `meme "1.jpg" (row 0): image_embeds is all zeros`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.dim == 0 { // image and text with different widths
				for file, c := range map[string]struct {
					v []float32
					d int
				}{"image_embeds.npy": {tc.img, 4}, "text_embeds.npy": {tc.txt, 3}} {
					f, _ := os.Create(filepath.Join(dir, file))
					npy.Write(f, []int{len(c.v) / c.d, c.d}, c.v)
					f.Close()
				}
				os.WriteFile(filepath.Join(dir, "names.txt"), []byte(strings.Join(tc.names, "\n")), 0o644)
			} else {
				writeNPYSet(t, dir, tc.names, tc.img, tc.txt, tc.dim, "names.txt")
			}
			_, err := data.ReadFeatures(ctx, dir)
			var fe *data.FeatureError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a *FeatureError containing %q", err, tc.want)
			}
		})
	}
	t.Run("no names file", func(t *testing.T) {
		if _, err := data.ReadFeatures(ctx, t.TempDir()); err == nil || !strings.Contains(err.Error(), "no names file") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("safetensors without names", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "f.safetensors")
		safetensors.WriteFile(path, []safetensors.Tensor{safetensors.NewF32("image_embeds", []int{1, 2}, []float32{1, 0})}, nil)
		if _, err := data.ReadFeatures(ctx, path); err == nil || !strings.Contains(err.Error(), `f.safetensors: metadata lacks "names"`) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("safetensors F16", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "f.safetensors")
		// 1.0 and 0.0 in float16, rows [1, 0] and [0, 1].
		half := []byte{0, 0x3c, 0, 0, 0, 0, 0, 0x3c}
		err := safetensors.WriteFile(path, []safetensors.Tensor{
			{Name: "image_embeds", DType: "F16", Shape: []int{2, 2}, Data: half},
			{Name: "text_embeds", DType: "BF16", Shape: []int{2, 2}, Data: []byte{0x80, 0x3f, 0, 0, 0, 0, 0x80, 0x3f}},
		}, map[string]string{"names": `["x.jpg","y.jpg"]`})
		if err != nil {
			t.Fatal(err)
		}
		f, err := data.ReadFeatures(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if want := []float32{1, 0, 0, 1}; !reflect.DeepEqual(f.Image, want) || !reflect.DeepEqual(f.Text, want) {
			t.Errorf("image %v text %v, want %v", f.Image, f.Text, want)
		}
	})
}
