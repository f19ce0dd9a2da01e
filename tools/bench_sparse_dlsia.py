#!/usr/bin/env python3
"""The PyTorch side of `cargo xtask bench nets --only S1`: dlsia's SparseAutoEncoder (dlsia 0.3.4)
timed exactly as /work/shared/peer/bench_dlsia.py times its workloads (same options, same JSON),
by reusing that script with one more workload:

  S1  SparseAutoEncoder defaults (28x28 -> 7x7, depth 20, hidden 10, latent_sequence [32, 2],
      dropout 0.05), 64x1x28x28, MSE against the input

The network is built with numpy/torch seed 0; `--write-topology PATH` writes its dlsia-nets
topology (both sampled graphs, as the original drew them) so that the Rust side runs the very
same network (xtask reads tools/bench_sparse_s1.json):

    "$PEER_VENV"/bin/python tools/bench_sparse_dlsia.py --write-topology tools/bench_sparse_s1.json
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.environ.get("DLSIA_PEER_DIR", "/work/shared/peer")
sys.path.insert(0, PEER)
sys.path.insert(0, HERE)

DESCRIPTION = ("SparseAutoEncoder defaults (28x28 -> 7x7, depth 20, hidden 10, latent [32, 2]), "
               "64x1x28x28, MSE")


def build_s1(torch, nn, np):
    from dlsia.core.networks import sparsenet
    np.random.seed(0)
    torch.manual_seed(0)
    net = sparsenet.SparseAutoEncoder()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(64, 1, 28, 28, generator=g)
    return net, x, x.clone(), nn.MSELoss()


def write_topology(path):
    import numpy as np
    import torch
    import torch.nn as nn
    from export_sms_graph import graph_nodes
    net, _, _, _ = build_s1(torch, nn, np)
    topo = {
        "architecture": "sparse_autoencoder",
        "encoder_graph": graph_nodes(net.encode.network_graph),
        "decoder_graph": graph_nodes(net.decode.network_graph),
    }
    from dlsia.core import helpers
    with open(path, "w") as fh:
        json.dump({"topology": topo, "dlsia_num_parameters": helpers.count_parameters(net)}, fh)
        fh.write("\n")
    print(f"{path}: {helpers.count_parameters(net)} parameters")


def main():
    if sys.argv[1:2] == ["--write-topology"]:
        write_topology(sys.argv[2])
        return
    import bench_dlsia
    original_build = bench_dlsia.build

    def build(workload, torch, nn, np):
        if workload == "S1":
            return build_s1(torch, nn, np)
        return original_build(workload, torch, nn, np)

    bench_dlsia.build = build
    bench_dlsia.DESCRIPTIONS["S1"] = DESCRIPTION
    # Children re-run this script (not bench_dlsia.py), so that they know S1 too.
    bench_dlsia.__file__ = os.path.abspath(__file__)
    bench_dlsia.main()


if __name__ == "__main__":
    main()
