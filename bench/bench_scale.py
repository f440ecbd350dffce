#!/usr/bin/env python3
"""Benchmark: compiling and verifying ImageNet-sized networks on this machine.

The networks are the real architectures that ship in the onnx wheel (onnx/backend/test/data/light:
SqueezeNet 1.2 M weights, ResNet-50 25.6 M, VGG-19 143.7 M), their ConstantOfShape weights
folded and replaced by seeded random ones (He-scaled normal weights; BatchNorm and bias values
scaled by a seeded factor in [0.5, 1.5]). For each: compile seconds, peak RSS of the compiling
process, bytes written, netlist lines and lines per second, and seconds per million weights.
Then ResNet-50 is verified: every tile with the MNA engine at --jobs 2, and a 64-tile sample in
ngspice. And the bulk netlist formatter is timed against a per-device formatter (one dict and one
template line per device, the way the netlists were written before) on the same tiles.

Targets (2 cores, 24 GB): ResNet-50 <= 120 s and <= 4 GB; its seconds per million weights
<= 1.3x SqueezeNet's; VGG-19 completes at <= 8 GB; verify --engine mna of every ResNet-50 tile
<= 10 min; verify --sample 64 <= 5 min; >= 1 M device lines per second.
Writes bench/results/scale.json (scale_smoke.json with --smoke: a 3-layer network, seconds).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import ROOT, parser, save

sys.path.insert(0, str(ROOT))
LIGHT = None

#: the wrapper that runs one amsc command in a child process and reports its own peak RSS: the
#: high-water mark of its own memory map (VmHWM). Not ru_maxrss: Linux carries that across fork and
#: exec, so a child of a large benchmark process would report the parent's size.
MEASURE = """
import json, resource, sys, time
from compiler.cli import main
t0 = time.perf_counter()
code = main(sys.argv[2:])
try:
    hwm = next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM:"))
except (OSError, StopIteration):
    hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
