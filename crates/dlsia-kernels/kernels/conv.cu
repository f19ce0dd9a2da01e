// Convolutions (1-D/2-D/3-D as 3-D with unit leading axes), any stride, zero padding, dilation
// and groups:
//
// * im2col / col2im for the cuBLAS path (many output channels);
// * direct kernels for few output channels per group (every MSDNet layer): forward, input
//   gradient, and weight-gradient partial sums (two-stage deterministic reduction, or atomics).
//
// Tensor layouts are PyTorch's: x (N, groups*ci, in), w (groups*co, ci, k), y (N, groups*co,
// out). Each thread computes its sums in a fixed order, so all kernels except the atomic
// variant of the weight gradient are deterministic.
#include "common.cuh"

// Mirrors `CudaConvGeom` in dlsia-ops (src/cuda/conv.rs).
struct ConvGeom {
  int n, groups, ci, co;  // batch, groups, input / output channels per group
  Dims3 in, out, k, stride, pad, dil;
};

// The largest number of output channels per group of the direct kernels.
#define DIRECT_MAX_CO 8
// The largest (output channels per group) x (taps) of the direct weight gradient.
#define DIRECT_MAX_ACC 64

__device__ __forceinline__ int taps(const ConvGeom& g) { return g.k.d * g.k.h * g.k.w; }

// Input position read by output position (od, oh, ow) through tap t, or -1 outside the input.
__device__ __forceinline__ i64 tap_source(const ConvGeom& g, int od, int oh, int ow, int t) {
  const int kw = t % g.k.w, kh = (t / g.k.w) % g.k.h, kd = t / (g.k.w * g.k.h);
  const int pd = od * g.stride.d + kd * g.dil.d - g.pad.d;
  const int ph = oh * g.stride.h + kh * g.dil.h - g.pad.h;
  const int pw = ow * g.stride.w + kw * g.dil.w - g.pad.w;
  if (pd < 0 || ph < 0 || pw < 0 || pd >= g.in.d || ph >= g.in.h || pw >= g.in.w) return -1;
  return ((i64)pd * g.in.h + ph) * g.in.w + pw;
}

// Output coordinate on one axis that reads input coordinate p through kernel index k, or -1.
__device__ __forceinline__ int tap_target(int p, int k, int stride, int pad, int dil, int out) {
  const int q = p + pad - k * dil;
  if (q < 0 || q % stride != 0) return -1;
  const int o = q / stride;
  return o < out ? o : -1;
}

// col[gr][c*T + t][j] = x[gr*ci + c][source of output m0 + j through tap t] (zero outside).
// `x` points at one batch item.
template <typename T>
__device__ void im2col_impl(const T* x, T* col, ConvGeom g, i64 m0, int len) {
  const int nt = taps(g);
  const i64 in_plane = volume3(g.in);
  const i64 rows = (i64)g.ci * nt;
  GRID_LOOP(idx, (i64)g.groups * rows * len) {
    const int j = (int)(idx % len);
    const i64 r = (idx / len) % rows;
    const i64 gr = idx / (len * rows);
    const int c = (int)(r / nt), t = (int)(r % nt);
    const i64 m = m0 + j;
    const int ow = (int)(m % g.out.w), oh = (int)((m / g.out.w) % g.out.h),
              od = (int)(m / ((i64)g.out.w * g.out.h));
    const i64 src = tap_source(g, od, oh, ow, t);
    col[idx] = src < 0 ? T(0) : x[(gr * g.ci + c) * in_plane + src];
  }
}
DLSIA_REAL_KERNELS(im2col, (const T* x, T* col, ConvGeom g, i64 m0, int len),
                   (x, col, g, m0, len))

