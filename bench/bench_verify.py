#!/usr/bin/env python3
"""Benchmarks of `amsc verify`. Every baseline is measured in this run; the output is ratios.

1. One 128x128 tile with the 1-ohm wire mesh, 64 input vectors:
   amsc's ngspice path (one DC sweep, KLU) against
   (a) naive: one `ngspice -b` process per vector with the default Sparse solver (measured on
       --naive-vectors vectors, 1 by default since each takes about a minute, and scaled to 64),
   (b) scipy.sparse direct solves of the same circuit: (b1) `spsolve` per vector, and
       (b2) one LU factorization reused for all vectors (the --engine mna path).
   Targets: >= 50x faster than (a), <= 5x the time of (b).
2. Scaling: seconds per vector for tiles of 32..256, ideal and with the mesh, and the fitted
   exponent of time against cell count.
3. Parallel speed-up of verifying every tile of designs/mlp_digits (32x32 tiles, mesh, 1024
   vectors, so that simulation outweighs process start-up) at --jobs 2 against --jobs 1.
   Target >= 1.6x.
4. Whole-design verify time of every bundled design, cold and warm cache.
5. Per-vector cost of a 128x128 mesh tile at 1024 vectors: the ngspice path as 'amsc verify' plans it
   (transfer matrix of the linear tile, then superposition) against one scipy LU for all vectors.
   Target: within 3x.
Writes bench/results/verify_*.json.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import ROOT, amsc, compile_tile, parser, save

sys.path.insert(0, str(ROOT))
from compiler.sim.mna import assemble  # noqa: E402
from compiler.verify.golden import dac_vectors  # noqa: E402
from compiler.verify.run import block_spec, verify_block  # noqa: E402

VECTORS = 64


def spec_for(out: Path, vectors: int, engine: str) -> dict:
    """The verifier's own block spec of the tile (the same builder 'amsc verify' uses)."""
    man = json.loads((out / "manifest.json").read_text())
    return block_spec(out, man, man["tiles"][0], 0, vectors, 0, 1e9, engine)


def timed(fn, *a, **kw):
    t0 = time.perf_counter()
    r = fn(*a, **kw)
    return time.perf_counter() - t0, r


