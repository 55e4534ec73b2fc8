// Package npy reads and writes NumPy .npy arrays of floating-point values.
//
// # Format
//
// A .npy file is the magic "\x93NUMPY", a major and a minor version byte, a
// little-endian header length (2 bytes in version 1, 4 bytes in versions 2
// and 3), an ASCII (version 3: UTF-8) Python dict literal such as
//
//	{'descr': '<f4', 'fortran_order': False, 'shape': (11000, 512), }
//
// padded with spaces and a final newline, then the raw array data.
//
// [ParseHeader] accepts versions 1.0, 2.0 and 3.0; [Read] decodes dtypes
// f2, f4 and f8 of either byte order, in C order, into float32. [Write]
// writes version 1.0 '<f4' files, the format numpy.save uses.
package npy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/mami-lab/mami/data/safetensors"
)

// Magic starts every .npy file.
const Magic = "\x93NUMPY"

// MaxHeaderLen bounds the header dict (numpy itself refuses more than 10,000
// bytes without allow_pickle-like overrides; we allow a little more).
const MaxHeaderLen = 1 << 16

// ErrFormat is wrapped by every error about a malformed .npy file.
var ErrFormat = errors.New("npy: malformed file")

// Header is a parsed .npy header.
type Header struct {
	Major, Minor int
	Descr        string // e.g. "<f4"
	FortranOrder bool
	Shape        []int
	DataOffset   int // bytes before the array data
}

// maxElements caps the element count a header may declare: 2^40, or what an
// int holds on 32-bit platforms.
const maxElements = int(min(uint64(1)<<40, uint64(^uint(0)>>1)))

// NumElements returns the product of the shape (1 for a scalar), or -1 when
// it exceeds maxElements.
func (h Header) NumElements() int {
	n := 1
	for _, d := range h.Shape {
		if d != 0 && n > maxElements/d {
			return -1
		}
		n *= d
	}
	return n
}

// ItemSize returns the size of one element of h.Descr in bytes, or 0 when
// the dtype is not a supported float.
func (h Header) ItemSize() int {
	if len(h.Descr) != 3 || !strings.ContainsRune("<>=|", rune(h.Descr[0])) || h.Descr[1] != 'f' {
		return 0
	}
	switch h.Descr[2] {
	case '2':
		return 2
	case '4':
		return 4
	case '8':
		return 8
	}
	return 0
}

// ReadHeader reads and parses the header at the start of r, leaving r at the
// first data byte.
func ReadHeader(r io.Reader) (Header, error) {
	var pre [12]byte
	if _, err := io.ReadFull(r, pre[:10]); err != nil {
		return Header{}, fmt.Errorf("%w: reading preamble: %v", ErrFormat, err)
	}
	if string(pre[:6]) != Magic {
		return Header{}, fmt.Errorf("%w: not a .npy file (bad magic %q)", ErrFormat, pre[:6])
	}
	major := int(pre[6])
	var hlen, off int
	switch major {
	case 1:
		hlen, off = int(binary.LittleEndian.Uint16(pre[8:10])), 10
	case 2, 3:
		if _, err := io.ReadFull(r, pre[10:12]); err != nil {
			return Header{}, fmt.Errorf("%w: reading header length: %v", ErrFormat, err)
		}
		n := binary.LittleEndian.Uint32(pre[8:12])
		if n > MaxHeaderLen {
			return Header{}, fmt.Errorf("%w: header length %d exceeds %d", ErrFormat, n, MaxHeaderLen)
		}
		hlen, off = int(n), 12
	default:
		return Header{}, fmt.Errorf("%w: unsupported version %d.%d", ErrFormat, pre[6], pre[7])
	}
	buf := make([]byte, off+hlen)
	copy(buf, pre[:off])
	if _, err := io.ReadFull(r, buf[off:]); err != nil {
		return Header{}, fmt.Errorf("%w: reading %d-byte header: %v", ErrFormat, hlen, err)
	}
	return ParseHeader(buf)
}

