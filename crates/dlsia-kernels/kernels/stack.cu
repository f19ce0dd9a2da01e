// The MSDNet stack operation (dlsia-nets `msdnet::stack`) on (N, C, S) buffers (S = spatial
// volume): every carried channel is read from its raw map r through a clamped affine map
// z = clamp(a·r + b, lo, hi) instead of a stored copy of its current value.
//
// Per-channel coefficients arrive as `prm`, 9 doubles per channel:
//   [a, b, lo, hi, mean, inv_std, scale, m1, m2]
// (the map, the normalisation the layer applied, and the backward coefficients). Like the CPU
// passes, they are rounded to T before use, and sums are accumulated in f64.
//
// Reductions are two-stage: block (chunk, c) writes its partial sums to
// part[(chunk·2 + k)·ch + c] (k = 0, 1); `sum_chunks_f64` (reduce.cu) adds them in order.
#include "common.cuh"

// Mirrors `StackPlanes` in dlsia-ops (src/cuda/stack.rs).
struct StackPlanes {
  i64 n, c, s;
};

#define STACK_PRM 9

template <typename T>
__device__ __forceinline__ T clamp_to(T v, T lo, T hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// Writes the two partial sums of this block (valid in thread 0 after block_sum).
__device__ __forceinline__ void write_part(double s1, double s2, double* part, i64 chunk, int ch,
                                           i64 c) {
  s1 = block_sum(s1);
  s2 = block_sum(s2);
  if (threadIdx.x == 0) {
    part[(chunk * 2 + 0) * ch + c] = s1;
    part[(chunk * 2 + 1) * ch + c] = s2;
  }
}

// out[b, c] = map_c(r[b, c]) for c < oc (out is (N, oc, S)); partial [Σ t, Σ t²] of
// t = relu(out) (or out itself without `relu`).
template <typename T>
__device__ void stack_materialize_impl(const T* r, StackPlanes rp, const double* prm, int oc,
                                       int relu, T* out, double* part, i64 per_chunk) {
  const i64 count = rp.n * rp.s;
  for (i64 c = blockIdx.y; c < oc; c += gridDim.y) {
    const double* q = prm + c * STACK_PRM;
    const T a = (T)q[0], b0 = (T)q[1], lo = (T)q[2], hi = (T)q[3];
    for (i64 chunk = blockIdx.x; chunk * per_chunk < count; chunk += gridDim.x) {
      double s1 = 0.0, s2 = 0.0;
      const i64 e1 = min(count, (chunk + 1) * per_chunk);
      for (i64 e = chunk * per_chunk + threadIdx.x; e < e1; e += blockDim.x) {
        const i64 b = e / rp.s, j = e % rp.s;
        const T z = clamp_to(r[(b * rp.c + c) * rp.s + j] * a + b0, lo, hi);
        out[(b * oc + c) * rp.s + j] = z;
        const double t = (double)((relu && !(z > T(0))) ? T(0) : z);
        s1 += t;
        s2 += t * t;
      }
      write_part(s1, s2, part, chunk, oc, c);
    }
  }
}
DLSIA_REAL_KERNELS(stack_materialize,
                   (const T* r, StackPlanes rp, const double* prm, int oc, int relu, T* out,
                    double* part, i64 per_chunk),
                   (r, rp, prm, oc, relu, out, part, per_chunk))

// r[b, c] = y[b] + bias[0] (y is (N, 1, S)); partial [Σ t, Σ t²] of t = act(r[b, c]).
template <typename T>
__device__ void stack_store_channel_impl(T* r, StackPlanes rp, int c, const T* y, const T* bias,
                                         int relu, double* part, i64 per_chunk) {
  const i64 count = rp.n * rp.s;
  const T bv = bias[0];
  for (i64 chunk = blockIdx.x; chunk * per_chunk < count; chunk += gridDim.x) {
    double s1 = 0.0, s2 = 0.0;
    const i64 e1 = min(count, (chunk + 1) * per_chunk);
    for (i64 e = chunk * per_chunk + threadIdx.x; e < e1; e += blockDim.x) {
      const i64 b = e / rp.s, j = e % rp.s;
      const T v = y[e] + bv;
      r[(b * rp.c + c) * rp.s + j] = v;
      const double t = (double)((relu && !(v > T(0))) ? T(0) : v);
      s1 += t;
      s2 += t * t;
    }
    write_part(s1, s2, part, chunk, 1, 0);
  }
}
DLSIA_REAL_KERNELS(stack_store_channel,
                   (T * r, StackPlanes rp, int c, const T* y, const T* bias, int relu,
                    double* part, i64 per_chunk),
                   (r, rp, c, y, bias, relu, part, per_chunk))

// (z, t̂) of one raw value: the pre-activation and the normalised activation.
template <typename T>
__device__ __forceinline__ void stack_values(T v, const double* q, int relu, T* z, T* th) {
  const T a = (T)q[0], b0 = (T)q[1], lo = (T)q[2], hi = (T)q[3], mean = (T)q[4], inv = (T)q[5];
  *z = clamp_to(v * a + b0, lo, hi);
  const T t = (relu && !(*z > T(0))) ? T(0) : *z;
  *th = (t - mean) * inv;
}

// Per channel c < ch: partial [Σ g, Σ g·t̂] with g = G[b, c] + D[b, c] (D is (N, ch, S), read
// only when `has_d`).
template <typename T>
__device__ void stack_bwd_sums_impl(const T* r, const T* g, const T* d, int has_d,
                                    StackPlanes rp, const double* prm, int ch, int relu,
                                    double* part, i64 per_chunk) {
  const i64 count = rp.n * rp.s;
  for (i64 c = blockIdx.y; c < ch; c += gridDim.y) {
    const double* q = prm + c * STACK_PRM;
    for (i64 chunk = blockIdx.x; chunk * per_chunk < count; chunk += gridDim.x) {
      double s1 = 0.0, s2 = 0.0;
      const i64 e1 = min(count, (chunk + 1) * per_chunk);
      for (i64 e = chunk * per_chunk + threadIdx.x; e < e1; e += blockDim.x) {
        const i64 b = e / rp.s, j = e % rp.s;
        const i64 at = (b * rp.c + c) * rp.s + j;
        T gv = g[at];
        if (has_d) gv += d[(b * ch + c) * rp.s + j];
        T z, th;
        stack_values(r[at], q, relu, &z, &th);
        const double gf = (double)gv;
        s1 += gf;
        s2 += gf * (double)th;
      }
      write_part(s1, s2, part, chunk, ch, c);
    }
  }
}
DLSIA_REAL_KERNELS(stack_bwd_sums,
                   (const T* r, const T* g, const T* d, int has_d, StackPlanes rp,
                    const double* prm, int ch, int relu, double* part, i64 per_chunk),
                   (r, g, d, has_d, rp, prm, ch, relu, part, per_chunk))

// For c < ch: G[b, c] ← mask(z)·scale·(G + D − m1 − t̂·m2) (mask = z > 0 with ReLU, else 1),
// and h[b, c] = z for c < in_ch (h is (N, in_ch, S): the layer's convolution input).
template <typename T>
__device__ void stack_bwd_apply_impl(const T* r, T* g, const T* d, int has_d, StackPlanes rp,
                                     const double* prm, int ch, int relu, T* h, int in_ch) {
  GRID_LOOP(i, rp.n * ch * rp.s) {
    const i64 j = i % rp.s;
    const i64 c = (i / rp.s) % ch;
    const i64 b = i / (rp.s * ch);
    const double* q = prm + c * STACK_PRM;
    const i64 at = (b * rp.c + c) * rp.s + j;
    T gt = g[at];
    if (has_d) gt += d[i];
    T z, th;
    stack_values(r[at], q, relu, &z, &th);
    const T sc = (T)q[6], m1 = (T)q[7], m2 = (T)q[8];
    const bool pass = !relu || z > T(0);
    g[at] = pass ? sc * (gt - m1 - th * m2) : T(0);
    if (c < in_ch) h[(b * in_ch + c) * rp.s + j] = z;
  }
}
DLSIA_REAL_KERNELS(stack_bwd_apply,
                   (const T* r, T* g, const T* d, int has_d, StackPlanes rp, const double* prm,
                    int ch, int relu, T* h, int in_ch),
                   (r, g, d, has_d, rp, prm, ch, relu, h, in_ch))

// Channels c0 .. c0 + nch of src (N, rp.c, S) to channels dst_c0 .. dst_c0 + nch of dst
// (N, dst_ch, S).
template <typename T>
__device__ void stack_copy_channels_impl(const T* src, StackPlanes rp, int c0, int nch, T* dst,
                                         int dst_ch, int dst_c0) {
  GRID_LOOP(i, rp.n * nch * rp.s) {
    const i64 j = i % rp.s;
    const i64 c = (i / rp.s) % nch;
    const i64 b = i / (rp.s * nch);
    dst[(b * dst_ch + dst_c0 + c) * rp.s + j] = src[(b * rp.c + c0 + c) * rp.s + j];
  }
}
DLSIA_REAL_KERNELS(stack_copy_channels,
                   (const T* src, StackPlanes rp, int c0, int nch, T* dst, int dst_ch,
                    int dst_c0),
                   (src, rp, c0, nch, dst, dst_ch, dst_c0))

// Partial [Σ v, Σ v²] of channel c of src (N, rp.c, S): block `chunk` of grid x.
template <typename T>
__device__ void stack_channel_sums_impl(const T* src, StackPlanes rp, int c, double* part,
                                        i64 per_chunk) {
  const i64 count = rp.n * rp.s;
  for (i64 chunk = blockIdx.x; chunk * per_chunk < count; chunk += gridDim.x) {
    double s1 = 0.0, s2 = 0.0;
    const i64 e1 = min(count, (chunk + 1) * per_chunk);
    for (i64 e = chunk * per_chunk + threadIdx.x; e < e1; e += blockDim.x) {
      const i64 b = e / rp.s, j = e % rp.s;
      const double v = (double)src[(b * rp.c + c) * rp.s + j];
      s1 += v;
      s2 += v * v;
    }
    write_part(s1, s2, part, chunk, 1, 0);
  }
}
DLSIA_REAL_KERNELS(stack_channel_sums,
                   (const T* src, StackPlanes rp, int c, double* part, i64 per_chunk),
                   (src, rp, c, part, per_chunk))
