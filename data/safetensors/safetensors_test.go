package safetensors_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mami-lab/mami/data/safetensors"
)

func TestRoundTripF32(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	img := []float32{1, 2, 3, 4, 5, 6}
	txt := []float32{-1, float32(math.Inf(1)), 0.5}
	meta := map[string]string{"names": `["a.jpg","b.jpg"]`, "model": "tiny"}
	err := safetensors.WriteFile(path, []safetensors.Tensor{
		safetensors.NewF32("image_embeds", []int{2, 3}, img),
		safetensors.NewF32("text_embeds", []int{3}, txt),
		safetensors.NewF32("scalar", nil, []float32{7}),
	}, meta)
	if err != nil {
		t.Fatal(err)
	}
	r, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.DataStart%8 != 0 {
		t.Errorf("data starts at %d, want 8-byte aligned", r.DataStart)
	}
	if !reflect.DeepEqual(r.Metadata, meta) {
		t.Errorf("metadata = %v, want %v", r.Metadata, meta)
	}
	var names []string
	for _, ti := range r.Tensors {
		names = append(names, ti.Name)
	}
	if want := []string{"image_embeds", "text_embeds", "scalar"}; !reflect.DeepEqual(names, want) {
		t.Errorf("tensor order = %v, want %v", names, want)
	}
	for _, tc := range []struct {
		name  string
		shape []int
		want  []float32
	}{
		{"image_embeds", []int{2, 3}, img},
		{"text_embeds", []int{3}, txt},
		{"scalar", []int{}, []float32{7}},
	} {
		got, shape, err := r.Float32(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) || len(shape) != len(tc.shape) || (len(shape) > 0 && !reflect.DeepEqual(shape, tc.shape)) {
			t.Errorf("%s = %v %v, want %v %v", tc.name, got, shape, tc.want, tc.shape)
		}
	}
	if _, _, err := r.Float32("missing"); !errors.Is(err, safetensors.ErrNotFound) {
		t.Errorf("missing tensor: err = %v, want ErrNotFound", err)
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(ents))
	}
}

// TestNumpyWritten reads a file written by an independent Python writer
// holding every third float16 bit pattern (plus specials), bfloat16 and
// float64 values with their float32 conversions computed by NumPy.
func TestNumpyWritten(t *testing.T) {
	r, err := safetensors.Open(filepath.Join("testdata", "numpy_dtypes.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Metadata["note"]; got != "written by numpy" {
		t.Errorf("metadata note = %q", got)
	}
	for _, pair := range [][2]string{{"half", "half_as_f32"}, {"bf16", "bf16_as_f32"}} {
		got, _, err := r.Float32(pair[0])
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := r.Float32(pair[1])
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, want %d", pair[0], len(got), len(want))
		}
		for i := range got {
			g, w := math.Float32bits(got[i]), math.Float32bits(want[i])
			if g != w && !(math.IsNaN(float64(got[i])) && math.IsNaN(float64(want[i]))) {
				t.Fatalf("%s[%d] = %v (%#x), want %v (%#x)", pair[0], i, got[i], g, want[i], w)
			}
		}
	}
	f64, _, err := r.Float32("f64")
	if err != nil {
		t.Fatal(err)
	}
	if f64[0] != 1.5 || f64[1] != -2.25 || !math.IsInf(float64(f64[2]), 1) {
		t.Errorf("f64 = %v", f64)
	}
	if _, _, err := r.Float32("i64"); !errors.Is(err, safetensors.ErrDType) {
		t.Errorf("i64 to float32: err = %v, want ErrDType", err)
	}
	raw, err := r.Tensor("i64")
	if err != nil {
		t.Fatal(err)
	}
	if v := int64(binary.LittleEndian.Uint64(raw.Data[8:])); v != -7 {
		t.Errorf("i64[1] = %d, want -7", v)
	}
	ft, err := r.Tensor("half")
	if err != nil {
		t.Fatal(err)
	}
	vals, err := ft.Float32()
	if err != nil || len(vals) != ft.Shape[0] {
		t.Errorf("Tensor.Float32: %d values, err %v", len(vals), err)
	}
}

// TestCLIPTiny reads the shared tiny CLIP checkpoint (a Hugging Face file).
func TestCLIPTiny(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "testdata", "clip", "tiny", "model.safetensors")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("shared fixture not available: %v", err)
	}
	r, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(r.Tensors) != 78 || r.Metadata["format"] != "pt" {
		t.Errorf("%d tensors, metadata %v; want 78 and format=pt", len(r.Tensors), r.Metadata)
	}
	v, shape, err := r.Float32("text_model.embeddings.position_embedding.weight")
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, x := range v {
		sum += float64(x)
	}
	if !reflect.DeepEqual(shape, []int{77, 32}) || math.Abs(sum-0.5749046559503768) > 1e-5 || math.Abs(float64(v[0])-0.02370539) > 1e-8 {
		t.Errorf("position embedding: shape %v sum %v first %v; want [77 32], 0.574905, 0.02370539", shape, sum, v[0])
	}
	ls, shape, err := r.Float32("logit_scale")
	if err != nil || len(shape) != 0 || math.Abs(float64(ls[0])-2.714726) > 1e-6 {
		t.Errorf("logit_scale = %v shape %v err %v", ls, shape, err)
	}
}

