//go:build mamicuda

package cuda

/*
#cgo LDFLAGS: -Wl,--wrap=cuInit -lcuda
#include <cuda.h>
int mami_cuinit_result(void);
static const char* mami_error_name(int r) {
	const char* s = 0;
	if (cuGetErrorName((CUresult)r, &s) != CUDA_SUCCESS || s == 0) return "unknown CUDA error";
	return s;
}
*/
import "C"

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"

	"github.com/mami-lab/mami/models"
	"github.com/mami-lab/mami/models/cuda/kernels"
	"gorgonia.org/cu"
)

// Built reports whether this binary has the CUDA backend (build tag cuda).
const Built = true

var probe struct {
	once sync.Once
	dev  Device
	err  error
}

// Probe reports the GPU New uses (device 0), or why there is none (wrapping ErrUnavailable).
func Probe() (Device, error) {
	probe.once.Do(func() { probe.dev, probe.err = doProbe() })
	return probe.dev, probe.err
}

func doProbe() (Device, error) {
	if r := int(C.mami_cuinit_result()); r != 0 {
		if r < 0 {
			return Device{}, fmt.Errorf("%w: the CUDA driver was not initialised", ErrUnavailable)
		}
		return Device{}, fmt.Errorf("%w: cuInit failed with %s (no NVIDIA driver or GPU on this machine?)", ErrUnavailable, C.GoString(C.mami_error_name(C.int(r))))
	}
	n, err := cu.NumDevices()
	if err != nil {
		return Device{}, fmt.Errorf("%w: count devices: %v", ErrUnavailable, err)
	}
	if n == 0 {
		return Device{}, fmt.Errorf("%w: the CUDA driver sees no device", ErrUnavailable)
	}
	d, err := cu.GetDevice(0)
	if err != nil {
		return Device{}, fmt.Errorf("%w: device 0: %v", ErrUnavailable, err)
	}
	var dev Device
	if dev.Name, err = d.Name(); err != nil {
		return Device{}, fmt.Errorf("%w: device 0 name: %v", ErrUnavailable, err)
	}
	if dev.Major, err = d.Attribute(cu.ComputeCapabilityMajor); err != nil {
		return Device{}, fmt.Errorf("%w: compute capability: %v", ErrUnavailable, err)
	}
	if dev.Minor, err = d.Attribute(cu.ComputeCapabilityMinor); err != nil {
		return Device{}, fmt.Errorf("%w: compute capability: %v", ErrUnavailable, err)
	}
	if dev.MemBytes, err = d.TotalMem(); err != nil {
		return Device{}, fmt.Errorf("%w: device memory: %v", ErrUnavailable, err)
	}
	dev.Driver = cu.Version()
	if dev.Target, err = kernels.TargetFor(dev.Major, dev.Minor); err != nil {
		return Device{}, fmt.Errorf("%w: %s: %v", ErrUnavailable, dev.Name, err)
	}
	// A GPU is usable when the kernels load and compute what their Go twin does: check that once, so
	// that device auto falls back to the CPU (and cuda fails, naming the reason) on a broken setup
	// rather than failing in the middle of a run.
	g, err := openDevice(dev)
	if err != nil {
		return Device{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	err = g.selfTest()
	if cerr := g.close(); err == nil && cerr != nil {
		err = fmt.Errorf("cuda: release %s: %w", dev.Name, cerr)
	}
	if err != nil {
		return Device{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return dev, nil
}

// selfTest draws a dropout mask with mami_mask on the GPU and on the kernel's Go twin and requires
// every value to be identical (the kernel is integer hashing: no rounding may differ).
func (g *gpu) selfTest() error {
	const n = 4099 // a few blocks and a ragged end
	m, err := g.alloc(n)
	if err != nil {
		return fmt.Errorf("cuda: self-test: allocate: %w", err)
	}
	s := step{kind: opMask, i: []int{n, 20261128, 7}, b: []bufRef{{arena: 0, n: n}}, f: []float32{0.3, 1 / 0.7}}
	if err := g.run(&s, &[3]mem{m, m, m}, 1, false); err != nil {
		return fmt.Errorf("cuda: self-test: launch %s: %w", s.kernelName(), err)
	}
	got := make([]float32, n)
	if err := g.read(m, 0, got); err != nil {
		return fmt.Errorf("cuda: self-test: read back: %w", err)
	}
	ref := &refBackend{}
	rm, err := ref.alloc(n)
	if err != nil {
		return err
	}
	if err := ref.run(&s, &[3]mem{rm, rm, rm}, 1, false); err != nil {
		return err
	}
	want := make([]float32, n)
	if err := ref.read(rm, 0, want); err != nil {
		return err
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			return fmt.Errorf("cuda: self-test: %s element %d is %v on the GPU, %v in its Go twin", s.kernelName(), i, got[i], want[i])
		}
	}
	return g.free(m)
}

// New builds spec on the GPU (device 0) with models.New(spec, seed)'s initial weights.
func New(spec models.Spec, seed int64) (*Net, error) {
	g, err := openGPU()
	if err != nil {
		return nil, err
	}
	e, err := newEngine(g, spec, seed)
	if err != nil {
		_ = g.close()
		return nil, err
	}
	return &Net{e: e}, nil
}

// gpu is the CUDA driver backend: one primary context, the kernels' module, device allocations.
type gpu struct {
	dev  cu.Device
	ctx  cu.CUContext
	mod  cu.Module
	fns  map[opKind]cu.Function
	mems []cu.DevicePtr
	args [24]uint64
	ptrs [24]unsafe.Pointer
	// f64 receives readF64's value. It is its own allocation: cgo refuses a pointer into this struct,
	// which holds Go pointers (fns, mems), as an argument.
	f64 []float64
}

func openGPU() (*gpu, error) {
	d, err := Probe()
	if err != nil {
		return nil, err
	}
	return openDevice(d)
}

// openDevice retains device 0's primary context and loads the kernels for d.Target.
func openDevice(d Device) (*gpu, error) {
	var err error
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	g := &gpu{fns: map[opKind]cu.Function{}, f64: make([]float64, 1)}
	if g.dev, err = cu.GetDevice(0); err != nil {
		return nil, fmt.Errorf("cuda: device 0: %w", err)
	}
	if g.ctx, err = g.dev.RetainPrimaryCtx(); err != nil {
		return nil, fmt.Errorf("cuda: primary context of %s: %w", d.Name, err)
	}
	if err := cu.SetCurrentContext(g.ctx); err != nil {
		return nil, fmt.Errorf("cuda: set context: %w", err)
	}
	ptx, err := kernels.PTX(d.Target)
	if err != nil {
		return nil, err
	}
	if g.mod, err = cu.LoadData(ptx); err != nil {
		return nil, fmt.Errorf("cuda: load the %s kernels on %s (driver %d): %w", d.Target, d.Name, d.Driver, err)
	}
	for k := range opKind(len(opNames)) {
		s := step{kind: k}
		fn, err := g.mod.Function(s.kernelName())
		if err != nil {
			return nil, fmt.Errorf("cuda: kernel %s: %w", s.kernelName(), err)
		}
		g.fns[k] = fn
	}
	for i := range g.ptrs {
		g.ptrs[i] = unsafe.Pointer(&g.args[i])
	}
	return g, nil
}

// bind makes the context current on this goroutine's thread; callers defer runtime.UnlockOSThread.
func (g *gpu) bind() error {
	runtime.LockOSThread()
	return cu.SetCurrentContext(g.ctx)
}

func (g *gpu) ptr(m mem, off int) cu.DevicePtr { return g.mems[m] + cu.DevicePtr(4*off) }

func (g *gpu) alloc(elems int) (mem, error) {
	defer runtime.UnlockOSThread()
	if err := g.bind(); err != nil {
		return 0, err
	}
	p, err := cu.MemAlloc(int64(4 * max(elems, 1)))
	if err != nil {
		return 0, err
	}
	g.mems = append(g.mems, p)
	return mem(len(g.mems) - 1), nil
}

func (g *gpu) free(m mem) error {
	defer runtime.UnlockOSThread()
	if err := g.bind(); err != nil {
		return err
	}
	if g.mems[m] == 0 {
		return nil
	}
	err := cu.MemFree(g.mems[m])
	g.mems[m] = 0
	return err
}

func (g *gpu) write(m mem, off int, src []float32) error {
	if len(src) == 0 {
		return nil
	}
	return g.copyIn(m, off, unsafe.Pointer(&src[0]), len(src))
}

func (g *gpu) writeInt32(m mem, off int, src []int32) error {
	if len(src) == 0 {
		return nil
	}
	return g.copyIn(m, off, unsafe.Pointer(&src[0]), len(src))
}

// copyIn copies n 4-byte elements from host memory at src to m at element offset off.
func (g *gpu) copyIn(m mem, off int, src unsafe.Pointer, n int) error {
	defer runtime.UnlockOSThread()
	if err := g.bind(); err != nil {
		return err
	}
	return cu.MemcpyHtoD(g.ptr(m, off), src, int64(4*n))
}

func (g *gpu) read(m mem, off int, dst []float32) error {
	if len(dst) == 0 {
		return nil
	}
	defer runtime.UnlockOSThread()
	if err := g.bind(); err != nil {
		return err
	}
	return cu.MemcpyDtoH(unsafe.Pointer(&dst[0]), g.ptr(m, off), int64(4*len(dst)))
}

func (g *gpu) readF64(m mem, off int) (float64, error) {
	defer runtime.UnlockOSThread()
	if err := g.bind(); err != nil {
		return 0, err
	}
	if err := cu.MemcpyDtoH(unsafe.Pointer(&g.f64[0]), g.ptr(m, off), 8); err != nil {
		return 0, err
	}
	return g.f64[0], nil
}

func (g *gpu) zero(m mem, off, n int) error {
	defer runtime.UnlockOSThread()
	if err := g.bind(); err != nil {
		return err
	}
	return cu.MemsetD32(g.ptr(m, off), 0, int64(n))
}

func (g *gpu) run(s *step, bases *[3]mem, scale float32, accumulate bool) error {
	args, err := s.args(func(b bufRef) uint64 {
		if !b.valid() {
			return 0
		}
		return uint64(g.ptr(bases[b.arena], b.off))
	}, scale, accumulate)
	if err != nil {
		return err
	}
	if len(args) > len(g.args) {
		return fmt.Errorf("%s: %d arguments, at most %d", s.kernelName(), len(args), len(g.args))
	}
	for i, a := range args {
		switch v := a.(type) {
		case argInt:
			g.args[i] = uint64(uint32(v))
		case argFloat:
			g.args[i] = uint64(*(*uint32)(unsafe.Pointer(&v)))
		case argPtr:
			g.args[i] = uint64(v)
		}
	}
	lc := s.launch()
	defer runtime.UnlockOSThread()
	if err := g.bind(); err != nil {
		return err
	}
	return g.fns[s.kind].Launch(lc.grid[0], lc.grid[1], lc.grid[2], lc.block[0], lc.block[1], lc.block[2], 0, cu.Stream{}, g.ptrs[:len(args)])
}

func (g *gpu) close() error {
	defer runtime.UnlockOSThread()
	if err := g.bind(); err != nil {
		return err
	}
	var first error
	for i := range g.mems {
		if g.mems[i] != 0 {
			if err := cu.MemFree(g.mems[i]); err != nil && first == nil {
				first = err
			}
			g.mems[i] = 0
		}
	}
	if err := g.mod.Unload(); err != nil && first == nil {
		first = err
	}
	if err := g.dev.ReleasePrimaryCtx(); err != nil && first == nil {
		first = err
	}
	return first
}
