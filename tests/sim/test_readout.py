"""ADC sharing in the hardware (compile --adc-share M): a sample-and-hold per output and a
multiplexer into each ADC in the netlists, verified by an ngspice transient (charge sharing, charge
injection, settling); M conversions per read in the RTL; bad input."""

from __future__ import annotations

import json
import math
import re
import shutil

import numpy as np
import pytest

from conftest import MLP, amsc, require_tool
from helpers import assert_clean_error


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    out = tmp_path_factory.mktemp("ro") / "o"
    # every layer at 4 (by default both would take 8, their stages' slack: test_adc_balance_...)
    r = amsc("compile", MLP / "model.onnx", "-o", out, "--tile", "32x32", "--adc-share", "4", "--adc-balance", "off")
    assert r.returncode == 0, r.stderr
    return out


def test_netlists_wire_every_used_output_through_a_readout(shared):
    m = json.loads((shared / "manifest.json").read_text())
    ro = m["readout"]
    assert ro["share"] == 4 and m["options"]["adc_share"] == 4
    chip = (shared / "spice" / "chip.sp").read_text()
    want = sum(math.ceil((t["cols"][1] - t["cols"][0]) / 4) for t in m["tiles"])
    assert len(re.findall(r"^X\w+_ro\d+$", chip, re.M)) == want
    assert chip.count("+ amsc_ro4") == want and ".include readout.sp" in chip
    # every used output of every tile is the input of exactly one channel
    for t in m["tiles"]:
        outs = re.findall(rf"\b{t['name']}_out_(\d+)\b", chip)
        assert sorted(map(int, outs)) == sorted(2 * list(range(t["cols"][1] - t["cols"][0]))), t["name"]  # tile + readout
    sub = (shared / "spice" / "readout.sp").read_text()
    assert len(re.findall(r"^CH[PN]_\d ", sub, re.M)) == 8 and len(re.findall(r"^SM[PN]_\d ", sub, re.M)) == 8
    # the RTL waits for the read and M conversions at the ADC rate (100 MHz clock, 40 MS/s: 3 cycles each)
    beh = next((shared / "rtl" / "sim").glob("*_xbar_beh.v")).read_text()
    assert "parameter integer SHARE = 4" in beh and "LATENCY = 2 + SHARE * 3;" in beh and "cnt <= LATENCY;" in beh


def test_verify_runs_the_readout_transient_in_ngspice(shared):
    require_tool("libngspice")
    r = amsc("verify", shared)
    assert r.returncode == 0, r.stderr
    rep = json.loads((shared / "verify.json").read_text())
    ro = rep["readout"]
    assert rep["passed"] and ro["passed"] and ro["conversions"] == 8 * 4 and ro["simulator"].startswith("ngspice")
    # charge sharing with the ADC's capacitor, within a small fraction of an LSB; the switches' injection
    # is visible on the reference side and cancels in the difference
    assert ro["max_err_lsb"] < 0.25 and ro["settling_lsb"] < 0.01 and ro["pedestal_v"] > 1e-4
    assert 0.6 < ro["gain"] < 0.7
    # the report's model of the hold capacitors' energy against the input sources' power in ngspice
    assert ro["hold_energy_rel_err"] < 0.1 and ro["hold_energy_spice_j"] > 0
    assert "readout (4 outputs per ADC" in r.stderr and "readout.png" in (shared / "verify.html").read_text()
    assert (shared / "verify-report" / "readout.png").is_file()


def _tampered(shared, tmp_path, edit):
    from compiler.sim.ngspice import session
    from compiler.verify.readout import verify_readout

    out = tmp_path / "t"
    shutil.copytree(shared, out)
    p = out / "spice" / "readout.sp"
    p.write_text(edit(p.read_text()))
    m = json.loads((out / "manifest.json").read_text())
    return verify_readout(out, m["readout"], m["tiles"][0]["adc_bits"], 1.0, session())


def test_the_transient_catches_a_miswired_multiplexer_and_slow_switches(shared, tmp_path):
    """The check can fail: channel 0's multiplexer switch on channel 1's select line converts the
    wrong output in two slots; switches of 1 MOhm do not settle within a conversion slot."""
    require_tool("libngspice")
    bad = _tampered(shared, tmp_path, lambda s: s.replace("SMP_0 hp_0 adp sel_0", "SMP_0 hp_0 adp sel_1"))
    assert not bad["passed"] and bad["max_err_lsb"] > 10
    slow = _tampered(shared, tmp_path / "b", lambda s: re.sub(r"ron=\S+", "ron=1e6", s))
    assert not slow["passed"] and slow["settling_lsb"] > 0.1