def bench_tile(tmp: Path, naive_vectors: int, n: int = 128) -> dict:
    out = compile_tile(n, tmp / f"t{n}", parasitics=True)
    spec = spec_for(out, VECTORS, "ngspice")
    t_amsc, res = timed(verify_block, spec)
    # (a) naive: one ngspice -b per vector, default solver, the DC values written into the deck
    v = dac_vectors(VECTORS, n, spec["dac_bits"], spec["v_read"], 0, 0)
    naive = []
    for k in range(naive_vectors):
        deck = re.sub(r"^(VIN_(\d+) in_\d+ 0 DC) 0$", lambda m, k=k: f"{m.group(1)} {float(v[k, int(m.group(2))])!r}",
                      spec["deck"].replace(".options klu ", ".options "), flags=re.M)
        p = tmp / f"naive{k}.sp"
        p.write_text(deck)
        t, r = timed(subprocess.run, ["ngspice", "-b", str(p)], capture_output=True, text=True)
        if "out_0" not in r.stdout:
            raise SystemExit(f"naive ngspice run failed: {r.stdout[-300:]} {r.stderr[-300:]}")
        naive.append(t)
    t_naive = float(np.mean(naive)) * VECTORS
    # (b) scipy.sparse on the same circuit, assembled from the same netlist
    import scipy.sparse.linalg as spla

    t_asm, c = timed(assemble, spec["deck"], "bench")
    rhs = c.rhs([f"VIN_{i}" for i in range(n)], v, "bench")
    A = c.A.tocsc()
    t_b1, _ = timed(lambda: [spla.spsolve(A, rhs[:, k]) for k in range(VECTORS)])
    t_b2, _ = timed(lambda: spla.splu(A).solve(rhs))
    t_mna, _ = timed(verify_block, {**spec, "engine": "mna"})
    row = {"tile": n, "vectors": VECTORS, "amsc_ngspice_s": t_amsc, "naive_per_vector_s": float(np.mean(naive)),
           "naive_measured_vectors": naive_vectors, "naive_s_scaled": t_naive, "scipy_assembly_s": t_asm,
           "scipy_spsolve_per_vector_s": t_b1 + t_asm, "scipy_factor_once_s": t_b2 + t_asm,
           "amsc_mna_engine_s": t_mna, "speedup_vs_naive": t_naive / t_amsc,
           "ratio_vs_spsolve": t_amsc / (t_b1 + t_asm), "ratio_vs_factor_once": t_amsc / (t_b2 + t_asm),
           "max_err_lsb": res["max_abs_err"] / res["lsb"]}
    print(f"[1] {n}x{n} tile, wire mesh, {VECTORS} vectors")
    print(f"    amsc verify (ngspice DC sweep, KLU) {t_amsc:8.2f} s")
    print(f"    (a) naive ngspice -b per vector     {t_naive:8.2f} s  ({naive_vectors} measured x {VECTORS})"
          f"  -> amsc x{t_naive / t_amsc:.0f} faster  (target >= 50)  "
          f"{'MET' if t_naive / t_amsc >= 50 else 'MISSED'}")
    print(f"    (b1) scipy spsolve per vector        {t_b1 + t_asm:8.2f} s  -> amsc at x{t_amsc / (t_b1 + t_asm):.2f}"
          f" of it  (target <= 5)  {'MET' if t_amsc / (t_b1 + t_asm) <= 5 else 'MISSED'}")
    print(f"    (b2) scipy one LU, all vectors       {t_b2 + t_asm:8.2f} s  -> amsc at x{t_amsc / (t_b2 + t_asm):.1f}"
          f" of it  (target <= 5)  {'MET' if t_amsc / (t_b2 + t_asm) <= 5 else 'MISSED'}")
    print(f"    amsc verify --engine mna             {t_mna:8.2f} s")
    return row


def bench_per_vector(tmp: Path, n: int = 128, vectors: int = 1024) -> dict:
    """The per-vector cost of signing off a linear tile with many vectors: amsc's ngspice path
    (planned as 'amsc verify' plans it: the transfer of the n word lines, then every vector by
    superposition) against scipy with one LU factorization reused for every vector."""
    import scipy.sparse.linalg as spla

    out = compile_tile(n, tmp / f"pv{n}", parasitics=True)
    man = json.loads((out / "manifest.json").read_text())
    spec = spec_for(out, vectors, "ngspice")
    t_ng, res = timed(verify_block, spec, man["tiles"][0])
    v = dac_vectors(vectors, n, spec["dac_bits"], spec["v_read"], 0, 0)
    t_asm, c = timed(assemble, spec["deck"], "bench")
    rhs = c.rhs([f"VIN_{i}" for i in range(n)], v, "bench")
    t_lu, _ = timed(lambda: spla.splu(c.A.tocsc()).solve(rhs))
    ratio = t_ng / (t_lu + t_asm)
    print(f"[5] {n}x{n} tile, wire mesh, {vectors} vectors: amsc ngspice {t_ng:.2f} s ({1e3 * t_ng / vectors:.2f} ms "
          f"a vector), scipy one LU {t_lu + t_asm:.2f} s -> x{ratio:.2f} of it  (target <= 3)  "
          f"{'MET' if ratio <= 3 else 'MISSED'}; max error {res['max_abs_err'] / res['lsb']:.2e} LSB")
    return {"tile": n, "vectors": vectors, "amsc_ngspice_s": t_ng, "scipy_factor_once_s": t_lu + t_asm,
            "ratio_vs_factor_once": ratio, "max_err_lsb": res["max_abs_err"] / res["lsb"],
            "route": "transfer matrix: n + 1 operating points, then superposition (linear 1R tile)"}


