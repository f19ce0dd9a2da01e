#!/usr/bin/env python3
"""Fixtures for `dlsia import`: model files saved by the PyTorch original (dlsia 0.3.4) with
`save_network_parameters`, and what a correct reader must make of them.

Run with the peer venv (see ../shared/peer/README.md):

    "$PEER_VENV"/bin/python tools/make_import_fixtures.py

Writes, under crates/dlsia-cli/tests/fixtures/import/:

* <case>.pt             -- the original's own file (`net.save_network_parameters(path)`): a torch
                           zip whose pickle holds {"topo_dict": ..., "state_dict": ...}
* <case>.json           -- what the file means: {"kind", "dlsia" (the constructor arguments in
                           plain JSON: activation/normalisation/graph spelled out), "topology"
                           (the dlsia-nets topology the file must become, where dlsia-nets has
                           the architecture), "num_parameters" (dlsia's count), "state_dict"
                           ({name: [dtype, shape]} in state_dict order)}
* <case>.io.safetensors -- "input" and "eval": the original's output in eval mode (running
                           statistics perturbed first so that eval mode tests something)
* bad/*.pt              -- files a reader must refuse with a clear error: a plain state_dict
                           (no topo_dict), an MSDNet with a PReLU activation (a class the
                           importer does not support), a 1-D MSDNet, a truncated file

Every case is small (a few KiB to a few tens of KiB).
"""
import functools
import json
import os

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file

from dlsia.core import helpers
from dlsia.core.networks import msdnet, sms3d, smsnet, sparsenet, tunet, tunet3plus

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "dlsia-cli",
                    "tests", "fixtures", "import")


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


def dims_of(conv):
    return {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}[conv]


def tunet_topology(net):
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
        "final_activation": None,  # the original does not save it
        "conv_kernel_size": net.conv_kernel_size,
        "maxpool_kernel_size": net.maxpool_kernel_size,
        "dilation": net.dilation,
    }


def tunet3plus_topology(net):
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
        "upsampling": "nearest" if net.kernel_up.__name__ == "Upsample" else "conv_transpose",
        "normalization": norm_json(net.normalization),
        "activation": act_json(net.activation),
        "final_activation": None,
        "conv_kernel_size": net.conv_kernel_size,
        "maxpool_kernel_size": net.maxpool_kernel_size,
        "dilation": net.dilation,
    }


def msdnet_dlsia(net, topo):
    """MSDNet constructor arguments as saved, in plain JSON."""
    custom = topo["custom_msdnet"]
    return {
        "in_channels": topo["in_channels"],
        "out_channels": topo["out_channels"],
        "num_layers": topo["num_layers"],
        "layer_width": topo["layer_width"],
        "max_dilation": topo["max_dilation"],
        "custom_msdnet": None if custom is None else np.asarray(custom).tolist(),
        "activation": act_json(topo["activation"]),
        "normalization": norm_json(topo["normalization"]),
        "final_layer": final_json(topo["final_layer"]),
        "conv_kernel_size": topo["conv_kernel_size"],
        "dropout": topo["dropout"],
        "spatial_dims": dims_of(topo["convolution"]),
        "padding_mode": topo["padding_mode"],
        # what the network actually builds, per layer and channel (for checking)
        "dilations": [[int(layer.__getattr__(f"conv_{j}").dilation[0])
                       for j in range(len(layer._modules))]
                      for name, layer in net.named_children() if name.startswith("layer_")],
    }


def graph_nodes(G):
    nodes = []
    for u in G.nodes():
        edges = [{"to": int(v), "dilation": int(G[u][v]["dilation"]),
                  "channels": int(G[u][v]["channels"])} for v in G.adj[u]]
        nodes.append({"id": int(u), "size": int(G.nodes[u]["size"]), "edges": edges})
    return nodes


