// fake_libcuda.cpp: a stand-in for the NVIDIA driver's libcuda.so.1 that runs mami.cu's kernels on the
// CPU (fiber_shim.h), so that bin/mami-cuda and the mamicuda tests exercise their whole driver-API path —
// gorgonia.org/cu, contexts per OS thread, module loading, allocations, copies, launches and argument
// marshalling — on a machine without a GPU. Built by scripts/fake-libcuda.sh; used by models/cuda's
// TestFakeDriver and `make gpu-rehearsal`. It is stricter than the driver where the driver would fail
// later or silently:
//   - every call that needs a context fails with CUDA_ERROR_INVALID_CONTEXT when none is current on the
//     calling thread (a Go goroutine that forgot runtime.LockOSThread + cuCtxSetCurrent);
//   - the module must be NUL-terminated PTX whose .target the device can run, and every function looked
//     up must be a .entry of it whose .param list matches the kernel's C signature;
//   - allocations are poisoned (0xff bytes: NaN floats, -1 ints; real device memory is not zeroed either)
//     and end against a PROT_NONE page, so a kernel reading past the end of one crashes here;
//   - copies and memsets must stay inside one allocation; every pointer argument of a launch must be
//     null or point inside an allocation, aligned for its type (CUDA_ERROR_ILLEGAL_ADDRESS /
//     CUDA_ERROR_MISALIGNED_ADDRESS, reported at the launch, with the kernel and argument named);
//   - launch shapes must respect the device's limits; dynamic shared memory, streams and extra are refused.
// Each refusal prints one line starting "fake libcuda:" on stderr. Every other driver entry point that
// gorgonia.org/cu links against exists and returns CUDA_ERROR_NOT_SUPPORTED, saying so.
//
// Environment: MAMI_FAKE_CUDA_CC=8.6 reports that compute capability (default 9.0); MAMI_FAKE_CUDA_BREAK=
// KERNEL makes that kernel do nothing while its launches succeed (for tests of a GPU that computes wrong);
// MAMI_FAKE_CUDA_ORDER=shuffle runs blocks, and threads between barriers, in pseudo-random order (fiber_shim.h); MAMI_FAKE_CUDA_STATS=FILE
// writes how many times each entry point and each kernel has been called (one "name count" per line, totals
// since start) whenever the primary context is released (a Go program does not run atexit handlers), e.g.
// to count launches and host-device synchronisations per training step.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "../mami.cu"

