"""Which feature maps go into SRAM macros (backend/verilog.map_memories, compile --map-memory), and
the generic PDK's macro figures (ppa.sram) against their sources."""

from __future__ import annotations

import json
import math

import pytest

from compiler.backend.verilog import map_interleave, map_memories, part_words, stage_banks
from compiler.eval.ppa import gate_areas_um2, lef_areas, register_file_gates
from compiler.pdk import load_pdk
from conftest import ROOT, amsc

FIRE = ROOT / "tests" / "data" / "exported" / "fire_net.onnx"


@pytest.fixture(scope="module")
def fire(tmp_path_factory):
    """fire_net (a torch.onnx export): its program, step lanes and pipeline stages as compiled."""
    out = tmp_path_factory.mktemp("fire") / "o"
    r = amsc("compile", FIRE, "-o", out)
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "manifest.json").read_text())
    prog = json.loads((out / "rtl" / "program.json").read_text())
    dp = m["rtl_datapath"]
    cuts = [tuple(x["steps"]) for x in dp["cycles_per_input"]["stages"]]
    return prog, dp["step_lanes"], cuts, dp


def test_the_macro_figures_are_the_cited_ones_and_the_flip_flop_bit_the_reports():
    sram = load_pdk("generic").ppa["sram"]
    # OpenRAM sky130_sram_1kbyte_1rw1r_8x1024_8: LEF SIZE 455.3 x 446.46 um; 4.6945 mW at 531 MHz
    assert sram["area_um2"] == pytest.approx(455.3 * 446.46, rel=1e-4)
    assert sram["access_pj"] == pytest.approx(4.6945e-3 / 531e6 * 1e12, rel=1e-3)
    assert sram["max_mhz"] == pytest.approx(1e3 / 1.881, rel=2e-3)   # its datasheet rounds it to 531 MHz
    d = load_pdk("generic").ppa["digital"]
    areas = lef_areas(d["cells"])
    for words, width in ((256, 8), (1024, 8), (300, 9), (4096, 4)):
        area = sum(gate_areas_um2(register_file_gates(words, width, 1, 1), areas).values()) / d["utilization"]
        assert area / (words * width) == pytest.approx(sram["flop_bit_um2"], rel=0.005), (words, width)


def test_auto_takes_the_parts_that_are_smaller_as_macros(fire):
    prog, per, cuts, dp = fire
    sram = load_pdk("generic").ppa["sram"]
    ilv = map_interleave(prog, per)
    banks = stage_banks(prog, cuts)
    every = map_memories(prog, per, cuts, sram, "sram", 100.0)
    auto = map_memories(prog, per, cuts, sram, "auto", 100.0)
    assert set(every) == set(ilv) and map_memories(prog, per, cuts, sram, "flops", 100.0) == {}
    assert dp["srams"] == auto and dp["map_memory"] == "auto"     # what compile recorded
    shape = {m["name"]: m for st in prog["steps"] for m in (st.get("src"), st.get("dst")) if m}
    taken = set()
    for name, x in every.items():
        m = shape[name]
        words = part_words(ilv[name], math.prod(m["shape"]))
        per_part = math.ceil(words / 1024) * math.ceil(m["bits"] / 8)
        k = banks[name][1] - banks[name][0] + 1 if name in banks else 1
        assert x == {"B": ilv[name]["B"], "banks": k, "words": words, "width": m["bits"], "macros": x["B"] * k * per_part}
        if per_part * sram["area_um2"] < words * m["bits"] * sram["flop_bit_um2"]:
            taken.add(name)
    assert set(auto) == taken and 0 < len(taken) < len(every)      # fire_net: its image and first map


def test_a_macro_that_cannot_run_at_twice_the_clock_is_refused(fire):
    prog, per, cuts, _ = fire
    sram = load_pdk("generic").ppa["sram"]
    with pytest.raises(ValueError, match="531 MHz at most"):
        map_memories(prog, per, cuts, sram, "sram", 300.0)
    with pytest.raises(ValueError, match="no SRAM macro"):
        map_memories(prog, per, cuts, None, "sram", 100.0)
    assert map_memories(prog, per, cuts, sram, "auto", 300.0) == {}    # auto falls back to flip-flops


def test_an_access_costs_the_macros_and_the_wires_across_the_part():
    from compiler.eval.ppa import sram_access_pj

    sram = load_pdk("generic").ppa["sram"]
    c = load_pdk("generic").ppa["wire"]["c_f_per_um"]
    one = {"words": 1000, "width": 8}                 # one macro: 10 address and 8 data bits over its side
    assert sram_access_pj(one, sram, c) == pytest.approx(8.84 + 0.5 * 18 * 0.2e-15 * 450.86 * 1.8 ** 2 * 1e12, rel=1e-3)
    wide = {"words": 1000, "width": 9}                # two macros side by side, each accessed
    assert sram_access_pj(wide, sram, c) == pytest.approx(2 * 8.84 + 0.5 * 19 * 0.2e-15 * 637.6 * 1.8 ** 2 * 1e12, rel=1e-3)
    big = {"words": 16 * 1024, "width": 8}            # 16 macros: the wires grow with the side, 4x
    assert sram_access_pj(big, sram, c) - 8.84 == pytest.approx(4 * 22 / 18 * (sram_access_pj(one, sram, c) - 8.84), rel=1e-3)
