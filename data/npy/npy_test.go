package npy_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mami-lab/mami/data/npy"
)

// The fixtures were written by numpy.save / numpy.lib.format.write_array
// from [[1.5, -2, 0.25], [3, 4, -0.5]] in several dtypes and versions.
var want = []float32{1.5, -2, 0.25, 3, 4, -0.5}

func TestReadFile(t *testing.T) {
	for _, tc := range []struct {
		file  string
		descr string
		major int
	}{
		{"f8_v1.npy", "<f8", 1},
		{"f2_v1.npy", "<f2", 1},
		{"be_f4.npy", ">f4", 1},
		{"f4_v2.npy", "<f4", 2},
		{"f4_v3.npy", "<f4", 3},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, h, err := npy.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(h.Shape, []int{2, 3}) {
				t.Errorf("got %v shape %v, want %v [2 3]", got, h.Shape, want)
			}
			if h.Descr != tc.descr || h.Major != tc.major || h.FortranOrder {
				t.Errorf("header %+v, want descr %s version %d", h, tc.descr, tc.major)
			}
		})
	}
}

func TestReadFileErrors(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"fortran.npy", "Fortran-ordered"},
		{"int64.npy", `dtype "<i8"`},
	} {
		_, _, err := npy.ReadFile(filepath.Join("testdata", tc.file))
		if !errors.Is(err, npy.ErrFormat) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.file) {
			t.Errorf("%s: err = %v, want ErrFormat naming the file and %q", tc.file, err, tc.want)
		}
	}
	// A header promising more data than the file holds fails before allocating.
	var b bytes.Buffer
	if err := npy.Write(&b, []int{2, 3}, want); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "short.npy")
	if err := os.WriteFile(path, b.Bytes()[:b.Len()-4], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := npy.ReadFile(path); err == nil || !strings.Contains(err.Error(), "needs 24 data bytes, file has 20") {
		t.Errorf("short file: err = %v", err)
	}
	if _, _, err := npy.Read(bytes.NewReader(b.Bytes()[:b.Len()-4])); !errors.Is(err, npy.ErrFormat) || !strings.Contains(err.Error(), "data ends after") {
		t.Errorf("short stream: err = %v", err)
	}
}

func TestWriteRoundTrip(t *testing.T) {
	for _, shape := range [][]int{{2, 3}, {6}, {1, 6, 1}} {
		var b bytes.Buffer
		if err := npy.Write(&b, shape, want); err != nil {
			t.Fatal(err)
		}
		h, err := npy.ReadHeader(bytes.NewReader(b.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		if h.DataOffset%64 != 0 {
			t.Errorf("shape %v: data offset %d, want a multiple of 64 as numpy writes", shape, h.DataOffset)
		}
		got, h, err := npy.Read(&b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(h.Shape, shape) {
			t.Errorf("round trip of %v: got %v %v", shape, got, h.Shape)
		}
	}
	if err := npy.Write(&bytes.Buffer{}, []int{4}, want); err == nil {
		t.Error("Write with a mismatched shape: no error")
	}
}

// header builds a version-1 header around dict.
func header(dict string) []byte {
	b := []byte(npy.Magic + "\x01\x00")
	b = append(b, byte(len(dict)), byte(len(dict)>>8))
	return append(b, dict...)
}

func TestParseHeader(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    []byte
		shape []int
		err   string
	}{
		{"double quotes and spacing", header(`{"descr":"<f4","fortran_order":False,"shape":(3,4)}` + "\n"), []int{3, 4}, ""},
		{"scalar", header(`{'descr': '<f8', 'fortran_order': False, 'shape': (), }`), []int{}, ""},
		{"1-d", header(`{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }`), []int{5}, ""},
		{"python 2 long", header(`{'descr': '<f4', 'fortran_order': False, 'shape': (5L, 2L), }`), []int{5, 2}, ""},
		{"bad magic", []byte("\x93NUMPZ\x01\x00\x00\x00"), nil, "not a .npy file"},
		{"version 4", []byte(npy.Magic + "\x04\x00\x00\x00"), nil, "unsupported version 4.0"},
		{"truncated", header(`{'descr': '<f4'`)[:14], nil, "header needs"},
		{"missing key", header(`{'descr': '<f4', 'shape': (1,), }`), nil, `lacks "fortran_order"`},
		{"unknown key", header(`{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}`), nil, `unexpected key "x"`},
		{"duplicate key", header(`{'descr': '<f4', 'descr': '<f4'}`), nil, "duplicate key"},
		{"negative dim", header(`{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 2), }`), nil, "bad dimension"},
		{"1-tuple without comma", header(`{'descr': '<f4', 'fortran_order': False, 'shape': (3), }`), nil, "trailing comma"},
		{"bad bool", header(`{'descr': '<f4', 'fortran_order': 0, 'shape': (3,), }`), nil, "True or False"},
		{"trailing junk", header(`{'descr': '<f4', 'fortran_order': False, 'shape': (3,), } x`), nil, "trailing text"},
		{"non-ascii v1", header("{'descr': '<f4\xc3\xa9', 'fortran_order': False, 'shape': (3,), }"), nil, "non-ASCII"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := npy.ParseHeader(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, npy.ErrFormat) {
					t.Fatalf("err = %v, want ErrFormat containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(h.Shape, tc.shape) {
				t.Errorf("shape = %v, want %v", h.Shape, tc.shape)
			}
		})
	}
}

func FuzzParseHeader(f *testing.F) {
	for _, name := range []string{"f8_v1.npy", "f2_v1.npy", "f4_v2.npy", "f4_v3.npy", "fortran.npy", "vec.npy"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(header(`{'descr': '<f4', 'fortran_order': False, 'shape': (), }`))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := npy.ParseHeader(in)
		if err != nil {
			if !errors.Is(err, npy.ErrFormat) {
				t.Fatalf("err = %v, want ErrFormat", err)
			}
			return
		}
		if h.DataOffset > len(in) || h.Shape == nil {
			t.Fatalf("header %+v from %d bytes", h, len(in))
		}
		for _, d := range h.Shape {
			if d < 0 {
				t.Fatalf("negative dimension in %v", h.Shape)
			}
		}
		// Whatever parses must also read (or fail cleanly) as a stream.
		v, h2, err := npy.Read(bytes.NewReader(in))
		if err == nil && (len(v) != h2.NumElements() || !reflect.DeepEqual(h.Shape, h2.Shape)) {
			t.Fatalf("read %d values for shape %v", len(v), h2.Shape)
		}
	})
}
