"""Noise in continuous-time models (``noise: {sigma}`` in amsc_dynamics): each state's integrator
takes sigma xi(t) from a seeded white-noise file; verify follows the deck's own realization
pathwise and checks the samples in distribution (a linear model's stationary covariance against
the Lyapunov equation, a nonlinear sampler's energy distance to Euler-Maruyama runs)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import ROOT, amsc, require_tool
from helpers import assert_clean_error

#: a 4-state Ornstein-Uhlenbeck system: a stable linear model with noise on every state
OU = """amsc_dynamics: 1
name: ou4
states: 4
activation: identity
tau: [1.0, 1.0, 2.0, 1.0]
W: [[0.0, 0.3, 0.0, -0.2], [-0.3, 0.0, 0.2, 0.0], [0.0, -0.2, 0.0, 0.3], [0.2, 0.0, -0.3, -0.5]]
x0: [0.5, -0.5, 0.0, 0.2]
t_end: 600
noise: {sigma: [1.0, 0.5, 0.8, 1.2]}
"""

#: a Langevin sampler of a Boltzmann-style network: tau dx/dt = -x + W tanh(x) + sigma xi
LANGEVIN = """amsc_dynamics: 1
name: langevin2
states: 2
activation: tanh
W: [[1.2, 0.4], [0.4, 1.2]]
x0: [0.0, 0.0]
t_end: 300
noise: {sigma: 0.8}
"""


@pytest.fixture(scope="module")
def ou(tmp_path_factory):
    d = tmp_path_factory.mktemp("ou")
    (d / "ou.yaml").write_text(OU)
    r = amsc("compile", d / "ou.yaml", "-o", d / "out")
    assert r.returncode == 0, r.stderr
    return d


def test_ou_stationary_covariance_in_ngspice(ou):
    """The issue's target: the 4-state OU system's stationary covariance from the circuit's samples
    within 3 standard errors of the Lyapunov solution, and under 0.15."""
    require_tool("libngspice")
    r = amsc("verify", ou / "out")
    assert r.returncode == 0, r.stderr
    rep = json.loads((ou / "out" / "verify.json").read_text())
    dist = rep["distribution"]
    assert dist["kind"] == "linear" and dist["passed"]
    assert rep["stationary_cov_rel_err"] == dist["stationary_cov_rel_err"] < 0.15
    assert dist["stationary_cov_rel_err"] <= 3 * dist["stationary_cov_std_err"]
    assert rep["samples"] > 10_000 and rep["burn_in"] > 0 and dist["effective_samples"] > 200
    # the circuit follows its own noise realization (the same seeded samples) to well within tolerance
    assert rep["passed"] and rep["max_err_over_fs"] < 1e-3
    page = (ou / "out" / "verify.html").read_text()
    assert "against its noise realization &mdash; PASS" in page and "stationary covariance off the exact" in page
    assert "stationary covariance" in r.stderr
    # the exact covariance solves the Lyapunov equation of A = (W - I) / tau, B = diag(sigma / tau)
    S = np.array(dist["exact_cov"])
    W = np.array([[0.0, 0.3, 0.0, -0.2], [-0.3, 0.0, 0.2, 0.0], [0.0, -0.2, 0.0, 0.3], [0.2, 0.0, -0.3, -0.5]])
    tau, sig = np.array([1.0, 1.0, 2.0, 1.0]), np.array([1.0, 0.5, 0.8, 1.2])
    A = (W - np.eye(4)) / tau[:, None]
    man = json.loads((ou / "out" / "manifest.json").read_text())
    Aq = (np.load(ou / "out" / "arrays" / "W_levels.npy") * man["dynamics"]["layers"]["W"]["w_step"] - np.eye(4)) \
        / tau[:, None]
    assert np.allclose(Aq @ S + S @ Aq.T + np.diag((sig / tau) ** 2), 0, atol=1e-10)
    assert np.allclose(Aq, A, atol=0.05)


def test_noise_is_seeded_and_deterministic(ou, tmp_path):
    r = amsc("compile", ou / "ou.yaml", "-o", tmp_path / "again")
    assert r.returncode == 0, r.stderr
    a = (ou / "out" / "spice" / "noise.txt").read_bytes()
    assert a == (tmp_path / "again" / "spice" / "noise.txt").read_bytes()
    assert amsc("compile", ou / "ou.yaml", "-o", tmp_path / "other", "--seed", "3").returncode == 0
    b = (tmp_path / "other" / "spice" / "noise.txt").read_bytes()
    assert a != b
    # the noise file: the physical time, then one current per noisy state, Gaussian of the stated scale
    man = json.loads((ou / "out" / "manifest.json").read_text())
    nz, sc = man["dynamics"]["noise"], man["dynamics"]["scaling"]
    v = np.loadtxt(ou / "out" / "spice" / "noise.txt")
    assert v.shape == (nz["samples"], 5) and nz["bandwidth_per_unit"] == pytest.approx(1 / (2 * nz["dt"]))
    r_ohm = np.array(man["dynamics"]["integrator"]["r_ohm"])
    want = sc["amplitude_v_per_unit"] * np.array(nz["sigma"]) / r_ohm / np.sqrt(nz["dt"])
    assert np.allclose(v[:, 1:].std(axis=0) / want, 1, atol=0.03)
    deck = (ou / "out" / "spice" / "dynamics.sp").read_text()
    assert "A_NOISE [%id(0 x_0) %id(0 x_1) %id(0 x_2) %id(0 x_3)] amsc_noise" in deck and "filesource" in deck


def test_langevin_sampler_in_distribution(tmp_path):
    """A nonlinear sampler: its circuit samples against independent Euler-Maruyama runs."""
    require_tool("libngspice")
    (tmp_path / "lg.yaml").write_text(LANGEVIN)
    assert amsc("compile", tmp_path / "lg.yaml", "-o", tmp_path / "out").returncode == 0
    r = amsc("verify", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "out" / "verify.json").read_text())
    dist = rep["distribution"]
    assert dist["kind"] == "nonlinear" and dist["passed"] and "stationary_cov_rel_err" not in rep
    assert rep["energy_distance"] <= dist["energy_distance_ref_max"] and rep["energy_distance_ref"] > 0
    assert rep["max_err_over_fs"] < 1e-3


@pytest.mark.parametrize("noise,needle", [
    ("{sigma: -1.0}", "noise.sigma"), ("{sigma: .nan}", "noise.sigma"), ("{sigma: [1.0, 2.0]}", "noise.sigma"),
    ("{sigma: 0.0}", "at least one positive"), ("{amplitude: 1}", "noise"), ("{sigma: 1, bandwidth: 0.1}",
                                                                             "not white over the system's band"),
    ("{sigma: 1, bandwidth: 100000000}", "transient step of"), ("{sigma: 1, burn_in: 1000}", "noise.burn_in")])
def test_noise_bad_input(tmp_path, noise, needle):
    y = tmp_path / "m.yaml"
    y.write_text(OU.replace("noise: {sigma: [1.0, 0.5, 0.8, 1.2]}", f"noise: {noise}"))
    assert_clean_error(amsc("compile", y, "-o", tmp_path / "o"), needle, out=tmp_path / "o")


def test_noise_refused_on_the_transistor_pdk(tmp_path):
    y = tmp_path / "m.yaml"
    y.write_text(LANGEVIN)
    assert_clean_error(amsc("compile", y, "-o", tmp_path / "o", "--pdk", "sky130_1t1r"), "noise",
                       "generic PDK", out=tmp_path / "o")


#: a time-conditioned vector field (what flow matching and probability-flow ODEs need): the model
#: time is an input, and it reaches the hidden layer through U1
TIMECOND = """amsc_dynamics: 1
name: timecond
states: 2
activation: tanh
inputs:
  - {name: t, kind: time}