func TestHalfToFloat32(t *testing.T) {
	for _, tc := range []struct {
		h    uint16
		want float32
	}{
		{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, 5.9604645e-08},
		{0x0400, 6.1035156e-05}, {0x3555, 0.33325195}, {0x8000, float32(math.Copysign(0, -1))},
		{0x7c00, float32(math.Inf(1))}, {0xfc00, float32(math.Inf(-1))},
	} {
		if got := safetensors.HalfToFloat32(tc.h); math.Float32bits(got) != math.Float32bits(tc.want) {
			t.Errorf("HalfToFloat32(%#x) = %v, want %v", tc.h, got, tc.want)
		}
	}
	if got := safetensors.HalfToFloat32(0x7e00); !math.IsNaN(float64(got)) {
		t.Errorf("HalfToFloat32(0x7e00) = %v, want NaN", got)
	}
}

// file builds a safetensors byte stream from a header string and data size.
func file(header string, data int) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(make([]byte, data))
	return b.Bytes()
}

func TestReadHeaderErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"short", []byte{1, 2, 3}, "shorter than the 8-byte"},
		{"header past end", append(binary.LittleEndian.AppendUint64(nil, 100), '{', '}'), "exceeds file size"},
		{"huge header", binary.LittleEndian.AppendUint64(nil, 1<<40), "exceeds"},
		{"not json", file("[1,2]", 0), "does not start with"},
		{"bad json", file("{\"a\":", 0), "header JSON"},
		{"unknown dtype", file(`{"a":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}}`, 4), `unknown dtype "F17"`},
		{"size mismatch", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4), "needs 8 bytes"},
		{"gap", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), "gap or overlap"},
		{"overlap", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 4), "gap or overlap"},
		{"trailing data", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 8), "cover 4 data bytes, file has 8"},
		{"negative dim", file(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4), "bad dimension"},
		{"bad offsets", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, 4), "bad data_offsets"},
		{"one offset", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, 4), "2 numbers"},
		{"metadata not strings", file(`{"__metadata__":{"a":1}}`, 0), "map strings to strings"},
		{"overflow", file(`{"a":{"dtype":"F64","shape":[2147483647,2147483647,2147483647],"data_offsets":[0,4]}}`, 4), "overflows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := safetensors.NewReader(bytes.NewReader(tc.in), int64(len(tc.in)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tensors []safetensors.Tensor
		want    string
	}{
		{"duplicate", []safetensors.Tensor{safetensors.NewF32("a", []int{1}, []float32{1}), safetensors.NewF32("a", []int{1}, []float32{1})}, "duplicate"},
		{"reserved", []safetensors.Tensor{safetensors.NewF32("__metadata__", []int{1}, []float32{1})}, "invalid tensor name"},
		{"short data", []safetensors.Tensor{safetensors.NewF32("a", []int{2, 2}, []float32{1})}, "needs 16 bytes, have 4"},
		{"bad dtype", []safetensors.Tensor{{Name: "a", DType: "X", Shape: []int{1}, Data: []byte{0}}}, "unknown dtype"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := safetensors.Write(&bytes.Buffer{}, tc.tensors, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func FuzzReadHeader(f *testing.F) {
	var good bytes.Buffer
	safetensors.Write(&good, []safetensors.Tensor{
		safetensors.NewF32("a", []int{2}, []float32{1, 2}),
		{Name: "h", DType: "F16", Shape: []int{1, 1}, Data: []byte{0, 0x3c}},
	}, map[string]string{"k": "v"})
	f.Add(good.Bytes())
	f.Add(file(`{}`, 0))
	f.Add(file(`{"a":{"dtype":"BF16","shape":[],"data_offsets":[0,2]}}`, 2))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := safetensors.NewReader(bytes.NewReader(in), int64(len(in)))
		if err != nil {
			return
		}
		var total int64
		for _, ti := range r.Tensors {
			if ti.Offset < r.DataStart || ti.Offset+ti.Size > int64(len(in)) {
				t.Fatalf("tensor %q range [%d,%d) outside file of %d bytes", ti.Name, ti.Offset, ti.Offset+ti.Size, len(in))
			}
			total += ti.Size
			tn, err := r.Tensor(ti.Name)
			if err != nil {
				t.Fatalf("header accepted but tensor %q unreadable: %v", ti.Name, err)
			}
			if int64(len(tn.Data)) != ti.Size {
				t.Fatalf("tensor %q: %d bytes, want %d", ti.Name, len(tn.Data), ti.Size)
			}
			switch ti.DType {
			case "F32", "F16", "BF16", "F64":
				v, _, err := r.Float32(ti.Name)
				if err != nil || len(v) != ti.NumElements() {
					t.Fatalf("Float32(%q) = %d values, err %v; want %d", ti.Name, len(v), err, ti.NumElements())
				}
			}
		}
		if total != int64(len(in))-r.DataStart {
			t.Fatalf("tensors cover %d bytes, data buffer has %d", total, int64(len(in))-r.DataStart)
		}
	})
}

func BenchmarkReaderFloat32(b *testing.B) {
	const n = 1 << 20 // 4 MiB of F32
	v := make([]float32, n)
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, []safetensors.Tensor{safetensors.NewF32("x", []int{n}, v)}, nil); err != nil {
		b.Fatal(err)
	}
	r, err := safetensors.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(4 * n)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.Float32("x"); err != nil {
			b.Fatal(err)
		}
	}
}
