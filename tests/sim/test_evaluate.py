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
    assert r.returncode == 0 and "monte carlo, 4 chips" in r.stderr, r.stderr
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
    assert_clean_error(amsc("evaluate", out, "--inputs", x, "--sigma", "-0.1", "--mc", "2"), "--sigma", "must be in 0.0..10.0")
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
    # every wire resistance also compiled with --compensate-ir: the outputs move back toward the
    # ideal-wire chip's, and the uncompensated error grows with the resistance
    errs = [p["err_vs_ideal"] for p in rep["sweeps"]["wire_r"]]
    assert errs == sorted(errs) and errs[0] > 0
    for p in rep["sweeps"]["wire_r"]:
        assert p["compensated"]["err_vs_ideal"] < p["err_vs_ideal"], p
        assert p["recovered_error"] == pytest.approx(1 - p["compensated"]["err_vs_ideal"] / p["err_vs_ideal"])
    assert "--compensate-ir" in r.stderr
    for k in ("adc_bits", "weight_bits", "wire_r"):
        assert (out / "eval-report" / f"sweep_{k}.png").is_file()


def test_wire_r_needs_parasitics(tmp_path):
    r = amsc("compile", MLP / "model.onnx", "-o", tmp_path / "o", "--wire-r", "2")
    assert_clean_error(r, "--wire-r", "--parasitics", out=tmp_path / "o")


@pytest.fixture(scope="module")
def sky(tmp_path_factory):
    out = tmp_path_factory.mktemp("sky") / "mlp"
    r = amsc("compile", MLP / "model.onnx", "-o", out, "--pdk", "sky130_1t1r")
    assert r.returncode == 0, r.stderr
    return out


def test_monte_carlo_from_the_pdk_device_model(sky, digits):
    """sky130_1t1r's variation section: programming error, read noise, stuck-at faults and drift,
    with and without write-verify; write-verify finds the stuck cells and keeps their pairs' weights."""
    r = amsc("evaluate", sky, "--inputs", digits / "x.npy", "--labels", digits / "y.npy", "--samples", "200",
             "--mc", "6", "--read-time", "86400")
    assert r.returncode == 0, r.stderr
    mc = json.loads((sky / "eval.json").read_text())["mc"]
    from compiler.pdk import load_pdk

    var = load_pdk("sky130_1t1r").variation
    wv = var["write_verify"]
    assert mc["mode"] == "write_verify" and set(mc["modes"]) == {"write_verify", "one_shot"}
    assert mc["modes"]["one_shot"]["sigma"] == var["program_sigma"]
    assert mc["modes"]["write_verify"]["sigma"] == pytest.approx(
        max(var["program_sigma"] * wv["sigma_factor"] ** wv["iterations"], wv["sigma_floor"]))
    # where the compiler put the weights, undetected stuck cells ruin one-shot chips and write-verify's
    # pair compensation recovers most of it; tested chips, placed around their stuck cells (then
    # calibrated, the default), keep more
    abl = mc["remedies"]["ablation"]
    assert abl["write_verify"]["none"]["mean"] > abl["one_shot"]["none"]["mean"] + 0.2
    assert mc["remedies"]["default"] == "calibration"
    assert mc["modes"]["write_verify"]["mean"] == abl["write_verify"]["calibration"]["mean"]
    for mode in ("write_verify", "one_shot"):
        assert abl[mode]["mapping"]["mean"] > abl[mode]["none"]["mean"]
    assert set(mc["effects"]) == {"programming", "read_noise", "stuck_at", "drift"}
    assert mc["effects"]["stuck_at"]["mean"] < mc["effects"]["programming"]["mean"]
    assert mc["device"]["drift_factor"] == pytest.approx(86400 ** -var["drift_nu"])
    assert mc["write_verify"]["pulses_per_weight"] == 2 * wv["iterations"]
    assert mc["write_verify"]["energy_per_weight_j"] == pytest.approx(2 * wv["iterations"] * wv["pulse_energy_pj"] * 1e-12)
    assert "each alone" in r.stderr and "write-verify" in r.stderr
    r = amsc("evaluate", sky, "--inputs", digits / "x.npy", "--labels", digits / "y.npy", "--samples", "50",
             "--mc", "2", "--no-write-verify")
    assert r.returncode == 0, r.stderr
    assert json.loads((sky / "eval.json").read_text())["mc"]["mode"] == "one_shot"


