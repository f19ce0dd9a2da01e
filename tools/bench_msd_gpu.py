#!/usr/bin/env python3
"""The PyTorch side of the GPU benchmark of issue 11 (`cargo xtask gpu-bench` runs it beside the
Rust side and prints one table).

Workload G1: the original's MixedScaleDenseNetwork(in 1, out 2, num_layers 100, layer_width 1,
max_dilation 10; defaults ReLU + BatchNorm2d), input 4x1x512x512, CrossEntropyLoss, Adam
(lr 1e-3). Measures the median training step (zero_grad + forward + loss + backward + step,
synchronised) and the peak memory the step allocates (torch.cuda.max_memory_allocated, reset
after the network, input and optimiser exist, so both sides count activations, gradients and
optimiser state, not the CUDA context). On the CPU (a dry run of the script's logic) the
"peak" is the process's peak RSS.

    python tools/bench_msd_gpu.py --device cuda:0 --json peer.json
    python tools/bench_msd_gpu.py --device cpu --tiny      # checks the script without a GPU

Prints one JSON object on stdout. Exits with status 2 and a message when the device is not
usable (for example --device cuda on a machine without a GPU); a step that runs out of memory
is reported as {"status": "oom"} rather than as a failure.
"""
import argparse
import json
import resource
import statistics
import sys
import time


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda:0", help="cuda, cuda:N or cpu (default cuda:0)")
    p.add_argument("--tiny", action="store_true",
                   help="depth 4 on 1x1x32x32: checks the script, measures nothing useful")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--json", help="also write the result here")
    return p.parse_args()


def fail(msg):
    print(f"bench_msd_gpu.py: {msg}", file=sys.stderr)
    sys.exit(2)


def main():
    args = parse()
    try:
        import torch
        from dlsia.core.networks import msdnet
    except ImportError as e:
        fail(f"needs torch and dlsia ({e}); use the peer venv (../shared/peer/README.md)")
    dev_name = args.device.strip().lower()
    if dev_name == "gpu":
        dev_name = "cuda"
    if dev_name.startswith("cuda"):
        if not torch.cuda.is_available():
            fail(f"--device {args.device}: no CUDA GPU is visible to torch "
                 f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
                 "run on a GPU machine, or use --device cpu --tiny for a dry run")
        try:
            device = torch.device(dev_name)
            torch.cuda.get_device_properties(device)
        except (RuntimeError, AssertionError) as e:
            fail(f"--device {args.device}: {e}")
    elif dev_name == "cpu":
        device = torch.device("cpu")
    else:
        fail(f"--device {args.device}: expected cpu, cuda or cuda:N")
    if args.reps < 1 or args.warmup < 0:
        fail("--reps must be at least 1 and --warmup at least 0")

    depth, shape = (4, (1, 1, 32, 32)) if args.tiny else (100, (4, 1, 512, 512))
    torch.manual_seed(0)
    net = msdnet.MixedScaleDenseNetwork(in_channels=1, out_channels=2, num_layers=depth,
                                        layer_width=1, max_dilation=10).to(device)
    x = torch.rand(*shape, device=device)
    target = torch.randint(0, 2, (shape[0],) + shape[2:], device=device)
    crit = torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    cuda = device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    def step():
        opt.zero_grad()
        loss = crit(net(x), target)
        loss.backward()
        opt.step()
        return loss.item()

    res = {
        "side": "pytorch",
        "workload": "G1-tiny" if args.tiny else "G1",
        "network": f"dlsia MixedScaleDenseNetwork depth {depth}, width 1, max dilation 10",
        "input": "x".join(map(str, shape)),
        "device": torch.cuda.get_device_name(device) if cuda else "cpu",
        "torch": torch.__version__,
        "params": sum(p.numel() for p in net.parameters()),
        "status": "ok",
    }
    if cuda:
        sync()
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    try:
        for i in range(args.warmup + args.reps):
            sync()
            t0 = time.perf_counter()
            loss = step()
            sync()
            if i >= args.warmup:
                times.append((time.perf_counter() - t0) * 1e3)
        res["loss"] = loss
    except RuntimeError as e:
        if "out of memory" not in str(e).lower():
            raise
        res["status"] = "oom"
        res["error"] = str(e)[:300]
    if times:
        res["train_step_ms"] = statistics.median(times)
        res["train_step_ms_all"] = times
    if cuda:
        res["peak_mib"] = (torch.cuda.max_memory_allocated(device) - base) / 2**20
        res["peak_what"] = "torch.cuda.max_memory_allocated during the steps, minus what was allocated before"
    else:
        res["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        res["peak_what"] = "peak RSS of the process (CPU dry run)"
    text = json.dumps(res)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
