"""amsc report: area, energy and latency of the compiled chip, with the crossbar energy measured in
SPICE and checked against the analytic model, the settling time from an ngspice transient, the
digital area from yosys, and bad input."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from conftest import MLP, amsc, require_tool
from helpers import assert_clean_error

CNN = MLP.parent / "cnn_digits"


@pytest.fixture(scope="module")
def designs(tmp_path_factory):
    d = tmp_path_factory.mktemp("ppa")
    for name, model, extra in (("mlp", MLP / "model.onnx", ()), ("cnn", CNN / "model.onnx", ()),
                               ("mesh", MLP / "model.onnx", ("--parasitics", "--tile", "32x32"))):
        r = amsc("compile", model, "-o", d / name, *extra)
        assert r.returncode == 0, r.stderr
    return d


def _report(out, *args):
    r = amsc("report", out, *args)
    assert r.returncode == 0, r.stderr
    return json.loads((out / "report.json").read_text()), r.stderr


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_energy_estimate_within_ten_percent_of_spice_on_every_tile(designs, digits, name):
    """The issue's self-check: on both digits designs (generic PDK, ideal wires) the analytic crossbar
    energy agrees with the SPICE-measured energy of the same tiles and reads, tile by tile."""
    require_tool("libngspice")
    out = designs / name
    rep, err = _report(out, "--inputs", digits / "x.npy", "--samples", "8", "--no-synth")
    ec = rep["energy_check"]
    assert {t["tile"] for t in ec["tiles"]} == {t["name"] for t in json.loads((out / "manifest.json").read_text())["tiles"]}
    for t in ec["tiles"]:
        assert t["crossbar_spice_j"] > 0 and t["rel_err"] <= 0.10, t
        # ideal wires: the netlist's cells are the conductances of the analytic model, to SPICE's tolerance
        assert t["rel_err"] < 1e-5, t
    assert ec["rel_err"] <= 0.10 and "energy check" in err
    # the stable keys, and figures that add up
    for k in ("area_mm2", "energy_per_inference_j", "latency_s", "tops", "tops_per_w", "tops_per_mm2"):
        assert rep[k] > 0, k
    assert rep["energy_per_inference_j"] == pytest.approx(sum(rep["energy_breakdown_j"].values()))
    assert rep["area_mm2"] == pytest.approx(sum(rep["area_breakdown_mm2"].values()))
    assert rep["latency_s"] == pytest.approx(sum(rep["latency_breakdown_s"].values()))
    # the default pipeline: an input every slowest stage's period, sooner than one input's latency
    pl = rep["pipeline"]
    assert pl["stages"] > 1 and pl["interval_s"] == max(pl["stage_periods_s"]) < rep["latency_s"]
    assert rep["throughput_per_s"] == pytest.approx(1 / pl["interval_s"])
    assert rep["tops"] == pytest.approx(rep["ops_per_inference"] * rep["throughput_per_s"] / 1e12)
    assert rep["tops_per_w"] == pytest.approx(rep["ops_per_inference"] / rep["energy_per_inference_j"] / 1e12)
    assert rep["energy_breakdown_j"]["crossbar"] == pytest.approx(ec["crossbar_spice_j"])
    if name == "mlp":   # 64x32 + 32x10 multiply-accumulates per image
        assert rep["macs_per_inference"] == 64 * 32 + 32 * 10
    assert rep["dominant"]["area"] == "adc" and rep["dominant"]["energy_why"]
    assert (out / "report.html").is_file() and (out / "report" / "settle.png").is_file()
    assert "Energy self-check" in (out / "report.html").read_text()


def test_crossbar_energy_is_the_word_line_sources_power(designs, digits):
    """The measured energy is independent of the engine (ngspice and MNA agree on the 1-ohm mesh), and
    is what the circuit dissipates: with IR drop the cells see less than the drive, so the ohmic
    estimate is above SPICE, by a few percent and not more than 10."""
    require_tool("libngspice")
    out = designs / "mesh"
    ng, _ = _report(out, "--inputs", digits / "x.npy", "--samples", "4", "--no-synth")
    mna, _ = _report(out, "--inputs", digits / "x.npy", "--samples", "4", "--no-synth", "--engine", "mna")
    for a, b in zip(ng["energy_check"]["tiles"], mna["energy_check"]["tiles"]):
        assert a["tile"] == b["tile"]
        assert a["crossbar_spice_j"] == pytest.approx(b["crossbar_spice_j"], rel=1e-5)
        assert 0 < a["crossbar_analytic_j"] - a["crossbar_spice_j"] < 0.10 * a["crossbar_spice_j"], a


def test_settling_time_matches_the_closed_loop(designs, digits):
    """The transient's settling time is that of the op-amp TIA's closed loop: a single pole at
    GBW / (1 + Rf G_bitline) per bit line, reaching 0.5 LSB after tau * ln(step / 0.5 LSB)."""
    require_tool("libngspice")
    out = designs / "mlp"
    rep, _ = _report(out, "--inputs", digits / "x.npy", "--samples", "2", "--no-synth")
    s = rep["settling"]
    man = json.loads((out / "manifest.json").read_text())
    t = next(t for t in man["tiles"] if t["name"] == s["tile"])
    gp, gn = (np.load(out / t["conductances"][k]) for k in ("gpos", "gneg"))
    tol = t["adc_lsb_a"] * t["tia"]["transimpedance_ohm"] * 0.5
    worst = 0.0
    for g in (gp, gn):
        gbl = g.sum(0)                                   # every word line at v_read
        tau = (1 + t["rf_ohm"] * gbl) / (2 * math.pi * s["gbw_hz"])
        step = t["rf_ohm"] * t["v_read"] * gbl           # each side's TIA output swing
        worst = max(worst, float(np.max(tau * np.log(np.maximum(step, tol) / tol))))
    # the differential output's error is a difference of two such exponentials: within a factor of 2
    assert 0.5 * worst < s["t_settle_s"] < 2.0 * worst, (s, worst)
    # the deck written next to the report is the transient that ran, and runs on its own
    import shutil
    import subprocess

    deck = (out / s["deck"]).read_text()
    assert ".tran" in deck and ".include" not in deck
    if shutil.which("ngspice"):
        r = subprocess.run(["ngspice", "-b", str(out / s["deck"])], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0 and "error" not in r.stdout.lower(), r.stdout[-1000:]


def test_digital_area_from_yosys_and_sky130_cells(designs, digits):
    require_tool("libngspice", "yosys")
    out = designs / "mlp"
    rep, _ = _report(out, "--inputs", digits / "x.npy", "--samples", "2")
    syn = rep["digital"]["synthesis"]
    assert syn["synthesized"] and sum(syn["gates"].values()) > 1000
    assert syn["macros"] == {"mlp_digits_xbar": 2}       # the crossbar macros stay black boxes
    # the feature maps stay memories, counted by the register-file model: the input and each layer's map
    from compiler.eval.ppa import register_file_gates

    prog = json.loads((out / "rtl" / "program.json").read_text())
    sizes = {st["dst"]["name"]: int(np.prod(st["dst"]["shape"])) for st in prog["steps"] if "dst" in st}
    mems = {m["name"]: m for m in syn["memories"]}
    # a map is one array, or parts interleaved by address (backend/verilog.map_interleave): mem_<map>_i<q>
    parts = {}
    for name in mems:
        base = re.fullmatch(r"mem_(\w+?)(?:_i(\d+))?", name)
        parts.setdefault(base.group(1), []).append(mems[name])
    assert set(parts) == set(sizes)
    for name, ms in parts.items():
        assert sum(m["words"] for m in ms) >= sizes[name] and all(m["reads"] >= 1 and m["writes"] >= 1 for m in ms)
    for m in mems.values():
        assert m["gates"] == register_file_gates(m["words"], m["width"], m["reads"], m["writes"])
        assert m["gates"]["$_DFFE_PP_"] == m["words"] * m["width"] <= syn["gates"]["$_DFFE_PP_"]
    # mlp_digits' maps are written and read in consecutive runs: each part has one port a unit, not one a lane
    assert any("_i" in n and mems[n]["reads"] == 1 for n in mems)
    from compiler.eval.ppa import GATE_CELLS, lef_areas
    from compiler.pdk import load_pdk

    areas = lef_areas(load_pdk("generic").ppa["digital"]["cells"])
    assert areas["nand2"] == pytest.approx(1.38 * 2.72) and areas["dfrtp"] == pytest.approx(9.2 * 2.72)
    want = sum(n * sum(areas[c] for c in GATE_CELLS.get(k, ("dfrtp", "mux2"))) for k, n in syn["gates"].items())
    assert rep["area_breakdown_mm2"]["digital"] == pytest.approx(want / rep["digital"]["utilization"] * 1e-6)


def test_the_feature_map_model_matches_yosys_on_a_memory_it_was_not_fitted_to(tmp_path):
    """The report counts each feature map's gates by ppa.REGISTER_FILE_GATES instead of mapping it
    (bench/bench_memory_model.py fits and checks it): a memory of a shape the fit did not see,
    synthesized alone by yosys, takes the model's area within 5 %."""
    require_tool("yosys")
    from compiler.eval.ppa import gate_areas_um2, lef_areas, register_file_gates, synthesize_memory
    from compiler.pdk import load_pdk

    areas = lef_areas(load_pdk("generic").ppa["digital"]["cells"])
    got = synthesize_memory(200, 8, 2, 2, tmp_path)
    assert got["$_DFFE_PP_"] == 1600

    def area(gates):
        return sum(gate_areas_um2(gates, areas).values())

    assert area(register_file_gates(200, 8, 2, 2)) == pytest.approx(area(got), rel=0.05)


