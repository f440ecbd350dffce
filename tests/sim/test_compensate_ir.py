"""compile --compensate-ir: tiles with the wire mesh pre-distorted and trimmed so that they compute
their ideal-wire golden model, verified in ngspice and MNA at the normal 1 LSB tolerance."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import MLP, amsc, require_tool
from helpers import assert_clean_error


def _dense_128(d):
    """The verification benchmark's layer: 128 inputs, 64 outputs, one 128x128 tile."""
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / "w.npy", np.random.default_rng(128).normal(size=(64, 128)))
    (d / "m.yaml").write_text("amsc_graph: 1\ninputs: [{name: x, shape: [128]}]\n"
                              "nodes: [{name: fc, op: dense, weight: {file: w.npy}}]\noutputs: [fc]\n")
    return d / "m.yaml"


@pytest.fixture(scope="module")
def tile128(tmp_path_factory):
    d = tmp_path_factory.mktemp("c128")
    model = _dense_128(d)
    for name, extra in (("plain", ()), ("comp", ("--compensate-ir",))):
        r = amsc("compile", model, "-o", d / name, "--tile", "128x128", "--parasitics", *extra)
        assert r.returncode == 0, r.stderr
    return d


def test_mesh_model_equals_the_emitted_netlists(tile128):
    """The mesh model the pass fits on is the netlist: the MNA of the emitted testbench (cells,
    wire segments, and for the compensated tile its DAC trims and trimmed TIAs) gives the currents
    mesh_transfer predicts, to 1e-9 of the largest."""
    import scipy.sparse.linalg as spla

    from compiler.passes.compensate_ir import _diff
    from compiler.sim.mna import assemble, mesh_transfer
    from compiler.sim.netlist import read_deck

    v = np.random.default_rng(0).uniform(0, 0.2, size=(8, 128))
    for name in ("plain", "comp"):
        out = tile128 / name
        t = json.loads((out / "manifest.json").read_text())["tiles"][0]
        c = assemble(read_deck(out / t["testbench"]), "tb")
        x = spla.splu(c.A.tocsc()).solve(c.rhs([f"VIN_{i}" for i in range(128)], v, "tb"))
        got = -x[c.probe_rows([f"out_{j}" for j in range(64)], "tb"), :].T / t["tia"]["transimpedance_ohm"]
        arr = {k: np.load(out / p) for k, p in t["conductances"].items()}
        if name == "comp":
            g = np.stack([arr["gpos_comp"], arr["gneg_comp"]], -1).reshape(128, 128)
            want = (v * arr["dac_gain"]) @ (_diff(mesh_transfer(g, 1.0, 1.0)) * arr["tia_gain"])
        else:
            g = np.stack([arr["gpos"], arr["gneg"]], -1).reshape(128, 128)
            want = v @ _diff(mesh_transfer(g, 1.0, 1.0))
        assert np.max(np.abs(got - want)) <= 1e-9 * np.max(np.abs(want)), name


def test_128x128_tile_with_1_ohm_mesh_verifies_at_1_lsb(tile128):
    """Without compensation the IR drop is several LSB; with it the same tile passes at the normal
    1 LSB tolerance against the ideal-wire golden model, in MNA and in ngspice (1024 vectors, two seeds)."""
    require_tool("libngspice")
    r = amsc("verify", tile128 / "plain", "--engine", "mna", "--vectors", "1024")
    assert r.returncode == 1, r.stderr
    plain = json.loads((tile128 / "plain" / "verify.json").read_text())["blocks"][0]
    assert plain["max_abs_err"] > 3 * plain["lsb"]
    m = json.loads((tile128 / "comp" / "manifest.json").read_text())
    comp = m["tiles"][0]["compensation"]
    assert comp["inputs"] == "unipolar" and 0 < comp["levels_changed"] < 0.2 and comp["predicted_rms_lsb"] < 0.3
    assert m["options"]["compensate_ir"] is True
    for args in (("--engine", "mna", "--vectors", "1024"), ("--vectors", "1024", "--seed", "5")):
        r = amsc("verify", tile128 / "comp", *args, "--no-cache")
        assert r.returncode == 0, r.stderr
        b = json.loads((tile128 / "comp" / "verify.json").read_text())["blocks"][0]
        assert b["max_abs_err"] < 0.9 * b["lsb"] and b["within_lsb"] == 1.0, b
    # the golden model is still the ideal-wire target: the tile's target levels did not move
    plain_t, comp_t = (json.loads((tile128 / k / "manifest.json").read_text())["tiles"][0] for k in ("plain", "comp"))
    for key in ("lpos", "lneg"):
        np.testing.assert_array_equal(np.load(tile128 / "plain" / plain_t["conductances"][key]),
                                      np.load(tile128 / "comp" / comp_t["conductances"][key]))


