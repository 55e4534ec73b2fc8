// Package safetensors reads and writes the safetensors tensor file format
// (https://github.com/huggingface/safetensors).
//
// # Format
//
// A file is an 8-byte little-endian unsigned header length N, then N bytes of
// JSON header, then the data buffer. The header maps each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the
// start of the data buffer) and may hold a "__metadata__" object of string
// values. Tensor data is little-endian and C-ordered. The reader checks that
// the tensors tile the data buffer exactly (no gaps, no overlaps), that each
// byte range matches dtype × shape, and that the header is at most
// [MaxHeaderSize] bytes.
//
// # Use
//
// [Open] reads only the header and serves tensors on demand through
// [io.ReaderAt], so a 600 MB feature file is never held twice in memory:
// [Reader.Float32] decodes straight from the file into a []float32.
// [ReadHeader] works on any [io.ReaderAt]. [Write] and [WriteFile] store
// float32 tensors (see [NewF32]) plus string metadata.
//
// Supported for decoding to float32: F32, F16, BF16 (and F64). Other dtypes
// are listed in the header and readable as raw bytes with [Reader.Tensor].
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// MaxHeaderSize is the largest JSON header accepted (100 MB, as the reference
// implementation).
const MaxHeaderSize = 100 << 20

// metadataKey is the reserved header key holding the string metadata.
const metadataKey = "__metadata__"

// ErrFormat is wrapped by every error about malformed file contents.
var ErrFormat = errors.New("safetensors: malformed file")

// dtypeSizes gives the element size in bytes of each dtype the format names.
var dtypeSizes = map[string]int{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
}

// DTypeSize returns the size in bytes of one element of dtype, or 0 when the
// dtype is unknown.
func DTypeSize(dtype string) int { return dtypeSizes[dtype] }

// Info describes one tensor of a file: its dtype, shape and absolute byte
// range in the file.
type Info struct {
	Name   string
	DType  string
	Shape  []int
	Offset int64 // absolute offset of the first byte in the file
	Size   int64 // bytes
}

// NumElements returns the product of the shape (1 for a scalar).
func (i Info) NumElements() int {
	n := 1
	for _, d := range i.Shape {
		n *= d
	}
	return n
}

// Header is a parsed safetensors header.
type Header struct {
	// Metadata holds the "__metadata__" strings (never nil after parsing).
	Metadata map[string]string
	// Tensors lists the tensors in file order (by offset).
	Tensors []Info
	// DataStart is the absolute offset of the data buffer.
	DataStart int64
	byName    map[string]int
}

// Lookup returns the tensor called name.
func (h *Header) Lookup(name string) (Info, bool) {
	i, ok := h.byName[name]
	if !ok {
		return Info{}, false
	}
	return h.Tensors[i], true
}

type rawEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// ReadHeader parses the header of a file of the given total size read
// through r, and checks it against the file size.
func ReadHeader(r io.ReaderAt, size int64) (*Header, error) {
	if size < 8 {
		return nil, fmt.Errorf("%w: %d bytes is shorter than the 8-byte header length", ErrFormat, size)
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("read header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("%w: header length %d exceeds %d", ErrFormat, n, MaxHeaderSize)
	}
	if int64(n) > size-8 {
		return nil, fmt.Errorf("%w: header length %d exceeds file size %d", ErrFormat, n, size)
	}
	js := make([]byte, n)
	if _, err := r.ReadAt(js, 8); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	return parseHeader(js, size-8-int64(n))
}

func parseHeader(js []byte, dataLen int64) (*Header, error) {
	if len(js) == 0 || js[0] != '{' {
		return nil, fmt.Errorf("%w: header does not start with '{'", ErrFormat)
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(js))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: header JSON: %v", ErrFormat, err)
	}
	h := &Header{Metadata: map[string]string{}, DataStart: 8 + int64(len(js)), byName: map[string]int{}}
	for name, msg := range raw {
		if name == metadataKey {
			if err := json.Unmarshal(msg, &h.Metadata); err != nil {
				return nil, fmt.Errorf("%w: %s must map strings to strings: %v", ErrFormat, metadataKey, err)
			}
			if h.Metadata == nil {
				h.Metadata = map[string]string{}
			}
			continue
		}
		var e rawEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("%w: tensor %q: %v", ErrFormat, name, err)
		}
		info, err := e.info(name, h.DataStart)
		if err != nil {
			return nil, err
		}
		h.Tensors = append(h.Tensors, info)
	}
	sort.Slice(h.Tensors, func(i, j int) bool {
		if h.Tensors[i].Offset != h.Tensors[j].Offset {
			return h.Tensors[i].Offset < h.Tensors[j].Offset
		}
		return h.Tensors[i].Name < h.Tensors[j].Name
	})
	next := h.DataStart
	for i, t := range h.Tensors {
		if t.Offset != next {
			return nil, fmt.Errorf("%w: tensor %q starts at data offset %d, want %d (gap or overlap)",
				ErrFormat, t.Name, t.Offset-h.DataStart, next-h.DataStart)
		}
		next += t.Size
		h.byName[t.Name] = i
	}
	if got := next - h.DataStart; got != dataLen {
		return nil, fmt.Errorf("%w: tensors cover %d data bytes, file has %d", ErrFormat, got, dataLen)
	}
	return h, nil
}

