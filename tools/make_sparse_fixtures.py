#!/usr/bin/env python3
"""Parity fixtures for dlsia-nets' SMS-based autoencoders (SparseAutoEncoder, SparseAEC,
SparseLabeler), written by the PyTorch original (dlsia 0.3.4, `dlsia.core.networks.sparsenet`).

Run with the peer venv (see ../shared/peer/README.md):

    "$PEER_VENV"/bin/python tools/make_sparse_fixtures.py

Every case is built by the original's own constructor with fixed numpy/torch seeds (so its
SMSNet graphs are the original sampler's), at 16x16 -> 4x4 (autoencoders) or 28x28 -> 7x7 (SparseLabeler), depth 8, with dropout 0 so that
train-mode outputs are deterministic; BatchNorm affine parameters and BatchNorm1d running
statistics are perturbed so that evaluation tests them. Under
crates/dlsia-nets/tests/fixtures/sparse/<case>/ it writes:

* model.json          -- a dlsia-nets model file whose topology holds both graphs exported as in
                         tools/export_sms_graph.py (nodes in G.nodes() order, edges in G.adj
                         order, per-edge dilation and channels, node sizes)
* weights.safetensors -- net.state_dict() under its PyTorch names
* io.safetensors      -- "input"; "eval"/"train" (the forward output in eval/train mode; for
                         SparseAEC the reconstruction, with "eval_logits"/"train_logits");
                         "latent" (eval-mode latent_vector(x) / latent(x)); "after_train.<buf>"
                         (BatchNorm1d running statistics after the train forward);
                         "grad_output" (and "grad_logits" for SparseAEC): fixed tensors g whose
                         sum(output * g) is the loss; "grad.<name>" / "grad.input": its gradients
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_sms_graph import graph_nodes  # noqa: E402
from make_nets_fixtures import export_model  # noqa: E402

from dlsia.core import helpers  # noqa: E402
from dlsia.core.networks import sparsenet  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "dlsia-nets",
                    "tests", "fixtures", "sparse")

COMMON = dict(in_shape=(28, 28), latent_shape=(7, 7), depth=8, dilations=[1, 2, 3],
              hidden_channels=3)
# The autoencoders at 16x16 -> 4x4 (same power 2) keep their image-sized fixtures small.
SMALL = dict(COMMON, in_shape=(16, 16), latent_shape=(4, 4))


def perturb(net, gen):
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                if m.weight is not None:
                    m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=gen))
                    m.bias.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)
                if getattr(m, "running_mean", None) is not None:
                    m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=gen))
                    m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
                    m.num_batches_tracked.fill_(3)


def backbone(net, kwargs, encoder_only=False):
    topo = {
        "in_shape": [int(v) for v in net.in_shape],
        "latent_shape": [int(v) for v in net.latent_shape],
        "in_channels": int(net.in_channels),
        "out_channels": int(net.out_channels),
        "depth": kwargs["depth"],
        "dilations": kwargs["dilations"],
        "hidden_channels": kwargs["hidden_channels"],
        "stride_base": 2,
        "encoder_graph": graph_nodes(net.encode.network_graph),
    }
    if not encoder_only:
        topo["decoder_graph"] = graph_nodes(net.decode.network_graph)
    return topo


def sine(shape, phase):
    n = int(np.prod(shape))
    return torch.sin(torch.arange(n, dtype=torch.float32) * 0.37 + phase).reshape(shape)


def write(name, net, topology, x, outputs, latent_fn, note):
    """outputs(x) -> list of (key, tensor); latent_fn(x) -> tensor or None."""
    gen = torch.Generator().manual_seed(4321)
    perturb(net, gen)
    directory = os.path.join(ROOT, name)
    export_model(net, topology, directory, {
        "source": "tools/make_sparse_fixtures.py (dlsia 0.3.4, torch %s)" % torch.__version__,
        "case": note,
        "dlsia_num_parameters": helpers.count_parameters(net),
    })
    io = {"input": x.contiguous()}
    net.eval()
    with torch.no_grad():
        for key, t in outputs(x):
            io["eval" + key] = t.contiguous()
        if latent_fn is not None:
            io["latent"] = latent_fn(x).contiguous()
    net.train()
    xg = x.clone().requires_grad_(True)
    net.zero_grad()
    loss = 0
    for i, (key, y) in enumerate(outputs(xg)):
        io["train" + key] = y.detach().contiguous()
        g = sine(y.shape, 0.5 * i)
        io["grad_output" if key == "" else "grad" + key] = g
        loss = loss + (y * g).sum()
    loss.backward()
    io["grad.input"] = xg.grad.detach().contiguous()
    for k, p in net.named_parameters():
        io["grad." + k] = p.grad.detach().contiguous()
    for k, v in net.state_dict().items():
        if k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            io["after_train." + k] = v.detach().contiguous().clone()
    save_file(io, os.path.join(directory, "io.safetensors"))
    size = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))
    print(f"{name:18s} params {helpers.count_parameters(net):6d}  {size / 1024:.0f} KiB  {note}")


def main():
    seed = 3
    np.random.seed(seed)
    torch.manual_seed(seed)
    kw = dict(SMALL, latent_sequence=[16, 6, 3], dropout_p=0.0)
    net = sparsenet.SparseAutoEncoder(final_transform=nn.Sigmoid(), **kw)
    topo = dict(backbone(net, kw), architecture="sparse_autoencoder",
                latent_sequence=kw["latent_sequence"], dropout_p=0.0, final_transform="sigmoid")
    write("autoencoder", net, topo, torch.rand(4, 1, 16, 16),
          lambda x: [("", net(x))], net.latent_vector,
          f"SparseAutoEncoder(16x16 -> 4x4, depth 8, hidden 3, latent_sequence [16, 6, 3], "
          f"dropout 0, final_transform Sigmoid), seed {seed}")

    seed = 4
    np.random.seed(seed)
    torch.manual_seed(seed)
    kw = dict(SMALL, out_channels=2, out_classes=5, dropout_rate=0.0)
    net = sparsenet.SparseAEC(**kw)
    topo = dict(backbone(net, kw), architecture="sparse_aec", out_classes=5, dropout_rate=0.0)
    write("aec", net, topo, torch.rand(4, 1, 16, 16),
          lambda x: list(zip(["", "_logits"], net(x))), net.latent,
          f"SparseAEC(16x16 -> 2x4x4, depth 8, hidden 3, 5 classes, dropout 0), seed {seed}")

    seed = 5
    np.random.seed(seed)
    torch.manual_seed(seed)
    kw = dict(COMMON, in_channels=2, out_classes=4, dropout_rate=0.0)
    net = sparsenet.SparseLabeler(**kw)
    topo = dict(backbone(net, kw, encoder_only=True), architecture="sparse_labeler",
                out_classes=4, dropout_rate=0.0, p_il=0.25, p_lo=0.25)
    write("labeler", net, topo, torch.rand(4, 2, 28, 28),
          lambda x: [("", net(x))], None,
          f"SparseLabeler(2 x 28x28 -> 7x7, depth 8, hidden 3, 4 classes, dropout 0), seed {seed}")

    with open(os.path.join(ROOT, "README.md"), "w") as fh:
        fh.write("Written by tools/make_sparse_fixtures.py (dlsia 0.3.4); see its docstring.\n")


if __name__ == "__main__":
    main()
