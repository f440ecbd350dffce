#!/usr/bin/env python3
"""Benchmark: the feature maps' gate model against yosys.

`amsc report` synthesizes the chip with its feature maps kept as memories and counts each map's
flip-flops, read trees and write decoders from compiler/eval/ppa.REGISTER_FILE_GATES (per bit:
a * read ports + b * write ports + c gates of each type), because mapping a map of hundreds of
thousands of words is what made synthesis slow and, at ImageNet scale, run out of memory. This
synthesizes memories alone in yosys (``ppa.synthesize_memory``: ``memory_map``, ``abc -g``), fits
the coefficients again by least squares on the eight shapes they were fitted to, and compares the
model's area (sky130_fd_sc_hd cells, as the report counts them) with yosys's on those and on
shapes the fit did not see. Target: every shape within 5 %.
Writes bench/results/memory_model.json (memory_model_smoke.json with --smoke: two small shapes).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import ROOT, parser, save

sys.path.insert(0, str(ROOT))

#: (words, width, read ports, write ports): the shapes REGISTER_FILE_GATES was fitted to
FIT = [(128, 8, 2, 1), (512, 8, 4, 4), (256, 8, 4, 4), (10, 16, 1, 4), (64, 8, 1, 1), (1024, 8, 1, 1),
       (1024, 8, 4, 1), (300, 9, 3, 2)]
#: shapes it did not see
HELD_OUT = [(200, 8, 2, 2), (2048, 8, 1, 1), (96, 9, 3, 1), (16, 16, 1, 8)]


def main() -> None:
    args = parser(__doc__).parse_args()
    from compiler.eval.ppa import (REGISTER_FILE_GATES, gate_areas_um2, lef_areas, register_file_gates,
                                   synthesize_memory)
    from compiler.pdk import load_pdk

    areas = lef_areas(load_pdk("generic").ppa["digital"]["cells"])

    def area(gates):
        return sum(gate_areas_um2(gates, areas).values())

    fit, held = ([(64, 8, 1, 1)], [(96, 9, 3, 1)]) if args.smoke else (FIT, HELD_OUT)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, shapes in (("fit", fit), ("held_out", held)):
            for words, width, rd, wr in shapes:
                t0 = time.perf_counter()
                got = synthesize_memory(words, width, rd, wr, Path(tmp))
                rows.append({"shape": [words, width, rd, wr], "set": kind, "yosys_gates": got,
                             "yosys_s": time.perf_counter() - t0, "yosys_area_um2": area(got),
                             "model_area_um2": area(register_file_gates(words, width, rd, wr))})
                r = rows[-1]
                r["rel_err"] = r["model_area_um2"] / r["yosys_area_um2"] - 1
                print(f"{kind:9s} {words:5d} x {width:2d}, {rd} read / {wr} write: yosys {r['yosys_area_um2']:10.0f} um^2, "
                      f"model {r['model_area_um2']:10.0f} ({100 * r['rel_err']:+.1f} %)", flush=True)
    # the fit again, gate type by gate type, from the shapes of the fit set
    refit = {}
    fitted = [r for r in rows if r["set"] == "fit"]
    x = np.array([[r["shape"][2], r["shape"][3], 1.0] for r in fitted])
    for g in REGISTER_FILE_GATES:
        if g == "$_DFFE_PP_":
            continue
        y = np.array([r["yosys_gates"].get(g, 0) / (r["shape"][0] * r["shape"][1]) for r in fitted])
        refit[g] = np.linalg.lstsq(x, y, rcond=None)[0].round(3).tolist() if len(fitted) >= 3 else None
    worst = max(abs(r["rel_err"]) for r in rows)
    print(f"worst {100 * worst:.1f} % (target 5 %); refit {refit}")
    save("memory_model", {"rows": rows, "worst_rel_err": worst, "target": 0.05, "refit": refit,
                          "model": REGISTER_FILE_GATES}, args.smoke)


if __name__ == "__main__":
    main()
