"""Shared fixtures. Tools: a test that needs ngspice, verilator or iverilog calls ``require_tool``;
outside CI a missing tool skips the test with the reason, in CI (CI=true) it fails.

Tiers: every test under tests/sim, tests/bench and tests/pkg, and every other test that calls
``require_tool``, is marked ``sim`` (the slow tier: simulators, the benchmarks' smoke runs, make and
pip); ``pytest -m "not sim"`` (``make test-fast``) runs the rest in a few minutes."""

from __future__ import annotations

import ctypes.util
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MLP = ROOT / "designs" / "mlp_digits"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


#: folders whose every test is in the slow tier
SIM_FOLDERS = ("sim", "bench", "pkg")


def pytest_collection_modifyitems(config, items):
    """Mark the slow tier ``sim``: the tests of :data:`SIM_FOLDERS` and the tests that call
    ``require_tool`` (read from their source)."""
    for item in items:
        fn = getattr(item, "function", None)
        if Path(str(item.fspath)).parent.name in SIM_FOLDERS or (
                fn is not None and "require_tool(" in inspect.getsource(fn)):
            item.add_marker(pytest.mark.sim)


def _have(tool: str) -> bool:
    if tool == "libngspice":
        return ctypes.util.find_library("ngspice") is not None
    return shutil.which(tool) is not None


def require_tool(*tools: str) -> None:
    for tool in tools:
        if not _have(tool):
            msg = f"{tool} is not installed (run 'make setup')"
            if IN_CI:
                pytest.fail(f"CI requires {msg}")
            pytest.skip(msg)


def amsc(*args, cwd=None, timeout=600) -> subprocess.CompletedProcess:
    """Run the CLI in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "compiler.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=timeout)


@pytest.fixture(scope="session")
def mlp_out(tmp_path_factory) -> Path:
    """designs/mlp_digits compiled with 32x32 tiles (5 tiles: row and column splits)."""
    out = tmp_path_factory.mktemp("mlp") / "out"
    r = amsc("compile", MLP / "model.onnx", "-o", out, "--tile", "32x32")
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="session")
def digits(tmp_path_factory) -> Path:
    """The held-out digits (designs/digits_testset.py): x.npy, x_centred.npy, y.npy."""
    d = tmp_path_factory.mktemp("digits")
    r = subprocess.run([sys.executable, str(MLP.parent / "digits_testset.py"), str(d)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return d