func (e rawEntry) info(name string, dataStart int64) (Info, error) {
	size := int64(DTypeSize(e.DType))
	if size == 0 {
		return Info{}, fmt.Errorf("%w: tensor %q: unknown dtype %q", ErrFormat, name, e.DType)
	}
	if e.Shape == nil {
		return Info{}, fmt.Errorf("%w: tensor %q: missing shape", ErrFormat, name)
	}
	if len(e.DataOffsets) != 2 {
		return Info{}, fmt.Errorf("%w: tensor %q: data_offsets must hold 2 numbers, got %d", ErrFormat, name, len(e.DataOffsets))
	}
	begin, end := e.DataOffsets[0], e.DataOffsets[1]
	if begin < 0 || end < begin || end > math.MaxInt64-dataStart {
		return Info{}, fmt.Errorf("%w: tensor %q: bad data_offsets [%d, %d]", ErrFormat, name, begin, end)
	}
	shape := make([]int, len(e.Shape))
	for i, d := range e.Shape {
		if d < 0 || d > math.MaxInt32 {
			return Info{}, fmt.Errorf("%w: tensor %q: bad dimension %d", ErrFormat, name, d)
		}
		if size != 0 && d != 0 && size > (math.MaxInt64/2)/d {
			return Info{}, fmt.Errorf("%w: tensor %q: shape %v overflows", ErrFormat, name, e.Shape)
		}
		size *= d
		shape[i] = int(d)
	}
	if size != end-begin {
		return Info{}, fmt.Errorf("%w: tensor %q: %s%v needs %d bytes, data_offsets give %d",
			ErrFormat, name, e.DType, shape, size, end-begin)
	}
	return Info{Name: name, DType: e.DType, Shape: shape, Offset: dataStart + begin, Size: size}, nil
}

// Tensor is a tensor held in memory: raw little-endian bytes plus dtype and
// shape.
type Tensor struct {
	Name  string
	DType string
	Shape []int
	Data  []byte
}

// NewF32 returns an F32 tensor holding a copy of data. len(data) must equal
// the product of shape; [Write] checks it.
func NewF32(name string, shape []int, data []float32) Tensor {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return Tensor{Name: name, DType: "F32", Shape: append([]int(nil), shape...), Data: b}
}

// Float32 decodes the tensor (F32, F16, BF16 or F64) into float32 values.
func (t Tensor) Float32() ([]float32, error) {
	size := DTypeSize(t.DType)
	if size == 0 || len(t.Data)%size != 0 {
		return nil, fmt.Errorf("tensor %q: %d bytes of %s", t.Name, len(t.Data), t.DType)
	}
	out := make([]float32, len(t.Data)/size)
	if err := decode(out, t.Data, t.DType); err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return out, nil
}

// ErrDType is wrapped when a tensor's dtype cannot be converted to float32.
var ErrDType = errors.New("safetensors: dtype not convertible to float32")

func decode(dst []float32, src []byte, dtype string) error {
	switch dtype {
	case "F32":
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case "F16":
		for i := range dst {
			dst[i] = HalfToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case "BF16":
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
		}
	case "F64":
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
		}
	default:
		return fmt.Errorf("%w: %s", ErrDType, dtype)
	}
	return nil
}

// HalfToFloat32 converts an IEEE 754 binary16 value to float32 exactly
// (subnormals, infinities and NaN included).
func HalfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	case exp == 0:
		if frac == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: value = frac * 2^-24.
		v := float32(frac) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	default:
		return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
	}
}

// Reader serves the tensors of an open file on demand. It is safe for
// concurrent use (reads go through ReadAt).
type Reader struct {
	*Header
	r io.ReaderAt
	f *os.File
}

// NewReader parses the header of the size-byte file read through r.
func NewReader(r io.ReaderAt, size int64) (*Reader, error) {
	h, err := ReadHeader(r, size)
	if err != nil {
		return nil, err
	}
	return &Reader{Header: h, r: r}, nil
}

// Open opens the file at path and parses its header; the caller must Close
// the Reader.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open safetensors: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open safetensors %s: %w", path, err), f.Close())
	}
	r, err := NewReader(f, st.Size())
	if err != nil {
		return nil, errors.Join(fmt.Errorf("read safetensors %s: %w", path, err), f.Close())
	}
	r.f = f
	return r, nil
}

// Close closes the file opened by [Open]; it is a no-op for [NewReader].
func (r *Reader) Close() error {
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}

