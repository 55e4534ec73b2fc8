// mami.cu: the CUDA kernels of mami's GPU backend (package models/cuda).
//
// Every kernel is extern "C" (unmangled names the Go side looks up), works on row-major float32 arrays and
// has a Go twin in models/cuda/ref.go that computes the same thing in the same order; the CPU-side
// conformance suite runs the twins against the CPU backend (package models). Keep both in step: change a
// kernel here, change its twin there, then `go generate ./models/cuda/kernels` (nvcc) and commit the PTX.
//
// Launch shapes are computed in models/cuda/launch.go: element-wise and row kernels use 1-D grids of
// 256-thread blocks with grid-stride loops; gemm uses 16×16-thread blocks over 64×64 tiles of C.

#define TILE 64
#define TK 16

// gemm: C = alpha·op(A)·op(B) + beta·C (+ bias[col]), op(A) M×K, op(B) K×N, all row-major.
// op(A)[m][k] = transA ? A[k*lda+m] : A[m*lda+k];  op(B)[k][n] = transB ? B[n*ldb+k] : B[k*ldb+n].
// beta == 0 never reads C. bias may be 0. Each thread accumulates a 4×4 block of C over k in order.
extern "C" __global__ void mami_gemm(int transA, int transB, int M, int N, int K, float alpha,
                                     const float* __restrict__ A, int lda, const float* __restrict__ B, int ldb,
                                     float beta, float* __restrict__ C, int ldc, const float* __restrict__ bias) {
    __shared__ float As[TK][TILE + 1];
    __shared__ float Bs[TK][TILE + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;  // 16×16
    const int tid = ty * 16 + tx;
    const int row0 = blockIdx.y * TILE, col0 = blockIdx.x * TILE;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.f;

    for (int k0 = 0; k0 < K; k0 += TK) {
        // 64×16 values of each operand, 4 per thread.
#pragma unroll
        for (int l = 0; l < 4; l++) {
            int e = tid + l * 256;
            int kk, mm;
            if (transA) { mm = e % TILE; kk = e / TILE; } else { kk = e % TK; mm = e / TK; }
            int gm = row0 + mm, gk = k0 + kk;
            float a = 0.f;
            if (gm < M && gk < K) a = transA ? A[(size_t)gk * lda + gm] : A[(size_t)gm * lda + gk];
            As[kk][mm] = a;
            int nn;
            if (transB) { kk = e % TK; nn = e / TK; } else { nn = e % TILE; kk = e / TILE; }
            int gn = col0 + nn;
            gk = k0 + kk;
            float b = 0.f;
            if (gn < N && gk < K) b = transB ? B[(size_t)gn * ldb + gk] : B[(size_t)gk * ldb + gn];
            Bs[kk][nn] = b;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < TK; kk++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) a[i] = As[kk][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; j++) b[j] = Bs[kk][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int m = row0 + ty + 16 * i;
        if (m >= M) continue;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int n = col0 + tx + 16 * j;
            if (n >= N) continue;
            float v = alpha * acc[i][j];
            if (bias) v += bias[n];
            size_t at = (size_t)m * ldc + n;
            C[at] = beta == 0.f ? v : fmaf(beta, C[at], v);
        }
    }
}

// colsum: out[j] = beta·out[j] + scale·Σ_r g[r][j] (the bias gradient), summed over r in order.
extern "C" __global__ void mami_colsum(int rows, int cols, float scale, const float* __restrict__ g, float beta,
                                       float* __restrict__ out) {
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < cols; j += gridDim.x * blockDim.x) {
        float s = beta == 0.f ? 0.f : out[j];
        for (int r = 0; r < rows; r++) s += scale * g[(size_t)r * cols + j];
        out[j] = s;
    }
}

// concat2: y[r] = [a[r] ; b[r]] (through ReLU when relu != 0), a n×d1, b n×d2.
extern "C" __global__ void mami_concat2(int n, int d1, int d2, int relu, const float* __restrict__ a,
                                        const float* __restrict__ b, float* __restrict__ y) {
    int d = d1 + d2;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n * d; i += gridDim.x * blockDim.x) {
        int r = i / d, c = i % d;
        float v = c < d1 ? a[(size_t)r * d1 + c] : b[(size_t)r * d2 + c - d1];
        y[i] = relu ? fmaxf(v, 0.f) : v;
    }
}

