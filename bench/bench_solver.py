#!/usr/bin/env python3
"""Benchmark: ngspice's KLU solver against its default Sparse 1.3 solver on amsc tile testbenches.

For each tile size a random layer is compiled onto one tile. The testbench deck is run with
`ngspice -b` as emitted (`.options klu`) and again with the KLU option removed. Both runs are
measured in this run on this machine, and the output is the ratio. Writes bench/results/solver.json.

With ideal wires the circuit matrix is nearly diagonal (every bit line is pinned by its sense
source), so both solvers are fast. The gap opens with a wire-resistance mesh.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZES = (32, 64, 128)
REPEAT = 3


def compile_tile(n: int, work: Path) -> Path:
    rng = np.random.default_rng(n)
    np.save(work / "w.npy", rng.normal(size=(n // 2, n)))
    (work / "m.yaml").write_text("amsc_graph: 1\ninputs: [{name: x, shape: [%d]}]\n"
                                 "nodes: [{name: fc, op: dense, weight: {file: w.npy}}]\noutputs: [fc]\n" % n)
    out = work / "out"
    subprocess.run([sys.executable, "-m", "compiler.cli", "compile", str(work / "m.yaml"), "-o", str(out),
                    "--tile", f"{n}x{n}"], check=True, cwd=ROOT, capture_output=True)
    return out / "spice" / "tb" / "fc_r0c0_tb.sp"


def best_of(deck: Path) -> float:
    times = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise SystemExit(f"ngspice failed on {deck}: {r.stderr[-500:]}")
    return min(times)


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in SIZES:
            work = Path(tmp) / str(n)
            work.mkdir()
            deck = compile_tile(n, work)
            sparse = deck.with_name("sparse_tb.sp")
            sparse.write_text(deck.read_text().replace(".options klu ", ".options "))
            t_klu, t_sparse = best_of(deck), best_of(sparse)
            rows.append({"tile": n, "klu_s": t_klu, "sparse_s": t_sparse, "speedup": t_sparse / t_klu})
            print(f"tile {n:4d}x{n:<4d} KLU {t_klu:7.3f} s   Sparse {t_sparse:7.3f} s   KLU speed-up x{t_sparse / t_klu:6.2f}")
    res = ROOT / "bench" / "results"
    res.mkdir(parents=True, exist_ok=True)
    (res / "solver.json").write_text(json.dumps({"benchmark": "solver", "repeat": REPEAT, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
