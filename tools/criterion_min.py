"""Min and median time per iteration of criterion benchmarks, from target/criterion/*/new/sample.json.

    python3 tools/criterion_min.py $CARGO_TARGET_DIR/criterion [group-prefix]
"""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1])
prefix = sys.argv[2] if len(sys.argv) > 2 else ""
for f in sorted(root.glob("**/new/sample.json")):
    name = str(f.parent.parent.relative_to(root))
    if not name.startswith(prefix):
        continue
    d = json.loads(f.read_text())
    per = sorted(t / i for t, i in zip(d["times"], d["iters"]))
    print(f"{name:60s} {per[0] / 1e6:9.2f} / {per[len(per) // 2] / 1e6:9.2f} ms")
