#!/usr/bin/env python3
"""Export SMSNet graphs sampled by the original dlsia to dlsia-graph's JSON format, plus the
fixtures that crates/dlsia-graph's tests compare against.

Run with the peer venv (dlsia 0.3.4, torch, networkx):

    $PEER_VENV/bin/python tools/export_sms_graph.py                    # write all fixtures
    $PEER_VENV/bin/python tools/export_sms_graph.py --seeds 300        # summary over 300 seeds
    $PEER_VENV/bin/python tools/export_sms_graph.py --network net.pt --out graph.json
                                                                       # export a saved SMSNet

Graph format (see crates/dlsia-graph/src/json.rs): {"format": "dlsia-sms-graph", "version": 1,
"in_channels", "channel_count": [[node, channels], ...], "meta": {...}, "nodes": [{"id", "size",
"edges": [{"to", "dilation", "channels"}, ...]}, ...]}, nodes in G.nodes() order and each edge
list in G.adj[u] order: exactly the order SMSNet builds and concatenates its edges in.

Fixtures written under crates/dlsia-graph/tests/fixtures/:
  graphs/*.json       graphs sampled by random_SMS_network / random_3DSMS_network /
                      random_1DSMS_network, with PyTorch's parameter counts for several
                      kernel sizes, last actions and output channel counts in meta.parameter_counts
  traces.json         per seed, the original sampler's intermediates (raw hidden edges in
                      insertion order, the IL and LO picks) and its final graph; the script
                      checks that its step-by-step replay gives the same graph as the real
                      random_*SMS_network with the same numpy seed
  summary_stats.json  means and standard deviations of graph statistics over --seeds seeds for
                      several parameter sets (only these numbers are committed, not the graphs)
  scaling_tables.json scale_up_down.scaling_table outputs
"""

import argparse
import json
import math
import os
import sys
import warnings
from collections import OrderedDict

warnings.filterwarnings("ignore")

import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from dlsia.core import helpers  # noqa: E402
from dlsia.core.networks import graph_utils, msd_graph_tools, scale_up_down  # noqa: E402
from dlsia.core.networks import sms1d, sms3d, smsnet  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "dlsia-graph",
                        "tests", "fixtures")

DEFAULT_PROBS = {"LL_alpha": 0.75, "LL_gamma": 2.0, "LL_max_degree": None, "LL_min_degree": 1,
                 "IL": 0.25, "LO": 0.25, "IO": True}


def ensemble_probs(layers):
    return {"LL_alpha": 0.0, "LL_gamma": 0.0, "LL_max_degree": layers, "LL_min_degree": 1,
            "IL": 0.995, "LO": 0.995, "IO": True}


# Parameter sets: name -> keyword arguments of the sampler (dims 1, 2 or 3).
SETTINGS = OrderedDict([
    ("default_2d", dict(dims=2, in_channels=1, out_channels=1, layers=10, dilation_choices=[1, 2, 4],
                        hidden_out_channels=[1], layer_probabilities=DEFAULT_PROBS,
                        dilation_mode="Edges")),
    ("ensemble_2d", dict(dims=2, in_channels=1, out_channels=2, layers=16,
                         dilation_choices=[1, 2, 3, 4], hidden_out_channels=[6],
                         layer_probabilities=ensemble_probs(16), dilation_mode="Edges")),
    ("maxdeg4_2d", dict(dims=2, in_channels=2, out_channels=3, layers=12, dilation_choices=[1, 2, 3],
                        hidden_out_channels=[2, 3],
                        layer_probabilities={"LL_alpha": 0.5, "LL_gamma": 1.0, "LL_max_degree": 4,
                                             "LL_min_degree": 1, "IL": 0.5, "LO": 0.5, "IO": False},
                        dilation_mode="Node")),
    ("dense_2d", dict(dims=2, in_channels=1, out_channels=1, layers=6, dilation_choices=[1, 2, 4, 8],
                      hidden_out_channels=[1, 2],
                      layer_probabilities={"LL_alpha": 0.75, "LL_gamma": None, "LL_max_degree": None,
                                           "LL_min_degree": 1, "IL": 0.25, "LO": 0.25, "IO": True},
                      dilation_mode="Edges")),
    ("fraction_3d", dict(dims=3, in_channels=2, out_channels=2, layers=10, dilation_choices=[1, 2, 3],
                         hidden_out_channels=[1, 2, 3],
                         layer_probabilities={"LL_alpha": 1.0, "LL_gamma": 2.0, "LL_max_degree": 0.5,
                                              "LL_min_degree": 1, "IL": 0.3, "LO": 0.3, "IO": True},
                         dilation_mode="Edges")),
])


