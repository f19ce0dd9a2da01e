"""PyTorch counterpart of crates/dlsia-train/benches/precision.rs: a U-Net-sized convolution
(B4, 16->16 channels, 128^2, 3x3, padding 1) forward and forward+backward, and the matrix
product behind it, in float32, float16 and bfloat16 on the CPU. Prints min/median ms.

    /root/.cache/dlsia-peer/venv/bin/python tools/bench_precision.py [threads]
"""
import math
import statistics
import sys
import time

import torch

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)


def values(shape, dtype):
    n = math.prod(shape)
    return torch.sin(torch.arange(n, dtype=torch.float32) * 0.618034).reshape(shape).to(dtype)


def timed(name, f, reps=10):
    try:
        f()
    except Exception as e:  # report, as the Rust bench does
        print(f"{name}: unsupported ({str(e).splitlines()[0]})")
        return
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append((time.perf_counter() - t) * 1e3)
    print(f"{name}: min {min(ts):.2f} ms, median {statistics.median(ts):.2f} ms")


for dtype in (torch.float32, torch.float16, torch.bfloat16):
    tag = str(dtype).replace("torch.", "")
    x = values((4, 16, 128, 128), dtype)
    w = (values((16, 16, 3, 3), dtype) * 0.1).requires_grad_(True)
    with torch.no_grad():
        timed(f"conv3x3_b4_16ch_128/forward/{tag}", lambda: torch.nn.functional.conv2d(x, w, padding=1))

    def step():
        w.grad = None
        y = torch.nn.functional.conv2d(x, w, padding=1)
        y.square().sum().backward()
        return w.grad

    timed(f"conv3x3_b4_16ch_128/fwd_bwd/{tag}", step)
    a, b = values((65536, 144), dtype), values((144, 16), dtype)
    timed(f"matmul_65536x144x16/{tag}", lambda: a @ b)