def test_default_share_and_bad_values(tmp_path):
    out = tmp_path / "o"
    r = amsc("compile", MLP / "model.onnx", "-o", out, "--tile", "16x6")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "manifest.json").read_text())["readout"]["share"] == 3   # 3 outputs: all on one ADC
    assert_clean_error(amsc("compile", MLP / "model.onnx", "-o", tmp_path / "b", "--adc-share", "3"),
                       "--adc-share", "divisor of the tile's 32 outputs", "1, 2, 4, 8, 16, 32", out=tmp_path / "b")
    assert_clean_error(amsc("compile", MLP / "model.onnx", "-o", tmp_path / "b", "--adc-share", "0"), "--adc-share",
                       out=tmp_path / "b")
    assert_clean_error(amsc("compile", MLP.parent / "neural_ode_spiral" / "dynamics.yaml", "-o", tmp_path / "b",
                            "--adc-share", "2"), "--adc-share", out=tmp_path / "b")
    assert_clean_error(amsc("compile", MLP.parent / "neural_ode_spiral" / "dynamics.yaml", "-o", tmp_path / "b",
                            "--adc-balance", "on"), "--adc-balance", out=tmp_path / "b")
    assert_clean_error(amsc("compile", MLP / "model.onnx", "-o", tmp_path / "b", "--adc-balance", "yes"),
                       "--adc-balance", "off", "on", out=tmp_path / "b")


def test_readout_inputs_cover_the_adc_range(shared):
    v = np.load(shared / "spice" / "tb" / "readout_inputs.npy")
    assert v.shape == (8, 4) and v.max() == 1.0 and v.min() == -1.0


def _reports(digits, *outs) -> tuple[list[dict], str]:
    """`amsc report` (2 digits, no synthesis) of each design folder: the reports and the last one's stderr."""
    reps = []
    for out in outs:
        r = amsc("report", out, "--inputs", digits / "x.npy", "--samples", "2", "--no-synth")
        assert r.returncode == 0, r.stderr
        reps.append(json.loads((out / "report.json").read_text()))
    return reps, r.stderr