def sampler_fn(dims):
    return {1: sms1d.random_1DSMS_network, 2: smsnet.random_SMS_network,
            3: sms3d.random_3DSMS_network}[dims]


def build_network(seed, s, in_shape=None, out_shape=None, sizing=None):
    np.random.seed(seed)
    torch.manual_seed(seed)
    kw = dict(in_channels=s["in_channels"], out_channels=s["out_channels"], layers=s["layers"],
              dilation_choices=s["dilation_choices"], hidden_out_channels=s["hidden_out_channels"],
              layer_probabilities=s["layer_probabilities"], dilation_mode=s["dilation_mode"],
              sizing_settings=sizing)
    if in_shape is not None:
        kw["in_shape"] = in_shape
        kw["out_shape"] = out_shape
    elif s["dims"] == 1:
        kw["in_shape"] = (64,)   # dlsia's default (64) is an int and crashes
        kw["out_shape"] = (64,)
    return sampler_fn(s["dims"])(**kw)


def graph_nodes(G):
    nodes = []
    for u in G.nodes():
        edges = [{"to": int(v), "dilation": int(G[u][v]["dilation"]),
                  "channels": int(G[u][v]["channels"])} for v in G.adj[u]]
        nodes.append({"id": int(u), "size": int(G.nodes[u]["size"]), "edges": edges})
    return nodes


def graph_document(net, meta):
    return OrderedDict([
        ("format", "dlsia-sms-graph"), ("version", 1),
        ("in_channels", int(net.in_channels)),
        ("channel_count", [[int(k), int(v)] for k, v in net.channel_count.items()]),
        ("meta", meta),
        ("nodes", graph_nodes(net.network_graph)),
    ])


def export_saved_network(path, out):
    """Export the graph of a file written by SMSNet.save_network_parameters."""
    d = smsnet.safe_torch_load(path)
    topo = d["topo_dict"]
    dims = 3 if "D3" in topo["scaling_table"] else 2
    meta = {"source_file": os.path.basename(path), "dims": dims,
            "out_channels": int(topo["out_channels"]),
            "convolution_kernel_size": int(topo["convolution_kernel_size"]),
            "last_action": getattr(topo["last_action"], "__name__", "None")}
    doc = OrderedDict([
        ("format", "dlsia-sms-graph"), ("version", 1), ("in_channels", int(topo["in_channels"])),
        ("channel_count", [[int(k), int(v)] for k, v in topo["channel_count"].items()]),
        ("meta", meta), ("nodes", graph_nodes(topo["network_graph"])),
    ])
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)


# ----------------------------------------------------------------------------------------------
# Step-by-step replay of random_*SMS_network's graph, capturing the intermediates.

