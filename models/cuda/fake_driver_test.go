//go:build mamicuda

package cuda_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/mami-lab/mami/models/cuda/kernels"
)

// fakeChildEnv marks a test process started by TestFakeDriver with the fake libcuda.so.1 loaded.
const fakeChildEnv = "MAMI_FAKE_CUDA_CHILD"

// TestFakeDriver runs this package's GPU tests against the fake CUDA driver (scripts/fake-libcuda.sh:
// mami.cu's kernels on the CPU behind the driver API), in a child process that loads it instead of the
// machine's libcuda: TestDevice takes its GPU branch — every fusion × head through gorgonia.org/cu,
// contexts, allocations, copies and launches, against the CPU backend — once as a Hopper (sm_90 PTX)
// (blocks and threads in shuffled order) and once as an Ampere card (compute_80 PTX), and TestFakeDriverRefuses checks that the fake catches
// the mistakes it is there to catch.
func TestFakeDriver(t *testing.T) {
	if os.Getenv(fakeChildEnv) != "" {
		t.Skip("inside the child")
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("the fake driver's fibers switch stacks in x86-64 assembly")
	}
	if _, err := exec.LookPath("g++"); err != nil {
		t.Skip("no g++ to build the fake driver")
	}
	dir := t.TempDir()
	build := exec.Command("bash", filepath.Join("..", "..", "scripts", "fake-libcuda.sh"), dir)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the fake driver: %v\n%s", err, out)
	}
	// The sm_90 run also shuffles the order of blocks and of threads within each round (results must not
	// depend on an order the GPU does not promise); the compute_80 run keeps index order.
	for _, c := range []struct{ cc, target, order string }{{"9.0", "sm_90", "shuffle"}, {"8.6", "compute_80", "index"}} {
		t.Run(c.target, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run", "^(TestDevice|TestFakeDriverRefuses)$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+dir, fakeChildEnv+"=1", "MAMI_FAKE_CUDA_CC="+c.cc, "MAMI_FAKE_CUDA_ORDER="+c.order)
			out, err := cmd.CombinedOutput()
			s := string(out)
			if err != nil {
				t.Fatalf("child: %v\n%s", err, s)
			}
			for _, want := range []string{
				"GPU: {Name:mami fake CUDA driver", // TestDevice took its GPU branch, on the fake
				"Target:" + c.target,
				"--- PASS: TestDevice",
				"--- PASS: TestFakeDriverRefuses",
			} {
				if !strings.Contains(s, want) {
					t.Errorf("child output lacks %q:\n%s", want, s)
				}
			}
			if strings.Contains(s, "fake libcuda: leak") {
				t.Errorf("device memory or modules left when the context was released:\n%s", s)
			}
		})
	}
	// A GPU whose kernels run but compute wrong is no usable GPU: Probe's self-test must say so, and
	// TestDevice then takes its no-GPU branch.
	t.Run("broken kernel", func(t *testing.T) {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestDevice$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+dir, fakeChildEnv+"=1", "MAMI_FAKE_CUDA_BREAK=mami_mask")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		if want := "no GPU here: cuda: no usable NVIDIA GPU: cuda: self-test: mami_mask element 0 is NaN on the GPU"; !strings.Contains(string(out), want) {
			t.Errorf("child output lacks %q:\n%s", want, out)
		}
	})
}

// TestFakeDriverRefuses runs only inside TestFakeDriver's child: the fake driver must refuse a call
// without a current context, a launch whose pointer lies outside every allocation or is misaligned for
// its type, and must hand out poisoned (not zeroed) memory.
func TestFakeDriverRefuses(t *testing.T) {
	if os.Getenv(fakeChildEnv) == "" {
		t.Skip("runs in TestFakeDriver's child, against the fake driver")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dev, err := cu.GetDevice(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := cu.SetCurrentContext(cu.CUContext{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cu.MemAlloc(64); !errors.Is(err, cu.InvalidContext) {
		t.Errorf("MemAlloc without a current context: %v, want InvalidContext", err)
	}
	ctx, err := dev.RetainPrimaryCtx()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := dev.ReleasePrimaryCtx(); err != nil {
			t.Error(err)
		}
	}()
	if err := cu.SetCurrentContext(ctx); err != nil {
		t.Fatal(err)
	}
	ptx, err := kernels.PTX("compute_80")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := cu.LoadData(ptx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := mod.Unload(); err != nil {
			t.Error(err)
		}
	}()
	if _, err := mod.Function("mami_no_such_kernel"); !errors.Is(err, cu.NotFound) {
		t.Errorf("a kernel the PTX lacks: %v, want NotFound", err)
	}
	const n = 16
	buf, err := cu.MemAlloc(4 * n)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cu.MemFree(buf); err != nil {
			t.Error(err)
		}
	}()
	host := make([]uint32, n)
	if err := cu.MemcpyDtoH(unsafe.Pointer(&host[0]), buf, 4*n); err != nil {
		t.Fatal(err)
	}
	for i, v := range host {
		if v != 0xffffffff {
			t.Fatalf("fresh allocation word %d = %#x, want the poison 0xffffffff", i, v)
		}
	}
	if err := cu.MemcpyDtoH(unsafe.Pointer(&host[0]), buf+4, 4*n); !errors.Is(err, cu.InvalidValue) {
		t.Errorf("copy running 4 bytes past the allocation: %v, want InvalidValue", err)
	}

	launch := func(name string, args ...uint64) error {
		fn, err := mod.Function(name)
		if err != nil {
			t.Fatal(err)
		}
		ptrs := make([]unsafe.Pointer, len(args))
		for i := range args {
			ptrs[i] = unsafe.Pointer(&args[i])
		}
		return fn.Launch(1, 1, 1, 256, 1, 1, 0, cu.Stream{}, ptrs)
	}
	// mami_half(n, g, y): y = g/2.
	if err := launch("mami_half", n, uint64(buf), uint64(buf)); err != nil {
		t.Errorf("a valid launch: %v", err)
	}
	if err := launch("mami_half", n, uint64(buf), uint64(buf+4*n)); !errors.Is(err, cu.IllegalAddress) {
		t.Errorf("a pointer one past the allocation: %v, want IllegalAddress", err)
	}
	// mami_sum(n, x, double* out): out must be 8-byte aligned.
	if err := launch("mami_sum", 1, uint64(buf), uint64(buf+4)); !errors.Is(err, cu.MisalignedAddress) {
		t.Errorf("a double* at a 4-byte offset: %v, want MisalignedAddress", err)
	}
}
