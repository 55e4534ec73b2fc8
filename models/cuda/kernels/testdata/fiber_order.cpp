// fiber_order.cpp: checks fiber_shim.h's scheduling (TestFiberShim). racy() has the bug the shuffled order
// is there to expose: thread 0 writes a shared value the other threads read without a __syncthreads in
// between. In index order thread 0 always runs first, so every thread sees the value; shuffled, some
// read it before it is written. synced() has the barrier and must be right in both orders. Prints one
// line: how many threads of racy() read a stale value, and whether synced() was right.
#include <cstdio>

__global__ void racy(int* out) {
    __shared__ int v;
    if (threadIdx.x == 0) v = 7 + (int)blockIdx.x;
    out[blockIdx.x * blockDim.x + threadIdx.x] = v;
}

__global__ void synced(int* out) {
    __shared__ int v;
    if (threadIdx.x == 0) v = 7 + (int)blockIdx.x;
    __syncthreads();
    out[blockIdx.x * blockDim.x + threadIdx.x] = v;
}

int main() {
    const unsigned blocks = 8, threads = 256;
    static int out[blocks * threads];
    int stale = 0, wrong = 0;
    for (int rep = 0; rep < 4; rep++) {  // the shared value is left from the previous launch's last block
        launch(dim3{blocks, 1, 1}, dim3{threads, 1, 1}, [&] { racy(out); });
        for (unsigned i = 0; i < blocks * threads; i++) stale += out[i] != 7 + (int)(i / threads);
        launch(dim3{blocks, 1, 1}, dim3{threads, 1, 1}, [&] { synced(out); });
        for (unsigned i = 0; i < blocks * threads; i++) wrong += out[i] != 7 + (int)(i / threads);
    }
    std::printf("stale %d synced_wrong %d\n", stale, wrong);
}