def traced_graph(seed, s):
    """Replays the sampler with the same numpy draws; returns (trace dict, graph)."""
    np.random.seed(seed)
    lp = s["layer_probabilities"]
    L = s["layers"]
    raw_edges = []
    if lp["LL_gamma"] is None:
        LL = np.triu(np.ones((L, L)))
        for ii in range(L):
            LL[ii, ii] = 0
    else:
        max_degree = 1.0 if lp["LL_max_degree"] is None else lp["LL_max_degree"]
        mt = graph_utils.random_graph_MT(L, alpha=lp["LL_alpha"], gamma=lp["LL_gamma"],
                                         min_degree=lp["LL_min_degree"], max_degree=max_degree)
        G = nx.DiGraph()
        for ii in range(L - 1):
            for c in mt.node_model(ii):
                G.add_edge(ii + 1, c + 1)
                raw_edges.append([ii + 1, int(c + 1)])
        LL = np.triu(nx.linalg.graphmatrix.adjacency_matrix(G).todense())
    column_sums = np.sum(LL, axis=0)
    row_sums = np.sum(LL, axis=1)
    cols = column_sums == 0
    rows = row_sums != 0
    must_in = np.where(cols * rows)[0]
    must_out = np.where(~cols * ~rows)[0]
    between = np.where(~cols * rows)[0]
    IL_skip = np.hstack([between, must_out])
    LO_skip = np.hstack([must_in, between])
    il = np.random.choice(IL_skip, int(len(IL_skip) * lp["IL"] + 0.5), False)
    lo = np.random.choice(LO_skip, int(len(LO_skip) * lp["LO"] + 0.5), False)
    n = L + 2
    full = np.zeros((n, n))
    full[0, 1 + must_in] = 1
    full[0, 1 + il.astype(int)] = 1
    full[1:L + 1, 1:L + 1] = LL
    full[1 + must_out, L + 1] = 1
    full[1 + lo.astype(int), L + 1] = 1
    if lp["IO"]:
        full[0, L + 1] = 1
    G = smsnet.sort_and_rename(nx.from_numpy_array(full, create_using=nx.DiGraph()))
    G = smsnet.buildSMSdilations(G, dilation_choices=s["dilation_choices"], mode=s["dilation_mode"])
    in_choices = [s["in_channels"]] if s["dims"] == 2 else [1]
    G, count = smsnet.buildSMSnodechannels(G, s["in_channels"], in_channel_choices=in_choices,
                                           hidden_out_channel_choices=s["hidden_out_channels"])
    G = graph_utils.assign_size(G, [0] if s["dims"] == 2 else None)
    G.nodes[0]["size"] = 0
    G.nodes[len(count) - 1]["size"] = 0
    trace = {"ll_edges": raw_edges, "ll_adjacency_edges": int(np.sum(LL)),
             "il_picks": sorted(int(i) for i in il), "lo_picks": sorted(int(i) for i in lo)}
    return trace, G


def same_graph(a, b):
    return graph_nodes(a) == graph_nodes(b)


# ----------------------------------------------------------------------------------------------
# Statistics (the Rust test computes the same ones).

def graph_stats(G, trace, s, pcount):
    nodes = list(G.nodes())
    n = len(nodes)
    out = n - 1
    depth = {u: 0 for u in nodes}
    for u in nodes:
        for v in G.adj[u]:
            depth[v] = max(depth[v], depth[u] + 1)
    hidden_edges = [(u, v) for u, v in G.edges() if u != 0 and v != out]
    lengths = [v - u for u, v in trace["ll_edges"]]
    hidden_dil = [int(G[u][v]["dilation"]) for u, v in hidden_edges]
    hidden_ch = [int(G[u][v]["channels"]) for u, v in G.edges() if u != 0]
    return OrderedDict([
        ("nodes", n),
        ("edges", G.number_of_edges()),
        ("input_out_degree", G.out_degree(0)),
        ("output_in_degree", G.in_degree(out)),
        ("hidden_edges", len(hidden_edges)),
        ("depth", depth[out]),
        ("ll_raw_edges", len(trace["ll_edges"])),
        ("ll_kept_edges", trace["ll_adjacency_edges"]),
        ("raw_length_mean", float(np.mean(lengths)) if lengths else 0.0),
        ("raw_length_1", float(np.mean([x == 1 for x in lengths])) if lengths else 0.0),
        ("raw_length_2", float(np.mean([x == 2 for x in lengths])) if lengths else 0.0),
        ("raw_length_3plus", float(np.mean([x >= 3 for x in lengths])) if lengths else 0.0),
        ("hidden_dilation_mean", float(np.mean(hidden_dil)) if hidden_dil else 0.0),
        ("hidden_channels_mean", float(np.mean(hidden_ch)) if hidden_ch else 0.0),
        ("unsorted_order", float(nodes != sorted(nodes))),
        ("parameters", pcount),
    ])


def summary(n_seeds):
    out = OrderedDict()
    for name, s in SETTINGS.items():
        rows = []
        for seed in range(n_seeds):
            trace, G = traced_graph(seed, s)
            net = build_network(seed, s)
            assert same_graph(G, net.network_graph), (name, seed)
            rows.append(graph_stats(G, trace, s, helpers.count_parameters(net)))
        stats = OrderedDict()
        for key in rows[0]:
            x = np.array([r[key] for r in rows], dtype=float)
            stats[key] = {"mean": float(x.mean()), "sd": float(x.std(ddof=1))}
        out[name] = {"settings": settings_json(s), "seeds": n_seeds, "stats": stats}
        print(f"{name}: " + ", ".join(f"{k} {v['mean']:.3f}±{v['sd']:.3f}" for k, v in stats.items()))
    return out


