// Max pooling (PyTorch floor mode, implicit -inf padding), forward and backward.
//
// Each window's gradient goes to one element: the first maximum in scan order (depth, row,
// column), or the last NaN if the window holds one (PyTorch's CPU rule, as in the CPU kernel).
// Winners are recomputed from the input instead of being stored.
#include "common.cuh"

// Mirrors `CudaPoolGeom` in dlsia-ops (src/cuda/pool.rs).
struct PoolGeom {
  Dims3 in, out, k, stride, pad;
};

// Plane index and value of the winner of window (od, oh, ow).
template <typename T>
__device__ __forceinline__ i64 winner(const T* xp, const PoolGeom& g, int od, int oh, int ow,
                                      T* value) {
  const int d0 = max(od * g.stride.d - g.pad.d, 0), d1 = min(od * g.stride.d - g.pad.d + g.k.d, g.in.d);
  const int h0 = max(oh * g.stride.h - g.pad.h, 0), h1 = min(oh * g.stride.h - g.pad.h + g.k.h, g.in.h);
  const int w0 = max(ow * g.stride.w - g.pad.w, 0), w1 = min(ow * g.stride.w - g.pad.w + g.k.w, g.in.w);
  T best = -INFINITY;
  i64 arg = ((i64)d0 * g.in.h + h0) * g.in.w + w0;
  for (int d = d0; d < d1; ++d)
    for (int h = h0; h < h1; ++h) {
      const i64 row = ((i64)d * g.in.h + h) * g.in.w;
      for (int w = w0; w < w1; ++w) {
        const T v = xp[row + w];
        if (v > best || isnan(v)) {
          best = v;
          arg = row + w;
        }
      }
    }
  *value = best;
  return arg;
}

template <typename T>
__device__ void max_pool_fwd_impl(const T* x, T* y, PoolGeom g, i64 planes) {
  const i64 ip = volume3(g.in), op = volume3(g.out);
  GRID_LOOP(idx, planes * op) {
    const i64 pl = idx / op, m = idx % op;
    const int ow = (int)(m % g.out.w), oh = (int)((m / g.out.w) % g.out.h),
              od = (int)(m / ((i64)g.out.w * g.out.h));
    T v;
    winner(x + pl * ip, g, od, oh, ow, &v);
    y[idx] = v;
  }
}
DLSIA_REAL_KERNELS(max_pool_fwd, (const T* x, T* y, PoolGeom g, i64 planes), (x, y, g, planes))

// Backward, one thread per window: dx[winner] += dy. `exclusive` (windows that do not overlap)
// stores; otherwise the add is atomic (summation order not fixed). dx must be zeroed.
template <typename T>
__device__ void max_pool_bwd_scatter_impl(const T* x, const T* dy, T* dx, PoolGeom g, i64 planes,
                                          int exclusive) {
  const i64 ip = volume3(g.in), op = volume3(g.out);
  GRID_LOOP(idx, planes * op) {
    const i64 pl = idx / op, m = idx % op;
    const int ow = (int)(m % g.out.w), oh = (int)((m / g.out.w) % g.out.h),
              od = (int)(m / ((i64)g.out.w * g.out.h));
    T v;
    const i64 arg = winner(x + pl * ip, g, od, oh, ow, &v);
    if (exclusive)
      dx[pl * ip + arg] = dy[idx];
    else
      atomicAdd(dx + pl * ip + arg, dy[idx]);
  }
}
DLSIA_REAL_KERNELS(max_pool_bwd_scatter,
                   (const T* x, const T* dy, T* dx, PoolGeom g, i64 planes, int exclusive),
                   (x, dy, dx, g, planes, exclusive))

// The windows on one axis that contain input coordinate p: [o0, o1).
__device__ __forceinline__ void windows_of(int p, int k, int s, int pad, int out, int* o0,
                                           int* o1) {
  const int q = p + pad;  // o·s <= q < o·s + k
  *o0 = q - k + 1 <= 0 ? 0 : (q - k + 1 + s - 1) / s;
  *o1 = min(q / s + 1, out);
}

// Backward, one thread per input element: sums dy over the windows (in output order) whose
// winner it is. Deterministic, and the same order as the CPU kernel.
template <typename T>
__device__ void max_pool_bwd_gather_impl(const T* x, const T* dy, T* dx, PoolGeom g,
                                         i64 planes) {
  const i64 ip = volume3(g.in), op = volume3(g.out);
  GRID_LOOP(idx, planes * ip) {
    const i64 pl = idx / ip, p = idx % ip;
    const int pw = (int)(p % g.in.w), ph = (int)((p / g.in.w) % g.in.h),
              pd = (int)(p / ((i64)g.in.w * g.in.h));
    int d0, d1, h0, h1, w0, w1;
    windows_of(pd, g.k.d, g.stride.d, g.pad.d, g.out.d, &d0, &d1);
    windows_of(ph, g.k.h, g.stride.h, g.pad.h, g.out.h, &h0, &h1);
    windows_of(pw, g.k.w, g.stride.w, g.pad.w, g.out.w, &w0, &w1);
    const T* xp = x + pl * ip;
    const T* dyp = dy + pl * op;
    T acc = T(0);
    for (int od = d0; od < d1; ++od)
      for (int oh = h0; oh < h1; ++oh)
        for (int ow = w0; ow < w1; ++ow) {
          T v;
          if (winner(xp, g, od, oh, ow, &v) == p) acc += dyp[((i64)od * g.out.h + oh) * g.out.w + ow];
        }
    dx[idx] = acc;
  }
}
DLSIA_REAL_KERNELS(max_pool_bwd_gather, (const T* x, const T* dy, T* dx, PoolGeom g, i64 planes),
                   (x, dy, dx, g, planes))
