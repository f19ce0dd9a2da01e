// The fused mixed-scale dense block (dlsia-ops `msd`), layer by layer on one buffer
// (N, channels, plane): the input channels followed by every unit's channel.
//
// * msd_copy_channels: moves channel ranges between buffers (input in, input gradient out).
// * msd_layer_fwd: one layer's units, z = bias + Σ_c<prefix Σ_t w·buf[pad(p + off_t)], with
//   optional ReLU (no normalisation) or raw z (normalised blocks, and the recomputation in the
//   backward pass).
// * msd_affine_relu / msd_relu_mask / msd_norm_bwd: per-unit element-wise steps.
// * msd_dot_part: per-block partial sums Σ (a − sa)(b − sb) in f64 (statistics, bias and γ/β
//   gradients); the host adds the partials in order, so results are deterministic.
// * msd_wgrad_part: per-chunk partial sums of one unit's weight gradient (two-stage).
// * msd_dx_gather: the adjoint of one layer's convolutions into the channels it reads, as a
//   gather over the (at most three) readers per axis of every padding mode: no atomics.
//
// Padding modes follow `source_index` (common.cuh); the Rust side guarantees one reflection.
#include "common.cuh"

// Mirrors `CudaMsdGeom` in dlsia-ops (src/cuda/msd.rs).
struct MsdGeom {
  int n, channels, cin, width, taps, mode;
  Dims3 size, k;
};

__device__ __forceinline__ i64 plane_of(const MsdGeom& g) { return volume3(g.size); }

// Per-axis offsets of tap t at dilation `dil`.
__device__ __forceinline__ void tap_offsets(const MsdGeom& g, int t, int dil, int off[3]) {
  const int tw = t % g.k.w, th = (t / g.k.w) % g.k.h, td = t / (g.k.w * g.k.h);
  off[0] = (td - g.k.d / 2) * dil;
  off[1] = (th - g.k.h / 2) * dil;
  off[2] = (tw - g.k.w / 2) * dil;
}

// The source of position (d, h, w) through offsets `off`, or -1 for a zero.
__device__ __forceinline__ i64 msd_source(const MsdGeom& g, int d, int h, int w, const int off[3]) {
  const int sd = source_index(g.mode, d + off[0], g.size.d);
  const int sh = source_index(g.mode, h + off[1], g.size.h);
  const int sw = source_index(g.mode, w + off[2], g.size.w);
  if (sd < 0 || sh < 0 || sw < 0) return -1;
  return ((i64)sd * g.size.h + sh) * g.size.w + sw;
}

template <typename T>
__device__ __forceinline__ T relu_nan(T v) {
  return (v > T(0) || v != v) ? v : T(0);
}

template <typename T>
__device__ void msd_copy_channels_impl(const T* src, int src_ch, int src_c0, T* dst, int dst_ch,
                                       int dst_c0, int nch, i64 plane, int n) {
  GRID_LOOP(idx, (i64)n * nch * plane) {
    const i64 p = idx % plane;
    const i64 c = (idx / plane) % nch;
    const i64 b = idx / (plane * nch);
    dst[(b * dst_ch + dst_c0 + c) * plane + p] = src[(b * src_ch + src_c0 + c) * plane + p];
  }
}
DLSIA_REAL_KERNELS(msd_copy_channels,
                   (const T* src, int src_ch, int src_c0, T* dst, int dst_ch, int dst_c0, int nch,
                    i64 plane, int n),
                   (src, src_ch, src_c0, dst, dst_ch, dst_c0, nch, plane, n))

// Units u0 .. u0 + width of one layer, reading channels 0 .. prefix of `buf`, written to
// out[(b·out_ch + out_c0 + j)·plane + p] for unit u0 + j.
template <typename T>
__device__ void msd_layer_fwd_impl(const T* buf, T* out, int out_ch, int out_c0, const T* w,
                                   const T* bias, const int* dil, const i64* woff, MsdGeom g,
                                   int u0, int prefix, int relu) {
  const i64 plane = plane_of(g);
  GRID_LOOP(idx, (i64)g.n * g.width * plane) {
    const i64 p = idx % plane;
    const int j = (int)((idx / plane) % g.width);
    const i64 b = idx / (plane * g.width);
    const int u = u0 + j;
    const int pw = (int)(p % g.size.w), ph = (int)((p / g.size.w) % g.size.h),
              pd = (int)(p / ((i64)g.size.w * g.size.h));
    const T* wu = w + woff[u];
    const T* xb = buf + b * g.channels * plane;
    T acc = bias[u];
    for (int t = 0; t < g.taps; ++t) {
      int off[3];
      tap_offsets(g, t, dil[u], off);
      const i64 src = msd_source(g, pd, ph, pw, off);
      if (src < 0) continue;
      for (int c = 0; c < prefix; ++c) acc += wu[c * g.taps + t] * xb[c * plane + src];
    }
    out[(b * out_ch + out_c0 + j) * plane + p] = relu ? relu_nan(acc) : acc;
  }
}
DLSIA_REAL_KERNELS(msd_layer_fwd,
                   (const T* buf, T* out, int out_ch, int out_c0, const T* w, const T* bias,
                    const int* dil, const i64* woff, MsdGeom g, int u0, int prefix, int relu),
                   (buf, out, out_ch, out_c0, w, bias, dil, woff, g, u0, prefix, relu))