// The adjoint of im2col for the columns m0..m0+len: dx[gr*ci + c][p] += Σ over taps t and
// output positions m in the tile that read p of col[gr][c*T + t][m - m0]. A gather: every
// thread owns one input element, so no atomics are needed. `dx` points at one batch item.
template <typename T>
__device__ void col2im_impl(const T* col, T* dx, ConvGeom g, i64 m0, int len) {
  const int nt = taps(g);
  const i64 in_plane = volume3(g.in);
  const i64 m1 = m0 + len;
  GRID_LOOP(idx, (i64)g.groups * g.ci * in_plane) {
    const i64 p = idx % in_plane;
    const i64 gc = idx / in_plane;  // gr*ci + c
    const int pw = (int)(p % g.in.w), ph = (int)((p / g.in.w) % g.in.h),
              pd = (int)(p / ((i64)g.in.w * g.in.h));
    const T* cc = col + gc * nt * (i64)len;  // rows of (gr, c) are consecutive
    T acc = T(0);
    for (int kd = 0; kd < g.k.d; ++kd) {
      const int od = tap_target(pd, kd, g.stride.d, g.pad.d, g.dil.d, g.out.d);
      if (od < 0) continue;
      for (int kh = 0; kh < g.k.h; ++kh) {
        const int oh = tap_target(ph, kh, g.stride.h, g.pad.h, g.dil.h, g.out.h);
        if (oh < 0) continue;
        for (int kw = 0; kw < g.k.w; ++kw) {
          const int ow = tap_target(pw, kw, g.stride.w, g.pad.w, g.dil.w, g.out.w);
          if (ow < 0) continue;
          const i64 m = ((i64)od * g.out.h + oh) * g.out.w + ow;
          if (m < m0 || m >= m1) continue;
          const int t = (kd * g.k.h + kh) * g.k.w + kw;
          acc += cc[(i64)t * len + (m - m0)];
        }
      }
    }
    dx[idx] += acc;
  }
}
DLSIA_REAL_KERNELS(col2im, (const T* col, T* dx, ConvGeom g, i64 m0, int len),
                   (col, dx, g, m0, len))

// Copies the weights of group `gr` (co x ci x T) into shared memory when `smem` is set;
// returns the pointer the block reads them from.
template <typename T>
__device__ const T* group_weights(const T* w, const ConvGeom& g, int gr, int smem) {
  const i64 len = (i64)g.co * g.ci * taps(g);
  const T* src = w + gr * len;
  if (!smem) return src;
  extern __shared__ unsigned char shared_bytes[];
  T* dst = reinterpret_cast<T*>(shared_bytes);
  __syncthreads();  // the previous (batch, group) may still be read
  for (i64 i = threadIdx.x; i < len; i += blockDim.x) dst[i] = src[i];
  __syncthreads();
  return dst;
}

// Direct forward for co <= DIRECT_MAX_CO: one thread per output position computes all co
// outputs of its group. blockIdx.y walks (batch, group) pairs.
template <typename T>
__device__ void conv_direct_fwd_impl(const T* x, const T* w, T* y, ConvGeom g, int smem) {
  const int nt = taps(g);
  const i64 in_plane = volume3(g.in), out_plane = volume3(g.out);
  for (int bg = blockIdx.y; bg < g.n * g.groups; bg += gridDim.y) {
    const int gr = bg % g.groups;
    const T* wg = group_weights(w, g, gr, smem);
    const T* xb = x + (i64)bg * g.ci * in_plane;  // (b, gr) block of channels
    T* yb = y + (i64)bg * g.co * out_plane;
    GRID_LOOP(m, out_plane) {
      const int ow = (int)(m % g.out.w), oh = (int)((m / g.out.w) % g.out.h),
                od = (int)(m / ((i64)g.out.w * g.out.h));
      T acc[DIRECT_MAX_CO];
#pragma unroll
      for (int o = 0; o < DIRECT_MAX_CO; ++o) acc[o] = T(0);
      for (int t = 0; t < nt; ++t) {
        const i64 src = tap_source(g, od, oh, ow, t);
        if (src < 0) continue;
        for (int c = 0; c < g.ci; ++c) {
          const T v = xb[(i64)c * in_plane + src];
#pragma unroll
          for (int o = 0; o < DIRECT_MAX_CO; ++o)
            if (o < g.co) acc[o] += v * wg[((i64)o * g.ci + c) * nt + t];
        }
      }
#pragma unroll
      for (int o = 0; o < DIRECT_MAX_CO; ++o)
        if (o < g.co) yb[(i64)o * out_plane + m] = acc[o];
    }
  }
}
DLSIA_REAL_KERNELS(conv_direct_fwd, (const T* x, const T* w, T* y, ConvGeom g, int smem),
                   (x, w, y, g, smem))

