#!/usr/bin/env python3
"""Parity fixtures for `dlsia-nets`, written by the PyTorch original (dlsia 0.3.4).

Run with the peer venv (see ../shared/peer/README.md):

    "$PEER_VENV"/bin/python tools/make_nets_fixtures.py

For every case it builds a small dlsia network with a fixed seed, gives its normalisation layers
non-trivial affine parameters and running statistics, and writes, under
crates/dlsia-nets/tests/fixtures/<case>/:

* model.json         -- a dlsia-nets model file: {"format_version", "topology", "metadata"};
                        metadata.dlsia_num_parameters is dlsia's helpers.count_parameters(net)
* weights.safetensors -- net.state_dict() under its PyTorch names (f32, num_batches_tracked i64)
* io.safetensors      -- "input", "eval" (net.eval() output), "train" (net.train() output from
                         the same weights, batch statistics) and "after_train.<buffer>" (every
                         BatchNorm running statistic after that one training forward); for some
                         cases also "other_input"/"other_eval": the same weights loaded into the
                         original built for another image_shape, run on an input of that shape
                         (dlsia-nets runs one network on any size the depth allows)

It also writes crates/dlsia-nets/tests/fixtures/param_counts.json: dlsia's parameter counts for
larger topologies (the benchmark workloads W3, W5, W6 and others) without their weights.

The same model.json + weights.safetensors layout is what `load_model` reads, so the
`export_model` function below is also how a dlsia network is converted for dlsia-rs.
"""
import functools
import json
import os

import torch
import torch.nn as nn
from safetensors.torch import save_file

from dlsia.core import helpers
from dlsia.core.networks import msae, tunet, tunet3plus

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "dlsia-nets",
                    "tests", "fixtures")


def act_json(a):
    """dlsia-nets `Act` for a torch activation module (or None)."""
    if a is None:
        return "none"
    if isinstance(a, nn.ReLU):
        return "relu"
    if isinstance(a, nn.LeakyReLU):
        return {"leaky_relu": {"negative_slope": a.negative_slope}}
    if isinstance(a, nn.ELU):
        return {"elu": {"alpha": a.alpha}}
    if isinstance(a, nn.GELU):
        return "gelu"
    if isinstance(a, nn.SiLU):
        return "silu"
    if isinstance(a, nn.Tanh):
        return "tanh"
    raise ValueError(a)


def norm_json(n):
    """dlsia-nets `Norm` for a dlsia `normalization` argument (class, partial or None)."""
    if n is None:
        return "none"
    if isinstance(n, functools.partial) and n.func is nn.GroupNorm:
        return {"group": {"groups": n.args[0]}}
    if n in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d):
        return "batch"
    if n in (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d):
        return "instance"
    raise ValueError(n)


def final_json(f):
    if f is None:
        return None
    if isinstance(f, nn.Sigmoid):
        return "sigmoid"
    if isinstance(f, nn.Softmax):
        return "softmax"
    raise ValueError(f)


def tunet_topology(net, final_activation=None):
    return {
        "architecture": "tunet",
        "image_shape": list(net.image_shape),
        "in_channels": net.in_channels,
        "out_channels": net.out_channels,
        "depth": net.depth,
        "base_channels": net.base_channels,
        "growth_rate": float(net.growth_rate),
        "hidden_rate": float(net.hidden_rate),
        "normalization": norm_json(net.normalization),
        "activation": act_json(net.activation),
        "final_activation": final_json(final_activation),
        "conv_kernel_size": net.conv_kernel_size,
        "maxpool_kernel_size": net.maxpool_kernel_size,
        "dilation": net.dilation,
    }


def tunet3plus_topology(net):
    up = net.kernel_up.__name__
    return {
        "architecture": "tunet3plus",
        "image_shape": list(net.image_shape),
        "in_channels": net.in_channels,
        "out_channels": net.out_channels,
        "depth": net.depth,
        "base_channels": net.base_channels,
        "growth_rate": float(net.growth_rate),
        "hidden_rate": float(net.hidden_rate),
        "carryover_channels": net.carryover_channels,
        "upsampling": "nearest" if up == "Upsample" else "conv_transpose",
        "normalization": norm_json(net.normalization),
        "activation": act_json(net.activation),
        "conv_kernel_size": net.conv_kernel_size,
        "maxpool_kernel_size": net.maxpool_kernel_size,
        "dilation": net.dilation,
    }


def msae_topology(net):
    return {
        "architecture": "msae",
        "input_shape": list(net.input_shape),
        "depth": net.depth,
        "base_channels": net.base_channels,
        "growth_rate": float(net.growth_rate),
        "latent_dimension": net.latent_dimension,
        "max_dilation": net.max_dilation,
        "ms_depth": net.MS_depth,
        "final_action": final_json(net.final_action),
    }


