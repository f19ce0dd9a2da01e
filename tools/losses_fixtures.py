"""Fixtures for dlsia-losses: the original dlsia 0.3.4 losses, torch's CrossEntropyLoss,
torchmetrics F1 (through dlsia's segmentation_metrics) and dlsia's regression_metrics.

Run with the peer venv from the repository root:
    $PEER_VENV/bin/python tools/losses_fixtures.py
Writes crates/dlsia-losses/tests/fixtures/dlsia_losses.safetensors (float64 scalars as 1-element
tensors; inputs float32 / int64 as the Rust tests use them).
"""
import os

import torch
from safetensors.torch import save_file

from dlsia.core import custom_losses as cl
from dlsia.core.train_scripts import segmentation_metrics, regression_metrics

torch.manual_seed(1234)
out = {}


def scalar(name, value):
    out[name] = torch.tensor([float(value)], dtype=torch.float64)


def loss_and_grad(name, fn, x, *args):
    x = x.clone().requires_grad_(True)
    v = fn(x, *args)
    v.backward()
    scalar(name, v.item())
    out[name + "_grad"] = x.grad.detach().clone()


# --- binary probabilities (N=2, C=1, 4x5), float targets in {0,1}
pb = torch.sigmoid(torch.randn(2, 1, 4, 5) * 2)
yb = (torch.rand(2, 1, 4, 5) < 0.4).float()
out["bin_p"], out["bin_y"] = pb, yb
loss_and_grad("bin_dice", cl.DiceLoss(), pb, yb)
loss_and_grad("bin_dicebce", cl.DiceBCELoss(), pb, yb)
loss_and_grad("bin_dicebce_a03", cl.DiceBCELoss(smooth=0.5, alpha=0.3), pb, yb)
loss_and_grad("bin_focal", cl.FocalLoss(), pb, yb)
loss_and_grad("bin_focal_a05_g2", cl.FocalLoss(alpha=0.5, gamma=2.0), pb, yb)
loss_and_grad("bin_tversky", cl.TverskyLoss(), pb, yb)
loss_and_grad("bin_focal_tversky", cl.FocalTverskyLoss(), pb, yb)
loss_and_grad("bin_focal_tversky_a7", cl.FocalTverskyLoss(smooth=2, alpha=0.7, beta=0.3, gamma=1.5), pb, yb)
loss_and_grad("bin_bce", torch.nn.BCELoss(), pb, yb)

# --- multi-class probabilities (N=2, C=3, 4x5) with one-hot float targets: the original's
# flattened ("pooled") formulas
zm = torch.randn(2, 3, 4, 5) * 2
pm = torch.softmax(zm, 1)
lab = torch.randint(0, 3, (2, 4, 5))
ym = torch.nn.functional.one_hot(lab, 3).permute(0, 3, 1, 2).float().contiguous()
out["mc_p"], out["mc_onehot"] = pm, ym
loss_and_grad("mc_dice", cl.DiceLoss(), pm, ym)
loss_and_grad("mc_tversky", cl.TverskyLoss(), pm, ym)
loss_and_grad("mc_focal_tversky", cl.FocalTverskyLoss(), pm, ym)
loss_and_grad("mc_focal", cl.FocalLoss(), pm, ym)

# --- cross-entropy with ignore_index=-1 and class weights on logits
labi = lab.clone()
labi[torch.rand(2, 4, 5) < 0.3] = -1
out["ce_logits"], out["ce_labels"] = zm, labi
loss_and_grad("ce_plain", torch.nn.CrossEntropyLoss(ignore_index=-1), zm, labi)
w = torch.tensor([0.2, 1.0, 3.0])
out["ce_weights"] = w.double()
loss_and_grad("ce_weighted", torch.nn.CrossEntropyLoss(weight=w, ignore_index=-1), zm, labi)

# --- masked regression
xr = torch.randn(2, 2, 4, 5)
yr = torch.randn(2, 2, 4, 5)
mr = (torch.rand(2, 2, 4, 5) < 0.6).float()
out["reg_x"], out["reg_y"], out["reg_mask"] = xr, yr, mr
loss_and_grad("reg_l1", cl.L1LossMasked(), xr, yr, mr)
loss_and_grad("reg_mse", cl.MSELossMasked(), xr, yr, mr)

# --- total variation: 2D on the raw input with an MSE base, 3D on the softmax with a CE base
tvw = torch.tensor([0.1, 0.5])
out["tv_w"] = tvw.double()
loss_and_grad("tv2d", cl.CombinedLossWithTVNorm(torch.nn.MSELoss(), tvw), xr, yr)
z3 = torch.randn(2, 2, 3, 4, 5)
l3 = torch.randint(0, 2, (2, 3, 4, 5))
out["tv3_logits"], out["tv3_labels"] = z3, l3
loss_and_grad("tv3d", cl.CombinedLossWithTVNorm3D(torch.nn.CrossEntropyLoss(), tvw), z3, l3)

# --- F1 through dlsia's segmentation_metrics (torchmetrics F1Score micro/macro, missing -1)
for i, (n, c, h, w_) in enumerate([(3, 4, 8, 8), (2, 2, 16, 16), (2, 5, 6, 7)]):
    probs = torch.softmax(torch.randn(n, c, h, w_), 1)
    tgt = torch.randint(0, c, (n, h, w_))
    tgt[torch.rand(n, h, w_) < 0.25] = -1
    if i == 2:  # class 4 absent from targets and predictions, class 3 only in targets
        probs[:, 4] = 0.0
        probs[:, 3] = 0.0
        tgt[tgt == 4] = 0
        tgt[0, 0, 0] = 3
    micro, macro = segmentation_metrics(probs, tgt, missing_label=-1)
    out[f"f1_{i}_probs"], out[f"f1_{i}_target"] = probs, tgt
    scalar(f"f1_{i}_micro", micro)
    scalar(f"f1_{i}_macro", macro)

# --- Pearson (dlsia's regression_metrics = torch.corrcoef of the flattened tensors)
a = torch.randn(3, 2, 7, 9)
b = 0.7 * a + 0.5 * torch.randn(3, 2, 7, 9) + 3.0
out["pearson_a"], out["pearson_b"] = a, b
scalar("pearson", regression_metrics(a, b))

here = os.path.dirname(os.path.abspath(__file__))
dst = os.path.join(here, "..", "crates", "dlsia-losses", "tests", "fixtures", "dlsia_losses.safetensors")
save_file({k: v.contiguous() for k, v in out.items()}, dst)
print("wrote", os.path.normpath(dst), len(out), "tensors")
