"""PyTorch side of `cargo xtask bench ops`: the same op workloads, same thread count.

    python tools/bench_ops.py --threads 2 --reps 7 [--only name,name]

Prints one JSON object: {workload: {"fwd": [ms...], "fwdbwd": [ms...], "fwd_cpu": [ms...],
"fwdbwd_cpu": [ms...]}}: wall-clock and process CPU time (all threads) per run.
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=2)
p.add_argument("--reps", type=int, default=7)
p.add_argument("--only", default="")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)


def conv(x, w, stride=1, padding=0, dilation=1):
    f = F.conv2d if x.dim() == 4 else F.conv3d
    return f(x, w, stride=stride, padding=padding, dilation=dilation)


def convt(x, w, stride):
    f = F.conv_transpose2d if x.dim() == 4 else F.conv_transpose3d
    return f(x, w, stride=stride)


def pool(x, k):
    return (F.max_pool2d if x.dim() == 4 else F.max_pool3d)(x, k, k)


# name: (x shape, w shape or None, forward function of (x, w))
W = {
    "conv2d 3x3 16->16 4x16x256^2": ((4, 16, 256, 256), (16, 16, 3, 3), lambda x, w: conv(x, w, padding=1)),
    "conv3d 3x3x3 16->16 1x16x64^3": ((1, 16, 64, 64, 64), (16, 16, 3, 3, 3), lambda x, w: conv(x, w, padding=1)),
    "dilated conv2d 3x3 d8 64->1 4x64x256^2": ((4, 64, 256, 256), (1, 64, 3, 3), lambda x, w: conv(x, w, padding=8, dilation=8)),
    "dilated conv3d 3x3x3 d4 32->1 1x32x64^3": ((1, 32, 64, 64, 64), (1, 32, 3, 3, 3), lambda x, w: conv(x, w, padding=4, dilation=4)),
    "conv_transpose2d 2x2 s2 32->16 4x32x128^2": ((4, 32, 128, 128), (32, 16, 2, 2), lambda x, w: convt(x, w, 2)),
    "conv_transpose3d 2x2x2 s2 16->8 1x16x32^3": ((1, 16, 32, 32, 32), (16, 8, 2, 2, 2), lambda x, w: convt(x, w, 2)),
    "max_pool2d 2 4x16x256^2": ((4, 16, 256, 256), None, lambda x, w: pool(x, 2)),
    "max_pool3d 2 1x16x64^3": ((1, 16, 64, 64, 64), None, lambda x, w: pool(x, 2)),
    "batch_norm2d train 4x16x256^2": ((4, 16, 256, 256), None, None),
    "batch_norm3d train 1x16x64^3": ((1, 16, 64, 64, 64), None, None),
}


def timeit(f, reps):
    f()
    wall, cpu = [], []
    for _ in range(reps):
        c = time.process_time_ns()
        t = time.perf_counter()
        f()
        wall.append((time.perf_counter() - t) * 1e3)
        cpu.append((time.process_time_ns() - c) / 1e6)
    return wall, cpu


only = [s for s in a.only.split(",") if s]
res = {}
for name, (xs, ws, fn) in W.items():
    if only and not any(o in name for o in only):
        continue
    x = torch.randn(*xs, requires_grad=True)
    w = (torch.randn(*ws) * 0.1).requires_grad_() if ws else None
    if fn is None:  # train-mode batch norm (affine, running statistics)
        bn = (torch.nn.BatchNorm2d if len(xs) == 4 else torch.nn.BatchNorm3d)(xs[1]).train()
        fn = lambda x, w, bn=bn: bn(x)  # noqa: E731

    def fwd():
        with torch.no_grad():
            fn(x, w)

    def fwdbwd():
        x.grad = None
        if w is not None:
            w.grad = None
        fn(x, w).sum().backward()

    (fw, fc), (bw, bc) = timeit(fwd, a.reps), timeit(fwdbwd, a.reps)
    res[name] = {"fwd": fw, "fwdbwd": bw, "fwd_cpu": fc, "fwdbwd_cpu": bc}
print(json.dumps(res))