vector_field:
  hidden: 4
  W1: [[0.5, -0.3], [0.2, 0.8], [-0.6, 0.1], [0.3, 0.3]]
  b1: [0.1, -0.2, 0.0, 0.3]
  U1: [[1.0], [-1.5], [0.5], [0.0]]
  W2: [[1.0, 0.5, -0.7, 0.2], [-0.4, 0.9, 0.3, -0.8]]
x0: [0.5, -0.5]
t_end: 3.0
"""


def test_time_conditioned_vector_field_in_ngspice(tmp_path):
    require_tool("libngspice")
    (tmp_path / "tc.yaml").write_text(TIMECOND)
    r = amsc("compile", tmp_path / "tc.yaml", "-o", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    deck = (tmp_path / "out" / "spice" / "dynamics.sp").read_text()
    assert deck.count("\nGH_") == 3            # U1's nonzero entries, into the hidden sense nodes
    r = amsc("verify", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "out" / "verify.json").read_text())
    assert rep["passed"] and rep["max_err_over_fs"] < 1e-4
    # the time input matters: the same field without it ends elsewhere
    from compiler.frontend.dynamics import load_dynamics
    from compiler.ir.dynamics import quantize_w, reference

    m = load_dynamics(tmp_path / "tc.yaml")
    Wq = {k: q * s for k, (q, s) in ((k, quantize_w(W, 16)) for k, W in m["layers"].items())}
    end = reference(m, Wq, np.array([3.0]))[1][:, -1]
    still = reference({**m, "U1": np.zeros_like(m["U1"])}, Wq, np.array([3.0]))[1][:, -1]
    assert np.max(np.abs(end - still)) > 0.1


@pytest.mark.parametrize("edit,needle", [
    (("{name: t, kind: time}", "{name: t, kind: time, pwl: [[0, 0], [1, 1]]}"), "takes no pwl"),
    (("  U1: [[1.0], [-1.5], [0.5], [0.0]]\n", "  U1: [[1.0, 2.0], [-1.5, 0], [0.5, 0], [0.0, 0]]\n"), "vector_field.U1"),
    (("inputs:\n  - {name: t, kind: time}\n", ""), "no inputs")])
def test_time_conditioned_bad_input(tmp_path, edit, needle):
    y = tmp_path / "m.yaml"
    y.write_text(TIMECOND.replace(*edit))
    assert_clean_error(amsc("compile", y, "-o", tmp_path / "o"), needle, out=tmp_path / "o")


def test_time_input_refused_on_the_recurrent_form(tmp_path):
    y = tmp_path / "m.yaml"
    y.write_text(LANGEVIN.replace("x0:", "inputs:\n  - {name: t, kind: time}\nU: [[1.0], [0.0]]\nx0:"))
    assert_clean_error(amsc("compile", y, "-o", tmp_path / "o"), "recurrent form does not support it", out=tmp_path / "o")


def test_flow_moons_generates_the_data_through_ngspice(tmp_path):
    """designs/flow_moons (a flow-matching model, time-conditioned): noise samples pushed through the
    ngspice transient land on the two moons as the quantized model does, and within 1.5x of the float
    model's energy distance to the data (the issue's target; 200 of the 500 samples here, 1.09x,
    `make evaluate` runs all 500: 1.11x)."""
    require_tool("libngspice")
    from compiler.ir.dynamics import energy_distance

    d = ROOT / "designs" / "flow_moons"
    out = tmp_path / "fm"
    assert amsc("compile", d / "dynamics.yaml", "-o", out).returncode == 0
    r = amsc("evaluate", out, "--inputs", d / "noise.npy", "--data", d / "data.npy", "--samples", "200", "--jobs", "2",
             timeout=900)
    assert r.returncode == 0, r.stderr
    gen = json.loads((out / "eval.json").read_text())["generation"]
    data = np.load(d / "data.npy")
    float_ed = energy_distance(np.load(d / "float_samples.npy")[:200], data)
    assert gen["samples"] == 200 and gen["max_sample_err"] < 1e-3
    assert gen["energy_distance_spice"] == pytest.approx(gen["energy_distance_digital"], rel=1e-3)
    assert gen["energy_distance_spice"] <= 1.5 * float_ed
    # the digital sampler bench/bench_sampler.py times against the circuit: classical RK4 on the same
    # quantized model, the batch at once, lands where solve_ivp does
    from compiler.design import load_compiled
    from compiler.ir.dynamics import rhs, sample_rk4
    from compiler.verify.dynamics import load_design

    model, Wq = load_design(out, load_compiled(out))
    x0 = np.load(d / "noise.npy")[:200]
    ref = np.array([r["final_ref"] for r in json.loads((out / "eval.json").read_text())["per_run"]])
    f = rhs(model, Wq)
    assert np.abs(f(0.3, x0[:5].T).T - np.array([f(0.3, x) for x in x0[:5]])).max() < 1e-12
    assert np.abs(sample_rk4(model, Wq, x0, 64) - ref).max() < 1e-5
    assert np.abs(sample_rk4(model, Wq, x0, 4) - ref).max() > 1e-4      # a coarse step is visibly off
    # far from the noise it started as
    assert gen["energy_distance_spice"] < 0.3 * energy_distance(np.load(d / "noise.npy")[:200], data)
    assert "generated samples against 500 data points" in r.stderr
    page = (out / "eval.html").read_text()
    assert "Generated samples" in page and f"{gen['energy_distance_spice']:.4g}" in page
    assert "eval-samples.png" in page and (out / "eval-samples.png").stat().st_size > 1000
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((10, 3)))
    assert_clean_error(amsc("evaluate", out, "--inputs", d / "noise.npy", "--data", bad, "--samples", "2"),
                       "data points", "[K, 2]")
