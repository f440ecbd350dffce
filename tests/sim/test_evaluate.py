"""amsc evaluate: accuracy of the compiled network through the simulated chip (float, ideal tiles,
the circuit engines), per-layer errors, Monte-Carlo programming error, reports and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import MLP, amsc, require_tool
from helpers import assert_clean_error

CNN = MLP.parent / "cnn_digits"


@pytest.fixture(scope="module")
def designs(tmp_path_factory):
    d = tmp_path_factory.mktemp("ev")
    for name, model in (("mlp", MLP / "model.onnx"), ("cnn", CNN / "model.onnx")):
        r = amsc("compile", model, "-o", d / name)
        assert r.returncode == 0, r.stderr
    return d


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_ngspice_accuracy_within_half_a_point_of_float(designs, digits, name):
    """Generic PDK, ideal wires, 8-bit ADC: on the whole held-out digits split, the chip with every
    crossbar read solved by ngspice keeps the float model's accuracy within 0.5 percentage points."""
    require_tool("libngspice")
    out = designs / name
    r = amsc("evaluate", out, "--inputs", digits / "x.npy", "--labels", digits / "y.npy", "--engine", "ngspice")
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "eval.json").read_text())
    assert rep["runs"] == ["float", "ideal", "ngspice"] and rep["samples"] == 450
    y = np.load(digits / "y.npy")
    assert rep["float"]["accuracy"] > 0.95 and rep["float"]["top1_agreement"] == 1.0
    assert abs(rep["ngspice"]["accuracy"] - rep["float"]["accuracy"]) <= 0.005, rep
    # with ideal wires the circuit's currents equal the conductance sums: ngspice's codes are the
    # ideal tiles' codes, up to one code where a value sits on a rounding boundary
    for layer, e in rep["ngspice"]["per_layer"].items():
        assert e["max_codes"] <= 1.0 + 1e-9, (layer, e)
    assert rep["ngspice"]["snr_db"] > 15
    # the float run is onnxruntime on the source model: its accuracy is computed here independently
    from compiler.eval.run import Design

    d = Design(out)
    ref = d.float_reference(d.load_inputs(digits / "x.npy"))[0]
    assert rep["float"]["accuracy"] == pytest.approx(float(np.mean(ref.argmax(1) == y)))
    assert (out / "eval.html").is_file() and (out / "eval-report" / "per_layer_hist.png").is_file()
    assert "accuracy on the simulated chip" in (out / "eval.html").read_text()


def test_parasitics_show_as_per_layer_error_in_mna(tmp_path, digits):
    """With the 1-ohm wire mesh the circuit engine sees IR drop: the per-layer error against ideal
    tiles is no longer zero, and is reported per layer."""
    out = tmp_path / "par"
    assert amsc("compile", MLP / "model.onnx", "-o", out, "--parasitics", "--tile", "32x32").returncode == 0
    r = amsc("evaluate", out, "--inputs", digits / "x.npy", "--labels", digits / "y.npy", "--engine", "mna",
             "--samples", "120")
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "eval.json").read_text())
    assert rep["samples"] == 120 and set(rep["mna"]["per_layer"]) == {"fc1", "fc2"}
    assert all(e["rms_rel"] > 0 for e in rep["mna"]["per_layer"].values())
    assert all(e["rms_rel"] == 0 for e in rep["ideal"]["per_layer"].values())


