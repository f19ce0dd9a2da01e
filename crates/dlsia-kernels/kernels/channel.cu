// Per-channel operations on (N, C, S) tensors (S = spatial volume): the affine map
// x·a[c] + b[c], per-channel sums accumulated in f64 (statistics, gradient sums), and the
// batch-normalisation input gradient.
#include "common.cuh"

// Mirrors `Planes` in dlsia-ops.
struct Planes {
  i64 n, c, s;
};

template <typename T>
__device__ void channel_affine_impl(const T* x, const T* a, const T* b, T* y, Planes p) {
  GRID_LOOP(i, p.n * p.c * p.s) {
    const i64 c = (i / p.s) % p.c;
    y[i] = x[i] * a[c] + b[c];
  }
}
DLSIA_REAL_KERNELS(channel_affine, (const T* x, const T* a, const T* b, T* y, Planes p),
                   (x, a, b, y, p))

// Stage 1 of per-channel sums over the N·S elements of each channel, accumulated in f64.
// mode 0: [Σ x]; mode 1: [Σ (x − mean[c])²]; mode 2: [Σ g, Σ g·x]. Block (chunk, c) covers
// `per_chunk` elements of channel c; thread 0 writes part[(chunk·K + k)·C + c] or, with
// `atomic`, adds to part[k·C + c].
template <typename T>
__device__ void channel_sums_impl(const T* x, const T* g, const double* mean, double* part,
                                  Planes p, int mode, i64 per_chunk, int atomic) {
  const i64 count = p.n * p.s;
  const int nk = mode == 2 ? 2 : 1;
  for (i64 c = blockIdx.y; c < p.c; c += gridDim.y) {
    const double mu = mode == 1 ? mean[c] : 0.0;
    for (i64 chunk = blockIdx.x; chunk * per_chunk < count; chunk += gridDim.x) {
      double s0 = 0.0, s1 = 0.0;
      const i64 e1 = min(count, (chunk + 1) * per_chunk);
      for (i64 e = chunk * per_chunk + threadIdx.x; e < e1; e += blockDim.x) {
        const i64 i = ((e / p.s) * p.c + c) * p.s + e % p.s;
        const double xv = (double)x[i];
        if (mode == 0) {
          s0 += xv;
        } else if (mode == 1) {
          const double d = xv - mu;
          s0 += d * d;
        } else {
          const double gv = (double)g[i];
          s0 += gv;
          s1 += gv * xv;
        }
      }
      s0 = block_sum(s0);
      if (nk == 2) s1 = block_sum(s1);
      if (threadIdx.x == 0) {
        for (int k = 0; k < nk; ++k) {
          const double v = k == 0 ? s0 : s1;
          if (atomic)
            atomicAdd(part + k * p.c + c, v);
          else
            part[(chunk * nk + k) * p.c + c] = v;
        }
      }
    }
  }
}
DLSIA_REAL_KERNELS(channel_sums,
                   (const T* x, const T* g, const double* mean, double* part, Planes p, int mode,
                    i64 per_chunk, int atomic),
                   (x, g, mean, part, p, mode, per_chunk, atomic))

// Batch-norm input gradient. prm = [mean; rstd; k; Σg; Σg·x̂] (5 rows of C). With M = N·S:
// dx = α·g + β·x + γ, α = k, β = −k·r·Σgx̂/M, γ = −k·Σg/M − β·μ (computed in f64 per plane).
template <typename T>
__device__ void batch_norm_dx_impl(const T* x, const T* g, const T* prm, T* dx, Planes p) {
  const double m = (double)(p.n * p.s);
  for (i64 plane = blockIdx.y; plane < p.n * p.c; plane += gridDim.y) {
    const i64 c = plane % p.c;
    const double mean = prm[c], rstd = prm[p.c + c], k = prm[2 * p.c + c];
    const double sum_g = prm[3 * p.c + c], sum_gx = prm[4 * p.c + c];
    const double beta = -k * rstd * sum_gx / m;
    const double gamma = -k * sum_g / m - beta * mean;
    const T a = (T)k, b = (T)beta, cc = (T)gamma;
    const i64 base = plane * p.s;
    for (i64 s = (i64)blockIdx.x * blockDim.x + threadIdx.x; s < p.s; s += (i64)gridDim.x * blockDim.x)
      dx[base + s] = a * g[base + s] + b * x[base + s] + cc;
  }
}
DLSIA_REAL_KERNELS(batch_norm_dx, (const T* x, const T* g, const T* prm, T* dx, Planes p),
                   (x, g, prm, dx, p))
