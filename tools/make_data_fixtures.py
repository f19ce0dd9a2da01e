"""Fixtures for dlsia-data's tests, written by the Python tools the original relies on.

Run with the peer venv (numpy, scikit-image, tifffile, dlsia 0.3.4):

    $PEER_VENV/bin/python tools/make_data_fixtures.py

Writes small files to crates/dlsia-data/tests/fixtures/:
  * shapes_skimage.npy   - dlsia's Rectangle/Circle/Triangle/Donut canvases rotated by
                           skimage.transform.rotate for fixed parameters (see SHAPES below)
  * be_int16.npy, fortran_f32.npy, bool.npy - valid .npy variants numpy writes
  * tifffile_u16.tif, tifffile_f32.tif, tifffile_i8.tif - stacks written by tifffile
  * corrupt files: truncated.npy, bad_magic.npy, structured.npy, object.npy,
    truncated.tif, garbage.tif, rgb.tif, mismatched_pages.tif
"""
import os

import numpy as np
import skimage.transform
import tifffile
from dlsia.test_data.two_d import random_shapes as rs

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "dlsia-data", "tests", "fixtures")
os.makedirs(OUT, exist_ok=True)

# (kind, parameters, angle in degrees); n = 64. Keep in sync with tests/fixtures_parity.rs.
SHAPES = [
    ("circle", (0.3,), 0.0),
    ("rectangle", (0.15, 0.35), 33.3),
    ("triangle", (0.25,), 127.5),
    ("donut", (0.35, 0.175), 250.0),
    ("rectangle", (0.12, 0.31), 301.7),
]


def shape(kind, p):
    if kind == "circle":
        return rs.Circle(p[0], 64)
    if kind == "rectangle":
        return rs.Rectangle(p[0], p[1], 64)
    if kind == "triangle":
        return rs.Triangle(p[0], 64)
    return rs.Donut(p[0], p[1], 64)


imgs = [skimage.transform.rotate(shape(k, p).canvas, a) for k, p, a in SHAPES]
np.save(os.path.join(OUT, "shapes_skimage.npy"), np.stack(imgs).astype(np.float64))

a = (np.arange(12, dtype=np.int16) - 6).reshape(3, 4) * 1000
np.save(os.path.join(OUT, "be_int16.npy"), a.astype(">i2"))
f = np.asfortranarray(np.arange(60, dtype=np.float32).reshape(3, 4, 5) / 7)
np.save(os.path.join(OUT, "fortran_f32.npy"), f)
np.save(os.path.join(OUT, "bool.npy"), np.array([[True, False], [False, True]]))

rng = np.random.default_rng(0)
u16 = rng.integers(0, 65535, size=(3, 5, 7), dtype=np.uint16)
tifffile.imwrite(os.path.join(OUT, "tifffile_u16.tif"), u16, photometric="minisblack")
np.save(os.path.join(OUT, "tifffile_u16_expected.npy"), u16)
f32 = rng.standard_normal((2, 4, 6)).astype(np.float32)
tifffile.imwrite(os.path.join(OUT, "tifffile_f32.tif"), f32, photometric="minisblack")
np.save(os.path.join(OUT, "tifffile_f32_expected.npy"), f32)
i8 = rng.integers(-128, 127, size=(4, 3), dtype=np.int8)
tifffile.imwrite(os.path.join(OUT, "tifffile_i8.tif"), i8, photometric="minisblack")
np.save(os.path.join(OUT, "tifffile_i8_expected.npy"), i8)

# Corrupt and unsupported files.
full = open(os.path.join(OUT, "tifffile_u16_expected.npy"), "rb").read()
open(os.path.join(OUT, "truncated.npy"), "wb").write(full[: len(full) - 50])
open(os.path.join(OUT, "bad_magic.npy"), "wb").write(b"NOTNUMPY" + full[8:])
np.save(os.path.join(OUT, "structured.npy"), np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")]))
np.save(os.path.join(OUT, "object.npy"), np.array([1, "x"], dtype=object), allow_pickle=True)
tif = open(os.path.join(OUT, "tifffile_u16.tif"), "rb").read()
open(os.path.join(OUT, "truncated.tif"), "wb").write(tif[: len(tif) // 2])
open(os.path.join(OUT, "garbage.tif"), "wb").write(b"II*\x00" + rng.integers(0, 255, 200, dtype=np.uint8).tobytes())
tifffile.imwrite(os.path.join(OUT, "rgb.tif"), rng.integers(0, 255, size=(4, 5, 3), dtype=np.uint8), photometric="rgb")
with tifffile.TiffWriter(os.path.join(OUT, "mismatched_pages.tif")) as t:
    t.write(np.zeros((4, 4), np.uint16))
    t.write(np.zeros((5, 4), np.uint16))
print("fixtures written to", os.path.abspath(OUT))