def test_monte_carlo_programming_error(designs, digits):
    out = designs / "mlp"
    args = ("evaluate", out, "--inputs", digits / "x.npy", "--labels", digits / "y.npy", "--samples", "200",
            "--mc", "4", "--seed", "3")
    # sigma 0: every sample is the ideal chip, through the perturbed-conductance path
    assert amsc(*args, "--sigma", "0").returncode == 0
    rep = json.loads((out / "eval.json").read_text())
    assert rep["mc"]["std"] == 0 and rep["mc"]["mean"] == rep["ideal"]["accuracy"]
    r = amsc(*args, "--sigma", "0.3")
    assert r.returncode == 0 and "monte carlo, 4 samples" in r.stderr, r.stderr
    rep = json.loads((out / "eval.json").read_text())
    mc = rep["mc"]
    assert len(mc["samples"]) == 4 and mc["mean"] < rep["ideal"]["accuracy"] and mc["std"] > 0
    curve = mc["sigma_curve"]
    assert [p["sigma"] for p in curve] == pytest.approx([0, 0.15, 0.3, 0.6, 1.2])
    assert curve[0]["std"] == 0 and curve[-1]["mean"] < curve[0]["mean"]
    # seeded: the same call gives the same report
    amsc(*args, "--sigma", "0.3")
    again = json.loads((out / "eval.json").read_text())
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in rep.items() if k != "seconds"}
    assert (out / "eval-report" / "sigma.png").is_file() and (out / "eval-report" / "mc.png").is_file()


def test_evaluate_bad_input(designs, digits, tmp_path):
    out = designs / "mlp"
    x, y = digits / "x.npy", digits / "y.npy"
    np.save(tmp_path / "y_short.npy", np.load(y)[:10])
    assert_clean_error(amsc("evaluate", out, "--inputs", x, "--labels", tmp_path / "y_short.npy"),
                       "y_short.npy", "10 labels for 450 inputs")
    assert_clean_error(amsc("evaluate", out, "--inputs", x, "--samples", "451"), "x.npy", "--samples 451")
    assert_clean_error(amsc("evaluate", out, "--inputs", x, "--sigma", "-0.1", "--mc", "2"), "--sigma", ">= 0")
    assert_clean_error(amsc("evaluate", out, "--inputs", x, "--mc", "0"), "--mc")
    assert_clean_error(amsc("evaluate", out, "--inputs", x, "--labels", y, "--mc", "2"), "--sigma",
                       "declares no programming sigma")
    np.save(tmp_path / "wrong.npy", np.zeros((3, 7)))
    assert_clean_error(amsc("evaluate", out, "--inputs", tmp_path / "wrong.npy"), "wrong.npy")
    # an output folder whose files no longer match its manifest
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    lv = next((bad / "tiles").glob("*_lpos.npy"))
    a = np.load(lv)
    a[0, 0] ^= 1
    np.save(lv, a)
    assert_clean_error(amsc("evaluate", bad, "--inputs", x), lv.name)


def test_sweeps_recompile_the_source(designs, digits):
    """--sweep recompiles OUT/source/ (with the calibration inputs it was compiled with) with one
    option changed: at the design's own ADC and weight bits it reproduces the ideal run exactly."""
    out = designs / "mlp"
    m = json.loads((out / "manifest.json").read_text())
    assert m["source"]["calibration"] == "source/calib.npy" and (out / "source" / "calib.npy").is_file()
    r = amsc("evaluate", out, "--inputs", digits / "x.npy", "--labels", digits / "y.npy", "--samples", "150",
             "--sweep")
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "eval.json").read_text())
    sw = {k: {p["value"]: p for p in pts} for k, pts in rep["sweeps"].items()}
    assert sw["adc_bits"][8]["accuracy"] == rep["ideal"]["accuracy"]
    assert sw["weight_bits"][4]["accuracy"] == rep["ideal"]["accuracy"]
    assert sw["adc_bits"][4]["accuracy"] < sw["adc_bits"][8]["accuracy"]
    assert sw["weight_bits"][2]["accuracy"] < sw["weight_bits"][4]["accuracy"]
    assert {p["engine"] for p in rep["sweeps"]["wire_r"]} == {"mna"}
    for k in ("adc_bits", "weight_bits", "wire_r"):
        assert (out / "eval-report" / f"sweep_{k}.png").is_file()


def test_wire_r_needs_parasitics(tmp_path):
    r = amsc("compile", MLP / "model.onnx", "-o", tmp_path / "o", "--wire-r", "2")
    assert_clean_error(r, "--wire-r", "--parasitics", out=tmp_path / "o")