json.dump({"code": code, "seconds": time.perf_counter() - t0, "peak_rss_mb": hwm / 1024}, open(sys.argv[1], "w"))
"""


def run_measured(tmp: Path, *args) -> dict:
    stats = tmp / "stats.json"
    r = subprocess.run([sys.executable, "-c", MEASURE, str(stats), *map(str, args)], cwd=ROOT,
                       capture_output=True, text=True)
    if r.returncode != 0 or not stats.is_file():
        raise SystemExit(f"amsc {' '.join(map(str, args))} failed: {r.stderr[-1500:]}")
    res = json.loads(stats.read_text())
    if res["code"] not in (0,):
        raise SystemExit(f"amsc {' '.join(map(str, args))} exited {res['code']}: {r.stderr[-1500:]}")
    return res


def randomized(name: str, out: Path, seed: int = 0) -> tuple[Path, int]:
    """The light model ``name`` with seeded random weights; returns (path, number of weights)."""
    import onnx
    from onnx import numpy_helper

    from compiler.frontend.fold import fold_constants

    src = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / f"light_{name}.onnx"
    model = fold_constants(onnx.load(src), str(src))
    rng = np.random.default_rng(seed)
    weights = 0
    for k, init in enumerate(model.graph.initializer):
        a = numpy_helper.to_array(init)
        if a.dtype != np.float32 or a.size <= 1:
            continue
        if a.ndim >= 2:      # conv / gemm weights: He-scaled normal
            fan_in = int(np.prod(a.shape[1:]))
            a = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=a.shape).astype(np.float32)
            weights += a.size
        else:                # BatchNorm parameters, biases: keep their sign, vary their size
            a = (a * rng.uniform(0.5, 1.5, a.shape)).astype(np.float32)
        model.graph.initializer[k].CopyFrom(numpy_helper.from_array(a, init.name))
    onnx.save(model, out)
    return out, weights


def tiny(out: Path) -> tuple[Path, int]:
    """Three conv layers and a Gemm: the smoke-test stand-in."""
    from onnx import helper

    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import save_model

    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("Conv", ["b", "w2"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["d"]),
             helper.make_node("Flatten", ["d"], ["f"]), helper.make_node("Gemm", ["f", "w3"], ["y"], transB=1)]
    inits = [("w1", rng.normal(size=(16, 3, 3, 3))), ("w2", rng.normal(size=(32, 16, 3, 3))),
             ("w3", rng.normal(size=(10, 32 * 8 * 8)))]
    save_model(out, nodes, [("x", ["N", 3, 8, 8])], [("y", ["N", 10])], inits)
    return out, sum(a.size for _, a in inits)


def tree_stats(out: Path) -> tuple[int, int]:
    """(bytes written, SPICE netlist lines)."""
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    lines = 0
    for p in (out / "spice").rglob("*.sp"):
        with open(p, "rb") as fh:
            lines += sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    return total, lines


def bench_compile(tmp: Path, name: str, model: Path, weights: int) -> dict:
    out = tmp / f"{name}_out"
    res = run_measured(tmp, "compile", model, "-o", out, "--max-tiles", "200000")
    m = json.loads((out / "manifest.json").read_text())
    size, lines = tree_stats(out)
    row = {"model": name, "weights": weights, "tiles": len(m["tiles"]), "compile_s": res["seconds"],
           "peak_rss_mb": res["peak_rss_mb"], "bytes_written": size, "netlist_lines": lines,
           "netlist_lines_per_s": lines / res["seconds"], "s_per_m_weights": res["seconds"] / (weights / 1e6),
           "rtl_datapath": m["rtl_datapath"]["generated"], "rtl_reason": m["rtl_datapath"].get("reason")}
    print(f"[compile] {name:10s} {weights / 1e6:7.2f} M weights, {row['tiles']:6d} tiles: {res['seconds']:7.1f} s, "
          f"peak {res['peak_rss_mb']:7.0f} MB, {size / 1e9:6.2f} GB written, {lines / 1e6:6.1f} M netlist lines "
          f"({row['netlist_lines_per_s'] / 1e6:.2f} M/s), {row['s_per_m_weights']:.2f} s per M weights")
    return row


def bench_verify(tmp: Path, out: Path, sample: int) -> dict:
    mna = run_measured(tmp, "verify", out, "--engine", "mna", "--jobs", "2", "--no-cache")
    smp = run_measured(tmp, "verify", out, "--sample", str(sample), "--jobs", "2", "--no-cache")
    n = len(json.loads((out / "manifest.json").read_text())["tiles"])
    print(f"[verify]  every tile ({n}) with --engine mna --jobs 2: {mna['seconds']:.1f} s (target <= 600)  "
          f"{'MET' if mna['seconds'] <= 600 else 'MISSED'}; --sample {sample} in ngspice: {smp['seconds']:.1f} s "
          f"(target <= 300)  {'MET' if smp['seconds'] <= 300 else 'MISSED'}")
    return {"tiles": n, "mna_all_s": mna["seconds"], "mna_peak_rss_mb": mna["peak_rss_mb"],
            "ngspice_sample": sample, "ngspice_sample_s": smp["seconds"]}


def bench_formatter(n_tiles: int) -> dict:
    """device_block against a per-device formatter (a dict per device, a template line each)."""
    import jinja2

    from compiler.backend.spice import device_block
    from compiler.pdk import load_pdk

    pdk = load_pdk("generic")
    rng = np.random.default_rng(1)
    tiles = [(pdk.g_min + rng.integers(0, pdk.levels, (64, 32)) * pdk.g_step,
              pdk.g_min + rng.integers(0, pdk.levels, (64, 32)) * pdk.g_step) for _ in range(n_tiles)]
    lines = n_tiles * 64 * 32 * 2
    t0 = time.perf_counter()
    bulk = [device_block(gp, gn, pdk, None, None) for gp, gn in tiles]
    t_bulk = time.perf_counter() - t0
    tmpl = jinja2.Environment(trim_blocks=True, lstrip_blocks=True).from_string(
        "{% for e in els %}\n{{ e.name }} {{ e.a }} {{ e.b }} {{ e.value }}\n{% endfor %}")
    t0 = time.perf_counter()
    per = []
    for gp, gn in tiles:
        els = []
        for i in range(64):
            for j in range(32):
                els.append({"name": f"RP_{i}_{j}", "a": f"wl_{i}", "b": f"blp_{j}", "value": f"{1.0 / gp[i, j]:.10g}"})
                els.append({"name": f"RN_{i}_{j}", "a": f"wl_{i}", "b": f"bln_{j}", "value": f"{1.0 / gn[i, j]:.10g}"})
        per.append(tmpl.render(els=els).rstrip("\n"))
    t_per = time.perf_counter() - t0
    assert bulk == per, "the bulk formatter's text differs from the per-device formatter's"
    print(f"[format]  {lines / 1e6:.1f} M device lines: bulk {lines / t_bulk / 1e6:.2f} M lines/s, per-device "
          f"{lines / t_per / 1e6:.2f} M lines/s -> x{t_per / t_bulk:.1f} (target >= 1 M lines/s)  "
          f"{'MET' if lines / t_bulk >= 1e6 else 'MISSED'}; identical text")
    return {"device_lines": lines, "bulk_lines_per_s": lines / t_bulk, "per_device_lines_per_s": lines / t_per,
            "speedup": t_per / t_bulk}


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--models", default="squeezenet,resnet50,vgg19", help="light models to compile")
    ap.add_argument("--sample", type=int, default=64, help="tiles of the ngspice sample")
    args = ap.parse_args()
    res = {"benchmark": "scale", "compile": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        res["format"] = bench_formatter(8 if args.smoke else 400)
        if args.smoke:
            path, w = tiny(tmp / "tiny.onnx")
            res["compile"].append(bench_compile(tmp, "tiny", path, w))
            res["verify"] = bench_verify(tmp, tmp / "tiny_out", 2)
        else:
            for name in args.models.split(","):
                path, w = randomized(name, tmp / f"{name}.onnx")
                res["compile"].append(bench_compile(tmp, name, path, w))
                if name == "resnet50":
                    res["verify"] = bench_verify(tmp, tmp / f"{name}_out", args.sample)
                import shutil

                shutil.rmtree(tmp / f"{name}_out", ignore_errors=True)
            rows = {r["model"]: r for r in res["compile"]}
            if "squeezenet" in rows and "resnet50" in rows:
                g = rows["resnet50"]["s_per_m_weights"] / rows["squeezenet"]["s_per_m_weights"]
                res["growth_resnet50_over_squeezenet"] = g
                print(f"[growth]  s per M weights, ResNet-50 / SqueezeNet: x{g:.2f} (target <= 1.3)  "
                      f"{'MET' if g <= 1.3 else 'MISSED'}")
            if "resnet50" in rows:
                r = rows["resnet50"]
                print(f"[target]  ResNet-50: {r['compile_s']:.0f} s (<= 120: {'MET' if r['compile_s'] <= 120 else 'MISSED'}),"
                      f" {r['peak_rss_mb']:.0f} MB (<= 4096: {'MET' if r['peak_rss_mb'] <= 4096 else 'MISSED'})")
            if "vgg19" in rows:
                r = rows["vgg19"]
                print(f"[target]  VGG-19: {r['peak_rss_mb']:.0f} MB (<= 8192: "
                      f"{'MET' if r['peak_rss_mb'] <= 8192 else 'MISSED'}), {r['compile_s']:.0f} s, "
                      f"{r['bytes_written'] / 1e9:.1f} GB")
    print(f"-> {save('scale', res, args.smoke)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