// act_fwd: y = f(x) for kind 0 relu, 1 tanh, 2 sigmoid.
extern "C" __global__ void mami_act_fwd(int kind, int n, const float* __restrict__ x, float* __restrict__ y) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        float v = x[i];
        y[i] = kind == 0 ? fmaxf(v, 0.f) : kind == 1 ? tanhf(v) : 1.f / (1.f + expf(-v));
    }
}

// act_bwd: dx from the upstream g and the activation's output y.
extern "C" __global__ void mami_act_bwd(int kind, int n, const float* __restrict__ g, const float* __restrict__ y,
                                        float* __restrict__ dx) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        float v = y[i];
        dx[i] = kind == 0 ? (v > 0.f ? g[i] : 0.f) : kind == 1 ? g[i] * (1.f - v * v) : g[i] * v * (1.f - v);
    }
}

// mul: y = a ⊙ b (dropout with its mask, align's Hadamard product, and their gradients).
extern "C" __global__ void mami_mul(int n, const float* __restrict__ a, const float* __restrict__ b,
                                    float* __restrict__ y) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) y[i] = a[i] * b[i];
}

// mean2: y = (a + b)/2 (late fusion); half: y = g/2 (its gradient).
extern "C" __global__ void mami_mean2(int n, const float* __restrict__ a, const float* __restrict__ b,
                                      float* __restrict__ y) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) y[i] = 0.5f * (a[i] + b[i]);
}

extern "C" __global__ void mami_half(int n, const float* __restrict__ g, float* __restrict__ y) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) y[i] = 0.5f * g[i];
}

// l2norm_fwd: one thread per row: norm = max(√Σx², 1e-12) (sum in double), y = x/norm.
extern "C" __global__ void mami_l2norm_fwd(int n, int d, const float* __restrict__ x, float* __restrict__ y,
                                           float* __restrict__ norms) {
    for (int r = blockIdx.x * blockDim.x + threadIdx.x; r < n; r += gridDim.x * blockDim.x) {
        const float* xr = x + (size_t)r * d;
        double s = 0;
        for (int j = 0; j < d; j++) s += (double)xr[j] * (double)xr[j];
        float nrm = fmaxf((float)sqrt(s), 1e-12f);
        norms[r] = nrm;
        for (int j = 0; j < d; j++) y[(size_t)r * d + j] = xr[j] / nrm;
    }
}

// l2norm_bwd: dx = (g − y·(g·y))/norm per row.
extern "C" __global__ void mami_l2norm_bwd(int n, int d, const float* __restrict__ g, const float* __restrict__ y,
                                           const float* __restrict__ norms, float* __restrict__ dx) {
    for (int r = blockIdx.x * blockDim.x + threadIdx.x; r < n; r += gridDim.x * blockDim.x) {
        const float *gr = g + (size_t)r * d, *yr = y + (size_t)r * d;
        float dot = 0.f;
        for (int j = 0; j < d; j++) dot += gr[j] * yr[j];
        float inv = 1.f / norms[r];
        for (int j = 0; j < d; j++) dx[(size_t)r * d + j] = (gr[j] - yr[j] * dot) * inv;
    }
}

// outer_fwd: y[r][i*q+j] = a[r][i]·b[r][j].
extern "C" __global__ void mami_outer_fwd(int n, int p, int q, const float* __restrict__ a, const float* __restrict__ b,
                                          float* __restrict__ y) {
    int pq = p * q;
    for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < n * pq; e += gridDim.x * blockDim.x) {
        int r = e / pq, ij = e % pq;
        y[e] = a[(size_t)r * p + ij / q] * b[(size_t)r * q + ij % q];
    }
}

