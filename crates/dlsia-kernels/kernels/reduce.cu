// Stage 2 of the deterministic two-stage reductions: out[i] = scale · Σ_chunk part[chunk·count
// + i], summed in chunk order in f64, so the result does not depend on scheduling.
#include "common.cuh"

template <typename In, typename Out>
__device__ void sum_chunks_impl(const In* part, Out* out, i64 chunks, i64 count, double scale) {
  GRID_LOOP(i, count) {
    double acc = 0.0;
    for (i64 c = 0; c < chunks; ++c) acc += (double)part[c * count + i];
    out[i] = (Out)(acc * scale);
  }
}

#define SUM_CHUNKS(name, In, Out)                                                            \
  extern "C" __global__ void name(const In* part, Out* out, i64 chunks, i64 count,           \
                                  double scale) {                                            \
    sum_chunks_impl<In, Out>(part, out, chunks, count, scale);                               \
  }

SUM_CHUNKS(sum_chunks_f32, float, float)
SUM_CHUNKS(sum_chunks_f64, double, double)
SUM_CHUNKS(sum_chunks_f64_to_f32, double, float)