def test_adc_sharing_trades_area_for_latency(designs, digits, tmp_path):
    """The default design shares an ADC among 8 outputs (its readout in the netlists, its conversions
    in the RTL); --adc-share 1 gives every output its own ADC and no readout."""
    require_tool("libngspice")
    out, solo = designs / "mlp", tmp_path / "one"
    assert amsc("compile", MLP / "model.onnx", "-o", solo, "--adc-share", "1", "--adc-balance", "off").returncode == 0
    one, _ = _report(solo, "--inputs", digits / "x.npy", "--samples", "2", "--no-synth")
    eight, _ = _report(out, "--inputs", digits / "x.npy", "--samples", "2", "--no-synth")
    assert (one["adc_share"], eight["adc_share"]) == (1, 8)
    assert not (solo / "spice" / "readout.sp").exists() and (out / "spice" / "readout.sp").is_file()
    # only the bit-line pairs a layer uses get a TIA and a share of an ADC (the netlists' columns)
    pairs = [t["cols"][1] - t["cols"][0] for t in json.loads((out / "manifest.json").read_text())["tiles"]]
    assert one["periphery"]["adcs"] == sum(pairs) < 32 * len(pairs)
    assert eight["periphery"]["adcs"] == sum(math.ceil(p / 8) for p in pairs) and one["periphery"]["tias"] == 2 * sum(pairs)
    assert eight["area_breakdown_mm2"]["adc"] == pytest.approx(
        one["area_breakdown_mm2"]["adc"] * sum(math.ceil(p / 8) for p in pairs) / sum(pairs))
    assert eight["latency_breakdown_s"]["analog_s"] > one["latency_breakdown_s"]["analog_s"]
    assert eight["energy_breakdown_j"]["adc"] == pytest.approx(one["energy_breakdown_j"]["adc"])
    # the readout: two 0.5 pF MIM hold capacitors and four switches per output, two reset switches per ADC
    ro = json.loads((out / "manifest.json").read_text())["readout"]["circuit"]
    want = sum(p * (2 * ro["hold_cap_f"] / ro["cap_f_per_um2"] + 4 * ro["switch_area_um2"])
               + math.ceil(p / 8) * 2 * ro["switch_area_um2"] for p in pairs)
    assert eight["area_breakdown_mm2"]["readout"] == pytest.approx(want * 1e-6) and one["area_breakdown_mm2"]["readout"] == 0
    assert 0 < eight["energy_breakdown_j"]["readout"] < 0.05 * eight["energy_breakdown_j"]["adc"]
    assert eight["area_mm2"] < one["area_mm2"] / 3