// Direct input gradient for co <= DIRECT_MAX_CO: one thread per input element gathers
// Σ_o Σ_t w[o, c, t] · dy[o, m(p, t)]. blockIdx.y walks (batch, group) pairs.
template <typename T>
__device__ void conv_direct_dgrad_impl(const T* dy, const T* w, T* dx, ConvGeom g, int smem) {
  const int nt = taps(g);
  const i64 in_plane = volume3(g.in), out_plane = volume3(g.out);
  for (int bg = blockIdx.y; bg < g.n * g.groups; bg += gridDim.y) {
    const int gr = bg % g.groups;
    const T* wg = group_weights(w, g, gr, smem);
    const T* dyb = dy + (i64)bg * g.co * out_plane;
    T* dxb = dx + (i64)bg * g.ci * in_plane;
    GRID_LOOP(idx, (i64)g.ci * in_plane) {
      const int c = (int)(idx / in_plane);
      const i64 p = idx % in_plane;
      const int pw = (int)(p % g.in.w), ph = (int)((p / g.in.w) % g.in.h),
                pd = (int)(p / ((i64)g.in.w * g.in.h));
      T acc = T(0);
      for (int kd = 0; kd < g.k.d; ++kd) {
        const int od = tap_target(pd, kd, g.stride.d, g.pad.d, g.dil.d, g.out.d);
        if (od < 0) continue;
        for (int kh = 0; kh < g.k.h; ++kh) {
          const int oh = tap_target(ph, kh, g.stride.h, g.pad.h, g.dil.h, g.out.h);
          if (oh < 0) continue;
          for (int kw = 0; kw < g.k.w; ++kw) {
            const int ow = tap_target(pw, kw, g.stride.w, g.pad.w, g.dil.w, g.out.w);
            if (ow < 0) continue;
            const i64 m = ((i64)od * g.out.h + oh) * g.out.w + ow;
            const int t = (kd * g.k.h + kh) * g.k.w + kw;
            for (int o = 0; o < g.co; ++o)
              acc += wg[((i64)o * g.ci + c) * nt + t] * dyb[(i64)o * out_plane + m];
          }
        }
      }
      dxb[idx] = acc;
    }
  }
}
DLSIA_REAL_KERNELS(conv_direct_dgrad, (const T* dy, const T* w, T* dx, ConvGeom g, int smem),
                   (dy, w, dx, g, smem))

// Direct weight gradient for co·T <= DIRECT_MAX_ACC, stage 1. Block (chunk, gr*ci + c) sums
// dy[b, gr*co + o, m] · x[b, gr*ci + c, source(m, t)] over the batch positions e = b·out + m
// of its chunk (`per_chunk` positions each) for every (o, t). Thread 0 then writes the block's
// sums to part[chunk][w index] (deterministic two-stage reduction) or, with `atomic`, adds
// them to dw directly.
template <typename T>
__device__ void conv_direct_wgrad_impl(const T* x, const T* dy, T* part, ConvGeom g,
                                       i64 per_chunk, int atomic) {
  const int nt = taps(g), nacc = g.co * nt;
  const i64 in_plane = volume3(g.in), out_plane = volume3(g.out);
  const i64 positions = (i64)g.n * out_plane;
  const i64 w_len = (i64)g.groups * g.co * g.ci * nt;
  for (int gc = blockIdx.y; gc < g.groups * g.ci; gc += gridDim.y) {
    const int gr = gc / g.ci, c = gc % g.ci;
    for (i64 chunk = blockIdx.x; chunk * per_chunk < positions; chunk += gridDim.x) {
      T acc[DIRECT_MAX_ACC];
      for (int a = 0; a < nacc; ++a) acc[a] = T(0);
      const i64 e1 = min(positions, (chunk + 1) * per_chunk);
      for (i64 e = chunk * per_chunk + threadIdx.x; e < e1; e += blockDim.x) {
        const i64 b = e / out_plane, m = e % out_plane;
        const int ow = (int)(m % g.out.w), oh = (int)((m / g.out.w) % g.out.h),
                  od = (int)(m / ((i64)g.out.w * g.out.h));
        const T* xc = x + ((b * g.groups + gr) * g.ci + c) * in_plane;
        const T* dyb = dy + (b * g.groups + gr) * g.co * out_plane + m;
        for (int t = 0; t < nt; ++t) {
          const i64 src = tap_source(g, od, oh, ow, t);
          if (src < 0) continue;
          const T v = xc[src];
          for (int o = 0; o < g.co; ++o) acc[o * nt + t] += v * dyb[(i64)o * out_plane];
        }
      }
      for (int a = 0; a < nacc; ++a) {
        const T s = block_sum(acc[a]);
        if (threadIdx.x == 0) {
          const int o = a / nt, t = a % nt;
          const i64 wi = (((i64)gr * g.co + o) * g.ci + c) * nt + t;
          if (atomic)
            atomicAdd(part + wi, s);
          else
            part[chunk * w_len + wi] = s;
        }
      }
    }
  }
}
DLSIA_REAL_KERNELS(conv_direct_wgrad,
                   (const T* x, const T* dy, T* part, ConvGeom g, i64 per_chunk, int atomic),
                   (x, dy, part, g, per_chunk, atomic))
