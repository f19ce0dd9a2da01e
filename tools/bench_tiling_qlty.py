"""The tiling workload of dlsia-data's `tiling/identity_256^3_w64_s48_uniform` bench, done with
qlty (the quilting package used with the original dlsia): unstitch a (1,1,256,256,256) float32
volume into 64^3 windows at step 48, identity, stitch back. Prints seconds and peak RSS.

    $PEER_VENV/bin/python tools/bench_tiling_qlty.py [N]
"""
import resource
import sys
import time

import torch
from qlty.qlty3D import NCZYXQuilt

torch.set_num_threads(2)
n = int(sys.argv[1]) if len(sys.argv) > 1 else 256
x = (torch.arange(n * n * n, dtype=torch.float32) % 9973).reshape(1, 1, n, n, n)
q = NCZYXQuilt(n, n, n, window=(64, 64, 64), step=(48, 48, 48), border=None)
times = []
for _ in range(3):
    t0 = time.perf_counter()
    w = q.unstitch(x)
    y, _ = q.stitch(w)
    times.append(time.perf_counter() - t0)
err = (y - x).abs().max().item()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"qlty NCZYXQuilt identity {n}^3 w64 s48: median {sorted(times)[1]:.3f} s "
      f"({n**3 / sorted(times)[1] / 1e6:.1f} Mvoxel/s), max error {err:.2e}, peak RSS {rss:.0f} MiB")
