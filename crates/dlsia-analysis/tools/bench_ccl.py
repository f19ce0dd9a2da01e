"""Connected components on a 512^3 multilabel volume: dlsia-analysis vs cc3d, same machine, same run.

Usage (from the repository root, after `cargo build --release -p dlsia-analysis --example ccl_bench`):

    $PEER_VENV/bin/python crates/dlsia-analysis/tools/bench_ccl.py [--size 512] [--rounds 3] [--repeats 2]

Volumes (seeded, uint8, written to a temporary directory):
  * structured: white noise smoothed with a Gaussian (sigma 2 voxels) and cut at its quartiles
    into values 0..3 (value 0, a quarter of the voxels, is background): blobs a few voxels
    across, three foreground labels, many components.
  * noise: independent uniform values 0..3 per voxel (pure white noise, the worst case).

Each measurement runs in a fresh process (so peak RSS is that process's own, taken before any
parity-check copy): cc3d single-threaded (it has no threads) with out_dtype=uint32, then the Rust
example with 1 and 2 threads, alternated for --rounds rounds; the table gives medians over
rounds, and the speed ratio is the median of per-round ratios. The Rust runs also check that
their labels are identical to cc3d's.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

CC3D_RUNNER = r"""
import sys, time, json, resource
import numpy as np, cc3d
path, n, repeats, conn, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
vol = np.fromfile(path, dtype=np.uint8).reshape(n, n, n)
times, cpu = [], []
for _ in range(repeats):
    labels = None
    t, c = time.perf_counter(), time.process_time()
    labels, N = cc3d.connected_components(vol, connectivity=conn, out_dtype=np.uint32, return_N=True)
    times.append(time.perf_counter() - t)
    cpu.append(time.process_time() - c)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the parity copy below
labels.astype('<u4').tofile(out)
times.sort()
cpu.sort()
print(json.dumps({"median_s": times[len(times)//2], "best_s": times[0], "median_cpu_s": cpu[len(cpu)//2],
                  "mvox_per_s": vol.size / times[len(times)//2] / 1e6, "n_components": int(N),
                  "peak_rss_mib": peak}))
"""


def make_volumes(n, seed):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    noise = rng.random((n, n, n), dtype=np.float32)
    smooth = gaussian_filter(noise, sigma=2.0)
    q = np.quantile(smooth[:: max(1, n // 64)], [0.25, 0.5, 0.75])
    structured = np.digitize(smooth, q).astype(np.uint8)
    del smooth
    white = rng.integers(0, 4, size=(n, n, n), dtype=np.uint8)
    return {"structured": structured, "noise": white}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=2, help="timed runs inside each process (median)")
    ap.add_argument("--rounds", type=int, default=3, help="fresh processes per implementation, alternated")
    ap.add_argument("--connectivity", type=int, default=26)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--bench-bin",
        default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release/examples/ccl_bench"),
    )
    args = ap.parse_args()
    n = args.size
    print(f"load before: {os.getloadavg()}", file=sys.stderr)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, vol in make_volumes(n, args.seed).items():
            path = os.path.join(tmp, f"{name}.u8")
            vol.tofile(path)
            del vol
            expected = os.path.join(tmp, f"{name}.cc3d.u32")
            runs = {"cc3d": [], "rust_1t": [], "rust_2t": []}
            # Rounds alternate the implementations so that load drift hits all of them alike.
            for _ in range(args.rounds):
                r = subprocess.run(
                    [sys.executable, "-c", CC3D_RUNNER, path, str(n), str(args.repeats), str(args.connectivity), expected],
                    check=True, capture_output=True, text=True,
                )
                runs["cc3d"].append(json.loads(r.stdout))
                for threads in (1, 2):
                    r = subprocess.run(
                        [args.bench_bin, path, str(n), str(n), str(n), str(threads), str(args.repeats),
                         str(args.connectivity), expected],
                        check=True, capture_output=True, text=True,
                    )
                    runs[f"rust_{threads}t"].append(json.loads(r.stdout))
            os.remove(expected)
            row = {}
            for key, xs in runs.items():
                med = lambda k: sorted(x[k] for x in xs)[len(xs) // 2]
                row[key] = {k: med(k) for k in ("median_s", "median_cpu_s", "mvox_per_s", "peak_rss_mib")}
                row[key]["n_components"] = xs[0]["n_components"]
                if key != "cc3d":
                    row[key]["identical_to_expected"] = all(x["identical_to_expected"] for x in xs)
                    ratios = sorted(c["median_s"] / x["median_s"] for c, x in zip(runs["cc3d"], xs))
                    row[key]["speed_vs_cc3d"] = ratios[len(ratios) // 2]
                else:
                    row[key]["speed_vs_cc3d"] = 1.0
            results[name] = row
            print(name, json.dumps(runs, indent=1), file=sys.stderr)
    print(f"load after: {os.getloadavg()}", file=sys.stderr)
    print("| volume | impl | threads | median wall s | MVx/s (wall) | speed vs cc3d (wall) | median CPU s | components | peak RSS MiB | labels identical to cc3d |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, row in results.items():
        for key, label, threads in (("cc3d", "cc3d 4.1.1", 1), ("rust_1t", "dlsia-analysis", 1), ("rust_2t", "dlsia-analysis", 2)):
            x = row[key]
            ident = x.get("identical_to_expected", "")
            print(f"| {name} | {label} | {threads} | {x['median_s']:.3f} | {x['mvox_per_s']:.0f} | "
                  f"{x['speed_vs_cc3d']:.2f}x | {x['median_cpu_s']:.3f} | {x['n_components']} | "
                  f"{x['peak_rss_mib']:.0f} | {ident} |")


if __name__ == "__main__":
    main()
