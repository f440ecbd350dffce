"""Every benchmark runs in its --smoke mode (tiny sizes, seconds), exactly as `make bench` runs it
in full, so that a change that breaks a benchmark fails the suite instead of rotting unseen."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, require_tool

BENCHES = sorted((ROOT / "bench").glob("bench_*.py"))


def test_benchmarks_present():
    assert {b.name for b in BENCHES} >= {"bench_networks.py", "bench_place.py", "bench_scale.py", "bench_sky130.py",
                                        "bench_solver.py", "bench_verify.py", "bench_rtlsim.py",
                                        "bench_sampler.py"}


@pytest.mark.parametrize("bench", BENCHES, ids=[b.stem for b in BENCHES])
def test_bench_smoke(bench, tmp_path):
    require_tool("ngspice", "libngspice")
    env = {**os.environ, "AMSC_BENCH_RESULTS": str(tmp_path)}
    r = subprocess.run([sys.executable, str(bench), "--smoke"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
    written = sorted(tmp_path.glob("*_smoke.json"))
    assert written, r.stdout[-2000:]
    for p in written:
        assert json.loads(p.read_text())
