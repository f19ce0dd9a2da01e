"""Fixtures for dlsia-uq from the original dlsia 0.3.4: conformal LAC thresholds and sets
(build_conformalizer_classify / conformalize_classification), ensemble mean and std
(model_baggin), AggregateNet weights and outputs.

Run with the peer venv from the repository root:
    $PEER_VENV/bin/python tools/uq_fixtures.py
Writes crates/dlsia-uq/tests/fixtures/dlsia_uq.safetensors.
"""
import os

import torch
from torch import nn
from safetensors.torch import save_file

from dlsia.core.conformalize.conformalize_segmentation import build_conformalizer_classify
from dlsia.core.networks.baggins import model_baggin
from dlsia.core.networks.aggnet import AggregateNet

torch.manual_seed(7)
out = {}

# --- conformal LAC on images: logits (N, C, Y, X), labels (N, 1, Y, X) with missing -1
cal_logits = torch.randn(3, 4, 10, 10) * 1.5
cal_labels = torch.randint(0, 4, (3, 1, 10, 10))
cal_labels[torch.rand(3, 1, 10, 10) < 0.3] = -1
loader = [(cal_logits, cal_labels)]
cobj = build_conformalizer_classify(nn.Identity(), loader, alpha=0.1, missing_label=-1, device="cpu", norma=True)
out["conf_cal_logits"], out["conf_cal_labels"] = cal_logits, cal_labels
out["conf_qhat_0.1"] = torch.tensor([float(cobj.qhat)], dtype=torch.float64)


def exact_qhat(alpha):
    """The k-th smallest score, k = ceil((n+1)(1-alpha)); the original's method='higher' at
    k/n returns the (k+1)-th."""
    import numpy as np
    n = cobj.scores.numel()
    k = int(np.ceil((n + 1) * (1 - alpha)))
    return torch.tensor([float(np.sort(cobj.scores.numpy())[k - 1])], dtype=torch.float64)


out["conf_qhat_exact_0.1"] = exact_qhat(0.1)
test_logits = torch.randn(2, 4, 6, 6) * 1.5
out["conf_test_logits"] = test_logits
sets = cobj(torch.softmax(test_logits, 1))
out["conf_sets_0.1"] = sets.to(torch.uint8)
for a in (0.05, 0.2, 0.5):
    cobj.recalibrate(a)
    out[f"conf_qhat_{a}"] = torch.tensor([float(cobj.qhat)], dtype=torch.float64)
    out[f"conf_qhat_exact_{a}"] = exact_qhat(a)
    out[f"conf_sets_{a}"] = cobj(torch.softmax(test_logits, 1)).to(torch.uint8)

# --- ensemble of three 1x1-conv "networks" through model_baggin
members = [nn.Conv2d(1, 3, 1) for _ in range(3)]
x = torch.randn(2, 1, 5, 5)
out["ens_x"] = x
for i, m in enumerate(members):
    with torch.no_grad():
        out[f"ens_logits_{i}"] = m(x)
bag = model_baggin(members, model_type="classification")
mean, std = bag(x, return_std=True)
out["ens_mean"], out["ens_std_baggin"] = mean, std

# --- AggregateNet: 3 layers with ReLU (keys conv.0, conv.2, final_conv), and 2 without ReLU
for name, kw in [("agg_relu", dict(layers=3, relu=True)), ("agg_norelu", dict(layers=2, relu=False, bias=False))]:
    net = AggregateNet(6, 3, **kw)
    xin = torch.rand(2, 6, 5, 4)
    with torch.no_grad():
        y = net(xin)
    for k, v in net.state_dict().items():
        out[f"{name}.{k}"] = v
    out[f"{name}_x"], out[f"{name}_y"] = xin, y

here = os.path.dirname(os.path.abspath(__file__))
dst = os.path.join(here, "..", "crates", "dlsia-uq", "tests", "fixtures", "dlsia_uq.safetensors")
save_file({k: v.contiguous() for k, v in out.items()}, dst)
print("wrote", os.path.normpath(dst), sorted(out))