// ErrNotFound is wrapped when a named tensor is absent.
var ErrNotFound = errors.New("safetensors: tensor not found")

// Tensor reads the raw bytes of the named tensor.
func (r *Reader) Tensor(name string) (Tensor, error) {
	info, ok := r.Lookup(name)
	if !ok {
		return Tensor{}, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	b := make([]byte, info.Size)
	if info.Size == 0 { // an empty tensor may sit at the very end of the file
		return Tensor{Name: name, DType: info.DType, Shape: append([]int(nil), info.Shape...), Data: b}, nil
	}
	if _, err := r.r.ReadAt(b, info.Offset); err != nil {
		return Tensor{}, fmt.Errorf("read tensor %q: %w", name, err)
	}
	return Tensor{Name: name, DType: info.DType, Shape: append([]int(nil), info.Shape...), Data: b}, nil
}

// Float32 reads the named tensor and converts it to float32, streaming from
// the file in chunks so that only the result is allocated. It returns the
// values and the shape.
func (r *Reader) Float32(name string) ([]float32, []int, error) {
	info, ok := r.Lookup(name)
	if !ok {
		return nil, nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	size := int64(DTypeSize(info.DType))
	switch info.DType {
	case "F32", "F16", "BF16", "F64":
	default:
		return nil, nil, fmt.Errorf("tensor %q: %w: %s", name, ErrDType, info.DType)
	}
	out := make([]float32, info.Size/size)
	const chunk = 1 << 20
	buf := make([]byte, min(int64(chunk)*size, info.Size))
	for done := int64(0); done < int64(len(out)); {
		n := min(int64(len(buf))/size, int64(len(out))-done)
		b := buf[:n*size]
		if _, err := r.r.ReadAt(b, info.Offset+done*size); err != nil {
			return nil, nil, fmt.Errorf("read tensor %q: %w", name, err)
		}
		if err := decode(out[done:done+n], b, info.DType); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		done += n
	}
	return out, append([]int(nil), info.Shape...), nil
}

// Write writes tensors (in the given order) and metadata in safetensors
// format. Names must be unique and not "__metadata__", and each tensor's
// data length must match its dtype and shape.
func Write(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	hdr := make(map[string]any, len(tensors)+1)
	if len(metadata) > 0 {
		hdr[metadataKey] = metadata
	}
	var off int64
	for _, t := range tensors {
		if t.Name == metadataKey || t.Name == "" {
			return fmt.Errorf("write safetensors: invalid tensor name %q", t.Name)
		}
		if _, dup := hdr[t.Name]; dup {
			return fmt.Errorf("write safetensors: duplicate tensor name %q", t.Name)
		}
		size := int64(DTypeSize(t.DType))
		if size == 0 {
			return fmt.Errorf("write safetensors: tensor %q: unknown dtype %q", t.Name, t.DType)
		}
		for _, d := range t.Shape {
			if d < 0 {
				return fmt.Errorf("write safetensors: tensor %q: negative dimension in %v", t.Name, t.Shape)
			}
			size *= int64(d)
		}
		if size != int64(len(t.Data)) {
			return fmt.Errorf("write safetensors: tensor %q: %s%v needs %d bytes, have %d",
				t.Name, t.DType, t.Shape, size, len(t.Data))
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		hdr[t.Name] = map[string]any{"dtype": t.DType, "shape": shape, "data_offsets": []int64{off, off + size}}
		off += size
	}
	js, err := json.Marshal(hdr)
	if err != nil {
		return fmt.Errorf("write safetensors: header: %w", err)
	}
	// Pad the header with spaces so the data buffer starts 8-byte aligned.
	if pad := (8 - len(js)%8) % 8; pad > 0 {
		js = append(js, bytes.Repeat([]byte{' '}, pad)...)
	}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(js)))
	if _, err := w.Write(lenBuf[:]); err != nil {
		return fmt.Errorf("write safetensors: %w", err)
	}
	if _, err := w.Write(js); err != nil {
		return fmt.Errorf("write safetensors: %w", err)
	}
	for _, t := range tensors {
		if _, err := w.Write(t.Data); err != nil {
			return fmt.Errorf("write safetensors: tensor %q: %w", t.Name, err)
		}
	}
	return nil
}

// WriteFile writes tensors and metadata to path atomically (a temporary file
// in the same directory, synced, then renamed over path).
func WriteFile(path string, tensors []Tensor, metadata map[string]string) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write safetensors %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, os.Remove(tmp.Name()))
		}
	}()
	if err := Write(tmp, tensors, metadata); err != nil {
		return errors.Join(fmt.Errorf("write safetensors %s: %w", path, err), tmp.Close())
	}
	if err := tmp.Sync(); err != nil {
		return errors.Join(fmt.Errorf("write safetensors %s: %w", path, err), tmp.Close())
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write safetensors %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write safetensors %s: %w", path, err)
	}
	return nil
}
