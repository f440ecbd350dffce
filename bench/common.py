"""Shared helpers for the benchmarks: command line (every benchmark has a --smoke mode of a few
seconds, which the test suite runs so that no benchmark can rot), compile a random one-tile layer,
run the CLI, save results (bench/results/, or $AMSC_BENCH_RESULTS)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("AMSC_BENCH_RESULTS", ROOT / "bench" / "results"))


def parser(doc: str) -> argparse.ArgumentParser:
    """The benchmark's argument parser, with --smoke: the same code paths on tiny sizes."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes, a few seconds: checks that the benchmark runs (the test suite uses it); "
                    "its numbers mean nothing")
    return ap


def amsc(*args, check=True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compiler.cli", *map(str, args)], cwd=ROOT, check=check,
                          capture_output=True, text=True)


def compile_tile(n: int, work: Path, parasitics: bool) -> Path:
    """A random dense layer with n inputs and n/2 outputs on one n x n tile; returns the output folder."""
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    np.save(work / "w.npy", rng.normal(size=(n // 2, n)))
    (work / "m.yaml").write_text("amsc_graph: 1\ninputs: [{name: x, shape: [%d]}]\n"
                                 "nodes: [{name: fc, op: dense, weight: {file: w.npy}}]\noutputs: [fc]\n" % n)
    out = work / "out"
    amsc("compile", work / "m.yaml", "-o", out, "--tile", f"{n}x{n}", *(["--parasitics"] if parasitics else []))
    return out


def save(name: str, data: dict, smoke: bool = False) -> Path:
    """bench/results/<name>.json (<name>_smoke.json for a smoke run, so it never overwrites results)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"{name}_smoke" if smoke else name
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return path
