"""The Makefile's user-facing targets, run as a user runs them (into a temporary BUILD folder):
a target that no test runs would rot unseen."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from conftest import IN_CI, ROOT, require_tool


def test_make_verify_evaluate_and_report(tmp_path):
    require_tool("ngspice", "libngspice")
    for missing, why in ((shutil.which("make") is None, "make is not installed"),
                         (not (ROOT / ".venv" / "bin" / "amsc").exists(), "no .venv: run 'make setup' first")):
        if missing:
            if IN_CI:
                pytest.fail(f"CI requires it: {why}")
            pytest.skip(why)
    env = {**os.environ, "BUILD": str(tmp_path)}
    # REPORT_ARGS=--no-synth: yosys takes minutes per design here; tests/sim/test_report.py
    # synthesizes a design's RTL and checks the cell areas. DYNAMICS leaves out langevin_ebm, whose
    # verify takes 98 s here (tests/sim/test_dynamics_noise.py verifies a Langevin sampler of the same
    # form); flow_moons stays, for evaluate's --data loop, on 100 of its 500 noise samples
    # (tests/sim/test_dynamics_noise.py generates all 500 against the target)
    r = subprocess.run(["make", "verify", "evaluate", "report", f"BUILD={tmp_path}", "PROBES=6", "SAMPLES=100",
                        "REPORT_ARGS=--no-synth", "DYNAMICS=hopfield_digits neural_ode_spiral flow_moons"], cwd=ROOT, env=env,
                       capture_output=True,
                       text=True, timeout=1500)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
    for d in ("mlp_digits", "cnn_digits", "cnn_signed"):
        assert json.loads((tmp_path / d / "verify.json").read_text())["passed"]
        rep = json.loads((tmp_path / d / "eval.json").read_text())
        assert abs(rep["ngspice"]["accuracy"] - rep["float"]["accuracy"]) <= 0.005, (d, rep)
        ppa = json.loads((tmp_path / d / "report.json").read_text())
        assert not ppa["digital"]["synthesis"]["synthesized"] and ppa["energy_check"]["max_tile_rel_err"] <= 0.10, d
    # the continuous-time designs: compiled, verified against solve_ivp, the Hopfield memory probed
    for d in ("hopfield_digits", "neural_ode_spiral", "flow_moons"):
        assert json.loads((tmp_path / d / "verify.json").read_text())["passed"], d
    assert not (tmp_path / "langevin_ebm").exists()
    assert json.loads((tmp_path / "flow_moons" / "eval.json").read_text())["generation"]["samples"] == 100
    hop = json.loads((tmp_path / "hopfield_digits" / "eval.json").read_text())
    assert hop["runs"] == 6 and len(hop["retrieval"]["by_flipped_bits"]) == 3
    assert abs(hop["retrieval"]["accuracy_spice"] - hop["retrieval"]["accuracy_digital"]) <= 0.01
