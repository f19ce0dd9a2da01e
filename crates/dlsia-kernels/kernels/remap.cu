// Gathers through per-axis index maps (explicit padding in every mode, nearest-neighbour
// resizing) and their adjoints.
//
// Output position (d, h, w) reads input position (map_d[d], map_h[h], map_w[w]), or zero when
// an entry is -1. The adjoint is a gather too: every input element sums the output gradients
// of the positions that read it, found through the inverse maps (compressed rows per axis), in
// increasing output order — the CPU kernel's order, so results agree bit for bit.
#include "common.cuh"

// maps = [map_d (out.d) | map_h (out.h) | map_w (out.w)].
template <typename T>
__device__ void remap_gather_impl(const T* x, T* y, const int* maps, Dims3 in, Dims3 out,
                                  i64 planes) {
  const i64 ip = volume3(in), op = volume3(out);
  const int* md = maps;
  const int* mh = maps + out.d;
  const int* mw = maps + out.d + out.h;
  GRID_LOOP(idx, planes * op) {
    const i64 pl = idx / op, m = idx % op;
    const int ow = (int)(m % out.w), oh = (int)((m / out.w) % out.h),
              od = (int)(m / ((i64)out.w * out.h));
    const int d = md[od], h = mh[oh], w = mw[ow];
    y[idx] = (d < 0 || h < 0 || w < 0) ? T(0) : x[pl * ip + ((i64)d * in.h + h) * in.w + w];
  }
}
DLSIA_REAL_KERNELS(remap_gather, (const T* x, T* y, const int* maps, Dims3 in, Dims3 out, i64 planes),
                   (x, y, maps, in, out, planes))

// inv holds, for each axis at offset start.{d,h,w}: row offsets (in + 1 entries) followed by
// the output coordinates reading each input coordinate, ascending.
template <typename T>
__device__ void remap_scatter_impl(const T* dy, T* dx, const int* inv, Dims3 start, Dims3 in,
                                   Dims3 out, i64 planes) {
  const i64 ip = volume3(in), op = volume3(out);
  const int* offd = inv + start.d;
  const int* offh = inv + start.h;
  const int* offw = inv + start.w;
  const int* idxd = offd + in.d + 1;
  const int* idxh = offh + in.h + 1;
  const int* idxw = offw + in.w + 1;
  GRID_LOOP(idx, planes * ip) {
    const i64 pl = idx / ip, p = idx % ip;
    const int pw = (int)(p % in.w), ph = (int)((p / in.w) % in.h),
              pd = (int)(p / ((i64)in.w * in.h));
    const T* g = dy + pl * op;
    T acc = T(0);
    for (int a = offd[pd]; a < offd[pd + 1]; ++a)
      for (int b = offh[ph]; b < offh[ph + 1]; ++b) {
        const i64 row = ((i64)idxd[a] * out.h + idxh[b]) * out.w;
        for (int c = offw[pw]; c < offw[pw + 1]; ++c) acc += g[row + idxw[c]];
      }
    dx[idx] = acc;
  }
}
DLSIA_REAL_KERNELS(remap_scatter,
                   (const T* dy, T* dx, const int* inv, Dims3 start, Dims3 in, Dims3 out, i64 planes),
                   (dy, dx, inv, start, in, out, planes))
