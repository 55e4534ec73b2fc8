// cpu_shim.h: just enough of CUDA to run mami.cu's kernels on the CPU, for the tests of models/cuda and
// models/cuda/kernels. Blocks run one after another; the threads of a block run as threads meeting at a
// std::barrier (__syncthreads), so __shared__ arrays can be plain statics. Slow: small launches only.
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

struct dim3 { unsigned x = 1, y = 1, z = 1; };
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
inline std::barrier<>* shim_barrier;
inline std::mutex shim_atomic;

#define __global__
#define __device__
#define __restrict__
#define __shared__ static
inline void __syncthreads() { shim_barrier->arrive_and_wait(); }
inline double atomicAdd(double* p, double v) {
    std::lock_guard<std::mutex> l(shim_atomic);
    double old = *p;
    *p += v;
    return old;
}
using std::fmax;
using std::fmin;

// shimPool runs the 256 threads of a block on persistent threads (every mami launch uses 256-thread blocks).
struct shimPool {
    static constexpr unsigned N = 256;
    std::barrier<> start{N + 1}, done{N + 1}, sync{N};
    std::function<void()> task;
    dim3 blk, block;
    shimPool() {
        for (unsigned t = 0; t < N; t++)
            std::thread([this, t] {
                for (;;) {
                    start.arrive_and_wait();
                    blockIdx = blk;
                    threadIdx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
                    task();
                    done.arrive_and_wait();
                }
            }).detach();
    }
};

// launch runs kernel over grid × block.
template <class F> void launch(dim3 grid, dim3 block, F kernel) {
    static shimPool* pool = new shimPool;  // never destroyed: its threads live until exit
    gridDim = grid;
    blockDim = block;
    unsigned n = block.x * block.y * block.z;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                if (n == shimPool::N) {
                    shim_barrier = &pool->sync;
                    pool->blk = {bx, by, bz};
                    pool->block = block;
                    pool->task = kernel;
                    pool->start.arrive_and_wait();
                    pool->done.arrive_and_wait();
                    continue;
                }
                std::barrier<> bar(n);
                shim_barrier = &bar;
                std::vector<std::thread> ts;
                for (unsigned t = 0; t < n; t++)
                    ts.emplace_back([=] {
                        blockIdx = {bx, by, bz};
                        threadIdx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
                        kernel();
                    });
                for (auto& t : ts) t.join();
            }
}
