package clip_test

import (
	"bytes"
	"testing"

	"github.com/mami-lab/mami/data/clip"
)

// FuzzParsePart feeds arbitrary bytes to the resumable-extraction record
// parser: it must not panic, and the records it accepts must re-encode to
// exactly the prefix it keeps.
func FuzzParsePart(f *testing.F) {
	f.Add([]byte{}, 2)
	f.Add([]byte{1, 0, 0, 0, 'a', 0, 0, 128, 63, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, 2)
	f.Add([]byte{255, 255, 255, 255}, 1)
	f.Fuzz(func(t *testing.T, b []byte, dim int) {
		if dim < 0 || dim > 64 {
			return
		}
		names, good, re := clip.ParsePart(b, dim)
		if good > int64(len(b)) || !bytes.Equal(re, b[:good]) {
			t.Fatalf("kept %d of %d bytes (%d names) but re-encoding differs", good, len(b), len(names))
		}
	})
}

// FuzzResizeConstant checks that the Pillow-compatible resize maps a
// constant image to the same constant for any sizes.
func FuzzResizeConstant(f *testing.F) {
	f.Add(uint8(7), uint8(5), uint8(38), uint8(32), uint8(200))
	f.Add(uint8(255), uint8(1), uint8(1), uint8(255), uint8(0))
	f.Fuzz(func(t *testing.T, w, h, ow, oh, v uint8) {
		if w == 0 || h == 0 || ow == 0 || oh == 0 {
			return
		}
		src := &clip.RGB{W: int(w), H: int(h), Pix: bytes.Repeat([]uint8{v}, int(w)*int(h)*3)}
		got := clip.ResizeBicubic(src, int(ow), int(oh))
		if got.W != int(ow) || got.H != int(oh) || !bytes.Equal(got.Pix, bytes.Repeat([]uint8{v}, int(ow)*int(oh)*3)) {
			t.Fatalf("%dx%d → %dx%d of constant %d not constant", w, h, ow, oh, v)
		}
	})
}
