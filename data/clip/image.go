package clip

import (
	"bufio"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // GIF decoding
	_ "image/jpeg"
	_ "image/png"
	"io"
	"math"
	"os"

	_ "golang.org/x/image/webp" // WebP decoding
)

// RGB is an 8-bit RGB image, rows top to bottom, pixels stored R, G, B
// (index (y*W+x)*3+c).
type RGB struct {
	W, H int
	Pix  []uint8
}

// DecodeImage decodes a JPEG, PNG, GIF or WebP image and converts it to RGB
// the way PIL's Image.convert("RGB") does: grayscale is replicated, alpha is
// dropped (the colour channels are kept, not composited), palettes expanded.
func DecodeImage(r io.Reader) (*RGB, error) {
	img, _, err := image.Decode(bufio.NewReader(r))
	if err != nil {
		return nil, err
	}
	return ToRGB(img), nil
}

// DecodeImageFile decodes the image file at path (see [DecodeImage]).
func DecodeImageFile(path string) (*RGB, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("decode image: %w", err)
	}
	defer f.Close()
	img, err := DecodeImage(f)
	if err != nil {
		return nil, fmt.Errorf("decode image %s: %w", path, err)
	}
	return img, nil
}

// ToRGB converts a decoded image to 8-bit RGB like PIL's convert("RGB").
func ToRGB(img image.Image) *RGB {
	b := img.Bounds()
	out := &RGB{W: b.Dx(), H: b.Dy(), Pix: make([]uint8, b.Dx()*b.Dy()*3)}
	i := 0
	if a, ok := img.(*image.NYCbCrA); ok {
		img = &a.YCbCr // lossy WebP with alpha: colour planes as stored, alpha dropped
	}
	switch src := img.(type) {
	case *image.Gray:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				v := src.GrayAt(x, y).Y
				out.Pix[i], out.Pix[i+1], out.Pix[i+2] = v, v, v
				i += 3
			}
		}
	case *image.NRGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := src.Pix[(y-b.Min.Y)*src.Stride:]
			for x := 0; x < out.W; x++ {
				copy(out.Pix[i:i+3], row[4*x:4*x+3])
				i += 3
			}
		}
	case *image.YCbCr:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				yi, ci := src.YOffset(x, y), src.COffset(x, y)
				out.Pix[i], out.Pix[i+1], out.Pix[i+2] = color.YCbCrToRGB(src.Y[yi], src.Cb[ci], src.Cr[ci])
				i += 3
			}
		}
	case *image.Paletted:
		pal := make([][3]uint8, len(src.Palette))
		for k, c := range src.Palette {
			pal[k][0], pal[k][1], pal[k][2] = rgbOf(c)
		}
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := src.Pix[(y-b.Min.Y)*src.Stride:]
			for x := 0; x < out.W; x++ {
				if int(row[x]) < len(pal) {
					copy(out.Pix[i:i+3], pal[row[x]][:])
				}
				i += 3
			}
		}
	default:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, bb := rgbOf(img.At(x, y))
				out.Pix[i], out.Pix[i+1], out.Pix[i+2] = r, g, bb
				i += 3
			}
		}
	}
	return out
}

// rgbOf returns a colour's 8-bit R, G, B without alpha compositing.
func rgbOf(c color.Color) (uint8, uint8, uint8) {
	switch v := c.(type) {
	case color.NRGBA:
		return v.R, v.G, v.B
	case color.NRGBA64:
		return uint8(v.R >> 8), uint8(v.G >> 8), uint8(v.B >> 8)
	case color.Gray16:
		g := uint8(v.Y >> 8)
		return g, g, g
	case color.YCbCr:
		return color.YCbCrToRGB(v.Y, v.Cb, v.Cr)
	}
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	return n.R, n.G, n.B
}

// bicubic is Pillow's cubic kernel with a = -0.5, in Pillow's arithmetic.
func bicubic(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return ((a+2)*x-(a+3))*x*x + 1
	}
	if x < 2 {
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

const precisionBits = 32 - 8 - 2

// resampleCoeffs computes Pillow's fixed-point filter taps for one axis:
// for each output index its first input index, tap count and taps.
func resampleCoeffs(in, out int) (bounds []int, kk []int32, ksize int) {
	scale := float64(in) / float64(out)
	fs := max(scale, 1)
	support := 2 * fs
	ksize = int(math.Ceil(support))*2 + 1
	bounds = make([]int, 2*out)
	kk = make([]int32, out*ksize)
	w := make([]float64, ksize)
	ss := 1 / fs
	for o := 0; o < out; o++ {
		center := (float64(o) + 0.5) * scale
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), in) - xmin
		var ww float64
		for x := 0; x < xmax; x++ {
			w[x] = bicubic((float64(x+xmin) - center + 0.5) * ss)
			ww += w[x]
		}
		for x := 0; x < xmax; x++ {
			v := w[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				kk[o*ksize+x] = int32(v*(1<<precisionBits) - 0.5)
			} else {
				kk[o*ksize+x] = int32(v*(1<<precisionBits) + 0.5)
			}
		}
		bounds[2*o], bounds[2*o+1] = xmin, xmax
	}
	return bounds, kk, ksize
}