def test_compensated_digits_mlp_verifies_and_runs(tmp_path):
    """mlp_digits on 32x32 tiles with the mesh: a tile fails at 1 LSB without compensation, every
    tile passes with it, and the compensated design runs end to end through its netlists."""
    out, plain = tmp_path / "comp", tmp_path / "plain"
    assert amsc("compile", MLP / "model.onnx", "-o", plain, "--tile", "32x32", "--parasitics").returncode == 0
    assert amsc("verify", plain, "--engine", "mna", "--vectors", "512").returncode == 1
    r = amsc("compile", MLP / "model.onnx", "-o", out, "--tile", "32x32", "--parasitics", "--compensate-ir")
    assert r.returncode == 0, r.stderr
    r = amsc("verify", out, "--engine", "mna", "--vectors", "512")
    assert r.returncode == 0, r.stderr
    np.save(tmp_path / "x.npy", np.random.default_rng(1).uniform(0, 1, size=(20, 64)))
    r = amsc("run", out, "--inputs", tmp_path / "x.npy", "--engine", "mna")
    assert r.returncode == 0 and "top-1 agreement" in r.stderr, r.stderr


def test_chip_mesh_is_in_the_placement_order(tmp_path):
    """A design programmed for one chip with --parasitics: each tile's netlist holds the cells where
    the chip's placement put them, on the physical word and bit lines up to the last one it uses
    (spares included; unused cells at G_min or their stuck conductance, undriven word lines at 0 V,
    unread bit lines at ground). The MNA of every emitted testbench is the compensation's mesh model
    of that physical array, the stuck cells keep their measured conductances, and the chip verifies
    at 1 LSB against its own golden model."""
    import scipy.sparse.linalg as spla

    from compiler.eval.run import Design
    from compiler.passes.compensate_ir import Wires, _diff
    from compiler.sim.mna import assemble
    from compiler.sim.netlist import read_deck

    out, chip, st = tmp_path / "d", tmp_path / "chip", tmp_path / "chip.npz"
    r = amsc("compile", MLP / "model.onnx", "-o", out, "--tile", "64x64", "--parasitics", "--compensate-ir",
             "--spare-rows", "4", "--spare-cols", "2")
    assert r.returncode == 0, r.stderr
    assert amsc("chip-state", out, "--seed", "3", "--stuck-rates", "0.03", "0.08", "-o", st).returncode == 0
    r = amsc("program", out, "--chip-state", st, "-o", chip)
    assert r.returncode == 0, r.stderr
    m = json.loads((chip / "manifest.json").read_text())
    d = Design(chip)
    moved = 0
    for t in m["tiles"]:
        node = d.ir.g.nodes[t["name"]]
        p, a = node["params"], node["attrs"]
        rows, cols = t["placement"]["rows"], t["placement"]["cols"]
        moved += rows != sorted(rows) or cols != sorted(cols)
        R, P = max(rows) + 1, max(cols) + 1
        deck = read_deck(chip / t["testbench"])
        assert f"RW_{R - 1}_0 " in deck and f"RW_{R}_0 " not in deck and f"b_{2 * P - 1}_0 " in deck
        assert f"b_{2 * P}_0 " not in deck
        stuck = p["stuck"] != 0
        assert np.array_equal(p["gpos_comp"][stuck[0]], p["gpos"][stuck[0]])
        assert np.array_equal(p["gneg_comp"][stuck[1]], p["gneg"][stuck[1]])
        n_in, n_out = p["gpos"].shape
        v = np.random.default_rng(0).uniform(0, 0.2, size=(6, n_in))
        c = assemble(deck, "tb")
        x = spla.splu(c.A.tocsc()).solve(c.rhs([f"VIN_{i}" for i in range(n_in)], v, "tb"))
        got = -x[c.probe_rows([f"out_{j}" for j in range(n_out)], "tb"), :].T / t["tia"]["transimpedance_ohm"]
        g = np.stack([p["gpos_comp"], p["gneg_comp"]], -1).reshape(n_in, 2 * n_out)
        want = (v * p["dac_gain"]) @ (_diff(Wires(p, a, a["parasitics"]).transfer(g)) * p["tia_gain"])
        assert np.max(np.abs(got - want)) <= 1e-9 * np.max(np.abs(want)), t["name"]
    assert moved, "the chip's placement moved no row or column: the test shows nothing"
    r = amsc("verify", chip, "--engine", "mna", "--vectors", "512")
    assert r.returncode == 0, r.stderr
    assert all(b["max_abs_err"] < b["lsb"] for b in json.loads((chip / "verify.json").read_text())["blocks"]
               if "lsb" in b)