// ParseHeader parses a complete header (magic through the final newline).
func ParseHeader(b []byte) (Header, error) {
	if len(b) < 10 || string(b[:6]) != Magic {
		return Header{}, fmt.Errorf("%w: not a .npy file", ErrFormat)
	}
	h := Header{Major: int(b[6]), Minor: int(b[7])}
	var hlen, off int
	switch h.Major {
	case 1:
		hlen, off = int(binary.LittleEndian.Uint16(b[8:10])), 10
	case 2, 3:
		if len(b) < 12 {
			return Header{}, fmt.Errorf("%w: truncated header length", ErrFormat)
		}
		n := binary.LittleEndian.Uint32(b[8:12])
		if n > MaxHeaderLen {
			return Header{}, fmt.Errorf("%w: header length %d exceeds %d", ErrFormat, n, MaxHeaderLen)
		}
		hlen, off = int(n), 12
	default:
		return Header{}, fmt.Errorf("%w: unsupported version %d.%d", ErrFormat, h.Major, h.Minor)
	}
	if len(b) < off+hlen {
		return Header{}, fmt.Errorf("%w: header needs %d bytes, have %d", ErrFormat, off+hlen, len(b))
	}
	h.DataOffset = off + hlen
	dict := b[off : off+hlen]
	if h.Major < 3 {
		for _, c := range dict {
			if c >= 0x80 {
				return Header{}, fmt.Errorf("%w: non-ASCII byte in a version %d header", ErrFormat, h.Major)
			}
		}
	}
	if err := parseDict(string(dict), &h); err != nil {
		return Header{}, err
	}
	return h, nil
}

// parseDict parses the Python dict literal of a header.
func parseDict(s string, h *Header) error {
	p := &dictParser{s: strings.TrimRight(s, " \t\r\n\x00")}
	if !p.eat('{') {
		return p.errorf("want '{'")
	}
	seen := map[string]bool{}
	for {
		if p.eat('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return err
		}
		if seen[key] {
			return p.errorf("duplicate key %q", key)
		}
		seen[key] = true
		if !p.eat(':') {
			return p.errorf("want ':' after %q", key)
		}
		switch key {
		case "descr":
			if h.Descr, err = p.str(); err != nil {
				return err
			}
		case "fortran_order":
			if h.FortranOrder, err = p.boolean(); err != nil {
				return err
			}
		case "shape":
			if h.Shape, err = p.tuple(); err != nil {
				return err
			}
		default:
			return p.errorf("unexpected key %q", key)
		}
		if !p.eat(',') {
			if !p.eat('}') {
				return p.errorf("want ',' or '}'")
			}
			break
		}
	}
	p.skip()
	if p.i != len(p.s) {
		return p.errorf("trailing text")
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return fmt.Errorf("%w: header lacks %q", ErrFormat, k)
		}
	}
	return nil
}

type dictParser struct {
	s string
	i int
}

func (p *dictParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: header dict at byte %d: %s", ErrFormat, p.i, fmt.Sprintf(format, args...))
}

func (p *dictParser) skip() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *dictParser) eat(c byte) bool {
	p.skip()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *dictParser) str() (string, error) {
	p.skip()
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", p.errorf("want a quoted string")
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", p.errorf("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+end]
	if strings.ContainsRune(v, '\\') {
		return "", p.errorf("escapes in strings are not supported")
	}
	p.i += end + 2
	return v, nil
}

func (p *dictParser) boolean() (bool, error) {
	p.skip()
	switch {
	case strings.HasPrefix(p.s[p.i:], "True"):
		p.i += 4
		return true, nil
	case strings.HasPrefix(p.s[p.i:], "False"):
		p.i += 5
		return false, nil
	}
	return false, p.errorf("want True or False")
}

func (p *dictParser) tuple() ([]int, error) {
	if !p.eat('(') {
		return nil, p.errorf("want '(' to start the shape")
	}
	shape := []int{}
	for {
		if p.eat(')') {
			return shape, nil
		}
		p.skip()
		j := p.i
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		n, err := strconv.ParseInt(p.s[p.i:j], 10, 32)
		if err != nil {
			return nil, p.errorf("bad dimension %q", p.s[p.i:j])
		}
		p.i = j
		if p.i < len(p.s) && p.s[p.i] == 'L' { // a Python 2 long
			p.i++
		}
		shape = append(shape, int(n))
		if !p.eat(',') {
			if !p.eat(')') {
				return nil, p.errorf("want ',' or ')' in the shape")
			}
			if len(shape) == 1 {
				return nil, p.errorf("a one-element shape needs a trailing comma")
			}
			return shape, nil
		}
	}
}

