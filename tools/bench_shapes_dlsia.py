"""Time dlsia's build_random_shape_set_numpy(1000, 0.1, 64), the workload of dlsia-data's
`synth/random_shape_set_1000x64^2` bench.

    $PEER_VENV/bin/python tools/bench_shapes_dlsia.py
"""
import time

import numpy as np
from dlsia.test_data.two_d.random_shapes import build_random_shape_set_numpy

np.random.seed(1)
times = []
for _ in range(3):
    t0 = time.perf_counter()
    build_random_shape_set_numpy(1000, 0.1, 64)
    times.append(time.perf_counter() - t0)
print(f"dlsia build_random_shape_set_numpy(1000, 0.1, 64): median {sorted(times)[1]:.3f} s")