def bench_scaling(tmp: Path, sizes: list[int], vectors: int) -> dict:
    rows = []
    print(f"[2] scaling, {vectors} vectors per tile (seconds per vector, DC sweep incl. load)")
    for par in (False, True):
        for n in sizes:
            out = compile_tile(n, tmp / f"s{n}{par}", parasitics=par)
            t, _ = timed(verify_block, spec_for(out, vectors, "ngspice"))
            rows.append({"tile": n, "parasitics": par, "cells": n * n, "seconds": t, "s_per_vector": t / vectors})
            print(f"    {n:4d}x{n:<4d} {'mesh ' if par else 'ideal'} {t / vectors:9.4f} s/vector  ({t:6.2f} s)")
    fits = {}
    for par in (False, True):
        pts = [(r["cells"], r["seconds"]) for r in rows if r["parasitics"] == par]
        slope = float(np.polyfit(np.log([p[0] for p in pts]), np.log([p[1] for p in pts]), 1)[0])
        fits["mesh" if par else "ideal"] = slope
        print(f"    fitted exponent, time ~ cells^k, {'mesh ' if par else 'ideal'}: k = {slope:.2f}")
    return {"vectors": vectors, "rows": rows, "exponent": fits}


def bench_parallel(tmp: Path, vectors: int = 1024) -> dict:
    out = tmp / "par"
    amsc("compile", ROOT / "designs/mlp_digits/model.onnx", "-o", out, "--tile", "32x32", "--parasitics")
    times = {}
    for jobs in (1, 2):
        t, r = timed(amsc, "verify", out, "--jobs", jobs, "--vectors", vectors, "--no-cache",
                     "--tolerance-lsb", "100")
        times[jobs] = t
    sp = times[1] / times[2]
    print(f"[3] mlp_digits, 5 tiles (32x32, mesh), {vectors} vectors: --jobs 1 {times[1]:.2f} s, --jobs 2 "
          f"{times[2]:.2f} s -> x{sp:.2f}  (target >= 1.6)  {'MET' if sp >= 1.6 else 'MISSED'}")
    return {"vectors": vectors, "jobs1_s": times[1], "jobs2_s": times[2], "speedup": sp}


def bench_designs(tmp: Path, models: list[Path]) -> dict:
    rows = []
    print("[4] whole-design verify (16 vectors, --jobs 2)")
    for model in models:
        out = tmp / model.parent.name
        amsc("compile", model, "-o", out)
        cold, _ = timed(amsc, "verify", out, "--jobs", 2)
        warm, _ = timed(amsc, "verify", out, "--jobs", 2)
        rows.append({"design": model.parent.name, "cold_s": cold, "warm_s": warm})
        print(f"    {model.parent.name:16s} cold {cold:6.2f} s   warm (cache) {warm:6.2f} s")
    return {"rows": rows}


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--naive-vectors", type=int, default=1, help="vectors actually run for baseline (a)")
    ap.add_argument("--sizes", default="32,64,128,256", help="tile sizes for the scaling table")
    ap.add_argument("--scaling-vectors", type=int, default=16)
    args = ap.parse_args()
    tile, sizes, par_vectors = 128, [int(s) for s in args.sizes.split(",")], 1024
    models = sorted(ROOT.glob("designs/*/model.onnx"))
    if args.smoke:
        tile, sizes, par_vectors, args.scaling_vectors = 16, [8, 16], 16, 4
        models = [ROOT / "designs" / "mlp_digits" / "model.onnx"]
    sm = args.smoke
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"-> {save('verify_tile', bench_tile(tmp, args.naive_vectors, tile), sm)}")
        print(f"-> {save('verify_scaling', bench_scaling(tmp, sizes, args.scaling_vectors), sm)}")
        print(f"-> {save('verify_parallel', bench_parallel(tmp, par_vectors), sm)}")
        print(f"-> {save('verify_designs', bench_designs(tmp, models), sm)}")
        pv = (16, 64) if args.smoke else (128, 1024)
        print(f"-> {save('verify_per_vector', bench_per_vector(tmp, *pv), sm)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
