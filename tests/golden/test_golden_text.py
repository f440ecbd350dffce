"""Golden text diffs of a tiny design's emitted files. After an intended change to the back ends,
regenerate with:  AMSC_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/golden/test_golden_text.py"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import amsc

DATA = Path(__file__).parent / "data"
FILES = ["spice/tiles/l1_r0c0.sp", "spice/tb/l2_r0c0_tb.sp", "spice/chip.sp", "rtl/tiny_top.v",
         "rtl/tiny_tile.v", "rtl/tiny_xbar.v", "rtl/sim/tiny_xbar_beh.v"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "o"
    r = amsc("compile", DATA / "tiny.yaml", "-o", out)
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize("rel", FILES)
def test_golden(tiny, rel):
    got = (tiny / rel).read_text()
    gold = DATA / "expected" / rel
    if os.environ.get("AMSC_UPDATE_GOLDEN"):
        gold.parent.mkdir(parents=True, exist_ok=True)
        gold.write_text(got)
    assert gold.is_file(), f"no golden file {gold}; run with AMSC_UPDATE_GOLDEN=1 once"
    assert got == gold.read_text(), f"{rel} differs from {gold}"