// outer_bwd_a: da[r][i] = Σ_j g[r][i*q+j]·b[r][j];  outer_bwd_b: db[r][j] = Σ_i g[r][i*q+j]·a[r][i].
extern "C" __global__ void mami_outer_bwd_a(int n, int p, int q, const float* __restrict__ g,
                                            const float* __restrict__ b, float* __restrict__ da) {
    for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < n * p; e += gridDim.x * blockDim.x) {
        int r = e / p, i = e % p;
        const float *gr = g + (size_t)r * p * q + (size_t)i * q, *br = b + (size_t)r * q;
        float s = 0.f;
        for (int j = 0; j < q; j++) s += gr[j] * br[j];
        da[e] = s;
    }
}

extern "C" __global__ void mami_outer_bwd_b(int n, int p, int q, const float* __restrict__ g,
                                            const float* __restrict__ a, float* __restrict__ db) {
    for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < n * q; e += gridDim.x * blockDim.x) {
        int r = e / q, j = e % q;
        const float *gr = g + (size_t)r * p * q + j, *ar = a + (size_t)r * p;
        float s = 0.f;
        for (int i = 0; i < p; i++) s += gr[(size_t)i * q] * ar[i];
        db[e] = s;
    }
}

// gmu_fwd: h = z⊙hv + (1−z)⊙ht;  gmu_bwd: the three input gradients at once.
extern "C" __global__ void mami_gmu_fwd(int n, const float* __restrict__ z, const float* __restrict__ hv,
                                        const float* __restrict__ ht, float* __restrict__ h) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        h[i] = z[i] * hv[i] + (1.f - z[i]) * ht[i];
}

extern "C" __global__ void mami_gmu_bwd(int n, const float* __restrict__ g, const float* __restrict__ z,
                                        const float* __restrict__ hv, const float* __restrict__ ht, float* __restrict__ dz,
                                        float* __restrict__ dhv, float* __restrict__ dht) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        dz[i] = g[i] * (hv[i] - ht[i]);
        dhv[i] = g[i] * z[i];
        dht[i] = g[i] * (1.f - z[i]);
    }
}

__device__ double sigmoid_d(double x) {
    if (x >= 0) return 1 / (1 + exp(-x));
    double e = exp(x);
    return e / (1 + e);
}

// loss: one thread per sample, in double like the CPU heads: per-sample loss into loss[r] and, when dz is
// not 0, d(mean loss)/d logits into dz (head 0 double_softmax, 1 softmax_ce, 2 bce; k logits per row).
extern "C" __global__ void mami_loss(int head, int n, int k, const float* __restrict__ z, const float* __restrict__ y,
                                     float* __restrict__ loss, float* __restrict__ dz) {
    for (int r = blockIdx.x * blockDim.x + threadIdx.x; r < n; r += gridDim.x * blockDim.x) {
        double s = 1.0 / n;
        int c = y[r] >= 0.5f ? 1 : 0;
        if (head == 2) {
            double x = z[r];
            loss[r] = (float)(fmax(x, 0.0) - x * y[r] + log1p(exp(-fabs(x))));
            if (dz) dz[r] = (float)(s * (sigmoid_d(x) - y[r]));
            continue;
        }
        double a = z[2 * r], b = z[2 * r + 1];
        double m = fmax(a, b), ea = exp(a - m), eb = exp(b - m);
        double p0 = ea / (ea + eb), p1 = eb / (ea + eb);
        if (head == 1) {
            loss[r] = (float)(m + log(ea + eb) - (c ? b : a));
            if (dz) {
                dz[2 * r] = (float)(s * (p0 - (c == 0)));
                dz[2 * r + 1] = (float)(s * (p1 - (c == 1)));
            }
            continue;
        }
        double m2 = fmax(p0, p1), e0 = exp(p0 - m2), e1 = exp(p1 - m2);
        loss[r] = (float)(m2 + log(e0 + e1) - (c ? p1 : p0));
        if (dz) {
            double g0 = e0 / (e0 + e1) - (c == 0), g1 = e1 / (e0 + e1) - (c == 1);
            double dot = p0 * g0 + p1 * g1;
            dz[2 * r] = (float)(s * p0 * (g0 - dot));
            dz[2 * r + 1] = (float)(s * p1 * (g1 - dot));
        }
    }
}