def test_adc_balance_gives_layers_with_slack_fewer_adcs_at_the_same_interval(tmp_path, digits):
    """compile --adc-balance on (the default) cnn_digits: fc (one read an input, in the pipeline's
    shortest stage) has its four tiles' 10 outputs each on one ADC of 40 channels, conv1 and conv2
    (the interval's stages) keep 8 outputs an ADC. Its readout is in the netlists, across the four
    tiles, and verified in ngspice like the design's; the RTL converts 40 a read on fc's tiles and
    stays bit-exact, its clocks the compiler's; the report has 7 ADCs fewer and the same interval."""
    require_tool("libngspice")
    require_tool("iverilog")
    cnn = MLP.parent / "cnn_digits" / "model.onnx"
    base, bal = tmp_path / "base", tmp_path / "bal"
    for out, extra in ((base, ("--adc-balance", "off")), (bal, ())):
        r = amsc("compile", cnn, "-o", out, *extra)
        assert r.returncode == 0, r.stderr
    m = json.loads((bal / "manifest.json").read_text())
    shares = {t["name"]: t["adc_share"] for t in m["tiles"]}
    assert shares == {t: (40 if t.startswith("fc_") else 8) for t in shares}
    assert {t["name"]: t.get("adc_group") for t in m["tiles"] if "adc_group" in t} == \
        {f"fc_r{r}c0": "fc_adc0" for r in range(4)}
    assert m["readout"]["share"] == 8 and [e["share"] for e in m["readout"]["balanced"]] == [40]
    graph = json.loads((bal / "ir.json").read_text())["graph"]
    assert graph["adc_shares"] == {"conv1": 8, "conv2": 8, "fc": 40} and graph["adc_tiles"] == {"fc": 4}
    chip = (bal / "spice" / "chip.sp").read_text()
    assert ".include readout.sp" in chip and ".include readout40.sp" in chip
    for t in m["tiles"]:   # the conv layers' outputs on ceil(cols / 8) ADCs of their own tile
        groups = re.findall(rf"^X{t['name']}_ro\d+$", chip, re.M)
        assert len(groups) == (0 if "adc_group" in t else math.ceil((t["cols"][1] - t["cols"][0]) / 8)), t["name"]
    # fc's one readout: tile r's 10 outputs on channels 10 r.., its ADC's inputs fc_adc0_adp/_adn
    (inst,) = re.findall(r"^Xfc_adc0_ro\n((?:\+ .*\n)+)", chip, re.M)
    nets = " ".join(ln[2:] for ln in inst.splitlines()).split()
    assert nets[:40] == [f"fc_r{q}c0_out_{j}" for q in range(4) for j in range(10)]
    assert nets[-3:] == ["fc_adc0_adp", "fc_adc0_adn", "amsc_ro40"] and chip.count("+ amsc_ro40") == 1
    # both readout circuits in ngspice
    r = amsc("verify", bal)
    assert r.returncode == 0, r.stderr
    rep = json.loads((bal / "verify.json").read_text())
    ro, (other,) = rep["readout"], rep["readout"]["others"]
    assert rep["passed"] and (ro["share"], other["share"]) == (8, 40) and other["passed"]
    assert other["conversions"] == 8 * 40 and other["max_err_lsb"] < 0.25 and other["settling_lsb"] < 0.01
    assert "readout (40 outputs per ADC" in r.stderr and "And 40 outputs per ADC" in (bal / "verify.html").read_text()
    # a second run takes both from the cache: the same blocks, its plot of the design's readout again
    r = amsc("verify", bal)
    assert r.returncode == 0 and r.stderr.count("ngspice transient, from the cache)") == 2, r.stderr
    again = json.loads((bal / "verify.json").read_text())
    for a, b in zip([ro, other], [again["readout"], *again["readout"]["others"]]):
        assert (a["cached"], b["cached"]) == (False, True)
        assert {k: v for k, v in a.items() if k not in ("cached", "others")} == \
            {k: v for k, v in b.items() if k not in ("cached", "others")}
    assert "And 40 outputs per ADC" in (bal / "verify.html").read_text() and "readout.png" in (bal / "verify.html").read_text()
    # the RTL: fc's macros take 2 + 40 * 3 clocks a read, the interval stays, bit-exact
    top = next((bal / "rtl").glob("*_top.v")).read_text()
    assert len(re.findall(r"\.SHARE\(40\)\) x_fc_r\dc0", top)) == 4 and ".SHARE(8)" not in top
    x = np.load(digits / "x.npy")[:2]
    np.save(tmp_path / "x2.npy", x)
    r = amsc("rtl-sim", bal, "--inputs", tmp_path / "x2.npy", "--simulator", "icarus")
    assert r.returncode == 0, r.stderr
    sim = json.loads((bal / "rtl_sim.json").read_text())
    c0 = json.loads((base / "manifest.json").read_text())["rtl_datapath"]["cycles_per_input"]
    c1 = m["rtl_datapath"]["cycles_per_input"]
    assert c1["interval"] == c0["interval"] and c1["latency"] == c0["latency"] + 40 * 3 - 8 * 3
    assert "bit-exact" in r.stderr and f"the compiler counted {c1['interval']}" in r.stderr
    assert f"(counted {c1['latency']})" in r.stderr, r.stderr
    # the report: fc's 4 tiles on 1 ADC instead of 8, the same inputs a second
    (a, b), err = _reports(digits, base, bal)
    assert b["periphery"]["adcs"] == a["periphery"]["adcs"] - 7 and b["adc_shares"] == {"conv1": 8, "conv2": 8, "fc": 40}
    assert "adc_shares" not in a and b["throughput_per_s"] == pytest.approx(a["throughput_per_s"])
    assert b["area_breakdown_mm2"]["adc"] == pytest.approx(a["area_breakdown_mm2"]["adc"] - 7 * 0.075)
    assert b["periphery"]["adc_utilization"] > a["periphery"]["adc_utilization"]
    assert "outputs each 8 on conv1, conv2, 40 on fc (1 ADC(s) serving several tiles of a layer)" in err
    # each layer's ADCs and how busy they are, which add up to the chip's
    by = {x["layer"]: x for x in b["periphery"]["by_layer"]}
    assert {k: (x["share"], x["tiles_per_adc"], x["adcs"], x["conversions"]) for k, x in by.items()} == \
        {"conv1": (8, 1, 4, 512), "conv2": (8, 1, 4, 512), "fc": (40, 4, 1, 40)}
    assert sum(x["adcs"] for x in by.values()) == b["periphery"]["adcs"] == 9
    assert sum(x["utilization"] * x["adcs"] for x in by.values()) / 9 == pytest.approx(b["periphery"]["adc_utilization"])
    assert by["fc"]["utilization"] < by["conv2"]["utilization"]    # fc's stage has slack its 40 outputs cannot fill
    assert "by layer (--adc-balance on): conv1 8, conv2 8, fc 40" in (bal / "report.html").read_text()