// The same, writing into `buf` itself (unit u's output at channel cin + u).
template <typename T>
__device__ void msd_layer_fwd_inplace_impl(T* buf, const T* w, const T* bias, const int* dil,
                                           const i64* woff, MsdGeom g, int u0, int prefix,
                                           int relu) {
  msd_layer_fwd_impl<T>(buf, buf, g.channels, g.cin + u0, w, bias, dil, woff, g, u0, prefix,
                        relu);
}
DLSIA_REAL_KERNELS(msd_layer_fwd_inplace,
                   (T * buf, const T* w, const T* bias, const int* dil, const i64* woff,
                    MsdGeom g, int u0, int prefix, int relu),
                   (buf, w, bias, dil, woff, g, u0, prefix, relu))

// buf[channel c] ← relu(a·v + s) (a and s rounded to T first, like the CPU kernel).
template <typename T>
__device__ void msd_affine_relu_impl(T* buf, int ch, int c, int n, i64 plane, double a, double s) {
  const T at = (T)a, st = (T)s;
  GRID_LOOP(idx, (i64)n * plane) {
    const i64 p = idx % plane, b = idx / plane;
    T* v = buf + (b * ch + c) * plane + p;
    *v = relu_nan(at * *v + st);
  }
}
DLSIA_REAL_KERNELS(msd_affine_relu, (T * buf, int ch, int c, int n, i64 plane, double a, double s),
                   (buf, ch, c, n, plane, a, s))

// g[channel c] ← 0 where the forward output is ≤ 0 (the ReLU did not pass; NaN passes).
template <typename T>
__device__ void msd_relu_mask_impl(T* g, const T* res, int ch, int c, int n, i64 plane) {
  GRID_LOOP(idx, (i64)n * plane) {
    const i64 p = idx % plane, b = idx / plane;
    const i64 at = (b * ch + c) * plane + p;
    if (res[at] <= T(0)) g[at] = T(0);
  }
}
DLSIA_REAL_KERNELS(msd_relu_mask, (T * g, const T* res, int ch, int c, int n, i64 plane),
                   (g, res, ch, c, n, plane))

// g ← k·(g − mb − x̂·mg) with x̂ = (z − mean)·inv (the normalisation's backward transform).
template <typename T>
__device__ void msd_norm_bwd_impl(T* g, int g_ch, int g_c, const T* z, int z_ch, int z_c, int n,
                                  i64 plane, double mean, double inv, double k, double mb,
                                  double mg) {
  GRID_LOOP(idx, (i64)n * plane) {
    const i64 p = idx % plane, b = idx / plane;
    T* gv = g + (b * g_ch + g_c) * plane + p;
    const double xh = ((double)z[(b * z_ch + z_c) * plane + p] - mean) * inv;
    *gv = (T)(k * ((double)*gv - mb - xh * mg));
  }
}
DLSIA_REAL_KERNELS(msd_norm_bwd,
                   (T * g, int g_ch, int g_c, const T* z, int z_ch, int z_c, int n, i64 plane,
                    double mean, double inv, double k, double mb, double mg),
                   (g, g_ch, g_c, z, z_ch, z_c, n, plane, mean, inv, k, mb, mg))

// part[block] = Σ over this block's share of the (b, p) positions of (a − sa)·(b − sb), or of
// (a − sa) when `with_b` is 0 (then `bv` is not read). Summed in f64 in a fixed order.
template <typename T>
__device__ void msd_dot_part_impl(const T* av, int a_ch, int a_c, double sa, const T* bv,
                                  int b_ch, int b_c, double sb, int with_b, int n, i64 plane,
                                  double* part) {
  const i64 total = (i64)n * plane;
  const i64 chunk = (total + gridDim.x - 1) / gridDim.x;
  const i64 lo = (i64)blockIdx.x * chunk;
  const i64 hi = lo + chunk < total ? lo + chunk : total;
  double acc = 0.0;
  for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    const i64 p = i % plane, b = i / plane;
    double v = (double)av[(b * a_ch + a_c) * plane + p] - sa;
    if (with_b) v *= (double)bv[(b * b_ch + b_c) * plane + p] - sb;
    acc += v;
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) part[blockIdx.x] = acc;
}
DLSIA_REAL_KERNELS(msd_dot_part,
                   (const T* av, int a_ch, int a_c, double sa, const T* bv, int b_ch, int b_c,
                    double sb, int with_b, int n, i64 plane, double* part),
                   (av, a_ch, a_c, sa, bv, b_ch, b_c, sb, with_b, n, plane, part))