namespace {

// Result codes, as in cuda.h (not included: the fake must not depend on it).
enum : int {
    OK = 0, INVALID_VALUE = 1, OUT_OF_MEMORY = 2, NOT_INITIALIZED = 3, INVALID_DEVICE = 101,
    INVALID_IMAGE = 200, INVALID_CONTEXT = 201, INVALID_HANDLE = 400, NOT_FOUND = 500,
    INVALID_PTX = 218, ILLEGAL_ADDRESS = 700, LAUNCH_OUT_OF_RESOURCES = 701, MISALIGNED_ADDRESS = 716,
    NOT_SUPPORTED = 801,
};

const std::map<int, const char*> errorNames = {
    {OK, "CUDA_SUCCESS"}, {INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE"},
    {OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY"}, {NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED"},
    {INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE"}, {INVALID_IMAGE, "CUDA_ERROR_INVALID_IMAGE"},
    {INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT"}, {INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE"},
    {NOT_FOUND, "CUDA_ERROR_NOT_FOUND"}, {INVALID_PTX, "CUDA_ERROR_INVALID_PTX"},
    {ILLEGAL_ADDRESS, "CUDA_ERROR_ILLEGAL_ADDRESS"}, {LAUNCH_OUT_OF_RESOURCES, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"},
    {MISALIGNED_ADDRESS, "CUDA_ERROR_MISALIGNED_ADDRESS"}, {NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED"},
};

int fail(int code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
int fail(int code, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::fputs("fake libcuda: ", stderr);
    std::vfprintf(stderr, fmt, ap);
    std::fputc('\n', stderr);
    va_end(ap);
    return code;
}

// kind of a kernel parameter: 'i' int (PTX .u32/.s32), 'f' float (.f32), 'p' pointer (.u64).
template <class T> constexpr char kindOf() {
    if constexpr (std::is_pointer_v<T>) return 'p';
    else if constexpr (std::is_same_v<T, int>) return 'i';
    else {
        static_assert(std::is_same_v<T, float>, "kernel parameter neither int, float nor pointer");
        return 'f';
    }
}
template <class T> constexpr size_t alignOf() {
    if constexpr (std::is_pointer_v<T>) return alignof(std::remove_pointer_t<T>);
    else return 1;
}

struct Kernel {
    std::string kinds;          // per parameter, from the C signature
    std::vector<size_t> aligns; // pointee alignment of pointer parameters
    void (*run)(void** params, dim3 grid, dim3 block);
};

template <auto K, class... P, size_t... I> void runKernel(void** params, dim3 grid, dim3 block, std::index_sequence<I...>) {
    std::tuple<P...> args{*static_cast<P*>(params[I])...};
    launch(grid, block, [&] { std::apply(K, args); });
}
template <auto K, class... P> Kernel makeKernel(void (*)(P...)) {
    return Kernel{std::string{kindOf<P>()...}, {alignOf<P>()...},
                  [](void** params, dim3 grid, dim3 block) { runKernel<K, P...>(params, grid, block, std::index_sequence_for<P...>{}); }};
}

#define K(name) {#name, makeKernel<name>(name)},
const std::map<std::string, Kernel> kernels = {
#include "fake_kernels.inc"
};
#undef K

struct Alloc { uintptr_t base; size_t bytes; void* map; size_t mapBytes; };
struct Module { std::map<std::string, std::string> entries; };  // entry name → PTX parameter kinds
struct Function { const Kernel* k; std::string name; };

std::recursive_mutex mu;
bool initialised;
int ccMajor = 9, ccMinor = 0;
int primaryRefs;
const uintptr_t primaryCtx = 0xc0ffee;
thread_local uintptr_t current;
std::map<uintptr_t, Alloc> allocs;  // by base
std::vector<Module*> modules;
std::vector<Function*> functions;
const size_t page = size_t(sysconf(_SC_PAGESIZE));

std::map<std::string, long>* calls;  // MAMI_FAKE_CUDA_STATS: calls per entry point and kernel

void writeStats() {
    const char* path = std::getenv("MAMI_FAKE_CUDA_STATS");
    FILE* f = path ? std::fopen(path, "w") : nullptr;
    if (!f) return;
    for (auto& [name, n] : *calls) std::fprintf(f, "%s %ld\n", name.c_str(), n);
    std::fclose(f);
}

void count(const char* name) {
    if (calls) (*calls)[name]++;
}

#define LOCK                                        \
    std::lock_guard<std::recursive_mutex> lock(mu); \
    count(__func__)
#define NEED_INIT if (!initialised) return fail(NOT_INITIALIZED, "%s before cuInit", __func__)
#define NEED_CTX                                                                                        \
    NEED_INIT;                                                                                          \
    if (current != primaryCtx || primaryRefs == 0)                                                      \
        return fail(INVALID_CONTEXT, "%s: no live context is current on this thread (tid %ld)", __func__, \
                    long(gettid()))

// find returns the allocation holding [p, p+n), or null.
const Alloc* find(uintptr_t p, size_t n) {
    auto it = allocs.upper_bound(p);
    if (it == allocs.begin()) return nullptr;
    --it;
    const Alloc& a = it->second;
    if (p < a.base || p + n > a.base + a.bytes || p + n < p) return nullptr;
    return &a;
}

std::string ptxKinds(const std::string& params) {
    std::string kinds;
    for (size_t at = 0; (at = params.find(".param ", at)) != std::string::npos; at += 7) {
        std::string ty = params.substr(at + 7, 4);
        if (ty == ".u32" || ty == ".s32") kinds += 'i';
        else if (ty == ".f32") kinds += 'f';
        else if (ty == ".u64" || ty == ".s64") kinds += 'p';
        else kinds += '?';
    }
    return kinds;
}

void freeAll() {
    for (auto& [base, a] : allocs) munmap(a.map, a.mapBytes);
    allocs.clear();
}

}  // namespace

extern "C" {

typedef uintptr_t CUdeviceptr;

int cuInit(unsigned flags) {
    LOCK;
    if (flags != 0) return fail(INVALID_VALUE, "cuInit: flags %u, must be 0", flags);
    if (!calls && std::getenv("MAMI_FAKE_CUDA_STATS")) calls = new std::map<std::string, long>;
    if (const char* cc = std::getenv("MAMI_FAKE_CUDA_CC")) {
        if (std::sscanf(cc, "%d.%d", &ccMajor, &ccMinor) != 2) return fail(INVALID_VALUE, "MAMI_FAKE_CUDA_CC=%s: want major.minor", cc);
    }
    initialised = true;
    return OK;
}

int cuDriverGetVersion(int* v) {
    if (!v) return INVALID_VALUE;
    *v = 13000;
    return OK;
}

int cuGetErrorName(int r, const char** s) {
    auto it = errorNames.find(r);
    if (!s || it == errorNames.end()) return INVALID_VALUE;
    *s = it->second;
    return OK;
}

int cuDeviceGetCount(int* n) {
    NEED_INIT;
    *n = 1;
    return OK;
}

int cuDeviceGet(int* d, int ordinal) {
    NEED_INIT;
    if (ordinal != 0) return fail(INVALID_DEVICE, "cuDeviceGet: ordinal %d, the fake has device 0 only", ordinal);
    *d = 0;
    return OK;
}

int cuDeviceGetName(char* name, int len, int d) {
    NEED_INIT;
    if (d != 0) return INVALID_DEVICE;
    std::snprintf(name, size_t(len), "mami fake CUDA driver (kernels on the CPU)");
    return OK;
}

int cuDeviceTotalMem_v2(size_t* bytes, int d) {
    NEED_INIT;
    if (d != 0) return INVALID_DEVICE;
    *bytes = size_t(16) << 30;
    return OK;
}

int cuDeviceGetAttribute(int* v, int attr, int d) {
    NEED_INIT;
    if (d != 0) return INVALID_DEVICE;
    switch (attr) {
    case 1: *v = 1024; return OK;      // max threads per block
    case 2: case 3: *v = 1024; return OK;  // max block x, y
    case 4: *v = 64; return OK;        // max block z
    case 5: *v = 2147483647; return OK;  // max grid x
    case 6: case 7: *v = 65535; return OK;  // max grid y, z
    case 8: *v = 48 << 10; return OK;  // shared memory per block
    case 10: *v = 32; return OK;       // warp size
    case 16: *v = 132; return OK;      // multiprocessors
    case 75: *v = ccMajor; return OK;  // compute capability major
    case 76: *v = ccMinor; return OK;  // compute capability minor
    }
    return fail(NOT_SUPPORTED, "cuDeviceGetAttribute: attribute %d is not emulated", attr);
}

int cuDevicePrimaryCtxRetain(uintptr_t* ctx, int d) {
    LOCK;
    NEED_INIT;
    if (d != 0) return INVALID_DEVICE;
    primaryRefs++;
    *ctx = primaryCtx;
    return OK;
}

int cuDevicePrimaryCtxRelease_v2(int d) {
    LOCK;
    NEED_INIT;
    if (d != 0) return INVALID_DEVICE;
    if (primaryRefs == 0) return fail(INVALID_CONTEXT, "cuDevicePrimaryCtxRelease: the primary context is not retained");
    if (--primaryRefs == 0) {
        size_t bytes = 0;
        for (auto& [base, a] : allocs) bytes += a.bytes;
        if (!allocs.empty())
            fail(OK, "leak: %zu allocations (%zu bytes) still live when the primary context was released", allocs.size(), bytes);
        freeAll();
        if (!modules.empty()) fail(OK, "leak: %zu modules still loaded when the primary context was released", modules.size());
        if (calls) writeStats();
    }
    return OK;
}

int cuCtxSetCurrent(uintptr_t ctx) {
    NEED_INIT;
    if (ctx != 0 && ctx != primaryCtx) return fail(INVALID_CONTEXT, "cuCtxSetCurrent: unknown context %#lx", (unsigned long)ctx);
    current = ctx;
    return OK;
}

int cuCtxGetCurrent(uintptr_t* ctx) {
    NEED_INIT;
    *ctx = current;
    return OK;
}

int cuCtxSynchronize() {
    LOCK;
    NEED_CTX;
    return OK;
}

int cuModuleLoadData(Module** mod, const void* image) {
    LOCK;
    NEED_CTX;
    if (!mod || !image) return fail(INVALID_VALUE, "cuModuleLoadData: null argument");
    const char* s = static_cast<const char*>(image);
    size_t n = strnlen(s, size_t(64) << 20);
    if (n == size_t(64) << 20) return fail(INVALID_IMAGE, "cuModuleLoadData: image is not a NUL-terminated string (PTX must be)");
    std::string ptx(s, n);
    size_t v = ptx.find("\n.version "), t = ptx.find("\n.target sm_");
    if (v == std::string::npos || t == std::string::npos) return fail(INVALID_IMAGE, "cuModuleLoadData: no .version / .target sm_XX line: not PTX");
    int sm = std::atoi(ptx.c_str() + t + 12);
    if (sm > ccMajor * 10 + ccMinor)
        return fail(INVALID_PTX, "cuModuleLoadData: PTX .target sm_%d cannot run on compute capability %d.%d", sm, ccMajor, ccMinor);
    auto* m = new Module;
    for (size_t at = 0; (at = ptx.find(".entry ", at)) != std::string::npos;) {
        at += 7;
        size_t open = ptx.find('(', at), close = ptx.find(')', open);
        if (open == std::string::npos || close == std::string::npos) break;
        m->entries[ptx.substr(at, open - at)] = ptxKinds(ptx.substr(open, close - open));
        at = close;
    }
    if (m->entries.empty()) {
        delete m;
        return fail(INVALID_IMAGE, "cuModuleLoadData: PTX without a single .entry");
    }
    modules.push_back(m);
    *mod = m;
    return OK;
}

int cuModuleGetFunction(Function** fn, Module* mod, const char* name) {
    LOCK;
    NEED_CTX;
    bool known = false;
    for (auto* m : modules) known = known || m == mod;
    if (!known) return fail(INVALID_HANDLE, "cuModuleGetFunction(%s): unknown module", name);
    auto e = mod->entries.find(name);
    if (e == mod->entries.end()) return fail(NOT_FOUND, "cuModuleGetFunction: the PTX has no .entry %s", name);
    auto k = kernels.find(name);
    if (k == kernels.end()) return fail(NOT_FOUND, "cuModuleGetFunction: %s is in the PTX but not in mami.cu", name);
    if (e->second != k->second.kinds)
        return fail(INVALID_PTX, "cuModuleGetFunction: %s: PTX parameters %s, mami.cu's signature %s (i int, f float, p pointer)",
                    name, e->second.c_str(), k->second.kinds.c_str());
    auto* f = new Function{&k->second, name};
    functions.push_back(f);
    *fn = f;
    return OK;
}

int cuModuleUnload(Module* mod) {
    LOCK;
    NEED_CTX;
    for (size_t i = 0; i < modules.size(); i++)
        if (modules[i] == mod) {
            modules.erase(modules.begin() + long(i));
            delete mod;
            return OK;
        }
    return fail(INVALID_HANDLE, "cuModuleUnload: unknown module");
}

int cuMemAlloc_v2(CUdeviceptr* p, size_t bytes) {
    LOCK;
    NEED_CTX;
    if (!p || bytes == 0) return fail(INVALID_VALUE, "cuMemAlloc: %zu bytes", bytes);
    size_t data = (bytes + page - 1) / page * page, total = data + page;
    void* m = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return fail(OUT_OF_MEMORY, "cuMemAlloc: %zu bytes: mmap failed", bytes);
    mprotect(static_cast<char*>(m) + data, page, PROT_NONE);
    uintptr_t base = (reinterpret_cast<uintptr_t>(m) + data - bytes) & ~uintptr_t(15);
    std::memset(reinterpret_cast<void*>(base), 0xff, bytes);
    allocs[base] = Alloc{base, bytes, m, total};
    *p = base;
    return OK;
}

int cuMemFree_v2(CUdeviceptr p) {
    LOCK;
    NEED_CTX;
    auto it = allocs.find(p);
    if (it == allocs.end()) return fail(INVALID_VALUE, "cuMemFree: %#lx is not the start of an allocation", (unsigned long)p);
    munmap(it->second.map, it->second.mapBytes);
    allocs.erase(it);
    return OK;
}

int cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t n) {
    LOCK;
    NEED_CTX;
    if (!find(dst, n)) return fail(INVALID_VALUE, "cuMemcpyHtoD: [%#lx, +%zu) is not inside one allocation", (unsigned long)dst, n);
    std::memcpy(reinterpret_cast<void*>(dst), src, n);
    return OK;
}

int cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t n) {
    LOCK;
    NEED_CTX;
    if (!find(src, n)) return fail(INVALID_VALUE, "cuMemcpyDtoH: [%#lx, +%zu) is not inside one allocation", (unsigned long)src, n);
    std::memcpy(dst, reinterpret_cast<const void*>(src), n);
    return OK;
}

int cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) {
    LOCK;
    NEED_CTX;
    if (!find(dst, n) || !find(src, n)) return fail(INVALID_VALUE, "cuMemcpyDtoD: a range of %zu bytes is not inside one allocation", n);
    std::memmove(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), n);
    return OK;
}

int cuMemsetD32_v2(CUdeviceptr dst, unsigned v, size_t n) {
    LOCK;
    NEED_CTX;
    if (dst % 4 != 0) return fail(MISALIGNED_ADDRESS, "cuMemsetD32: %#lx is not 4-byte aligned", (unsigned long)dst);
    if (!find(dst, 4 * n)) return fail(INVALID_VALUE, "cuMemsetD32: [%#lx, +%zu words) is not inside one allocation", (unsigned long)dst, n);
    auto* w = reinterpret_cast<uint32_t*>(dst);
    for (size_t i = 0; i < n; i++) w[i] = v;
    return OK;
}

int cuLaunchKernel(Function* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                   unsigned shared, void* stream, void** params, void** extra) {
    LOCK;
    NEED_CTX;
    bool known = false;
    for (auto* g : functions) known = known || g == f;
    if (!known) return fail(INVALID_HANDLE, "cuLaunchKernel: unknown function");
    const char* name = f->name.c_str();
    if (extra) return fail(NOT_SUPPORTED, "cuLaunchKernel(%s): extra is not emulated; pass kernelParams", name);
    if (stream) return fail(NOT_SUPPORTED, "cuLaunchKernel(%s): streams are not emulated", name);
    if (shared) return fail(NOT_SUPPORTED, "cuLaunchKernel(%s): %u bytes of dynamic shared memory (mami's kernels use static shared memory only)", name, shared);
    if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0 || gy > 65535 || gz > 65535 || bx > 1024 ||
        by > 1024 || bz > 64 || size_t(bx) * by * bz > 1024)
        return fail(INVALID_VALUE, "cuLaunchKernel(%s): grid %u×%u×%u, block %u×%u×%u outside the device's limits", name, gx, gy, gz, bx, by, bz);
    const Kernel& k = *f->k;
    if (!k.kinds.empty() && !params) return fail(INVALID_VALUE, "cuLaunchKernel(%s): kernelParams is null", name);
    for (size_t i = 0; i < k.kinds.size(); i++) {
        if (!params[i]) return fail(INVALID_VALUE, "cuLaunchKernel(%s): kernelParams[%zu] is null", name, i);
        if (k.kinds[i] != 'p') continue;
        uintptr_t p = *static_cast<uintptr_t*>(params[i]);
        if (p == 0) continue;
        if (!find(p, 1))
            return fail(ILLEGAL_ADDRESS, "cuLaunchKernel(%s): argument %zu = %#lx points outside every allocation", name, i, (unsigned long)p);
        if (p % k.aligns[i] != 0)
            return fail(MISALIGNED_ADDRESS, "cuLaunchKernel(%s): argument %zu = %#lx is not %zu-byte aligned", name, i, (unsigned long)p, k.aligns[i]);
    }
    count(name);
    if (const char* b = std::getenv("MAMI_FAKE_CUDA_BREAK"); b && f->name == b) return OK;  // a silently wrong kernel
    k.run(params, dim3{gx, gy, gz}, dim3{bx, by, bz});
    return OK;
}

// Every other entry point gorgonia.org/cu links against: present, refused.
#define STUB(name) \
    int name() { return fail(NOT_SUPPORTED, #name " is not emulated"); }
#include "fake_stubs.inc"
#undef STUB

}  // extern "C"
