#!/usr/bin/env python3
"""Benchmark: total Manhattan wirelength of the annealed placement against naive row-major
placement (in schedule order), for every bundled design at several tile sizes. Both come from the
same compile, so the ratio is measured in one run. Writes bench/results/place.json."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, amsc, parser, save

TILES = ("64x64", "32x32", "16x16")


def main() -> int:
    args = parser(__doc__).parse_args()
    models = sorted(ROOT.glob("designs/*/model.onnx"))
    tiles = TILES
    if args.smoke:
        models, tiles = [ROOT / "designs" / "mlp_digits" / "model.onnx"], TILES[:1]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            for tile in tiles:
                out = Path(tmp) / f"{model.parent.name}-{tile}"
                t0 = time.perf_counter()
                amsc("compile", model, "-o", out, "--tile", tile)
                secs = time.perf_counter() - t0
                m = json.loads((out / "manifest.json").read_text())
                p = m["placement"]
                ratio = p["wirelength"] / p["baseline_wirelength"] if p["baseline_wirelength"] else 1.0
                rows.append({"design": model.parent.name, "tile": tile, "tiles": len(m["tiles"]),
                             "grid": p["grid"], "annealed": p["wirelength"], "row_major": p["baseline_wirelength"],
                             "ratio": ratio, "compile_s": secs})
                print(f"{model.parent.name:12s} tile {tile:6s} {len(m['tiles']):4d} tiles  wirelength annealed "
                      f"{p['wirelength']:7.1f}  row-major {p['baseline_wirelength']:7.1f}  -> x{ratio:.2f}  "
                      f"(compile {secs:.1f} s)")
    print(f"-> {save('place', {'benchmark': 'place', 'rows': rows}, args.smoke)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