def test_the_layers_of_a_stage_share_one_pool_of_adcs(tmp_path, digits):
    """compile --pipeline 1 cnn_digits: one stage runs conv1, conv2 and fc one after another, so with
    --adc-balance on (the default) their 16 ADCs at 8 outputs each become a pool of 8 (each a slot of
    several layers, never two of one); the pool's readouts (32 and 2 channels) are in chip.sp and
    pass in ngspice; the RTL is the one without the pool, bit-exact; the report has 8 ADCs fewer,
    twice as busy, for the same inputs a second."""
    require_tool("libngspice")
    require_tool("iverilog")
    cnn = MLP.parent / "cnn_digits" / "model.onnx"
    base, pool = tmp_path / "base", tmp_path / "pool"
    for out, extra in ((base, ("--adc-balance", "off")), (pool, ())):
        r = amsc("compile", cnn, "-o", out, "--pipeline", "1", *extra)
        assert r.returncode == 0, r.stderr
    m = json.loads((pool / "manifest.json").read_text())
    assert {t["adc_pool"] for t in m["tiles"]} == {"stage0"} and m["readout"]["pools"] == {"stage0": 8}
    assert [e["share"] for e in m["readout"]["balanced"]] == [2, 32]
    # no tile keeps its ADCs at the design's 8 outputs: that readout is neither built nor signed off
    assert m["readout"]["share"] == 8 and "subckt" not in m["readout"] and not (pool / "spice" / "readout.sp").exists()
    assert json.loads((pool / "ir.json").read_text())["graph"]["adc_stages"] == {"stage0": ["conv1", "conv2", "fc"]}
    assert "pools" not in json.loads((base / "manifest.json").read_text())["readout"]
    chip = (pool / "spice" / "chip.sp").read_text()
    assert len(re.findall(r"^Xstage0_adc\d_ro$", chip, re.M)) == 8 and not re.search(r"^X\w+c0_ro\d+$", chip, re.M)
    for t in m["tiles"]:   # every output on one channel of the pool
        outs = re.findall(rf"\b{t['name']}_out_(\d+)\b", chip)
        assert sorted(map(int, outs)) == sorted(2 * list(range(t["cols"][1] - t["cols"][0]))), t["name"]
    # the pool's readouts in ngspice
    r = amsc("verify", pool)
    assert r.returncode == 0, r.stderr
    rep = json.loads((pool / "verify.json").read_text())
    others = {o["share"]: o for o in [rep["readout"], *rep["readout"]["others"]]}
    assert rep["passed"] and sorted(others) == [2, 32] and all(o["passed"] for o in others.values())
    assert others[32]["conversions"] == 8 * 32 and others[32]["max_err_lsb"] < 0.25
    # the RTL does not change: each layer's read converts its own slot of the ADCs it reads through
    for f in sorted((base / "rtl").rglob("*.v")):
        assert (pool / "rtl" / f.relative_to(base / "rtl")).read_bytes() == f.read_bytes(), f.name
    x = np.load(digits / "x.npy")[:2]
    np.save(tmp_path / "x2.npy", x)
    r = amsc("rtl-sim", pool, "--inputs", tmp_path / "x2.npy", "--simulator", "icarus")
    assert r.returncode == 0 and "bit-exact" in r.stderr, r.stderr
    (a, b), err = _reports(digits, base, pool)
    pa, pb = a["periphery"], b["periphery"]
    assert (pa["adcs"], pb["adcs"], pb["adcs_in_pools"], pb["adcs_pooled_layers_own"]) == (16, 8, 8, 16)
    assert b["throughput_per_s"] == pytest.approx(a["throughput_per_s"])
    assert b["area_breakdown_mm2"]["adc"] == pytest.approx(a["area_breakdown_mm2"]["adc"] - 8 * 0.075)
    # the sample-and-holds are the outputs' either way
    assert b["area_breakdown_mm2"]["readout"] == pytest.approx(a["area_breakdown_mm2"]["readout"])
    assert b["energy_breakdown_j"]["readout"] == pytest.approx(a["energy_breakdown_j"]["readout"])
    assert pb["adc_utilization"] == pytest.approx(2 * pa["adc_utilization"])
    assert {x["layer"]: (x["adcs"], x.get("pool"), x.get("pool_adcs")) for x in pb["by_layer"]} == \
        {"conv1": (4, "stage0", 8), "conv2": (4, "stage0", 8), "fc": (8, "stage0", 8)}
    assert "8 shared by the layers of a pipeline stage (their own would be 16)" in err
    assert "stage0 (8)" in (pool / "report.html").read_text()
