// cpu_server.cpp: runs mami.cu's kernels on the CPU (cpu_shim.h) for models/cuda's cppBackend test: each
// request on stdin names a kernel, its launch shape, its arguments and the memory they point into; the
// server runs the kernel and writes the memory back. Build (the test does it):
//   g++ -std=c++20 -O1 -pthread -Wno-unknown-pragmas -include cpu_shim.h cpu_server.cpp
//
// Request (little-endian): u32 name length, name; u32 grid[3], block[3]; u32 nargs, then per argument
// u8 kind (0 int, 1 float, 2 pointer) and int32 / float32 / (u32 buffer, u32 byte offset; buffer
// 0xffffffff = null); u32 nbufs, then per buffer u32 bytes and the bytes. Response: every buffer's bytes
// in order, then u8 0.
#include "../mami.cu"
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

struct Arg {
    int kind;
    int32_t i;
    float f;
    void* p;
    operator int() const { return i; }
    operator float() const { return f; }
    template <class T> operator T*() const { return (T*)p; }
};
static std::vector<Arg> args;
static Arg A(int k) { return args[k]; }

static bool readAll(void* dst, size_t n) { return std::fread(dst, 1, n, stdin) == n; }
static uint32_t u32() {
    uint32_t v = 0;
    if (!readAll(&v, 4)) std::exit(0);
    return v;
}

static const std::map<std::string, void (*)()> kernels = {
#include "cpu_dispatch.inc"
};

int main() {
    std::vector<std::vector<char>> bufs;
    struct PtrArg { size_t k; uint32_t buf, off; };
    for (;;) {
        uint32_t nl = u32();
        std::string name(nl, '\0');
        if (!readAll(name.data(), nl)) return 1;
        dim3 grid, block;
        grid.x = u32(); grid.y = u32(); grid.z = u32();
        block.x = u32(); block.y = u32(); block.z = u32();
        uint32_t na = u32();
        args.assign(na, Arg{});
        std::vector<PtrArg> ptrs;
        for (uint32_t k = 0; k < na; k++) {
            uint8_t kind;
            if (!readAll(&kind, 1)) return 1;
            args[k].kind = kind;
            if (kind == 0) { uint32_t v = u32(); std::memcpy(&args[k].i, &v, 4); }
            else if (kind == 1) { uint32_t v = u32(); std::memcpy(&args[k].f, &v, 4); }
            else { uint32_t b = u32(), off = u32(); ptrs.push_back({k, b, off}); }
        }
        uint32_t nb = u32();
        bufs.resize(nb);
        for (auto& b : bufs) {
            b.resize(u32() + 8);
            if (!readAll(b.data(), b.size() - 8)) return 1;
        }
        for (auto& p : ptrs) args[p.k].p = p.buf == 0xffffffffu ? nullptr : bufs[p.buf].data() + p.off;
        auto it = kernels.find(name);
        if (it == kernels.end()) { std::fprintf(stderr, "no kernel %s\n", name.c_str()); return 2; }
        launch(grid, block, [&] { it->second(); });
        for (auto& b : bufs) std::fwrite(b.data(), 1, b.size() - 8, stdout);
        uint8_t ok = 0;
        std::fwrite(&ok, 1, 1, stdout);
        std::fflush(stdout);
    }
}
