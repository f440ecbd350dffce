#!/usr/bin/env python3
"""Benchmark: ngspice solvers and netlist element order on amsc tile testbenches.

For each tile size a random layer is compiled onto one tile, with ideal wires and with the wire
mesh. Each testbench deck runs with `ngspice -b` three ways:
  - as emitted: KLU, resistors in amsc's row-major mesh order,
  - default Sparse 1.3 solver, same order,
  - default Sparse 1.3 solver, resistor cards shuffled (seeded).
Everything is measured in this run, and ratios are printed. KLU orders the matrix itself, so
element order hardly matters to it. Sparse 1.3 works in card order, which is why amsc emits the
mesh row by row. Writes bench/results/solver.json.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import compile_tile, parser, save

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from compiler.sim.netlist import read_deck  # noqa: E402

SIZES = (32, 64)
REPEAT = 3
_RES = re.compile(r"^R[PNWB]_")


def best_of(deck: Path) -> float:
    times = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        r = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise SystemExit(f"ngspice failed on {deck}: {r.stderr[-500:]}")
    return min(times)


def variants(deck: Path) -> dict[str, Path]:
    text = read_deck(deck)    # the testbench with its tile subckt inlined
    deck = deck.with_name("klu.sp")
    deck.write_text(text)
    lines = text.splitlines(keepends=True)
    res = [ln for ln in lines if _RES.match(ln)]
    first = lines.index(res[0])
    rest = [ln for ln in lines[first:] if not _RES.match(ln)]
    shuffled = list(res)
    np.random.default_rng(5).shuffle(shuffled)
    sparse = deck.with_name("sparse.sp")
    sparse.write_text(text.replace(".options klu ", ".options "))
    shuf = deck.with_name("sparse_shuffled.sp")
    shuf.write_text("".join(lines[:first] + shuffled + rest).replace(".options klu ", ".options "))
    return {"klu": deck, "sparse": sparse, "sparse_shuffled": shuf}


def main() -> int:
    args = parser(__doc__).parse_args()
    global REPEAT
    sizes = SIZES
    if args.smoke:
        sizes, REPEAT = (8,), 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for par in (False, True):
            for n in sizes:
                out = compile_tile(n, Path(tmp) / f"{n}{par}", parasitics=par)
                t = {k: best_of(p) for k, p in variants(out / "spice" / "tb" / "fc_r0c0_tb.sp").items()}
                rows.append({"tile": n, "parasitics": par, **{f"{k}_s": v for k, v in t.items()},
                             "klu_speedup": t["sparse"] / t["klu"],
                             "shuffle_penalty_sparse": t["sparse_shuffled"] / t["sparse"]})
                print(f"tile {n:3d}x{n:<3d} {'mesh ' if par else 'ideal'}  KLU {t['klu']:6.3f} s  "
                      f"Sparse {t['sparse']:6.3f} s  (x{t['sparse'] / t['klu']:5.2f} slower)  "
                      f"Sparse shuffled {t['sparse_shuffled']:6.3f} s (x{t['sparse_shuffled'] / t['sparse']:4.2f} "
                      "vs row-major)")
    print(f"-> {save('solver', {'benchmark': 'solver', 'repeat': REPEAT, 'rows': rows}, args.smoke)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
