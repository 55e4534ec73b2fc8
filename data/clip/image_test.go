package clip_test

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/mami-lab/mami/data/clip"
)

func bytesOf(v []int) []uint8 {
	out := make([]uint8, len(v))
	for i, x := range v {
		out[i] = uint8(x)
	}
	return out
}

func maxLevelDiff(a, b []uint8) int {
	worst := 0
	for i := range a {
		d := int(a[i]) - int(b[i])
		worst = max(worst, d, -d)
	}
	return worst
}

func tinyPreprocessor(t *testing.T) *clip.Preprocessor {
	t.Helper()
	p, err := clip.ReadPreprocessor(filepath.Join(tinyDir(t), "preprocessor_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPreprocessStages checks each stage of the image pipeline against the
// reference: decoding, resize + crop from the reference's decoded bytes
// (exact), and normalisation.
func TestPreprocessStages(t *testing.T) {
	ref := loadReference(t)
	p := tinyPreprocessor(t)
	for _, im := range ref.Images {
		t.Run(im.File, func(t *testing.T) {
			decoded, err := clip.DecodeImageFile(filepath.Join(tinyDir(t), im.File))
			if err != nil {
				t.Fatal(err)
			}
			if decoded.W != im.Width || decoded.H != im.Height {
				t.Fatalf("decoded %dx%d, want %dx%d", decoded.W, decoded.H, im.Width, im.Height)
			}
			wantLevels := 0
			if filepath.Ext(im.File) == ".jpg" {
				wantLevels = 3 // Go's JPEG decoder vs libjpeg-turbo (tiny/README.md)
			}
			if d := maxLevelDiff(decoded.Pix, bytesOf(im.Decoded)); d > wantLevels {
				t.Errorf("decoded pixels differ by %d levels, want <= %d", d, wantLevels)
			}
			rw, rh := p.ResizedSize(im.Width, im.Height)
			if rw != im.ResizedWidth || rh != im.ResizedHeight {
				t.Errorf("ResizedSize = %dx%d, want %dx%d", rw, rh, im.ResizedWidth, im.ResizedHeight)
			}
			if l, tp := p.CropOrigin(rw, rh); l != im.CropLeft || tp != im.CropTop {
				t.Errorf("CropOrigin = (%d, %d), want (%d, %d)", l, tp, im.CropLeft, im.CropTop)
			}
			refDecoded := &clip.RGB{W: im.Width, H: im.Height, Pix: bytesOf(im.Decoded)}
			cropped := p.Crop(refDecoded)
			if d := maxLevelDiff(cropped.Pix, bytesOf(im.Cropped)); d != 0 {
				t.Errorf("resize+crop from the reference's decoded bytes differs by %d levels, want 0", d)
			}
			assertClose(t, "pixel_values from cropped bytes", p.Normalize(&clip.RGB{W: 32, H: 32, Pix: bytesOf(im.Cropped)}), im.PixelValues, 1e-6)
		})
	}
}

// TestImageFilesEndToEnd runs the files through preprocessing and the model:
// PNGs must match the reference within the feature tolerance, the JPEG within
// the decoder-difference bounds of tiny/README.md.
func TestImageFilesEndToEnd(t *testing.T) {
	ref := loadReference(t)
	p := tinyPreprocessor(t)
	m := loadTiny(t)
	for _, im := range ref.Images {
		t.Run(im.File, func(t *testing.T) {
			px, err := p.PixelsFromFile(filepath.Join(tinyDir(t), im.File))
			if err != nil {
				t.Fatal(err)
			}
			pixTol, embTol := 1e-6, 1e-4
			if filepath.Ext(im.File) == ".jpg" {
				pixTol, embTol = 0.035, 1e-3
			}
			assertClose(t, "pixel_values", px, im.PixelValues, pixTol)
			emb, err := m.EncodeImages([][]float32{px})
			if err != nil {
				t.Fatal(err)
			}
			assertClose(t, "image_embeds_normalized", clip.Normalize(emb[0]), im.EmbedsNorm, embTol)
		})
	}
}

// TestResizeProperties checks behaviours of the Pillow-compatible resize on
// synthetic images: constant images stay constant, identity is a copy, and
// the alpha channel is dropped without compositing.
func TestResizeProperties(t *testing.T) {
	for _, tc := range []struct{ w, h, ow, oh int }{{640, 480, 298, 224}, {7, 5, 38, 32}, {100, 100, 100, 100}, {3, 900, 1, 300}} {
		src := &clip.RGB{W: tc.w, H: tc.h, Pix: bytes.Repeat([]uint8{200, 13, 255}, tc.w*tc.h)}
		got := clip.ResizeBicubic(src, tc.ow, tc.oh)
		if got.W != tc.ow || got.H != tc.oh {
			t.Fatalf("size %dx%d, want %dx%d", got.W, got.H, tc.ow, tc.oh)
		}
		if !bytes.Equal(got.Pix, bytes.Repeat([]uint8{200, 13, 255}, tc.ow*tc.oh)) {
			t.Errorf("%dx%d→%dx%d: constant image not preserved", tc.w, tc.h, tc.ow, tc.oh)
		}
	}
	img := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	img.SetNRGBA(0, 0, color.NRGBA{R: 10, G: 20, B: 30, A: 0})
	img.SetNRGBA(1, 0, color.NRGBA{R: 40, G: 50, B: 60, A: 128})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	rgb, err := clip.DecodeImage(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint8{10, 20, 30, 40, 50, 60}; !bytes.Equal(rgb.Pix, want) {
		t.Errorf("RGBA PNG → RGB = %v, want %v (alpha dropped like PIL)", rgb.Pix, want)
	}
}

func TestDecodeImageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.png")
	os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\ngarbage"), 0o644)
	for _, path := range []string{bad, filepath.Join(dir, "missing.jpg")} {
		if _, err := clip.DecodeImageFile(path); err == nil || !bytes.Contains([]byte(err.Error()), []byte(filepath.Base(path))) {
			t.Errorf("DecodeImageFile(%s) error %v: want an error naming the file", path, err)
		}
	}
}

func TestReadPreprocessor(t *testing.T) {
	p := tinyPreprocessor(t)
	if p.ShortestEdge != 32 || p.CropWidth != 32 || p.CropHeight != 32 {
		t.Errorf("sizes %d %dx%d, want 32 32x32", p.ShortestEdge, p.CropWidth, p.CropHeight)
	}
	if math.Abs(float64(p.Std[2])-0.27577711) > 1e-8 {
		t.Errorf("std %v", p.Std)
	}
	dir := t.TempDir()
	for _, tc := range []struct{ name, body string }{
		{"bad json", "{"},
		{"bad mean", `{"image_mean": [1, 2]}`},
		{"bilinear", `{"resample": 2}`},
		{"bad size", `{"size": "big"}`},
	} {
		path := filepath.Join(dir, tc.name+".json")
		os.WriteFile(path, []byte(tc.body), 0o644)
		if _, err := clip.ReadPreprocessor(path); err == nil {
			t.Errorf("%s: got nil error", tc.name)
		}
	}
}

func TestToRGBFormats(t *testing.T) {
	ycc := image.NewYCbCr(image.Rect(0, 0, 2, 2), image.YCbCrSubsampleRatio420)
	for i := range ycc.Y {
		ycc.Y[i] = uint8(60 * i)
	}
	ycc.Cb[0], ycc.Cr[0] = 100, 200
	nycca := &image.NYCbCrA{YCbCr: *ycc, A: []uint8{0, 10, 128, 255}, AStride: 2}
	gray16 := image.NewGray16(image.Rect(0, 0, 1, 1))
	gray16.SetGray16(0, 0, color.Gray16{Y: 0xabcd})
	pal := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.NRGBA{1, 2, 3, 0}, color.RGBA{4, 5, 6, 255}})
	pal.Pix[1] = 1
	want420 := func() []uint8 {
		var out []uint8
		for i := 0; i < 4; i++ {
			r, g, b := color.YCbCrToRGB(uint8(60*i), 100, 200)
			out = append(out, r, g, b)
		}
		return out
	}()
	for _, tc := range []struct {
		name string
		img  image.Image
		want []uint8
	}{
		{"YCbCr 4:2:0", ycc, want420},
		{"NYCbCrA drops alpha", nycca, want420},
		{"Gray16 keeps the high byte", gray16, []uint8{0xab, 0xab, 0xab}},
		{"Paletted ignores alpha", pal, []uint8{1, 2, 3, 4, 5, 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := clip.ToRGB(tc.img).Pix; !bytes.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