def perturb_norms(net, gen):
    """Non-trivial affine parameters and running statistics, so eval mode tests something."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm)):
                if m.weight is not None:
                    m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=gen))
                    m.bias.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)
                if getattr(m, "running_mean", None) is not None:
                    m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=gen))
                    m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
                    m.num_batches_tracked.fill_(3)


def export_model(net, topology, directory, metadata):
    """Writes a dlsia-nets model directory for a dlsia network."""
    os.makedirs(directory, exist_ok=True)
    state = {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}
    save_file(state, os.path.join(directory, "weights.safetensors"))
    with open(os.path.join(directory, "model.json"), "w") as fh:
        json.dump({"format_version": 1, "topology": topology, "metadata": metadata}, fh, indent=1)
        fh.write("\n")


def write_case(name, net, topology, x, note, other=None):
    gen = torch.Generator().manual_seed(1234)
    perturb_norms(net, gen)
    directory = os.path.join(ROOT, name)
    export_model(net, topology, directory, {
        "source": "tools/make_nets_fixtures.py (dlsia 0.3.4, torch %s)" % torch.__version__,
        "case": note,
        "dlsia_num_parameters": helpers.count_parameters(net),
    })
    io = {"input": x.contiguous()}
    net.eval()
    with torch.no_grad():
        io["eval"] = net(x).contiguous()
    if other is not None:
        build_other, x_other = other
        net2 = build_other()
        net2.load_state_dict(net.state_dict())
        net2.eval()
        io["other_input"] = x_other.contiguous()
        with torch.no_grad():
            io["other_eval"] = net2(x_other).contiguous()
    net.train()
    with torch.no_grad():
        io["train"] = net(x).contiguous()
    for k, v in net.state_dict().items():
        if k.endswith("running_mean") or k.endswith("running_var") or \
                k.endswith("num_batches_tracked"):
            io["after_train." + k] = v.detach().contiguous().clone()
    save_file(io, os.path.join(directory, "io.safetensors"))
    size = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))
    print(f"{name:24s} params {helpers.count_parameters(net):7d}  output {tuple(io['eval'].shape)}"
          f"  {size / 1024:.0f} KiB")


def cases():
    torch.manual_seed(0)
    x2 = torch.rand(2, 1, 13, 11)
    net = tunet.TUNet((13, 11), 1, 2, depth=3, base_channels=4)
    other = (lambda: tunet.TUNet((10, 15), 1, 2, depth=3, base_channels=4),
             torch.rand(1, 1, 10, 15))
    write_case("tunet2d", net, tunet_topology(net), x2,
               "TUNet((13,11), 1, 2, depth=3, base_channels=4): defaults, odd size", other)

    torch.manual_seed(1)
    x = torch.rand(2, 2, 11, 14)
    net = tunet.TUNet((11, 14), 2, 3, depth=3, base_channels=3, growth_rate=1.5,
                      hidden_rate=1.5, activation=nn.LeakyReLU(0.1))
    write_case("tunet2d_frac", net, tunet_topology(net), x,
               "TUNet((11,14), 2, 3, depth=3, base=3, growth 1.5, hidden 1.5, LeakyReLU(0.1))")

    torch.manual_seed(2)
    x = torch.rand(2, 1, 10, 13)
    final = nn.Softmax(dim=1)
    net = tunet.TUNet((10, 13), 1, 3, depth=2, base_channels=2, hidden_rate=2,
                      normalization=functools.partial(nn.GroupNorm, 2), activation=nn.ELU(),
                      final_activation=final, conv_kernel_size=5, maxpool_kernel_size=3)
    write_case("tunet2d_gn", net, tunet_topology(net, final), x,
               "TUNet((10,13), 1, 3, depth=2, base=2, hidden 2, GroupNorm(2), ELU, softmax, "
               "conv 5, maxpool 3")

    torch.manual_seed(3)
    x = torch.rand(1, 1, 12, 11)
    net = tunet.TUNet((12, 11), 1, 2, depth=3, base_channels=3, normalization=None,
                      activation=nn.Tanh())
    write_case("tunet2d_nonorm", net, tunet_topology(net), x,
               "TUNet((12,11), 1, 2, depth=3, base=3, normalization=None, Tanh): shifted indices")

    torch.manual_seed(4)
    x = torch.rand(2, 1, 7, 9, 8)
    net = tunet.TUNet((7, 9, 8), 1, 2, depth=3, base_channels=2, conv_kernel=nn.Conv3d,
                      kernel_down=nn.MaxPool3d, kernel_up=nn.ConvTranspose3d,
                      normalization=nn.BatchNorm3d)
    other = (lambda: tunet.TUNet((8, 6, 9), 1, 2, depth=3, base_channels=2,
                                 conv_kernel=nn.Conv3d, kernel_down=nn.MaxPool3d,
                                 kernel_up=nn.ConvTranspose3d, normalization=nn.BatchNorm3d),
             torch.rand(1, 1, 8, 6, 9))
    write_case("tunet3d", net, tunet_topology(net), x, other=other, note=
               "TUNet((7,9,8), 1, 2, depth=3, base=2), Conv3d/MaxPool3d/ConvTranspose3d/BN3d")

    torch.manual_seed(5)
    x = torch.rand(2, 1, 13, 11)
    net = tunet3plus.TUNet3Plus((13, 11), 1, 2, depth=3, base_channels=4)
    other = (lambda: tunet3plus.TUNet3Plus((9, 14), 1, 2, depth=3, base_channels=4),
             torch.rand(1, 1, 9, 14))
    write_case("tunet3p2d", net, tunet3plus_topology(net), x, other=other, note=
               "TUNet3Plus((13,11), 1, 2, depth=3, base_channels=4): nearest upsampling")

    torch.manual_seed(6)
    x = torch.rand(2, 1, 11, 9)
    net = tunet3plus.TUNet3Plus((11, 9), 1, 2, depth=3, base_channels=3, carryover_channels=2,
                                kernel_up=nn.ConvTranspose2d, activation=nn.SiLU())
    other = (lambda: tunet3plus.TUNet3Plus((14, 10), 1, 2, depth=3, base_channels=3,
                                           carryover_channels=2, kernel_up=nn.ConvTranspose2d,
                                           activation=nn.SiLU()),
             torch.rand(1, 1, 14, 10))
    write_case("tunet3p2d_convt", net, tunet3plus_topology(net), x, other=other, note=
               "TUNet3Plus((11,9), 1, 2, depth=3, base=3, carryover 2, ConvTranspose2d, SiLU)")

    torch.manual_seed(7)
    x = torch.rand(2, 1, 7, 9, 6)
    net = tunet3plus.TUNet3Plus((7, 9, 6), 1, 2, depth=3, base_channels=2,
                                carryover_channels=2, conv_kernel=nn.Conv3d,
                                kernel_down=nn.MaxPool3d, normalization=nn.BatchNorm3d)
    write_case("tunet3p3d", net, tunet3plus_topology(net), x,
               "TUNet3Plus((7,9,6), 1, 2, depth=3, base=2, carryover 2), 3-D, nearest")

    torch.manual_seed(8)
    x = torch.rand(3, 1, 13, 10)
    net = msae.MSAE((1, 13, 10), depth=2, base_channels=3, growth_rate=2, latent_dimension=4,
                    max_dilation=2, MS_depth=2, final_action="Sigmoid")
    write_case("msae", net, msae_topology(net), x,
               "MSAE((1,13,10), depth=2, base=3, growth 2, latent 4, max_dilation 2, MS_depth 2, "
               "Sigmoid)")

    torch.manual_seed(9)
    x = torch.rand(2, 2, 16, 16)
    net = msae.MSAE((2, 16, 16), depth=3, base_channels=2, growth_rate=1.5, latent_dimension=5,
                    max_dilation=3, MS_depth=1)
    write_case("msae_frac", net, msae_topology(net), x,
               "MSAE((2,16,16), depth=3, base=2, growth 1.5, latent 5, max_dilation 3, MS_depth 1)")


def param_counts():
    """dlsia's parameter counts for topologies too large to ship as fixtures."""
    out = []

    def add(label, net, topo):
        out.append({"label": label, "topology": topo,
                    "dlsia_num_parameters": helpers.count_parameters(net)})
        print(f"{label:40s} {out[-1]['dlsia_num_parameters']:10d}")

    net = tunet.TUNet((256, 256), 1, 2, depth=4, base_channels=16)
    add("W3 TUNet 2-D depth 4 base 16", net, tunet_topology(net))
    net = tunet.TUNet((64, 64, 64), 1, 2, depth=3, base_channels=8, conv_kernel=nn.Conv3d,
                      kernel_down=nn.MaxPool3d, kernel_up=nn.ConvTranspose3d,
                      normalization=nn.BatchNorm3d)
    add("W6 TUNet 3-D depth 3 base 8", net, tunet_topology(net))
    net = msae.MSAE((1, 64, 64), depth=4, base_channels=16, growth_rate=2, latent_dimension=16,
                    max_dilation=5, MS_depth=1)
    add("W5 MSAE", net, msae_topology(net))
    net = tunet.TUNet((256, 256), 1, 1, depth=4, base_channels=64)
    add("TUNet depth 4 base 64 (classic U-Net widths)", net, tunet_topology(net))
    net = tunet.TUNet((33, 30), 2, 3, depth=4, base_channels=6, growth_rate=1.5,
                      hidden_rate=1.5)
    add("TUNet dlsia.md non-integer example", net, tunet_topology(net))
    net = tunet3plus.TUNet3Plus((64, 64), 1, 3, depth=4, base_channels=16)
    add("TUNet3+ depth 4 base 16", net, tunet3plus_topology(net))
    net = tunet3plus.TUNet3Plus((32, 32), 1, 2, depth=3, base_channels=4)
    add("TUNet3+ dlsia.md example", net, tunet3plus_topology(net))
    with open(os.path.join(ROOT, "param_counts.json"), "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    cases()
    param_counts()
