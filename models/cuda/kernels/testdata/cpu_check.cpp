// cpu_check.cpp: runs mami.cu's gemm and block reductions on the CPU (cpu_shim.h) against plain loops,
// with the launch shapes models/cuda/launch.go computes. Prints "ok" or the first mismatches. Build:
//   g++ -std=c++20 -pthread -Wno-unknown-pragmas -include cpu_shim.h cpu_check.cpp
#include "../mami.cu"
#include <cstdio>
#include <cstdlib>
#include <random>

static std::mt19937 rng(1);
static std::vector<float> rnd(size_t n) {
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<float> v(n);
    for (auto& x : v) x = u(rng);
    return v;
}
static int fails = 0;
static void check(bool ok, const char* what, int a, int b, int c, int d) {
    if (!ok && fails++ < 5) std::printf("FAIL %s (%d %d %d %d)\n", what, a, b, c, d);
}

int main() {
    // gemm: every transpose pair, ragged sizes, alpha/beta/bias.
    int shapes[][3] = {{1, 1, 1}, {5, 3, 17}, {70, 65, 33}, {64, 128, 16}, {3, 130, 40}};
    for (auto& s : shapes)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int mode = 0; mode < 2; mode++) {
                    int M = s[0], N = s[1], K = s[2];
                    int lda = ta ? M : K, ldb = tb ? K : N, ldc = N;
                    auto A = rnd((size_t)M * K), B = rnd((size_t)K * N), C = rnd((size_t)M * N), bias = rnd(N);
                    auto want = C;
                    float alpha = mode ? 0.5f : 1.f, beta = mode ? 1.f : 0.f;
                    const float* bp = mode ? nullptr : bias.data();
                    for (int m = 0; m < M; m++)
                        for (int n = 0; n < N; n++) {
                            double acc = 0;
                            for (int k = 0; k < K; k++)
                                acc += (double)(ta ? A[k * lda + m] : A[m * lda + k]) * (tb ? B[n * ldb + k] : B[k * ldb + n]);
                            double v = alpha * acc + (bp ? bp[n] : 0) + (beta != 0 ? beta * C[m * ldc + n] : 0);
                            want[m * ldc + n] = (float)v;
                        }
                    dim3 grid{(unsigned)((N + 63) / 64), (unsigned)((M + 63) / 64), 1}, block{16, 16, 1};
                    launch(grid, block, [&] { mami_gemm(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc, bp); });
                    for (int i = 0; i < M * N; i++)
                        if (std::fabs(C[i] - want[i]) > 1e-4f * (1 + std::fabs(want[i]))) {
                            check(false, "gemm", M, N, K, ta * 2 + tb);
                            break;
                        }
                }
    // sum: one block of 256; sumsq: several blocks with one atomic each; clip reads the result.
    for (int n : {1, 255, 256, 1000, 5000}) {
        auto x = rnd(n);
        double want = 0, want2 = 0;
        for (float v : x) want += v, want2 += (double)v * v;
        double got = -1, acc = 0;
        launch(dim3{1, 1, 1}, dim3{256, 1, 1}, [&] { mami_sum(n, x.data(), &got); });
        check(std::fabs(got - want) < 1e-9 * (1 + std::fabs(want)), "sum", n, 0, 0, 0);
        unsigned blocks = (n + 255) / 256;
        launch(dim3{blocks, 1, 1}, dim3{256, 1, 1}, [&] { mami_sumsq(n, x.data(), &acc); });
        check(std::fabs(acc - want2) < 1e-9 * (1 + want2), "sumsq", n, (int)blocks, 0, 0);
        float maxNorm = 0.5f;
        launch(dim3{blocks, 1, 1}, dim3{256, 1, 1}, [&] { mami_clip(n, x.data(), &acc, maxNorm); });
        double after = 0;
        for (float v : x) after += (double)v * v;
        double norm = std::sqrt(want2);
        double expect = norm > maxNorm ? maxNorm / (norm + 1e-6) * norm : norm;
        check(std::fabs(std::sqrt(after) - expect) < 1e-4, "clip", n, 0, 0, 0);
    }
    // gather and colsum with grid-stride loops over more items than threads.
    {
        int n = 300, dim = 7, rows = 50;
        auto src = rnd((size_t)rows * dim);
        std::vector<int> idx(n);
        for (int i = 0; i < n; i++) idx[i] = (i * 37) % rows;
        std::vector<float> dst((size_t)n * dim);
        launch(dim3{2, 1, 1}, dim3{256, 1, 1}, [&] { mami_gather(n, dim, idx.data(), src.data(), dst.data()); });
        for (int i = 0; i < n * dim; i++) check(dst[i] == src[idx[i / dim] * dim + i % dim], "gather", i, 0, 0, 0);
        auto g = rnd((size_t)n * dim);
        std::vector<float> out(dim, 5.f);
        launch(dim3{1, 1, 1}, dim3{256, 1, 1}, [&] { mami_colsum(n, dim, 2.f, g.data(), 0.f, out.data()); });
        for (int j = 0; j < dim; j++) {
            double s = 0;
            for (int r = 0; r < n; r++) s += 2.0 * g[r * dim + j];
            check(std::fabs(out[j] - s) < 1e-3, "colsum", j, 0, 0, 0);
        }
    }
    if (fails) return 1;
    std::printf("ok\n");
    return 0;
}
