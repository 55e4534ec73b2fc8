// fiber_shim.h: the CUDA shim of the fake driver (fake_libcuda.cpp). Like cpu_shim.h it runs mami.cu's
// kernels on the CPU, but a block's threads are fibers on the calling OS thread rather than OS threads:
// each runs until its next __syncthreads, then the next one runs; once all have arrived, the round
// starts again. Switching is a dozen instructions (x86-64 only), so full-size launches take seconds rather
// than minutes. Blocks run one after another; __shared__ arrays are plain statics.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string_view>
#include <utility>
#include <vector>

#if !defined(__x86_64__)
#error "fiber_shim.h switches stacks in x86-64 assembly"
#endif

struct dim3 { unsigned x = 1, y = 1, z = 1; };
inline dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __restrict__
#define __shared__ static

inline double atomicAdd(double* p, double v) {  // one OS thread runs every fiber: no race
    double old = *p;
    *p += v;
    return old;
}
using std::fmax;
using std::fmin;

// mami_fiber_switch saves the callee-saved registers on the current stack, stores the stack pointer in
// *save, and resumes the stack at next (which was left the same way).
extern "C" void mami_fiber_switch(void** save, void* next);
asm(R"(
    .text
    .p2align 4
    .globl mami_fiber_switch
    .hidden mami_fiber_switch
    .type mami_fiber_switch, @function
mami_fiber_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size mami_fiber_switch, .-mami_fiber_switch
)");

namespace fiber {

constexpr size_t stackBytes = 64 << 10;

struct Fiber {
    void* sp = nullptr;
    bool done = false;
    dim3 idx;
    std::vector<unsigned char> stack = std::vector<unsigned char>(stackBytes);
};

inline std::vector<Fiber> fibers;
inline void* scheduler;  // the launching code's stack while a fiber runs
inline size_t running;
inline const std::function<void()>* task;

[[noreturn]] inline void entry() {
    (*task)();
    fibers[running].done = true;
    mami_fiber_switch(&fibers[running].sp, scheduler);
    std::abort();  // a finished fiber is never resumed
}

// start prepares f to begin at entry: six zeroed registers, then entry as the return address, with the
// stack aligned as after a call.
inline void start(Fiber& f) {
    auto top = reinterpret_cast<uintptr_t>(f.stack.data() + f.stack.size()) & ~uintptr_t(15);
    auto* sp = reinterpret_cast<void**>(top - 64);
    for (int i = 0; i < 6; i++) sp[i] = nullptr;
    sp[6] = reinterpret_cast<void*>(&entry);
    sp[7] = nullptr;
    f.sp = sp;
    f.done = false;
}

}  // namespace fiber

__attribute__((noinline)) inline void __syncthreads() {
    mami_fiber_switch(&fiber::fibers[fiber::running].sp, fiber::scheduler);
}

namespace fiber {

// MAMI_FAKE_CUDA_ORDER=shuffle runs the blocks of a launch, and the threads of a block in each round, in
// a fresh pseudo-random order rather than in index order, so that a kernel relying on an order the GPU
// does not promise (a missing __syncthreads, one block reading what another writes) shows up.
inline bool shuffle = [] {
    const char* o = std::getenv("MAMI_FAKE_CUDA_ORDER");
    return o && std::string_view(o) == "shuffle";
}();
inline uint64_t rng = 0x9E3779B97F4A7C15ULL;

inline void permute(std::vector<size_t>& v) {
    for (size_t i = 0; i < v.size(); i++) v[i] = i;
    if (!shuffle) return;
    for (size_t i = v.size(); i > 1; i--) {  // Fisher–Yates with xorshift64
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::swap(v[i - 1], v[rng % i]);
    }
}

}  // namespace fiber

// launch runs kernel over grid × block. Every thread of a block must reach the same __syncthreads
// calls, as on a GPU; a block whose threads disagree aborts.
inline void launch(dim3 grid, dim3 block, const std::function<void()>& kernel) {
    gridDim = grid;
    blockDim = block;
    size_t n = size_t(block.x) * block.y * block.z;
    if (fiber::fibers.size() < n) fiber::fibers.resize(n);
    fiber::task = &kernel;
    std::vector<size_t> blocks(size_t(grid.x) * grid.y * grid.z), order(n);
    fiber::permute(blocks);
    for (size_t b : blocks) {
        unsigned bx = unsigned(b % grid.x), by = unsigned((b / grid.x) % grid.y), bz = unsigned(b / (size_t(grid.x) * grid.y));
        blockIdx = {bx, by, bz};
        for (size_t t = 0; t < n; t++) {
            fiber::start(fiber::fibers[t]);
            fiber::fibers[t].idx = {unsigned(t % block.x), unsigned((t / block.x) % block.y), unsigned(t / (size_t(block.x) * block.y))};
        }
        for (size_t left = n; left > 0;) {  // one round: every live fiber up to its next barrier
            size_t finished = 0;
            fiber::permute(order);
            for (size_t t : order) {
                if (fiber::fibers[t].done) continue;
                fiber::running = t;
                threadIdx = fiber::fibers[t].idx;
                mami_fiber_switch(&fiber::scheduler, fiber::fibers[t].sp);
                finished += fiber::fibers[t].done;
            }
            if (finished != 0 && finished != left) {
                std::fprintf(stderr, "fake libcuda: %zu of %zu threads of block (%u,%u,%u) ended while the others wait at __syncthreads\n",
                             finished, left, bx, by, bz);
                std::abort();
            }
            left -= finished;
        }
    }
}