func clip8(acc int32) uint8 {
	v := acc >> precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// ResizeBicubic resizes like Pillow's Image.resize((w, h), BICUBIC) on an RGB
// image, bit for bit: separable (horizontal pass first, each pass rounded to
// 8 bits), antialiased when shrinking (support scaled by the factor),
// fixed-point taps with 22 fractional bits and 32-bit accumulators as in
// Pillow's ImagingResample.
func ResizeBicubic(src *RGB, w, h int) *RGB {
	cur := src
	const half = 1 << (precisionBits - 1)
	if w != cur.W {
		bounds, kk, ks := resampleCoeffs(cur.W, w)
		dst := &RGB{W: w, H: cur.H, Pix: make([]uint8, w*cur.H*3)}
		for y := 0; y < cur.H; y++ {
			row := cur.Pix[y*cur.W*3 : (y+1)*cur.W*3]
			out := dst.Pix[y*w*3 : (y+1)*w*3]
			for x := 0; x < w; x++ {
				xmin, n := bounds[2*x], bounds[2*x+1]
				k := kk[x*ks : x*ks+n]
				px := row[xmin*3 : (xmin+n)*3]
				a0, a1, a2 := int32(half), int32(half), int32(half)
				for t, kt := range k {
					p := px[t*3 : t*3+3]
					a0 += int32(p[0]) * kt
					a1 += int32(p[1]) * kt
					a2 += int32(p[2]) * kt
				}
				out[x*3], out[x*3+1], out[x*3+2] = clip8(a0), clip8(a1), clip8(a2)
			}
		}
		cur = dst
	}
	if h != cur.H {
		bounds, kk, ks := resampleCoeffs(cur.H, h)
		dst := &RGB{W: cur.W, H: h, Pix: make([]uint8, cur.W*h*3)}
		stride := cur.W * 3
		acc := make([]int32, stride)
		for y := 0; y < h; y++ {
			ymin, n := bounds[2*y], bounds[2*y+1]
			for i := range acc {
				acc[i] = half
			}
			for t, kt := range kk[y*ks : y*ks+n] {
				in := cur.Pix[(ymin+t)*stride : (ymin+t+1)*stride]
				for i, v := range in {
					acc[i] += int32(v) * kt
				}
			}
			out := dst.Pix[y*stride : (y+1)*stride]
			for i, a := range acc {
				out[i] = clip8(a)
			}
		}
		cur = dst
	}
	if cur == src {
		cur = &RGB{W: src.W, H: src.H, Pix: append([]uint8(nil), src.Pix...)}
	}
	return cur
}

// roundHalfEven rounds like Python's round().
func roundHalfEven(x float64) int { return int(math.RoundToEven(x)) }

// Preprocessor turns images into the model's normalised CHW input like the
// reference CLIP transform (Resize, CenterCrop, ToTensor, Normalize).
type Preprocessor struct {
	ShortestEdge          int        // resize target of the shorter side
	CropWidth, CropHeight int        // centre crop
	Mean, Std             [3]float32 // per-channel normalisation
	RescaleFactor         float32    // byte scale, 1/255
}

// DefaultPreprocessor is openai/clip-vit-base-patch32's image processing.
var DefaultPreprocessor = Preprocessor{
	ShortestEdge: 224, CropWidth: 224, CropHeight: 224,
	Mean:          [3]float32{0.48145466, 0.4578275, 0.40821073},
	Std:           [3]float32{0.26862954, 0.26130258, 0.27577711},
	RescaleFactor: 1.0 / 255,
}

// ReadPreprocessor reads a Hugging Face preprocessor_config.json; missing
// fields keep [DefaultPreprocessor]'s values.
func ReadPreprocessor(path string) (*Preprocessor, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read preprocessor config: %w", err)
	}
	var c struct {
		Size          json.RawMessage `json:"size"`
		CropSize      json.RawMessage `json:"crop_size"`
		Mean          []float32       `json:"image_mean"`
		Std           []float32       `json:"image_std"`
		RescaleFactor float32         `json:"rescale_factor"`
		Resample      *int            `json:"resample"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("read preprocessor config %s: %w", path, err)
	}
	p := DefaultPreprocessor
	if len(c.Size) > 0 {
		var n int
		var m map[string]int
		if json.Unmarshal(c.Size, &n) == nil {
			p.ShortestEdge = n
		} else if json.Unmarshal(c.Size, &m) == nil && m["shortest_edge"] > 0 {
			p.ShortestEdge = m["shortest_edge"]
		} else {
			return nil, fmt.Errorf("read preprocessor config %s: size: want an int or {\"shortest_edge\": n}", path)
		}
	}
	if len(c.CropSize) > 0 {
		var n int
		var m map[string]int
		if json.Unmarshal(c.CropSize, &n) == nil {
			p.CropWidth, p.CropHeight = n, n
		} else if json.Unmarshal(c.CropSize, &m) == nil && m["height"] > 0 && m["width"] > 0 {
			p.CropWidth, p.CropHeight = m["width"], m["height"]
		} else {
			return nil, fmt.Errorf("read preprocessor config %s: crop_size: want an int or {\"height\", \"width\"}", path)
		}
	}
	if c.Resample != nil && *c.Resample != 3 {
		return nil, fmt.Errorf("read preprocessor config %s: resample %d: only 3 (bicubic) is supported", path, *c.Resample)
	}
	for name, v := range map[string][]float32{"image_mean": c.Mean, "image_std": c.Std} {
		if v != nil && len(v) != 3 {
			return nil, fmt.Errorf("read preprocessor config %s: %s: want 3 values, got %d", path, name, len(v))
		}
	}
	if c.Mean != nil {
		copy(p.Mean[:], c.Mean)
	}
	if c.Std != nil {
		copy(p.Std[:], c.Std)
	}
	if c.RescaleFactor != 0 {
		p.RescaleFactor = c.RescaleFactor
	}
	if p.ShortestEdge <= 0 || p.CropWidth <= 0 || p.CropHeight <= 0 {
		return nil, fmt.Errorf("read preprocessor config %s: sizes must be positive", path)
	}
	return &p, nil
}

// ResizedSize returns the size after the shortest-edge resize: the short side
// becomes ShortestEdge, the long side int(ShortestEdge·long/short).
func (p *Preprocessor) ResizedSize(w, h int) (int, int) {
	s := p.ShortestEdge
	if w <= h {
		return s, int(float64(s) * float64(h) / float64(w))
	}
	return int(float64(s) * float64(w) / float64(h)), s
}

// CropOrigin returns the centre-crop offsets of a w×h image, rounded half to
// even like the reference (torchvision's CenterCrop).
func (p *Preprocessor) CropOrigin(w, h int) (left, top int) {
	return roundHalfEven(float64(w-p.CropWidth) / 2), roundHalfEven(float64(h-p.CropHeight) / 2)
}

// Crop resizes and centre-crops img to CropWidth×CropHeight (zero padding
// where the resized image is smaller than the crop).
func (p *Preprocessor) Crop(img *RGB) *RGB {
	rw, rh := p.ResizedSize(img.W, img.H)
	r := ResizeBicubic(img, rw, rh)
	left, top := p.CropOrigin(rw, rh)
	out := &RGB{W: p.CropWidth, H: p.CropHeight, Pix: make([]uint8, p.CropWidth*p.CropHeight*3)}
	for y := 0; y < out.H; y++ {
		sy := y + top
		if sy < 0 || sy >= r.H {
			continue
		}
		for x := 0; x < out.W; x++ {
			sx := x + left
			if sx < 0 || sx >= r.W {
				continue
			}
			copy(out.Pix[(y*out.W+x)*3:(y*out.W+x)*3+3], r.Pix[(sy*r.W+sx)*3:])
		}
	}
	return out
}

// Normalize converts a cropped image to the CHW float32 model input
// (byte·RescaleFactor − mean) / std, in float32 as the reference does.
func (p *Preprocessor) Normalize(img *RGB) []float32 {
	n := img.W * img.H
	out := make([]float32, 3*n)
	for c := 0; c < 3; c++ {
		mean, std := p.Mean[c], p.Std[c]
		dst := out[c*n : (c+1)*n]
		for i := range dst {
			v := float32(img.Pix[i*3+c])
			if p.RescaleFactor == 1.0/255 {
				v /= 255
			} else {
				v *= p.RescaleFactor
			}
			dst[i] = (v - mean) / std
		}
	}
	return out
}

// Pixels runs the whole pipeline (resize, crop, normalise) on an RGB image.
func (p *Preprocessor) Pixels(img *RGB) []float32 { return p.Normalize(p.Crop(img)) }

// PixelsFromFile decodes and preprocesses the image file at path.
func (p *Preprocessor) PixelsFromFile(path string) ([]float32, error) {
	img, err := DecodeImageFile(path)
	if err != nil {
		return nil, err
	}
	return p.Pixels(img), nil
}
