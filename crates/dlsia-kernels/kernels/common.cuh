// Helpers shared by the dlsia kernels: grid-stride loops, block reductions, geometry structs.
//
// Geometry is passed by value as plain structs of 32-bit ints (mirrored by #[repr(C)] structs on
// the Rust side); linear offsets are computed in 64 bits so that tensors may exceed 2^31
// elements.
#pragma once
#include <stdint.h>

typedef long long i64;

// Loop over [0, n) with all threads of the grid.
#define GRID_LOOP(i, n)                                                                       \
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (i64)(n);                    \
       i += (i64)blockDim.x * gridDim.x)

// Sum over the threads of a warp (result valid in lane 0).
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the threads of a block (blockDim.x a multiple of 32, at most 1024). The result is
// valid in thread 0. The summation order is fixed by the block size, so it is deterministic.
template <typename T>
__device__ T block_sum(T v) {
  __shared__ T partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // `partial` may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) >> 5;
  v = (threadIdx.x < warps) ? partial[threadIdx.x] : T(0);
  if (warp == 0) v = warp_sum(v);
  return v;
}

// A 3-axis spatial size (leading axes are 1 for 1-D and 2-D problems).
struct Dims3 {
  int d, h, w;
};

__device__ __forceinline__ i64 volume3(Dims3 s) { return (i64)s.d * s.h * s.w; }

// Mirrors `PaddingMode`: 0 zeros, 1 reflect, 2 replicate, 3 symmetric. Returns -1 for a zero.
// Valid for one reflection (-n < i < 2n), which the Rust side guarantees.
__device__ __forceinline__ int source_index(int mode, int i, int n) {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case 1:
      return i < 0 ? -i : 2 * n - 2 - i;
    case 2:
      return i < 0 ? 0 : n - 1;
    case 3:
      return i < 0 ? -i - 1 : 2 * n - 1 - i;
    default:
      return -1;
  }
}

// Stamps out f32 and f64 entry points of a templated kernel body:
// DLSIA_REAL_KERNELS(name, (params...), (args...)) defines name_f32 and name_f64 calling
// name_impl<T>(args...). Inside `params`, the element type is spelled `T` (an alias declared in
// a per-type namespace; the entry points have C linkage, so the namespace does not show in
// their names).
#define DLSIA_REAL_KERNEL_1(name, suffix, Ty, params, args)                                  \
  namespace dlsia_##suffix {                                                                 \
  typedef Ty T;                                                                              \
  extern "C" __global__ void name##_##suffix params { name##_impl<T> args; }                \
  }

// Both f32 and f64 entry points.
#define DLSIA_REAL_KERNELS(name, params, args)            \
  DLSIA_REAL_KERNEL_1(name, f32, float, params, args)     \
  DLSIA_REAL_KERNEL_1(name, f64, double, params, args)