def test_compensate_ir_bad_input(tmp_path):
    r = amsc("compile", MLP / "model.onnx", "-o", tmp_path / "a", "--compensate-ir")
    assert_clean_error(r, "--compensate-ir", "--parasitics", out=tmp_path / "a")
    # 1R cells read by an op-amp TIA: not modelled (a copy of the generic PDK with one)
    pdk = tmp_path / "opamp"
    src = MLP.parents[1] / "pdk_templates" / "generic"
    pdk.mkdir()
    for f in src.iterdir():
        (pdk / f.name).write_text(f.read_text())
    (pdk / "pdk.yaml").write_text((src / "pdk.yaml").read_text().replace(
        "tia:\n  v_out_fs: 1.0", "tia:\n  type: opamp\n  gain: 1.0e4\n  gbw_hz: 1.0e8\n  v_out_fs: 1.0", 1))
    r = amsc("compile", MLP / "model.onnx", "-o", tmp_path / "b", "--pdk", pdk, "--parasitics", "--compensate-ir")
    assert_clean_error(r, "--compensate-ir", "opamp", out=tmp_path / "b")


def _mlp_100_70_5(path):
    """A held-out 100-70-5 ReLU MLP with seeded random weights (the issue's sky130_1t1r case)."""
    from onnx import helper

    from helpers import save_model

    rng = np.random.default_rng(7)
    w1, b1 = rng.normal(0, np.sqrt(2 / 100), (100, 70)), rng.normal(0, 0.1, 70)
    w2, b2 = rng.normal(0, np.sqrt(2 / 70), (70, 5)), rng.normal(0, 0.1, 5)
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"])]
    return save_model(path, nodes, [("x", ["N", 100])], [("y", ["N", 5])],
                      [("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)])


def test_compensated_1t1r_mlp_verifies_at_one_lsb(tmp_path):
    """sky130_1t1r with the 1-ohm mesh: a 100-70-5 MLP fails at 1 LSB in ngspice (IR drop through the
    access transistors and the sinh cells), and passes every tile with --compensate-ir, whose
    linearized cell model the nonlinear ngspice solve confirms."""
    require_tool("libngspice")
    model = _mlp_100_70_5(tmp_path / "m.onnx")
    res = {}
    for name, extra in (("plain", ()), ("comp", ("--compensate-ir",))):
        out = tmp_path / name
        r = amsc("compile", model, "-o", out, "--pdk", "sky130_1t1r", "--parasitics", *extra)
        assert r.returncode == 0, r.stderr
        amsc("verify", out, "--jobs", "2")
        res[name] = json.loads((out / "verify.json").read_text())
    assert not res["plain"]["passed"] and res["comp"]["passed"], res["comp"]
    worst = max(b["max_abs_err"] / b["lsb"] for b in res["comp"]["blocks"])
    assert worst < 0.5, worst
    m = json.loads((tmp_path / "comp" / "manifest.json").read_text())
    assert all(t["compensation"]["model"].startswith("1T1R") for t in m["tiles"])
    assert "EDAC_0" in (tmp_path / "comp" / m["tiles"][0]["subckt_file"]).read_text()


def test_compensation_recovers_the_accuracy_parasitics_cost(tmp_path, digits):
    """mlp_digits with a 16-ohm mesh loses about 3 points on the held-out digits through the MNA
    engine; --compensate-ir recovers at least 90 % of them (the issue's target)."""
    acc = {}
    for name, extra in (("plain", ()), ("comp", ("--compensate-ir",))):
        out = tmp_path / name
        r = amsc("compile", MLP / "model.onnx", "-o", out, "--parasitics", "--wire-r", "16", *extra)
        assert r.returncode == 0, r.stderr
        r = amsc("evaluate", out, "--inputs", digits / "x.npy", "--labels", digits / "y.npy", "--engine", "mna")
        assert r.returncode == 0, r.stderr
        rep = json.loads((out / "eval.json").read_text())
        acc[name], acc["ideal"] = rep["mna"]["accuracy"], rep["ideal"]["accuracy"]
    lost = acc["ideal"] - acc["plain"]
    assert lost > 0.02, acc
    assert (acc["comp"] - acc["plain"]) / lost >= 0.9, acc
