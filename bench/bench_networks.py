#!/usr/bin/env python3
"""Benchmark: the real ImageNet architectures that ship in the onnx wheel, compiled to a chip.

Each network of onnx/backend/test/data/light gets seeded random weights in place of its
ConstantOfShape ones (bench_scale.randomized) and is compiled with the generic PDK and 64x64 tiles.
Recorded per network: weights, tiles, compile seconds and peak RSS (of the compiling process),
the partition (chip and host segments, nodes on the host), whether the chip's integer datapath and
RTL top were generated (and why not), the streams of its host link, and, for designs up to
--lint-tiles tiles, the seconds of `verilator --lint-only -Wall` on the chip top and whether it is
clean. Writes bench/results/networks.json (networks_smoke.json with --smoke: a small network with a
host segment (LRN) between two chip segments, seconds).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_scale import randomized, run_measured
from common import ROOT, parser, save

LIGHT = ("bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50", "shufflenet", "squeezenet",
         "vgg19", "zfnet512")


def alexnet_like(out: Path) -> tuple[Path, int]:
    """Conv-ReLU-LRN-MaxPool-Conv-ReLU-Gemm: AlexNet's pattern at 16x16, the smoke-test stand-in."""
    from onnx import helper

    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import save_model

    rng = np.random.default_rng(0)
    mk = helper.make_node
    nodes = [mk("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]), mk("Relu", ["a"], ["b"]),
             mk("LRN", ["b"], ["n"], size=3), mk("MaxPool", ["n"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             mk("Conv", ["p", "w2"], ["c"], pads=[1, 1, 1, 1]), mk("Relu", ["c"], ["d"]),
             mk("Flatten", ["d"], ["f"]), mk("Gemm", ["f", "w3"], ["y"], transB=1)]
    inits = [("w1", rng.normal(size=(8, 3, 3, 3))), ("w2", rng.normal(size=(16, 8, 3, 3))),
             ("w3", rng.normal(size=(10, 16 * 8 * 8)))]
    save_model(out, nodes, [("x", ["N", 3, 16, 16])], [("y", ["N", 10])], inits)
    return out, sum(a.size for _, a in inits)


def lint(out: Path) -> dict:
    tops = sorted((out / "rtl").glob("*_top.v"))
    files = [str(out / "rtl" / f) for f in (out / "rtl" / "files.f").read_text().split()]
    t0 = time.perf_counter()
    r = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", tops[0].stem, *files],
                       capture_output=True, text=True)
    return {"lint_s": time.perf_counter() - t0, "lint_clean": r.returncode == 0 and not r.stderr.strip(),
            "lint_first_line": (r.stderr.strip().splitlines() or [""])[0]}


def bench_network(tmp: Path, name: str, model: Path, weights: int, lint_tiles: int) -> dict:
    out = tmp / f"{name}_out"
    res = run_measured(tmp, "compile", model, "-o", out, "--max-tiles", "200000")
    m = json.loads((out / "manifest.json").read_text())
    segs = m["partition"]["segments"]
    host_ops = sorted({n.get("onnx_op", n["op"]) for n in m["partition"]["nodes"] if n["home"] == "host"})
    row = {"model": name, "weights": weights, "tiles": len(m["tiles"]), "compile_s": res["seconds"],
           "peak_rss_mb": res["peak_rss_mb"], "chip_segments": sum(s["kind"] == "chip" for s in segs),
           "host_segments": sum(s["kind"] == "host" for s in segs), "host_ops": host_ops,
           "rtl_datapath": m["rtl_datapath"]["generated"], "rtl_reason": m["rtl_datapath"].get("reason")}
    if row["rtl_datapath"]:
        prog = json.loads((out / "rtl" / "program.json").read_text())
        row["streams"] = sum(st["kind"] in ("send", "recv") for st in prog["steps"])
        if row["tiles"] <= lint_tiles:
            row.update(lint(out))
    lint_txt = (f"lint {row['lint_s']:.0f} s {'clean' if row['lint_clean'] else 'NOT CLEAN: ' + row['lint_first_line']}"
                if "lint_s" in row else "not linted" if row["rtl_datapath"] else "")
    print(f"[network] {name:13s} {weights / 1e6:6.1f} M weights, {row['tiles']:6d} tiles: {res['seconds']:6.1f} s, "
          f"peak {res['peak_rss_mb']:6.0f} MB; {row['chip_segments']} chip / {row['host_segments']} host segment(s)"
          f"{' (' + ', '.join(host_ops) + ' on the host)' if host_ops else ''}; chip top "
          + (f"with {row['streams']} streams, {lint_txt}" if row["rtl_datapath"] else f"NOT generated: {row['rtl_reason']}"))
    shutil.rmtree(out, ignore_errors=True)
    return row


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--models", default=",".join(LIGHT), help="light models to compile")
    ap.add_argument("--lint-tiles", type=int, default=6000,
                    help="lint the chip top of designs with at most this many tiles (ResNet-50's 12,478-tile top "
                         "takes about 3.5 min and 4.7 GB)")
    args = ap.parse_args()
    res = {"benchmark": "networks", "networks": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.smoke:
            path, w = alexnet_like(tmp / "alexnet_like.onnx")
            res["networks"].append(bench_network(tmp, "alexnet_like", path, w, args.lint_tiles))
        else:
            for name in args.models.split(","):
                path, w = randomized(name, tmp / f"{name}.onnx")
                res["networks"].append(bench_network(tmp, name, path, w, args.lint_tiles))
    done = sum(r["rtl_datapath"] for r in res["networks"])
    print(f"[summary] chip top generated for {done} of {len(res['networks'])} networks")
    print(f"-> {save('networks', res, args.smoke)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