def test_report_bad_input(designs, digits, tmp_path):
    out = designs / "mlp"
    x = digits / "x.npy"
    assert_clean_error(amsc("report", out, "--inputs", x, "--samples", "100000"), "--samples 100000")
    assert_clean_error(amsc("report", out, "--inputs", digits / "y.npy"), "y.npy")
    assert_clean_error(amsc("report", tmp_path / "nothing"), "nothing")
    # a design compiled before the manifest carried the PDK's figures: say what to recompile
    import shutil

    old = tmp_path / "old"
    shutil.copytree(out, old)
    m = json.loads((old / "manifest.json").read_text())
    del m["ppa"]
    (old / "manifest.json").write_text(json.dumps(m))
    assert_clean_error(amsc("report", old), "recompile", "amsc compile model.onnx")
    m = json.loads((out / "manifest.json").read_text())
    del m["rtl_datapath"]["cycles_per_input"]      # from an amsc before the clock count
    (old / "manifest.json").write_text(json.dumps(m))
    assert_clean_error(amsc("report", old), "clock count", "recompile")
    # a manifest that no longer matches its files
    tampered = tmp_path / "tampered"
    shutil.copytree(out, tampered)
    (tampered / "spice" / "tb" / "fc1_r0c0_tb.sp").write_text("* changed\n")
    assert_clean_error(amsc("report", tampered), "fc1_r0c0_tb.sp", "sha256")


