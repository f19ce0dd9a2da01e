"""Writes the cc3d parity fixtures of dlsia-analysis (tests/fixtures/cc3d_*).

    $PEER_VENV/bin/python crates/dlsia-analysis/tools/make_ccl_fixtures.py

cc3d (connected-components-3d, the package DLSIA's workflows use) labels a seeded random
multilabel volume (20x18x16, values 0..3, 40 % background) with 6/18/26-connectivity and a
seeded 2D image (40x36) with 4/8-connectivity; it also dusts (threshold 4, 26-connected),
keeps the largest 5 components, and reports statistics. Everything is written as raw
little-endian arrays described by cc3d_manifest.json.
"""
import json
import os

import cc3d
import numpy as np

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")


def random_labels(rng, shape):
    v = rng.integers(1, 4, size=shape, dtype=np.uint8)
    v[rng.random(shape) < 0.4] = 0
    return v


def main():
    os.makedirs(HERE, exist_ok=True)
    rng = np.random.default_rng(2024)
    manifest = {"cc3d_version": getattr(cc3d, "__version__", "4.1.1"), "arrays": {}}

    def save(name, arr, dtype):
        arr = np.ascontiguousarray(arr.astype(dtype))
        arr.tofile(os.path.join(HERE, f"cc3d_{name}.bin"))
        manifest["arrays"][name] = {"dtype": np.dtype(dtype).str, "shape": list(arr.shape)}

    vol = random_labels(rng, (20, 18, 16))
    save("volume", vol, "<u1")
    for conn in (6, 18, 26):
        save(f"volume_c{conn}", cc3d.connected_components(vol, connectivity=conn, out_dtype=np.uint32), "<u4")
    img = random_labels(rng, (40, 36))
    save("image", img, "<u1")
    for conn in (4, 8):
        save(f"image_c{conn}", cc3d.connected_components(img, connectivity=conn, out_dtype=np.uint32), "<u4")
    save("volume_dust4_c26", cc3d.dust(vol, threshold=4, connectivity=26), "<u1")
    save("volume_largest5_c26", cc3d.largest_k(vol, k=5, connectivity=26) > 0, "<u1")
    labels26 = cc3d.connected_components(vol, connectivity=26, out_dtype=np.uint32)
    stats = cc3d.statistics(labels26)
    save("stats_voxel_counts", stats["voxel_counts"], "<u8")
    save("stats_centroids", stats["centroids"], "<f8")
    with open(os.path.join(HERE, "cc3d_manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