// prob: P(class 1) per row: sigmoid of one logit, softmax(·)[1] of two.
extern "C" __global__ void mami_prob(int n, int k, const float* __restrict__ z, float* __restrict__ p) {
    for (int r = blockIdx.x * blockDim.x + threadIdx.x; r < n; r += gridDim.x * blockDim.x) {
        if (k == 1) {
            p[r] = (float)sigmoid_d(z[r]);
        } else {
            double a = z[2 * r], b = z[2 * r + 1], m = fmax(a, b), ea = exp(a - m), eb = exp(b - m);
            p[r] = (float)(eb / (ea + eb));
        }
    }
}

// sum: out[0] = Σ x (in double), one block of 256 threads (a batch's losses: n is at most a few thousand).
extern "C" __global__ void mami_sum(int n, const float* __restrict__ x, double* __restrict__ out) {
    __shared__ double part[256];
    double s = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += x[i];
    part[threadIdx.x] = s;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
        if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[0] = part[0];
}

// gather: dst[r] = src[idx[r]] for rows of dim values (a batch out of the device-resident data set).
extern "C" __global__ void mami_gather(int n, int dim, const int* __restrict__ idx, const float* __restrict__ src,
                                       float* __restrict__ dst) {
    for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < n * dim; e += gridDim.x * blockDim.x) {
        int r = e / dim, c = e % dim;
        dst[e] = src[(size_t)idx[r] * dim + c];
    }
}

// adam: one Adam/AdamW step over the flat params (see models' adamConsts for the formula).
extern "C" __global__ void mami_adam(int n, float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                                     float* __restrict__ v, float wd, float decay, float b1, float c1, float b2,
                                     float c2, float step, float invBC2, float eps) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        float gj = g[i] + wd * p[i];
        float pj = decay * p[i];
        float mj = b1 * m[i] + c1 * gj;
        float vj = b2 * v[i] + c2 * gj * gj;
        m[i] = mj;
        v[i] = vj;
        p[i] = pj - step * mj / (sqrtf(vj) * invBC2 + eps);
    }
}

// sgd: p −= lr·(g + wd·p).
extern "C" __global__ void mami_sgd(int n, float* __restrict__ p, const float* __restrict__ g, float lr, float wd) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) p[i] -= lr * (g[i] + wd * p[i]);
}

// sumsq: acc[0] += Σ g² (block partials in double, one atomic per block; acc zeroed before).
extern "C" __global__ void mami_sumsq(int n, const float* __restrict__ g, double* __restrict__ acc) {
    __shared__ double part[256];
    double s = 0;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) s += (double)g[i] * g[i];
    part[threadIdx.x] = s;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
        if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) atomicAdd(acc, part[0]);
}

// clip: g *= max/(norm+1e-6) when norm = √acc[0] > max (like torch.nn.utils.clip_grad_norm_).
extern "C" __global__ void mami_clip(int n, float* __restrict__ g, const double* __restrict__ acc, float maxNorm) {
    double norm = sqrt(acc[0]);
    if (norm <= maxNorm) return;
    float coef = (float)(maxNorm / (norm + 1e-6));
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) g[i] *= coef;
}

// mask: a dropout mask drawn on the device: mask[i] = keep when hash(seed, stream, i) ≥ p·2³², else 0.
// The hash is SplitMix64's finaliser over (stream, i) mixed with the seed; its Go twin is maskHash.
extern "C" __global__ void mami_mask(int n, int seed, int stream, float p, float keep, float* __restrict__ mask) {
    unsigned int thr = (unsigned int)fmin((double)p * 4294967296.0, 4294967295.0);
    unsigned long long s = (unsigned long long)(unsigned int)seed * 0x9E3779B97F4A7C15ULL;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        unsigned long long x = ((unsigned long long)(unsigned int)stream << 32 | (unsigned int)i) ^ s;
        x += 0x9E3779B97F4A7C15ULL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
        x ^= x >> 31;
        mask[i] = (unsigned int)(x >> 32) >= thr ? keep : 0.f;
    }
}
