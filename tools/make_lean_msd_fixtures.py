#!/usr/bin/env python3
"""Parity fixtures for the lean MSDNet converter (`dlsia_nets::lean_msd::convert`), written by
the PyTorch original (dlsia 0.3.4).

Run with the peer venv (see ../shared/peer/README.md):

    "$PEER_VENV"/bin/python tools/make_lean_msd_fixtures.py

For every case it builds a small dlsia MixedScaleDenseNetwork with normalization=None (the
setting under which the lean network computes the same function) and writes, under
crates/dlsia-nets/tests/fixtures/lean_msd/<case>/:

* dlsia.json          -- the dlsia hyperparameters as a `DlsiaMsdSpec` (serde JSON), plus
                          "dlsia_num_parameters" (helpers.count_parameters)
* weights.safetensors -- net.state_dict() under its PyTorch names (f32)
* io.safetensors      -- "input" and "output" (net.eval(), no grad), and "grad.<name>" for the
                          gradient of sum(output * probe) with respect to every parameter and
                          the input ("grad.input"), with "probe" the random weights of that sum

It also writes param_counts.json: dlsia's parameter counts of the benchmark MSDNets with
normalization=None (the lean network has exactly these parameters).
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file

from dlsia.core import helpers
from dlsia.core.networks import msdnet

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "dlsia-nets",
                    "tests", "fixtures", "lean_msd")


def spec_json(net, dims, custom):
    return {
        "spatial_dims": dims,
        "in_channels": net.in_channels,
        "out_channels": net.out_channels,
        "num_layers": net.num_layers,
        "layer_width": net.layer_width,
        "max_dilation": net.max_dilation,
        "custom_msdnet": custom,
        "activation": "relu",
        "normalization": "none",
        "final_layer": None,
        "conv_kernel_size": net.conv_kernel_size,
        "padding_mode": net.padding_mode,
        "dropout": net.dropout is not None,
    }


def write_case(name, net, dims, custom, x):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    state = {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}
    save_file(state, os.path.join(d, "weights.safetensors"))
    spec = spec_json(net, dims, custom)
    with open(os.path.join(d, "dlsia.json"), "w") as fh:
        json.dump({"spec": spec, "dlsia_num_parameters": helpers.count_parameters(net)}, fh,
                  indent=1)
        fh.write("\n")
    net.eval()
    xg = x.clone().requires_grad_(True)
    out = net(xg)
    gen = torch.Generator().manual_seed(99)
    probe = torch.rand(out.shape, generator=gen) - 0.5
    (out * probe).sum().backward()
    io = {"input": x.contiguous(), "output": out.detach().contiguous(),
          "probe": probe.contiguous(), "grad.input": xg.grad.contiguous()}
    for k, p in net.named_parameters():
        io["grad." + k] = p.grad.detach().contiguous()
    save_file(io, os.path.join(d, "io.safetensors"))
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print(f"{name:20s} params {helpers.count_parameters(net):6d} out {tuple(out.shape)} "
          f"{size / 1024:.0f} KiB")


def main():
    torch.manual_seed(0)
    # Inputs include negative values: dlsia's ReLU on the raw input matters.
    net = msdnet.MixedScaleDenseNetwork(1, 2, num_layers=6, layer_width=1, max_dilation=3,
                                        normalization=None)
    write_case("w1_zeros_2d", net, 2, None, torch.rand(2, 1, 13, 11) * 2 - 0.5)

    net = msdnet.MixedScaleDenseNetwork(2, 3, num_layers=4, layer_width=2, max_dilation=4,
                                        normalization=None, padding_mode="reflect")
    write_case("w2_reflect_2d", net, 2, None, torch.rand(2, 2, 12, 10) * 2 - 0.5)

    custom = np.array([[1, 3, 2, 5], [4, 1, 2, 3]])
    net = msdnet.MixedScaleDenseNetwork(1, 1, num_layers=None, layer_width=None,
                                        max_dilation=None, custom_msdnet=custom,
                                        normalization=None, padding_mode="replicate")
    write_case("custom_replicate_2d", net, 2,
               {"per_layer": custom.tolist()}, torch.rand(1, 1, 14, 12) * 2 - 0.5)

    net = msdnet.MixedScaleDenseNetwork(1, 2, num_layers=4, layer_width=1, max_dilation=2,
                                        normalization=None, convolution=nn.Conv3d)
    write_case("w1_zeros_3d", net, 3, None, torch.rand(2, 1, 6, 7, 5) * 2 - 0.5)

    counts = {}
    for name, kw in [("W1", dict(in_channels=1, out_channels=2, num_layers=100,
                                  layer_width=1, max_dilation=10)),
                     ("W2", dict(in_channels=1, out_channels=1, num_layers=200,
                                 layer_width=1, max_dilation=10))]:
        counts[name] = {
            "normalization_none": helpers.count_parameters(
                msdnet.MixedScaleDenseNetwork(**kw, normalization=None)),
            "default_batchnorm": helpers.count_parameters(msdnet.MixedScaleDenseNetwork(**kw)),
        }
    with open(os.path.join(ROOT, "param_counts.json"), "w") as fh:
        json.dump(counts, fh, indent=1)
        fh.write("\n")
    print(counts)


if __name__ == "__main__":
    main()