def test_energy_check_on_sky130_1t1r(tmp_path, digits):
    """1T1R tiles: the ohmic V^2 G estimate against ngspice with the sky130 access transistors and the
    RRAM's sinh read nonlinearity (about +11 % current at 0.2 V, partly cancelled by the transistor's
    drop): the two differ where the reads reach a large voltage, and agree within 10 % on every tile."""
    require_tool("libngspice")
    out = tmp_path / "sky"
    r = amsc("compile", MLP / "model.onnx", "-o", out, "--pdk", "sky130_1t1r")
    assert r.returncode == 0, r.stderr
    rep, _ = _report(out, "--inputs", digits / "x.npy", "--samples", "2", "--no-synth")
    for t in rep["energy_check"]["tiles"]:
        assert t["rel_err"] <= 0.10, t
    # the first layer's reads reach 0.2 V, where the nonlinearity shows
    assert rep["energy_check"]["max_tile_rel_err"] > 0.01
    assert rep["settling"]["tia"] == "the PDK's op-amp TIA"
    assert_clean_error(amsc("report", out, "--engine", "mna"), "1T1R")


def test_compensated_tiles_measured_at_their_dac_trims(tmp_path, digits):
    """A --compensate-ir tile's word lines are driven by its DAC trims inside the subckt: the energy
    is measured there, the same in both engines, and the estimate (with the trims) stays within 10 %."""
    require_tool("libngspice")
    out = tmp_path / "comp"
    assert amsc("compile", MLP / "model.onnx", "-o", out, "--parasitics", "--tile", "32x32",
                "--compensate-ir").returncode == 0
    ng, _ = _report(out, "--inputs", digits / "x.npy", "--samples", "2", "--no-synth")
    mna, _ = _report(out, "--inputs", digits / "x.npy", "--samples", "2", "--no-synth", "--engine", "mna")
    for a, b in zip(ng["energy_check"]["tiles"], mna["energy_check"]["tiles"]):
        assert a["crossbar_spice_j"] == pytest.approx(b["crossbar_spice_j"], rel=1e-5) and a["crossbar_spice_j"] > 0
        assert a["rel_err"] < 0.10, a


def test_maps_in_sram_macros_are_counted_at_the_macros_figures(tmp_path):
    """fire_net (a torch.onnx export) at --map-memory auto holds its image and first map in SRAM
    macros: the report counts each macro's cited area and leakage (over an input's interval) and
    prices those maps' accesses by ppa.sram_access_pj, the others' by the buffer model; with
    --map-memory flops the same chip has no macro and the same operations."""
    require_tool("libngspice")
    from compiler.eval.ppa import sram_access_pj

    fire = MLP.parents[1] / "tests" / "data" / "exported" / "fire_net.onnx"
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).uniform(0, 1, (2, 3, 32, 32)))
    reps, errs = {}, {}
    for mode in ("auto", "flops"):
        out = tmp_path / mode
        assert amsc("compile", fire, "-o", out, "--map-memory", mode).returncode == 0
        reps[mode], errs[mode] = _report(out, "--inputs", x, "--no-synth", "--engine", "mna")
    rep, flops = reps["auto"], reps["flops"]
    mem = rep["memory"]
    srams = json.loads((tmp_path / "auto" / "manifest.json").read_text())["rtl_datapath"]["srams"]
    assert mem["sram_maps"] == srams and set(srams) == {"in", "l1"} and mem["sram_macros"] == 16
    sm = mem["sram"]
    assert rep["area_breakdown_mm2"]["sram"] == pytest.approx(16 * sm["area_um2"] * 1e-6)
    assert rep["energy_breakdown_j"]["sram_leakage"] == pytest.approx(16 * sm["leak_uw"] * 1e-6
                                                                      * rep["pipeline"]["interval_s"])
    acc = rep["digital"]["ops"]["sram_map_accesses"]
    assert set(acc) == {"in", "l1"} and acc["in"] > 3 * 32 * 32      # the receive, and every gather's read
    wire_c = 2.0e-16
    sram_j = 1e-12 * sum(n * sram_access_pj(srams[k], sm, wire_c) for k, n in acc.items())
    assert rep["energy_breakdown_j"]["buffers"] > sram_j > 0
    assert "sram" not in flops["area_breakdown_mm2"] and flops["memory"]["sram_macros"] == 0
    assert flops["digital"]["ops"]["sram_bytes"] > rep["digital"]["ops"]["sram_bytes"]
    assert flops["rtl_cycles_per_input"] == rep["rtl_cycles_per_input"]     # no clock added by a macro
    assert "2 feature map(s) in 16 SRAM macros" in errs["auto"] and "SRAM" not in errs["flops"]