def smsnet_dlsia(topo):
    """SMSNet constructor arguments as saved, in plain JSON (graph in dlsia-graph's order)."""
    table = []
    for axis, t in topo["scaling_table"].items():
        for a, row in t.items():
            for b, (stride, pad) in row.items():
                table.append([axis, int(a), int(b), int(stride), None if pad is None else int(pad)])
    name = lambda f: None if f is None else f.__name__  # noqa: E731
    return {
        "in_channels": topo["in_channels"],
        "out_channels": topo["out_channels"],
        "in_shape": list(topo["in_shape"]),
        "out_shape": list(topo["out_shape"]),
        "scaling_table": table,
        "nodes": graph_nodes(topo["network_graph"]),
        "channel_count": [[int(k), int(v)] for k, v in topo["channel_count"].items()],
        "convolution_kernel_size": topo["convolution_kernel_size"],
        "first_action": name(topo["first_action"]),
        "hidden_action": name(topo["hidden_action"]),
        "last_action": name(topo["last_action"]),
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


def save(net, name, path):
    """dlsia's own save; sms3d's requires a name, the others return the dict when name=None."""
    net.save_network_parameters(path)
    assert os.path.isfile(path), name


def write_case(name, kind, net, x, dlsia_args, topology=None):
    gen = torch.Generator().manual_seed(1234)
    perturb_norms(net, gen)
    os.makedirs(ROOT, exist_ok=True)
    path = os.path.join(ROOT, name + ".pt")
    save(net, name, path)
    back = torch.load(path, weights_only=False)
    state = back["state_dict"]
    meta = {
        "source": "tools/make_import_fixtures.py (dlsia 0.3.4, torch %s)" % torch.__version__,
        "kind": kind,
        "dlsia": dlsia_args(back["topo_dict"]) if callable(dlsia_args) else dlsia_args,
        "topology": topology,
        "num_parameters": helpers.count_parameters(net),
        "state_dict": {k: [str(v.dtype).replace("torch.", ""), list(v.shape)]
                       for k, v in state.items()},
    }
    with open(os.path.join(ROOT, name + ".json"), "w") as fh:
        json.dump(meta, fh, indent=1)
        fh.write("\n")
    net.eval()
    with torch.no_grad():
        y = net(x)
        if isinstance(y, tuple):  # SparseAEC: (reconstruction, logits); compare the first
            y = y[0]
    save_file({"input": x.contiguous(), "eval": y.contiguous()},
              os.path.join(ROOT, name + ".io.safetensors"))
    size = sum(os.path.getsize(os.path.join(ROOT, name + ext))
               for ext in (".pt", ".json", ".io.safetensors"))
    print(f"{name:22s} {kind:10s} params {meta['num_parameters']:6d} out {tuple(y.shape)} "
          f"{size / 1024:.0f} KiB")


def cases():
    torch.manual_seed(0)
    np.random.seed(0)

    # MSDNet: defaults (ReLU, BatchNorm2d), width 2.
    net = msdnet.MixedScaleDenseNetwork(1, 2, num_layers=4, layer_width=2, max_dilation=3)
    write_case("msdnet_2d", "msdnet", net, torch.rand(2, 1, 12, 10),
               lambda t: msdnet_dlsia(net, t))

    # MSDNet: custom dilations (a numpy array in topo_dict), LeakyReLU, no normalisation.
    net = msdnet.MixedScaleDenseNetwork(2, 1, num_layers=5, custom_msdnet=np.array([1, 2, 4]),
                                        activation=nn.LeakyReLU(0.2), normalization=None)
    write_case("msdnet_custom", "msdnet", net, torch.rand(1, 2, 11, 13),
               lambda t: msdnet_dlsia(net, t))

    # MSDNet 3-D.
    net = msdnet.MixedScaleDenseNetwork(1, 2, num_layers=3, max_dilation=2,
                                        convolution=nn.Conv3d, normalization=nn.BatchNorm3d)
    write_case("msdnet_3d", "msdnet", net, torch.rand(1, 1, 6, 7, 5),
               lambda t: msdnet_dlsia(net, t))

    # TUNet: the dlsia.md example at a small size.
    net = tunet.TUNet((16, 16), 1, 2, depth=3, base_channels=4)
    write_case("tunet_2d", "tunet", net, torch.rand(2, 1, 16, 16),
               None, tunet_topology(net))

    # TUNet: non-integer rates, LeakyReLU, no normalisation, odd image shape.
    net = tunet.TUNet((18, 20), 2, 3, depth=3, base_channels=3, growth_rate=1.5,
                      hidden_rate=1.5, activation=nn.LeakyReLU(0.1), normalization=None)
    write_case("tunet_rates", "tunet", net, torch.rand(1, 2, 18, 20),
               None, tunet_topology(net))

    # TUNet 3-D.
    net = tunet.TUNet((8, 8, 8), 1, 2, depth=2, base_channels=4, conv_kernel=nn.Conv3d,
                      kernel_down=nn.MaxPool3d, kernel_up=nn.ConvTranspose3d,
                      normalization=nn.BatchNorm3d)
    write_case("tunet_3d", "tunet", net, torch.rand(1, 1, 8, 8, 8),
               None, tunet_topology(net))

    # TUNet3+: nearest upsampling (the default).
    net = tunet3plus.TUNet3Plus((16, 16), 1, 2, depth=3, base_channels=3)
    write_case("tunet3plus_2d", "tunet3plus", net, torch.rand(2, 1, 16, 16),
               None, tunet3plus_topology(net))

    # TUNet3+: transposed-convolution upsampling, explicit carry-over channels, GroupNorm.
    net = tunet3plus.TUNet3Plus((12, 12), 1, 3, depth=3, base_channels=4, carryover_channels=2,
                                kernel_up=nn.ConvTranspose2d,
                                normalization=functools.partial(nn.GroupNorm, 2))
    write_case("tunet3plus_convt", "tunet3plus", net, torch.rand(1, 1, 12, 12),
               None, tunet3plus_topology(net))

    # SMSNet 2-D: enough layers that G.nodes() is usually not sorted by label.
    np.random.seed(5)
    torch.manual_seed(5)
    net = smsnet.random_SMS_network(2, 3, layers=8, dilation_choices=[1, 2, 3],
                                    hidden_out_channels=[2, 3], in_shape=(16, 16),
                                    out_shape=(16, 16))
    write_case("smsnet_2d", "smsnet", net, torch.rand(2, 2, 16, 16), smsnet_dlsia)

    # SMSNet 3-D.
    np.random.seed(3)
    torch.manual_seed(3)
    net = sms3d.random_3DSMS_network(1, 2, layers=5, dilation_choices=[1, 2],
                                     hidden_out_channels=[1, 2], in_shape=(8, 8, 8),
                                     out_shape=(8, 8, 8))
    write_case("smsnet_3d", "smsnet", net, torch.rand(2, 1, 6, 8, 7), smsnet_dlsia)


def sparse_topology(net, architecture, encoder, decoder, **extra):
    """The dlsia-nets topology an imported sparsenet file must become: the saved graphs plus
    what the importer infers (depth = hidden nodes of the encoder graph, its dilations and
    hidden channel count, which only matter for sampling)."""
    G = encoder.network_graph
    hidden = [u for u in G.nodes() if 0 < u < G.number_of_nodes() - 1]
    dil = sorted({int(d["dilation"]) for _, _, d in G.edges(data=True)})
    ch = sorted({int(G[u][v]["channels"]) for u in hidden for v in G.adj[u]})
    topo = {
        "architecture": architecture,
        "in_shape": [int(v) for v in net.in_shape],
        "latent_shape": [int(v) for v in net.latent_shape],
        "in_channels": int(net.in_channels),
        "out_channels": int(net.out_channels),
        "depth": max(len(hidden), 2),
        "dilations": dil,
        "hidden_channels": ch[-1] if ch else 10,
        "stride_base": 2,
        "encoder_graph": graph_nodes(G),
    }
    if decoder is not None:
        topo["decoder_graph"] = graph_nodes(decoder.network_graph)
    topo.update(extra)
    return topo


def sparse_cases():
    """dlsia.core.networks.sparsenet: SparseAutoEncoder, SparseAEC, SparseLabeler."""
    small = dict(in_shape=(16, 16), latent_shape=(4, 4), depth=6, dilations=[1, 2, 3],
                 hidden_channels=3)
    np.random.seed(21)
    torch.manual_seed(21)
    # A non-default latent_sequence: the original's topology_dict drops it (its own
    # SparseAutoEncoder_from_file fails on this file); the importer reads it from the weights.
    net = sparsenet.SparseAutoEncoder(latent_sequence=[12, 4], final_transform=nn.Sigmoid(),
                                      **small)
    write_case("sparse_autoencoder", "sparse_autoencoder", net, torch.rand(3, 1, 16, 16),
               {"class": "SparseAutoEncoder"},
               sparse_topology(net, "sparse_autoencoder", net.encode, net.decode,
                               latent_sequence=[12, 4], final_transform="sigmoid"))
    np.random.seed(22)
    torch.manual_seed(22)
    net = sparsenet.SparseAEC(out_classes=3, out_channels=2, dropout_rate=0.1, **small)
    write_case("sparse_aec", "sparse_aec", net, torch.rand(3, 1, 16, 16),
               {"class": "SparseAEC"},
               sparse_topology(net, "sparse_aec", net.encode, net.decode, out_classes=3,
                               dropout_rate=0.1))
    np.random.seed(23)
    torch.manual_seed(23)
    net = sparsenet.SparseLabeler(out_classes=4, **small)
    write_case("sparse_labeler", "sparse_labeler", net, torch.rand(3, 1, 16, 16),
               {"class": "SparseLabeler"},
               sparse_topology(net, "sparse_labeler", net.encode, None, out_classes=4,
                               dropout_rate=0.05, p_il=0.25, p_lo=0.25))


def bad_cases():
    bad = os.path.join(ROOT, "bad")
    os.makedirs(bad, exist_ok=True)
    torch.manual_seed(0)
    net = msdnet.MixedScaleDenseNetwork(1, 1, num_layers=2)
    # A plain state_dict: a valid torch file, but not a dlsia model file.
    torch.save(net.state_dict(), os.path.join(bad, "state_dict_only.pt"))
    # An activation class the importer does not support.
    net = msdnet.MixedScaleDenseNetwork(1, 1, num_layers=2, activation=nn.PReLU())
    net.save_network_parameters(os.path.join(bad, "msdnet_prelu.pt"))
    # A 1-D network: the importer supports 2-D and 3-D.
    net = msdnet.MixedScaleDenseNetwork(1, 1, num_layers=2, convolution=nn.Conv1d,
                                        normalization=nn.BatchNorm1d)
    net.save_network_parameters(os.path.join(bad, "msdnet_1d.pt"))
    # A truncated file.
    with open(os.path.join(ROOT, "tunet_2d.pt"), "rb") as fh:
        data = fh.read()
    with open(os.path.join(bad, "truncated.pt"), "wb") as fh:
        fh.write(data[: len(data) // 2])
    print("bad/: state_dict_only.pt msdnet_prelu.pt msdnet_1d.pt truncated.pt")


if __name__ == "__main__":
    import sys
    if sys.argv[1:] == ["--sparse"]:  # only the sparsenet cases (the others stay byte-identical)
        sparse_cases()
    else:
        cases()
        sparse_cases()
        bad_cases()
