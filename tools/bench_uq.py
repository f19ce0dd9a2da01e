"""PyTorch counterpart of `cargo bench -p dlsia-uq --bench conformal`: the original's LAC
calibration (build_conformalizer_classify) and prediction sets on 4 x 4 x 256 x 256
probabilities with 30 % unlabelled pixels, and model_baggin over 5 members, 2 threads.

    $PEER_VENV/bin/python tools/bench_uq.py
"""
import time

import torch
from torch import nn
from dlsia.core.conformalize.conformalize_segmentation import build_conformalizer_classify
from dlsia.core.networks.baggins import model_baggin

torch.set_num_threads(2)
torch.manual_seed(0)
N, C, H = 4, 4, 256
p = torch.softmax(torch.rand(N, C, H, H) * 6 - 3, 1)
lab = torch.randint(0, C, (N, 1, H, H))
lab[torch.rand(N, 1, H, H) < 0.3] = -1


def min_median_ms(f, reps=10):
    """'min / median' milliseconds over reps calls (the minimum resists interference from
    other processes on a shared machine)."""
    f()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return f"{1000 * ts[0]:8.2f} / {1000 * ts[len(ts) // 2]:8.2f}"


calib = lambda: build_conformalizer_classify(nn.Identity(), [(p, lab)], alpha=0.1, device="cpu", norma=False)
cobj = calib()
print(f"lac/calibrate        {min_median_ms(calib)} ms")
print(f"lac/prediction_sets  {min_median_ms(lambda: cobj(p))} ms")


class Fixed(nn.Module):
    def __init__(self, t):
        super().__init__()
        self.t = t

    def forward(self, x):
        return self.t


members = [Fixed(torch.softmax(torch.rand(N, C, H, H) * 6 - 3, 1)) for _ in range(5)]
bag = model_baggin(members, model_type="classification", returns_normalized=True)
x = torch.zeros(N, 1, H, H)
print(f"ensemble mean_std    {min_median_ms(lambda: bag(x, return_std=True))} ms")
