#!/usr/bin/env python3
"""Benchmark: variability remedies on an ImageNet-scale network.

SqueezeNet 1.1 from the onnx wheel (onnx/backend/test/data/light) with seeded random weights
(bench_scale.randomized) is compiled on sky130_1t1r (its cited stuck-at rates, programming sigma
and read noise) and `amsc evaluate --mc K` runs K Monte-Carlo chips on a few random 224x224
images. Recorded per programming mode (write-verified, one-shot) and remedy (none: where the
compiler put the weights; mapping: placed around each chip's stuck cells; calibration: then each
column's gain and offset absorbed by the requantizer): the output SNR against float (the random
network's classes mean nothing, its output vector does), next to the ideal chip's own SNR (4-bit
weights, 8-bit ADCs). Also the evaluate time. Writes bench/results/variability.json
(variability_smoke.json with --smoke: a three-layer stand-in, two chips, seconds).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_scale import randomized, tiny
from common import amsc, parser, save


def main() -> int:
    args = parser(__doc__).parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.smoke:
            model, weights = tiny(tmp / "tiny.onnx")
            shape, images, chips, name = (3, 8, 8), 4, 2, "tiny"
        else:
            model, weights = randomized("squeezenet", tmp / "squeezenet.onnx")
            shape, images, chips, name = (3, 224, 224), 4, 4, "squeezenet"
        out = tmp / "out"
        t0 = time.perf_counter()
        amsc("compile", model, "-o", out, "--pdk", "sky130_1t1r", "--max-tiles", "20000")
        t_compile = time.perf_counter() - t0
        x = tmp / "x.npy"
        np.save(x, np.random.default_rng(0).random((images, *shape)).astype(np.float32))
        t0 = time.perf_counter()
        amsc("evaluate", out, "--inputs", x, "--mc", str(chips), "--seed", "1")
        t_eval = time.perf_counter() - t0
        rep = json.loads((out / "eval.json").read_text())
        tiles = len(json.loads((out / "manifest.json").read_text())["tiles"])
    mc = rep["mc"]
    res = {"model": name, "weights": weights, "tiles": tiles, "images": images, "chips": chips,
           "compile_s": t_compile, "evaluate_s": t_eval, "ideal_snr_db": rep["ideal"]["snr_db"],
           "device": mc["device"], "snr_db": {mode: {r: v["snr_db"] for r, v in abl.items()}
                                              for mode, abl in mc["remedies"]["ablation"].items()}}
    print(f"{name}: {weights / 1e6:.2f} M weights on {tiles} tiles, {chips} chips x {images} images; ideal chip "
          f"{res['ideal_snr_db']:.1f} dB against float (compile {t_compile:.0f} s, evaluate {t_eval:.0f} s)")
    for mode, per in res["snr_db"].items():
        print(f"  {mode.replace('_', '-'):13s} " + ", ".join(f"{r} {per[r]:5.1f} dB" for r in mc["remedies"]["applied"]))
    print(f"-> {save('variability', res, args.smoke)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