def test_device_model_draws(sky):
    """The draws themselves: stuck-at rates, pair compensation, drift and the read-noise variance."""
    from compiler.eval.evaluate import device_model, draw_chip
    from compiler.eval.run import Design

    d = Design(sky)
    pdk = d.manifest["pdk"]
    g_min, g_max = pdk["g_min"], pdk["g_max"]
    var = {**device_model(d.manifest, 0.0, None), "stuck_hrs_rate": 0.2, "stuck_lrs_rate": 0.3}
    chip = draw_chip(d, var, 0.0, np.random.default_rng(1))
    cells = np.concatenate([g.ravel() for pair in chip.values() for g in pair])
    g_step = (g_max - g_min) / (pdk["levels"] - 1)
    targets = np.concatenate([(g_min + d.ir.g.nodes[n]["params"][k] * g_step).ravel()
                              for n in chip for k in ("lpos", "lneg")])
    at_max = np.isclose(cells, g_max) & ~np.isclose(targets, g_max)
    assert abs(at_max.mean() - 0.3 * np.mean(~np.isclose(targets, g_max))) < 0.02
    # write-verify: a pair with one stuck cell keeps its difference wherever the partner can reach it
    stuck: dict = {}
    chip = draw_chip(d, var, 0.0, np.random.default_rng(1), verify=True, stuck_out=stuck)
    checked = 0
    for n, (gp, gn) in chip.items():
        p = d.ir.g.nodes[n]["params"]
        want = (g_min + p["lpos"] * g_step) - (g_min + p["lneg"] * g_step)
        sp, sn = ~np.isnan(stuck[n][0]), ~np.isnan(stuck[n][1])
        assert np.allclose(gp[sp], stuck[n][0][sp]) and np.allclose(gn[sn], stuck[n][1][sn])
        partner = np.where(sp, stuck[n][0] - want, stuck[n][1] + want)
        fixable = (sp ^ sn) & (partner >= g_min) & (partner <= g_max)
        assert np.allclose((gp - gn)[fixable], want[fixable], rtol=0, atol=1e-15), n
        assert np.allclose((gp - gn)[~sp & ~sn], want[~sp & ~sn], rtol=0, atol=1e-15), n
        checked += int(fixable.sum())
    assert checked > 100
    # drift scales every conductance
    v2 = {**device_model(d.manifest, 0.0, 1e4), "stuck_hrs_rate": 0.0, "stuck_lrs_rate": 0.0}
    chip = draw_chip(d, v2, 0.0, np.random.default_rng(1))
    n0 = next(iter(chip))
    assert np.allclose(chip[n0][0], (g_min + d.ir.g.nodes[n0]["params"]["lpos"] * g_step) * 1e4 ** -v2["drift_nu"])
    # read noise: each output's variance is sum_i x_i^2 sigma^2 (G+^2 + G-^2)
    rng = np.random.default_rng(0)
    gp, gn = rng.uniform(1e-6, 1e-4, (16, 4)), rng.uniform(1e-6, 1e-4, (16, 4))
    xs = np.tile(rng.uniform(0, 1, (1, 16)), (20000, 1))
    y = Design._read(xs, gp, gn, (0.05, rng))
    want = np.sqrt((xs[0] ** 2) @ (0.05 ** 2 * (gp ** 2 + gn ** 2)))
    assert np.allclose(y.std(0), want, rtol=0.03) and np.allclose(y.mean(0), xs[0] @ (gp - gn), atol=4 * want / 100)


def test_variation_bad_input(sky, designs, digits):
    x = digits / "x.npy"
    assert_clean_error(amsc("evaluate", sky, "--inputs", x, "--mc", "2", "--read-time", "0"), "--read-time")
    assert_clean_error(amsc("evaluate", designs / "mlp", "--inputs", x, "--labels", digits / "y.npy", "--mc", "2",
                            "--sigma", "0.1", "--write-verify"), "--write-verify", "no write-verify")