// Read reads a whole .npy float array from r and returns its values as
// float32 (C order) and its header. Fortran-ordered arrays are refused.
func Read(r io.Reader) ([]float32, Header, error) {
	h, err := ReadHeader(r)
	if err != nil {
		return nil, h, err
	}
	return readData(r, h)
}

func readData(r io.Reader, h Header) ([]float32, Header, error) {
	size := h.ItemSize()
	if size == 0 {
		return nil, h, fmt.Errorf("%w: dtype %q: want float16, float32 or float64 ('<f2', '<f4', '<f8')", ErrFormat, h.Descr)
	}
	if h.FortranOrder {
		return nil, h, fmt.Errorf("%w: Fortran-ordered array; save it in C order (np.ascontiguousarray)", ErrFormat)
	}
	n := h.NumElements()
	if n < 0 {
		return nil, h, fmt.Errorf("%w: shape %v too large", ErrFormat, h.Shape)
	}
	var order binary.ByteOrder = binary.LittleEndian
	if h.Descr[0] == '>' {
		order = binary.BigEndian
	}
	// Grow the result as data arrives so that a header claiming a huge shape
	// fails on the short data before allocating (ReadFile checks up front).
	out := make([]float32, 0, min(n, 1<<24))
	buf := make([]byte, min(n, 1<<18)*size)
	for done := 0; done < n; {
		k := min(len(buf)/size, n-done)
		out = append(out, make([]float32, k)...)
		chunk := buf[:k*size]
		if _, err := io.ReadFull(r, chunk); err != nil {
			return nil, h, fmt.Errorf("%w: data ends after %d of %d values: %v", ErrFormat, done, n, err)
		}
		dst := out[done : done+k]
		switch size {
		case 2:
			for i := range dst {
				dst[i] = safetensors.HalfToFloat32(order.Uint16(chunk[2*i:]))
			}
		case 4:
			for i := range dst {
				dst[i] = math.Float32frombits(order.Uint32(chunk[4*i:]))
			}
		case 8:
			for i := range dst {
				dst[i] = float32(math.Float64frombits(order.Uint64(chunk[8*i:])))
			}
		}
		done += k
	}
	return out, h, nil
}

// ReadFile reads the .npy float array at path, checking the file size
// against the header before allocating.
func ReadFile(path string) (_ []float32, _ Header, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Header{}, fmt.Errorf("read npy: %w", err)
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	st, err := f.Stat()
	if err != nil {
		return nil, Header{}, fmt.Errorf("read npy %s: %w", path, err)
	}
	br := bufio.NewReaderSize(f, 1<<20)
	h, err := ReadHeader(br)
	if err != nil {
		return nil, h, fmt.Errorf("read npy %s: %w", path, err)
	}
	if n, size := h.NumElements(), h.ItemSize(); n >= 0 && size > 0 && int64(h.DataOffset)+int64(n)*int64(size) != st.Size() {
		return nil, h, fmt.Errorf("read npy %s: %w: shape %v of %s needs %d data bytes, file has %d",
			path, ErrFormat, h.Shape, h.Descr, int64(n)*int64(size), st.Size()-int64(h.DataOffset))
	}
	v, h, err := readData(br, h)
	if err != nil {
		return nil, h, fmt.Errorf("read npy %s: %w", path, err)
	}
	return v, h, nil
}

// Write writes data with the given shape as a version 1.0 '<f4' .npy file.
func Write(w io.Writer, shape []int, data []float32) error {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("write npy: negative dimension in %v", shape)
		}
		n *= d
	}
	if n != len(data) {
		return fmt.Errorf("write npy: shape %v needs %d values, have %d", shape, n, len(data))
	}
	var dims []string
	for _, d := range shape {
		dims = append(dims, strconv.Itoa(d))
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	dict := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", tuple)
	pad := 64 - (10+len(dict)+1)%64
	if pad == 64 {
		pad = 0
	}
	hdr := dict + strings.Repeat(" ", pad) + "\n"
	var b bytes.Buffer
	b.WriteString(Magic)
	b.Write([]byte{1, 0})
	binary.Write(&b, binary.LittleEndian, uint16(len(hdr)))
	b.WriteString(hdr)
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write npy: %w", err)
	}
	buf := make([]byte, 0, 1<<16)
	for i, v := range data {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		if len(buf) == cap(buf) || i == len(data)-1 {
			if _, err := w.Write(buf); err != nil {
				return fmt.Errorf("write npy: %w", err)
			}
			buf = buf[:0]
		}
	}
	return nil
}