def settings_json(s):
    return {k: v for k, v in s.items()}


# ----------------------------------------------------------------------------------------------
# Parameter counts for variants of a sampled network.

LAST_ACTIONS = {
    1: {"Linear": sms1d.Linear1D, "LinearSigmoid": sms1d.Linear1DSigmoid, "Identity": None},
    2: {"Linear": smsnet.Linear, "LinearSigmoid": smsnet.LinearSigmoid,
        "LinearBnRelu": smsnet.LinearReLU, "Identity": None},
    3: {"Linear": sms3d.Linear3D, "LinearSigmoid": sms3d.Linear3DSigmoid, "Identity": None},
}
NET_CLASS = {1: sms1d.SMSNet1D, 2: smsnet.SMSNet, 3: sms3d.SMSNet3D}


def parameter_counts(net, dims):
    topo = dict(net.topology_dict())
    counts = []
    for kernel in (3, 5):
        for name, fn in LAST_ACTIONS[dims].items():
            for out_ch in sorted({int(topo["out_channels"]), 3}):
                t = dict(topo, convolution_kernel_size=kernel, last_action=fn, out_channels=out_ch)
                other = NET_CLASS[dims](**t)
                counts.append({"kernel_size": kernel, "last_action": name, "out_channels": out_ch,
                               "count": helpers.count_parameters(other)})
    return counts


def write_graph_fixtures():
    d = os.path.join(FIXTURES, "graphs")
    os.makedirs(d, exist_ok=True)
    jobs = [
        ("default_2d_seed0", "default_2d", 0, {}),
        ("maxdeg4_node_2d_seed5", "maxdeg4_2d", 5, {}),
        ("dense_2d_seed1", "dense_2d", 1, {}),
        ("fraction_3d_seed3", "fraction_3d", 3, {}),
        ("w4_ensemble_2d_seed2", "ensemble_2d", 2, {}),
        ("sizing_2d_seed4", "maxdeg4_2d", 4,
         {"in_shape": (64, 64), "out_shape": (32, 32),
          "sizing": {"stride_base": 2, "min_power": -2, "max_power": 1}}),
        ("default_1d_seed6", "default_2d", 6, {"dims": 1}),
    ]
    unsorted_found = False
    for fname, setting, seed, extra in jobs:
        s = dict(SETTINGS[setting])
        if "dims" in extra:
            s["dims"] = extra["dims"]
        net = build_network(seed, s, extra.get("in_shape"), extra.get("out_shape"), extra.get("sizing"))
        dims = s["dims"]
        nodes = list(net.network_graph.nodes())
        unsorted_found |= nodes != sorted(nodes)
        meta = OrderedDict([
            ("sampler", sampler_fn(dims).__name__), ("setting", setting), ("seed", seed),
            ("dims", dims), ("out_channels", s["out_channels"]),
            ("parameters", helpers.count_parameters(net)),
            ("parameter_counts", parameter_counts(net, dims)),
            ("action_order", [a[0] for a in net.action_list]),
            ("state_dict_shapes", [[k, list(v.shape)] for k, v in net.state_dict().items()]),
        ])
        if extra.get("sizing"):
            meta["sizing"] = extra["sizing"]
            meta["in_shape"] = list(extra["in_shape"])
            meta["out_shape"] = list(extra["out_shape"])
        with open(os.path.join(d, fname + ".json"), "w") as f:
            json.dump(graph_document(net, meta), f, indent=1)
        print(f"{fname}: {len(nodes)} nodes, order {nodes}, {helpers.count_parameters(net)} parameters")
    assert unsorted_found, "no fixture has an unsorted node order; pick other seeds"


