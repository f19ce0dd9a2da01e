#!/usr/bin/env python3
"""Convert a network saved by dlsia 0.3.4 into a dlsia-rs model directory.

    "$PEER_VENV"/bin/python tools/export_dlsia_model.py NET.pt OUT_DIR [--final-activation softmax]

NET.pt is a file written by dlsia's `save_network_parameters` (a torch pickle holding
"topo_dict" and "state_dict"); TUNet and TUNet3Plus files are supported. OUT_DIR receives
model.json (format_version, topology, metadata) and weights.safetensors (the state_dict under its
PyTorch names), which `dlsia_nets::load_model` reads.

dlsia does not save a TUNet's `final_activation` (its topo_dict lacks it): pass
--final-activation if the network was built with one.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_nets_fixtures import export_model, tunet3plus_topology, tunet_topology  # noqa: E402

from dlsia.core import helpers  # noqa: E402
from dlsia.core.networks import tunet, tunet3plus  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help="file written by dlsia's save_network_parameters")
    ap.add_argument("output", help="model directory to create")
    ap.add_argument("--final-activation", choices=["sigmoid", "softmax"], default=None,
                    help="TUNet only: the final activation dlsia did not save")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing model")
    args = ap.parse_args()

    if not args.overwrite and os.path.exists(os.path.join(args.output, "model.json")):
        sys.exit(f"{args.output} already holds a model; pass --overwrite to replace it")
    saved = torch.load(args.input, map_location="cpu", weights_only=False)
    if not isinstance(saved, dict) or "topo_dict" not in saved or "state_dict" not in saved:
        sys.exit(f"{args.input}: not a dlsia save_network_parameters file "
                 "(expected the keys topo_dict and state_dict)")
    topo = saved["topo_dict"]
    if "carryover_channels" in topo:
        net = tunet3plus.TUNet3Plus(**topo)
        net.load_state_dict(saved["state_dict"])
        topology = tunet3plus_topology(net)
        kind = "TUNet3Plus"
    elif "growth_rate" in topo and "image_shape" in topo:
        net = tunet.TUNetwork_from_file(saved)
        final = {"sigmoid": torch.nn.Sigmoid(), "softmax": torch.nn.Softmax(dim=1),
                 None: None}[args.final_activation]
        topology = tunet_topology(net, final)
        kind = "TUNet"
    else:
        sys.exit(f"{args.input}: unsupported network (topo_dict keys {sorted(topo)}); "
                 "TUNet and TUNet3Plus are supported")
    if args.final_activation and kind != "TUNet":
        sys.exit("--final-activation applies to TUNet files only")
    export_model(net, topology, args.output, {
        "source": f"tools/export_dlsia_model.py from {os.path.basename(args.input)} "
                  f"(dlsia {kind}, torch {torch.__version__})",
        "dlsia_num_parameters": helpers.count_parameters(net),
    })
    print(f"wrote {kind} ({helpers.count_parameters(net)} parameters) to {args.output}")


if __name__ == "__main__":
    main()
