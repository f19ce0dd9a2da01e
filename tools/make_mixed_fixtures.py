#!/usr/bin/env python3
"""Parity fixtures for the mixed-scale networks of `dlsia-nets` (MSDNet, SMSNet), written by the
PyTorch original (dlsia 0.3.4).

Run with the peer venv (see ../shared/peer/README.md):

    "$PEER_VENV"/bin/python tools/make_mixed_fixtures.py

Every case is a dlsia network built with fixed numpy/torch seeds (SMSNet graphs are sampled by
the original's own random_SMS_network / random_3DSMS_network), whose normalisation layers get
non-trivial affine parameters and running statistics. Under
crates/dlsia-nets/tests/fixtures/mixed/<case>/ it writes:

* model.json          -- a dlsia-nets model file {"format_version", "topology", "metadata"}; for
                         SMSNets the topology holds the graph exported as in
                         tools/export_sms_graph.py (nodes in G.nodes() order, edges in G.adj
                         order, per-edge dilation and channels, node sizes)
* weights.safetensors -- net.state_dict() under its PyTorch names
* io.safetensors      -- "input", "eval" (net.eval() output), "train" (net.train() output),
                         "after_train.<buffer>" (BatchNorm running statistics after that
                         forward pass), "grad_output" (a fixed tensor g) and "grad.<name>" /
                         "grad.input": the gradients of sum(train_output * g) with respect to
                         every parameter and the input

The same layout is what `dlsia_nets::load_model` reads.
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_sms_graph import graph_nodes  # noqa: E402
from make_nets_fixtures import act_json, export_model, final_json, norm_json  # noqa: E402

from dlsia.core import helpers  # noqa: E402
from dlsia.core.networks import msdnet, sms3d, smsnet  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "dlsia-nets",
                    "tests", "fixtures", "mixed")


def perturb(net, gen):
    """Non-trivial normalisation parameters and running statistics."""
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


def write_case(name, net, topology, x, note):
    gen = torch.Generator().manual_seed(4321)
    perturb(net, gen)
    directory = os.path.join(ROOT, name)
    export_model(net, topology, directory, {
        "source": "tools/make_mixed_fixtures.py (dlsia 0.3.4, torch %s)" % torch.__version__,
        "case": note,
        "dlsia_num_parameters": helpers.count_parameters(net),
    })
    io = {"input": x.contiguous()}
    net.eval()
    with torch.no_grad():
        io["eval"] = net(x).contiguous()
    net.train()
    xg = x.clone().requires_grad_(True)
    y = net(xg)
    io["train"] = y.detach().contiguous()
    g = torch.sin(torch.arange(y.numel(), dtype=torch.float32) * 0.37).reshape(y.shape)
    io["grad_output"] = g
    net.zero_grad()
    (y * g).sum().backward()
    io["grad.input"] = xg.grad.detach().contiguous()
    for k, p in net.named_parameters():
        io["grad." + k] = p.grad.detach().contiguous()
    for k, v in net.state_dict().items():
        if k.endswith("running_mean") or k.endswith("running_var") or \
                k.endswith("num_batches_tracked"):
            io["after_train." + k] = v.detach().contiguous().clone()
    save_file(io, os.path.join(directory, "io.safetensors"))
    size = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))
    print(f"{name:22s} params {helpers.count_parameters(net):6d}  output "
          f"{tuple(io['eval'].shape)}  {size / 1024:.0f} KiB")


# ---------------------------------------------------------------------------------------------
# MSDNet

def msd_topology(net, dims):
    act = net.activation
    if isinstance(act, (list, tuple)):
        act = [act_json(a) for a in act]
    else:
        act = act_json(act)
    custom = net.custom_msdnet
    if custom is not None:
        custom = [[int(v) for v in row] for row in np.asarray(custom)]
    drop = None if net.dropout is None else [float(p) for p in net.dropout]
    return {
        "architecture": "msdnet",
        "spatial_dims": dims,
        "in_channels": net.in_channels,
        "out_channels": net.out_channels,
        "num_layers": int(net.num_layers),
        "layer_width": int(net.layer_width or 1),
        "max_dilation": int(net.max_dilation or 1),
        "custom_dilations": custom,
        "activation": act,
        "normalization": norm_json(net.normalization),
        "final_activation": final_json(net.final_layer),
        "conv_kernel_size": net.conv_kernel_size,
        "dropout": drop,
        "padding_mode": net.padding_mode,
    }


def msd_cases():
    torch.manual_seed(10)
    net = msdnet.MixedScaleDenseNetwork(1, 2, num_layers=6, layer_width=1, max_dilation=4)
    write_case("msd2d_w1", net, msd_topology(net, 2), torch.rand(2, 1, 13, 11),
               "MixedScaleDenseNetwork(1, 2, num_layers=6, layer_width=1, max_dilation=4)")

    torch.manual_seed(11)
    net = msdnet.MixedScaleDenseNetwork(2, 3, num_layers=4, layer_width=2, max_dilation=5)
    write_case("msd2d_w2", net, msd_topology(net, 2), torch.rand(2, 2, 12, 14),
               "MixedScaleDenseNetwork(2, 3, num_layers=4, layer_width=2, max_dilation=5)")

    torch.manual_seed(12)
    net = msdnet.MixedScaleDenseNetwork(1, 2, num_layers=None, layer_width=None,
                                        max_dilation=None,
                                        custom_msdnet=np.array([[1, 3, 2], [4, 1, 5]]),
                                        final_layer=nn.Sigmoid(), conv_kernel_size=5)
    write_case("msd2d_custom", net, msd_topology(net, 2), torch.rand(2, 1, 12, 11),
               "custom_msdnet [[1,3,2],[4,1,5]] (width 2, 3 layers), Sigmoid final layer "
               "(also applied to the input), kernel 5")

    torch.manual_seed(13)
    net = msdnet.MixedScaleDenseNetwork(1, 1, num_layers=5, layer_width=1, max_dilation=None,
                                        custom_msdnet=np.array([1, 2, 4]))
    write_case("msd2d_custom1d", net, msd_topology(net, 2), torch.rand(3, 1, 11, 12),
               "custom_msdnet [1,2,4] tiled to 5 layers")

    torch.manual_seed(14)
    net = msdnet.MixedScaleDenseNetwork(1, 2, num_layers=4, layer_width=1, max_dilation=3,
                                        convolution=nn.Conv3d, normalization=nn.BatchNorm3d)
    write_case("msd3d_w1", net, msd_topology(net, 3), torch.rand(2, 1, 6, 5, 7),
               "MixedScaleDenseNetwork(1, 2, 4 layers, width 1, max_dilation 3), Conv3d/BN3d")

    torch.manual_seed(15)
    net = msdnet.MixedScaleDenseNetwork(2, 1, num_layers=3, layer_width=2, max_dilation=3,
                                        convolution=nn.Conv3d, normalization=nn.BatchNorm3d)
    write_case("msd3d_w2", net, msd_topology(net, 3), torch.rand(2, 2, 5, 6, 4),
               "MixedScaleDenseNetwork(2, 1, 3 layers, width 2, max_dilation 3), Conv3d/BN3d")

    torch.manual_seed(16)
    net = msdnet.MixedScaleDenseNetwork(2, 2, num_layers=4, layer_width=1, max_dilation=3,
                                        activation=nn.LeakyReLU(0.1),
                                        normalization=nn.InstanceNorm2d, padding_mode="reflect",
                                        final_layer=nn.Softmax(dim=1))
    write_case("msd2d_leaky_instance_reflect", net, msd_topology(net, 2),
               torch.rand(2, 2, 10, 9),
               "2 input channels, LeakyReLU(0.1), InstanceNorm2d, reflect padding, Softmax "
               "final layer (also applied to the input)")

    torch.manual_seed(17)
    net = msdnet.MixedScaleDenseNetwork(1, 1, num_layers=3, layer_width=1, max_dilation=2,
                                        activation=[nn.ReLU(), nn.Tanh()], normalization=None,
                                        dropout=[0.0, 0.0, 0.0])
    write_case("msd2d_actlist_nonorm", net, msd_topology(net, 2), torch.rand(2, 1, 9, 9),
               "activation list [ReLU, Tanh] (not applied to the input), normalization None, "
               "dropout [0, 0, 0]")


# ---------------------------------------------------------------------------------------------
# SMSNet

LAST = {"Linear": "Linear", "LinearSigmoid": "LinearSigmoid", "LinearReLU": "LinearBnRelu",
        "Linear3D": "Linear", "Linear3DSigmoid": "LinearSigmoid"}


def sms_topology(net, dims):
    last = net.last_action
    last = "Identity" if last is None else LAST[last.__name__]
    return {
        "architecture": "smsnet",
        "spatial_dims": dims,
        "in_channels": int(net.in_channels),
        "out_channels": int(net.out_channels),
        "in_shape": [int(v) for v in net.in_shape],
        "kernel_size": int(net.convolution_kernel_size),
        "last_action": last,
        "graph": graph_nodes(net.network_graph),
    }


def unsorted(net):
    nodes = list(net.network_graph.nodes())
    return nodes != sorted(nodes)


def sms_cases():
    probs = {"LL_alpha": 0.75, "LL_gamma": 2.0, "LL_max_degree": 4, "LL_min_degree": 1,
             "IL": 0.4, "LO": 0.4, "IO": True}
    # A seed whose G.nodes() order is not sorted by label: the concatenation order matters.
    for seed in range(100):
        np.random.seed(seed)
        torch.manual_seed(seed)
        net = smsnet.random_SMS_network(2, 3, layers=7, dilation_choices=[1, 2, 4],
                                        in_shape=(16, 16), out_shape=(16, 16),
                                        hidden_out_channels=[2, 3],
                                        layer_probabilities=dict(probs))
        if unsorted(net):
            break
    write_case("sms2d_unsorted", net, sms_topology(net, 2), torch.rand(2, 2, 11, 12),
               f"random_SMS_network(2, 3, layers=7, dilations [1,2,4], hidden [2,3]), seed "
               f"{seed}: node order {list(net.network_graph.nodes())}")

    layers = 8
    ens = {"LL_alpha": 0.0, "LL_gamma": 0.0, "LL_max_degree": layers, "LL_min_degree": 1,
           "IL": 0.995, "LO": 0.995, "IO": True}
    np.random.seed(2)
    torch.manual_seed(2)
    net = smsnet.random_SMS_network(1, 2, layers=layers, dilation_choices=[1, 2, 3, 4],
                                    hidden_out_channels=[6], layer_probabilities=dict(ens))
    write_case("sms2d_ensemble", net, sms_topology(net, 2), torch.rand(2, 1, 9, 10),
               "random_SMS_network(1, 2, 8 layers, dilations [1..4], hidden [6], the ensemble "
               "builder's connection settings), seed 2 (a small W4)")

    np.random.seed(5)
    torch.manual_seed(5)
    net = smsnet.random_SMS_network(1, 1, layers=5, dilation_choices=[1, 2],
                                    hidden_out_channels=[2], network_type="Regression_Positive",
                                    layer_probabilities=dict(probs))
    write_case("sms2d_positive", net, sms_topology(net, 2), torch.rand(3, 1, 10, 11),
               "random_SMS_network(1, 1, 5 layers, Regression_Positive: Linear + BN + ReLU)")

    np.random.seed(6)
    torch.manual_seed(6)
    net = smsnet.random_SMS_network(1, 2, layers=5, dilation_choices=[1, 3],
                                    hidden_out_channels=[3], network_type="Regression_Sigmoid",
                                    layer_probabilities=dict(probs))
    write_case("sms2d_sigmoid", net, sms_topology(net, 2), torch.rand(2, 1, 12, 10),
               "random_SMS_network(1, 2, 5 layers, Regression_Sigmoid)")

    np.random.seed(7)
    torch.manual_seed(7)
    net = smsnet.random_SMS_network(1, 2, layers=6, dilation_choices=[1, 2],
                                    in_shape=(16, 16), out_shape=(16, 16),
                                    hidden_out_channels=[2, 3],
                                    sizing_settings={"stride_base": 2, "min_power": -1,
                                                     "max_power": 1},
                                    layer_probabilities=dict(probs))
    write_case("sms2d_sizes", net, sms_topology(net, 2), torch.rand(2, 1, 16, 16),
               "random_SMS_network with node sizes -1..1 (strided convolutions and transposed "
               "convolutions), in_shape (16, 16)")

    np.random.seed(8)
    torch.manual_seed(8)
    net = sms3d.random_3DSMS_network(1, 2, layers=5, dilation_choices=[1, 2],
                                     in_shape=(8, 8, 8), out_shape=(8, 8, 8),
                                     hidden_out_channels=[2, 3], layer_probabilities=dict(probs))
    write_case("sms3d", net, sms_topology(net, 3), torch.rand(2, 1, 6, 5, 7),
               "random_3DSMS_network(1, 2, 5 layers, dilations [1,2], hidden [2,3])")


if __name__ == "__main__":
    msd_cases()
    sms_cases()