def write_traces(n_per_setting=8):
    traces = []
    for name, s in SETTINGS.items():
        for seed in range(100, 100 + n_per_setting):
            trace, G = traced_graph(seed, s)
            net = build_network(seed, s)
            assert same_graph(G, net.network_graph), (name, seed)
            trace.update({"setting": name, "seed": seed, "layers": s["layers"],
                          "dense": s["layer_probabilities"]["LL_gamma"] is None,
                          "io": bool(s["layer_probabilities"]["IO"]), "nodes": graph_nodes(G)})
            traces.append(trace)
    with open(os.path.join(FIXTURES, "traces.json"), "w") as f:
        json.dump({"settings": {k: settings_json(v) for k, v in SETTINGS.items()}, "traces": traces}, f)
    print(f"traces.json: {len(traces)} traced samples, replay == random_*SMS_network for all")


def write_scaling_tables():
    out = []
    for size, base, lo, hi, k in [(64, 2, -1, 1, 3), (64, 2, -1, 1, 1), (37, 2, -3, 2, 3),
                                  (50, 3, -2, 1, 3), (64, 2, 0, 0, 3), (9, 2, -2, 0, 5)]:
        t = scale_up_down.scaling_table(size, base, lo, hi, k)
        entries = [[a, b, int(v[0]), None if v[1] is None else int(v[1])]
                   for a in t for b, v in t[a].items()]
        out.append({"input_size": size, "stride_base": base, "min_power": lo, "max_power": hi,
                    "kernel": k, "entries": entries})
    with open(os.path.join(FIXTURES, "scaling_tables.json"), "w") as f:
        json.dump(out, f)


def bench(n):
    """Times the original's graph sampling (the graph steps of random_SMS_network, without
    building torch modules) and, for context, the full random_SMS_network call, on the settings
    of benches/sample_graphs.rs; also the bounded ensemble loop (parameter counts only)."""
    import time
    torch.set_num_threads(1)

    def graph_only(seed, s):
        return traced_graph(seed, s)[1]

    def per_call(fn, reps):
        # Fastest of 5 batches: the least disturbed by other processes on a shared machine.
        batch = max(reps // 5, 1)
        best = float("inf")
        for b in range(5):
            t0 = time.perf_counter()
            for i in range(b * batch, (b + 1) * batch):
                fn(i)
            best = min(best, (time.perf_counter() - t0) / batch)
        return best

    w4 = SETTINGS["ensemble_2d"]
    d10 = SETTINGS["default_2d"]
    rows = [
        ("sample_graph/w4_16_layers (graph only)", per_call(lambda i: graph_only(i, w4), n)),
        ("sample_graph/default_10_layers (graph only)", per_call(lambda i: graph_only(i, d10), n)),
        ("random_SMS_network w4 (graph + torch modules)", per_call(lambda i: build_network(i, w4), max(n // 10, 5))),
    ]

    def bounded_ensemble(i):
        np.random.seed(i)
        nets = []
        while len(nets) < 5:   # construct_2dsms_ensembler's loop, counting parameters
            net = build_network_noseed(w4)
            c = helpers.count_parameters(net)
            if 40000 < c < 50000:
                nets.append(c)
        return nets
    rows.append(("ensemble/5_networks_40k_50k (construct_2dsms_ensembler loop)",
                 per_call(bounded_ensemble, max(n // 100, 3))))
    for name, t in rows:
        print(f"{name}: {t * 1e6:.1f} us")


def build_network_noseed(s):
    return smsnet.random_SMS_network(
        in_channels=s["in_channels"], out_channels=s["out_channels"], layers=s["layers"],
        dilation_choices=s["dilation_choices"], hidden_out_channels=s["hidden_out_channels"],
        layer_probabilities=s["layer_probabilities"], dilation_mode=s["dilation_mode"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=300, help="seeds per setting for summary_stats.json")
    ap.add_argument("--network", help="export the graph of a saved SMSNet file instead")
    ap.add_argument("--out", help="output JSON for --network")
    ap.add_argument("--bench", type=int, metavar="N", help="time N graph samples instead")
    args = ap.parse_args()
    if args.bench:
        bench(args.bench)
        return
    if args.network:
        export_saved_network(args.network, args.out or sys.stdout.fileno())
        return
    os.makedirs(FIXTURES, exist_ok=True)
    write_graph_fixtures()
    write_traces()
    write_scaling_tables()
    stats = summary(args.seeds)
    with open(os.path.join(FIXTURES, "summary_stats.json"), "w") as f:
        json.dump(stats, f, indent=1)


if __name__ == "__main__":
    main()
