package cuda

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unsafe"

	"github.com/mami-lab/mami/models"
	"github.com/mami-lab/mami/models/cuda/kernels"
)

// cppBackend runs every step through the CUDA C source itself: mami.cu compiled as C++ with a CUDA shim
// (kernels/testdata/cpu_shim.h) into a server process (kernels/testdata/cpu_server.cpp) that receives
// the kernel, its launch shape and arguments, and the memory they point into. Memory lives here, as in
// refBackend; only run differs.
type cppBackend struct {
	refBackend
	cmd *exec.Cmd
	in  *bufio.Writer
	out *bufio.Reader
}

// buildCPPServer compiles the server into dir, or skips the test when there is no C++20 g++.
func buildCPPServer(t *testing.T) string {
	t.Helper()
	gxx, err := exec.LookPath("g++")
	if err != nil {
		t.Skip("no g++")
	}
	dir := t.TempDir()
	var b strings.Builder
	re := regexp.MustCompile(`extern "C" __global__ void (\w+)\(([^)]*)\)`)
	for _, m := range re.FindAllStringSubmatch(kernels.Source(), -1) {
		args := make([]string, len(strings.Split(m[2], ",")))
		for i := range args {
			args[i] = fmt.Sprintf("A(%d)", i)
		}
		fmt.Fprintf(&b, "    {%q, [] { %s(%s); }},\n", m[1], m[1], strings.Join(args, ", "))
	}
	if err := os.WriteFile(filepath.Join(dir, "cpu_dispatch.inc"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "cpu_server")
	td := filepath.Join("kernels", "testdata")
	cmd := exec.Command(gxx, "-std=c++20", "-O1", "-pthread", "-Wno-unknown-pragmas", "-I", dir,
		"-include", filepath.Join(td, "cpu_shim.h"), filepath.Join(td, "cpu_server.cpp"), "-o", bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		if strings.Contains(string(out), "barrier") {
			t.Skipf("g++ without C++20 std::barrier: %s", out)
		}
		t.Fatalf("compile mami.cu for the CPU: %v\n%s", err, out)
	}
	return bin
}

func startCPP(t *testing.T, bin string) *cppBackend {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &cppBackend{cmd: cmd, in: bufio.NewWriter(in), out: bufio.NewReader(out)}
	t.Cleanup(func() {
		_ = in.Close()
		_ = cmd.Wait()
	})
	return c
}

func f32bytes(s []float32) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 4*len(s))
}

func (c *cppBackend) run(s *step, bases *[3]mem, scale float32, accumulate bool) error {
	var mems []mem // the allocations this step touches, in request order
	index := map[mem]uint32{}
	for _, b := range s.b {
		if b.valid() {
			if _, ok := index[bases[b.arena]]; !ok {
				index[bases[b.arena]] = uint32(len(mems))
				mems = append(mems, bases[b.arena])
			}
		}
	}
	args, err := s.args(func(b bufRef) uint64 {
		if !b.valid() {
			return math.MaxUint32 << 32
		}
		return uint64(index[bases[b.arena]])<<32 | uint64(4*b.off)
	}, scale, accumulate)
	if err != nil {
		return err
	}
	w := c.in
	put := func(v uint32) { _ = binary.Write(w, binary.LittleEndian, v) }
	name := s.kernelName()
	put(uint32(len(name)))
	w.WriteString(name)
	lc := s.launch()
	for _, v := range append(lc.grid[:], lc.block[:]...) {
		put(uint32(v))
	}
	put(uint32(len(args)))
	for _, a := range args {
		switch v := a.(type) {
		case argInt:
			w.WriteByte(0)
			put(uint32(v))
		case argFloat:
			w.WriteByte(1)
			put(math.Float32bits(float32(v)))
		case argPtr:
			w.WriteByte(2)
			put(uint32(uint64(v) >> 32))
			put(uint32(v))
		}
	}
	put(uint32(len(mems)))
	for _, m := range mems {
		put(uint32(4 * len(c.mems[m])))
		w.Write(f32bytes(c.mems[m]))
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("cpp server: %w", err)
	}
	for _, m := range mems {
		if _, err := io.ReadFull(c.out, f32bytes(c.mems[m])); err != nil {
			return fmt.Errorf("cpp server: %s: %w", name, err)
		}
	}
	status, err := c.out.ReadByte()
	if err != nil || status != 0 {
		return fmt.Errorf("cpp server: %s: status %d, %v", name, status, err)
	}
	return nil
}

// TestCUDASource runs the kernels' CUDA C source (on the CPU, through the shim): the parity check for
// every fusion (softmax_ce) and concat with every head, 2 epochs, and the device mask kernel against its
// Go twin.
func TestCUDASource(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles C++ and runs every kernel on emulated threads")
	}
	bin := buildCPPServer(t)
	t.Run("mask", func(t *testing.T) { testMaskKernel(t, bin) })
	const imageDim, textDim, rows = 12, 10, 40
	image, text, labels := make([]float32, rows*imageDim), make([]float32, rows*textDim), make([]float32, rows)
	for i := range image {
		image[i] = float32(math.Sin(float64(i)*0.7)) * 0.5
	}
	for i := range text {
		text[i] = float32(math.Cos(float64(i)*1.3)) * 0.5
	}
	for r := range labels {
		if image[r*imageDim]+text[r*textDim] > 0 {
			labels[r] = 1
		}
	}
	for _, f := range models.Fusions() {
		for _, h := range models.Heads() {
			if h != models.HeadSoftmaxCE && f != models.FusionConcat {
				continue
			}
			t.Run(f+"/"+h, func(t *testing.T) {
				be := startCPP(t, bin)
				newNet := func(s models.Spec, seed int64) (*Net, error) {
					e, err := newEngine(be, s, seed)
					if err != nil {
						return nil, err
					}
					return &Net{e: e}, nil
				}
				spec := models.Spec{Fusion: f, Head: h, Hidden: []int{9}, Dropout: 0.25, ProjDim: 4, ImageDim: imageDim, TextDim: textDim}
				res, err := CheckParity(ParityConfig{Spec: spec, Seed: 5, Epochs: 2, BatchSize: 16, LR: 3e-3,
					Image: image, Text: text, Labels: labels}, newNet)
				if err != nil {
					t.Fatal(err)
				}
				if !res.OK(1e-4) {
					t.Errorf("CUDA source vs CPU backend: %+v", res)
				}
			})
		}
	}
}

// testMaskKernel checks that mami_mask (run from the CUDA source) and its Go twin draw the same masks bit
// for bit.
func testMaskKernel(t *testing.T, bin string) {
	cpp, ref := startCPP(t, bin), &refBackend{}
	const n = 3000
	for _, be := range []backend{cpp, ref} {
		if _, err := be.alloc(n); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		seed   int64
		stream int
		p      float64
	}{{42, 0, 0.2}, {-7, 1 << 20, 0.5}, {1 << 40, 3, 0.9}} {
		s := (&plan{}).maskStep(bufRef{arena: arenaPlan, n: n}, c.seed, c.stream, c.p)
		for _, be := range []backend{cpp, ref} {
			if err := be.run(&s, &[3]mem{0, 0, 0}, 1, false); err != nil {
				t.Fatal(err)
			}
		}
		for i := range n {
			if cpp.mems[0][i] != ref.mems[0][i] {
				t.Fatalf("seed %d stream %d p %v: element %d is %v from the CUDA source, %v from the twin", c.seed, c.stream, c.p, i, cpp.mems[0][i], ref.mems[0][i])
			}
		}
	}
}
