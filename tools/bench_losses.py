"""PyTorch counterpart of `cargo bench -p dlsia-losses --bench losses`: the same losses and
metrics on 4 x 2 x 256 x 256 f32 logits with half the pixels unlabelled (-1), 2 threads.

    $PEER_VENV/bin/python tools/bench_losses.py
Prints min / median milliseconds per call (forward, forward+backward).
"""
import time

import torch
import torch.nn.functional as F
from dlsia.core.train_scripts import segmentation_metrics, regression_metrics

torch.set_num_threads(2)
torch.manual_seed(0)
N, C, H, W = 4, 2, 256, 256
x = torch.rand(N, C, H, W) * 4 - 2
y = torch.randint(0, C, (N, H, W))
y[torch.rand(N, H, W) < 0.5] = -1


def masked_onehot(y):
    valid = (y != -1).float().unsqueeze(1)
    oh = F.one_hot(y.clamp(min=0), C).permute(0, 3, 1, 2).float() * valid
    return oh, valid


def ce(x):
    return F.cross_entropy(x, y, ignore_index=-1)


def dice(x, smooth=1.0):  # macro soft Dice on the softmax over labelled pixels (as dlsia-losses)
    p = torch.softmax(x, 1)
    oh, w = masked_onehot(y)
    pw = p * w
    tp = (pw * oh).sum((0, 2, 3))
    fp = pw.sum((0, 2, 3)) - tp
    fn = (oh * w).sum((0, 2, 3)) - tp
    return 1 - ((2 * tp + smooth) / (2 * tp + fp + fn + smooth)).mean()


def focal(x, gamma=2.0):  # per-pixel categorical focal loss over labelled pixels
    logp = torch.log_softmax(x, 1)
    oh, w = masked_onehot(y)
    per = -(oh * (1 - logp.exp()) ** gamma * logp).sum(1, keepdim=True)
    return (per * w).sum() / w.sum()


def dice_bce(x):
    return 0.5 * ce(x) + 0.5 * dice(x)


def min_median_ms(f, reps=20):
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


for name, fn in [("cross_entropy", ce), ("dice", dice), ("focal", focal), ("dice_bce", dice_bce)]:
    with torch.no_grad():
        fwd = min_median_ms(lambda: fn(x))
    xv = x.clone().requires_grad_(True)

    def step():
        xv.grad = None
        fn(xv).backward()

    print(f"{name:14s} forward {fwd} ms   forward+backward {min_median_ms(step)} ms")

print(f"segmentation_metrics (torchmetrics F1 micro+macro) {min_median_ms(lambda: segmentation_metrics(x, y))} ms")
a, b = x[:, :1], x[:, 1:]
print(f"regression_metrics (corrcoef)                      {min_median_ms(lambda: regression_metrics(a, b))} ms")