// Weight gradient of unit u (channel `channel`, dilation `dil`) in two stages: block
// (chunk, c·taps + t) writes Σ over its chunk of positions of g[channel]·buf[c][source] to
// part[chunk·(prefix·taps) + c·taps + t].
template <typename T>
__device__ void msd_wgrad_part_impl(const T* buf, const T* grad, MsdGeom g, int channel, int dil,
                                    int prefix, double* part) {
  const i64 plane = plane_of(g);
  const i64 total = (i64)g.n * plane;
  const i64 chunk = (total + gridDim.x - 1) / gridDim.x;
  const i64 lo = (i64)blockIdx.x * chunk;
  const i64 hi = lo + chunk < total ? lo + chunk : total;
  const int ct = blockIdx.y;
  const int c = ct / g.taps, t = ct % g.taps;
  int off[3];
  tap_offsets(g, t, dil, off);
  double acc = 0.0;
  for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    const i64 p = i % plane, b = i / plane;
    const int pw = (int)(p % g.size.w), ph = (int)((p / g.size.w) % g.size.h),
              pd = (int)(p / ((i64)g.size.w * g.size.h));
    const i64 src = msd_source(g, pd, ph, pw, off);
    if (src < 0) continue;
    acc += (double)grad[(b * g.channels + channel) * plane + p] *
           (double)buf[(b * g.channels + c) * plane + src];
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) part[(i64)blockIdx.x * prefix * g.taps + ct] = acc;
}
DLSIA_REAL_KERNELS(msd_wgrad_part,
                   (const T* buf, const T* grad, MsdGeom g, int channel, int dil, int prefix,
                    double* part),
                   (buf, grad, g, channel, dil, prefix, part))

// The output positions pos on one axis of length n whose tap at offset `off` reads input
// position p, as up to three ranges [lo[i], hi[i]]; returns how many.
__device__ __forceinline__ int axis_readers(int mode, int p, int off, int n, int lo[3],
                                            int hi[3]) {
  int k = 0;
  if (mode == 2) {  // replicate: the edges collect every position beyond them
    int a = p - off, b = p - off;
    if (p == 0) a = -2147483647;
    if (p == n - 1) b = 2147483647;
    a = a < 0 ? 0 : a;  // positions stay inside [0, n)
    b = b > n - 1 ? n - 1 : b;
    if (a <= b) {
      lo[k] = a;
      hi[k] = b;
      ++k;
    }
    return k;
  }
  int q[3];
  int nq = 0;
  q[nq++] = p;
  if (mode == 1) {  // reflect
    if (p > 0) q[nq++] = -p;
    if (p < n - 1) q[nq++] = 2 * n - 2 - p;
  } else if (mode == 3) {  // symmetric
    q[nq++] = -1 - p;
    q[nq++] = 2 * n - 1 - p;
  }
  for (int i = 0; i < nq; ++i) {
    const int pos = q[i] - off;
    if (pos >= 0 && pos < n) {
      lo[k] = pos;
      hi[k] = pos;
      ++k;
    }
  }
  return k;
}

// grad[b][c][p] += Σ over the units u0 .. u0 + width of one layer, taps t and output positions
// pos whose tap t reads p, of w_u[c][t]·grad[b][channel of u][pos], for c < prefix. The units'
// channels lie at or after `prefix`, so reads and writes never overlap.
template <typename T>
__device__ void msd_dx_gather_impl(T* grad, const T* w, const int* dil, const i64* woff, MsdGeom g,
                                   int u0, int prefix) {
  const i64 plane = plane_of(g);
  GRID_LOOP(idx, (i64)g.n * prefix * plane) {
    const i64 p = idx % plane;
    const int c = (int)((idx / plane) % prefix);
    const i64 b = idx / (plane * prefix);
    const int pw = (int)(p % g.size.w), ph = (int)((p / g.size.w) % g.size.h),
              pd = (int)(p / ((i64)g.size.w * g.size.h));
    T acc = T(0);
    for (int j = 0; j < g.width; ++j) {
      const int u = u0 + j;
      const T* dz = grad + (b * g.channels + g.cin + u) * plane;
      const T* wu = w + woff[u] + (i64)c * g.taps;
      for (int t = 0; t < g.taps; ++t) {
        int off[3];
        tap_offsets(g, t, dil[u], off);
        int lod[3], hid[3], loh[3], hih[3], low[3], hiw[3];
        const int nd = axis_readers(g.mode, pd, off[0], g.size.d, lod, hid);
        const int nh = axis_readers(g.mode, ph, off[1], g.size.h, loh, hih);
        const int nw = axis_readers(g.mode, pw, off[2], g.size.w, low, hiw);
        T s = T(0);
        for (int a = 0; a < nd; ++a)
          for (int qd = lod[a]; qd <= hid[a]; ++qd)
            for (int e = 0; e < nh; ++e)
              for (int qh = loh[e]; qh <= hih[e]; ++qh)
                for (int f = 0; f < nw; ++f)
                  for (int qw = low[f]; qw <= hiw[f]; ++qw)
                    s += dz[((i64)qd * g.size.h + qh) * g.size.w + qw];
        acc += wu[t] * s;
      }
    }
    grad[(b * g.channels + c) * plane + p] += acc;
  }
}
DLSIA_REAL_KERNELS(msd_dx_gather,
                   (T * grad, const T* w, const int* dil, const i64* woff, MsdGeom g, int u0,
                    int prefix),
                   (grad, w, dil, woff, g, u0, prefix))
