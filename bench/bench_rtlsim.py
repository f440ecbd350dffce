#!/usr/bin/env python3
"""Benchmark: RTL simulation at ImageNet scale (issue 21, item 5). `amsc rtl-sim` with the defaults
(`--simulator auto`, `--scan auto`) on
- SqueezeNet 1.1 from the onnx wheel with seeded random weights (bench_scale.randomized), one random
  224x224 image: 635 tiles, 1e7 scan bits (preloaded), about 4e6 clocks an image at 4 lanes;
- the PyTorch-exported MobileNetV3-small of the test corpus (tests/data/exported, 64x64 input,
  width 0.25, scripts/export_corpus.py): 417 tiles, 1.2e6 scan bits, two random images;
and, as the baseline of this run, the same MobileNetV3-small with its 1.2e6 scan bits shifted through
the chain (`--scan chain`). Records per design: bit-exactness, the simulator, build and run seconds,
scan bits and how they were loaded, clocks an image (measured, and the compiler's count) and
simulated clocks per second of the run. Writes bench/results/rtlsim.json (rtlsim_smoke.json with
--smoke: mlp_digits in Icarus, chain and preload, two images).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_scale import randomized
from common import ROOT, amsc, parser, save


def run(model: Path, out: Path, x: Path, compile_args: list, sim_args: list) -> dict:
    """Compile ``model`` and stream ``x`` through its RTL: the rtl_sim.json figures and the seconds."""
    t0 = time.perf_counter()
    amsc("compile", model, "-o", out, *compile_args)
    t_c = time.perf_counter() - t0
    r = amsc("rtl-sim", out, "--inputs", x, "--timeout", "7200", *sim_args, check=False)
    if r.returncode not in (0, 1):
        raise SystemExit(f"rtl-sim {out} failed: {r.stderr.strip()}")
    rep = json.loads((out / "rtl_sim.json").read_text())
    clocks = rep["images"] * rep["cycles_per_input"] + (rep["scan_bits"] if rep["scan"] == "chain" else 0)
    row = {k: rep[k] for k in ("bit_exact", "images", "simulator", "build_seconds", "run_seconds", "scan", "scan_bits",
                               "cycles_per_input", "cycles_per_input_predicted", "cycles_rel_err")}
    row.update(compile_seconds=t_c, clocks_simulated=clocks, clocks_per_second=clocks / rep["run_seconds"],
               tiles=len(json.loads((out / "manifest.json").read_text())["tiles"]))
    print(f"{out.name:16s}: {'bit-exact' if row['bit_exact'] else 'MISMATCH'}, {row['simulator']} build "
          f"{row['build_seconds']:.0f} s, run {row['run_seconds']:.0f} s ({row['images']} image(s), "
          f"{row['cycles_per_input']:.0f} clocks each, {row['scan_bits']} scan bits {row['scan']}, "
          f"{row['clocks_per_second']:.0f} clocks/s)")
    return row


def main() -> int:
    args = parser(__doc__).parse_args()
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.smoke:
            subprocess.run([sys.executable, ROOT / "designs" / "digits_testset.py", tmp / "digits"], check=True,
                           capture_output=True)
            model = ROOT / "designs" / "mlp_digits" / "model.onnx"
            for scan in ("chain", "preload"):
                res[f"mlp_digits_{scan}"] = run(model, tmp / f"mlp_{scan}", tmp / "digits" / "x.npy", [],
                                                ["--limit", "2", "--simulator", "icarus", "--scan", scan])
        else:
            rng = np.random.default_rng(0)
            mb = ROOT / "tests" / "data" / "exported" / "mobilenet_v3_small.onnx"
            np.save(tmp / "mb.npy", rng.random((2, 3, 64, 64)).astype(np.float32))
            res["mobilenet_v3_small"] = run(mb, tmp / "mobilenet_v3_small", tmp / "mb.npy", ["--max-tiles", "20000"], [])
            res["mobilenet_v3_small_chain"] = run(mb, tmp / "mobilenet_v3_small_chain", tmp / "mb.npy",
                                                  ["--max-tiles", "20000"], ["--scan", "chain"])
            sq, _ = randomized("squeezenet", tmp / "squeezenet.onnx")
            np.save(tmp / "sq.npy", rng.random((1, 3, 224, 224)).astype(np.float32))
            res["squeezenet"] = run(sq, tmp / "squeezenet", tmp / "sq.npy", ["--max-tiles", "20000"], [])
    path = save("rtlsim", res, args.smoke)
    print(f"-> {path}")
    return 0 if all(r["bit_exact"] for r in res.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
