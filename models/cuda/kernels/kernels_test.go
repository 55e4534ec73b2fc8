package kernels_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/mami-lab/mami/models/cuda/kernels"
)

func TestPTXIsFreshAndComplete(t *testing.T) {
	for _, c := range []struct{ target, ptxTarget string }{{"sm_90", ".target sm_90"}, {"compute_80", ".target sm_80"}} {
		t.Run(c.target, func(t *testing.T) {
			ptx, err := kernels.PTX(c.target)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := kernels.StampedHash(ptx)
			if !ok {
				t.Fatalf("PTX has no %q line: regenerate with go generate ./models/cuda/kernels", kernels.HashPrefix)
			}
			if want := kernels.SourceHash(); got != want {
				t.Fatalf("PTX made from mami.cu %s, source is %s: run go generate ./models/cuda/kernels and commit the PTX", got, want)
			}
			if !strings.Contains(ptx, c.ptxTarget) {
				t.Errorf("PTX lacks %q", c.ptxTarget)
			}
			for _, name := range kernels.Names {
				if !strings.Contains(ptx, ".entry "+name+"(") {
					t.Errorf("PTX has no entry %s", name)
				}
			}
		})
	}
}

func TestNamesListEveryKernel(t *testing.T) {
	re := regexp.MustCompile(`extern "C" __global__ void (\w+)\(`)
	var inSource []string
	for _, m := range re.FindAllStringSubmatch(kernels.Source(), -1) {
		inSource = append(inSource, m[1])
	}
	got, want := slices.Sorted(slices.Values(kernels.Names)), slices.Sorted(slices.Values(inSource))
	if !slices.Equal(got, want) {
		t.Errorf("Names %v, mami.cu defines %v", got, want)
	}
}

func TestTargetFor(t *testing.T) {
	cases := []struct {
		major, minor int
		want         string
		err          bool
	}{{9, 0, "sm_90", false}, {10, 0, "sm_90", false}, {8, 6, "compute_80", false}, {8, 0, "compute_80", false}, {7, 5, "", true}}
	for _, c := range cases {
		got, err := kernels.TargetFor(c.major, c.minor)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("TargetFor(%d, %d) = %q, %v; want %q, error %v", c.major, c.minor, got, err, c.want, c.err)
		}
	}
	if _, err := kernels.PTX("sm_70"); err == nil {
		t.Error("PTX(sm_70): no error")
	}
}

// TestKernelsOnCPU compiles mami.cu as C++ with a small CUDA shim (testdata/cpu_shim.h: blocks in turn,
// a block's threads as std::threads) and runs the kernels whose index arithmetic is not element-wise —
// the tiled gemm, the shared-memory reductions, gather and colsum — against plain loops
// (testdata/cpu_check.cpp). It needs g++ with C++20 and is skipped without one.
func TestKernelsOnCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles and runs C++ (about 15 s)")
	}
	gxx, err := exec.LookPath("g++")
	if err != nil {
		t.Skip("no g++")
	}
	dir := t.TempDir()
	probe := filepath.Join(dir, "probe.cpp")
	if err := os.WriteFile(probe, []byte("#include <barrier>\nint main() { std::barrier<> b(1); b.arrive_and_wait(); }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gxx, "-std=c++20", "-pthread", probe, "-o", filepath.Join(dir, "probe")).CombinedOutput(); err != nil {
		t.Skipf("g++ cannot build C++20 with std::barrier: %v\n%s", err, out)
	}
	bin := filepath.Join(dir, "cpu_check")
	build := exec.Command(gxx, "-std=c++20", "-O1", "-pthread", "-Wno-unknown-pragmas", "-include", "testdata/cpu_shim.h",
		"testdata/cpu_check.cpp", "-o", bin)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("compile mami.cu for the CPU: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("kernels on the CPU: %v\n%s", err, out)
	}
}

// TestFiberShim checks the scheduling of the fake CUDA driver's shim (testdata/fiber_shim.h): in index
// order a kernel that reads a shared value without the __syncthreads it needs happens to work; with
// MAMI_FAKE_CUDA_ORDER=shuffle it reads stale values, and the same kernel with the barrier is right in
// both orders.
func TestFiberShim(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("fiber_shim.h switches stacks in x86-64 assembly")
	}
	gxx, err := exec.LookPath("g++")
	if err != nil {
		t.Skip("no g++")
	}
	bin := filepath.Join(t.TempDir(), "fiber_order")
	build := exec.Command(gxx, "-std=c++20", "-O1", "-include", "testdata/fiber_shim.h", "testdata/fiber_order.cpp", "-o", bin)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("compile: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		order     string
		wantStale bool
	}{{"index", false}, {"shuffle", true}} {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "MAMI_FAKE_CUDA_ORDER="+tc.order)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.order, err, out)
		}
		var stale, wrong int
		if _, err := fmt.Sscanf(string(out), "stale %d synced_wrong %d", &stale, &wrong); err != nil {
			t.Fatalf("%s: output %q: %v", tc.order, out, err)
		}
		if wrong != 0 {
			t.Errorf("%s order: the kernel with __syncthreads read %d stale values", tc.order, wrong)
		}
		if (stale > 0) != tc.wantStale {
			t.Errorf("%s order: the racy kernel read %d stale values; want stale reads: %v", tc.order, stale, tc.wantStale)
		}
	}
}
