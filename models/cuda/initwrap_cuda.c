//go:build mamicuda

// gorgonia.org/cu calls cuInit in its package init and exits the process when it fails, which would
// make every command of a cuda build die on a machine without a GPU. The link wraps cuInit (-Wl,--wrap,
// see device_cuda.go): the real result is kept here for Probe to report, and cu's init carries on.
#include <cuda.h>

CUresult __real_cuInit(unsigned int flags);

static int mami_init_done = 0;
static CUresult mami_init_result = CUDA_SUCCESS;

CUresult __wrap_cuInit(unsigned int flags) {
	CUresult r = __real_cuInit(flags);
	if (!mami_init_done) {
		mami_init_done = 1;
		mami_init_result = r;
	}
	return CUDA_SUCCESS;
}

int mami_cuinit_result(void) { return mami_init_done ? (int)mami_init_result : -1; }
