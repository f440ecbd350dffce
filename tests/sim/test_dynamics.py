"""Continuous-time dynamics (amsc_dynamics YAML): compiled to crossbar tiles and leaky integrators,
the ngspice transient checked against solve_ivp on the quantized W, amplitude and time scaling, and
bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import amsc, require_tool
from helpers import assert_clean_error


def make_model(d: Path, n: int, seed: int, activation: str = "tanh", gain: float = 1.5) -> Path:
    """A random continuous-time RNN with two PWL inputs (seeded); W's entries have deviation gain / sqrt(n)."""
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / "W.npy", rng.normal(0, gain / np.sqrt(n), (n, n)))
    np.save(d / "U.npy", rng.normal(0, 1, (n, 2)))
    doc = {"amsc_dynamics": 1, "name": f"ctrnn{n}_s{seed}", "states": n,
           "tau": rng.uniform(0.5, 2.0, n).round(3).tolist(), "activation": activation, "W": {"file": "W.npy"},
           "b": rng.normal(0, 0.1, n).round(4).tolist(),
           "inputs": [{"name": "u0", "pwl": [[0, 0.0], [2, 0.5], [6, 0.5], [8, -0.3]]},
                      {"name": "u1", "pwl": [[0, 0.2], [10, 0.2], [12, 0.0]]}],
           "U": {"file": "U.npy"}, "x0": rng.uniform(-0.5, 0.5, n).round(4).tolist(), "t_end": 20.0}
    (d / "dyn.yaml").write_text(yaml.safe_dump(doc))
    return d / "dyn.yaml"


def _compile_verify(tmp: Path, n: int, seed: int, activation: str = "tanh", gain: float = 1.5) -> dict:
    from compiler.driver import compile_model
    from compiler.options import CompileOptions
    from compiler.verify.run import verify_dir

    model = make_model(tmp / f"m{n}_{seed}", n, seed, activation, gain)
    out = tmp / f"o{n}_{seed}"
    compile_model(model, out, CompileOptions())
    return verify_dir(out)


@pytest.mark.parametrize("n,seeds", [(8, 20), (64, 5)])
def test_transient_matches_solve_ivp_on_random_seeds(tmp_path, n, seeds):
    """The issue's target: on the generic PDK, max |x_spice - x_ref| <= 1e-3 of full scale, for 20
    random seeds at N = 8 and N = 64. The suite runs 5 of the N = 64 seeds (each ~10 s of ngspice);
    bench/bench_dynamics.py runs all 20."""
    require_tool("libngspice")
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    worst = 0.0
    # two processes (each its own ngspice): the CI machine's two cores
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        reps = list(pool.map(_compile_verify, [tmp_path] * seeds, [n] * seeds, range(seeds)))
    for seed, rep in enumerate(reps):
        assert rep["passed"] and len(rep["blocks"]) == n, (seed, rep["max_err_over_fs"])
        worst = max(worst, rep["max_err_over_fs"])
        for b in rep["blocks"]:
            assert b["rms_err_over_fs"] <= b["max_err_over_fs"] <= 1e-3
    assert worst > 0          # a real comparison: the simulator is not the reference


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "identity"])
def test_other_activations(tmp_path, activation):
    require_tool("libngspice")
    # a linear (identity) system with W's spectral radius above 1 grows without bound: keep it below
    rep = _compile_verify(tmp_path, 8, 3, activation, 0.5 if activation == "identity" else 1.5)
    assert rep["passed"], rep["max_err_over_fs"]


def test_scaling_and_the_check_can_fail(tmp_path, monkeypatch):
    """The states' voltages stay within the PDK's analog full scale (with the margin), model time maps
    to microseconds, and a reference 1 % off in W fails the 1e-3 check."""
    require_tool("libngspice")
    from compiler.driver import compile_model
    from compiler.ir import dynamics
    from compiler.passes.dynamics import BANDWIDTH_FRACTION
    from compiler.verify import dynamics as verify_dynamics
    from compiler.options import CompileOptions
    from compiler.pdk import load_pdk
    from compiler.verify.run import verify_dir

    model = make_model(tmp_path / "m", 16, 5)
    out = tmp_path / "o"
    m = compile_model(model, out, CompileOptions())
    sc = m["dynamics"]["scaling"]
    v_fs = load_pdk("generic").tia_v_out_fs
    assert sc["amplitude_v_per_unit"] * sc["x_max_reference"] * (1 + sc["margin"]) == pytest.approx(v_fs)
    # time: the Jacobian's bound (1 + ||Wq|| max s') / tau_min at 1 / (1 + margin) of the integrator bandwidth
    _, Wq = verify_dynamics.load_design(out, m)
    rate = (1 + np.linalg.norm(Wq["W"], 2)) / min(m["dynamics"]["tau"])
    f_bw = BANDWIDTH_FRACTION * load_pdk("generic").ppa["tia"]["gbw_hz"]
    assert sc["time_s_per_unit"] == pytest.approx(rate * (1 + dynamics.MARGIN) / (2 * np.pi * f_bw))
    assert sc["system_bandwidth_hz"] == pytest.approx(f_bw / (1 + dynamics.MARGIN)) and sc["automatic"]
    deck = (out / "spice" / "dynamics.sp").read_text()
    assert ".tran" in deck and "uic" in deck and deck.count("CI_") == 16
    # the same input gives the same deck, controller and placement
    compile_model(model, tmp_path / "o2", CompileOptions())
    for f in ("spice/dynamics.sp", f"rtl/{m['design']}_ctrl.v", "placement.json", "placement.png", "placement.svg"):
        assert (tmp_path / "o2" / f).read_bytes() == (out / f).read_bytes(), f
    # the placement: every tile and state unit on the grid, annealed no longer than row-major
    pl = json.loads((out / "placement.json").read_text())
    assert {c["name"] for c in pl["cells"]} == {t["name"] for t in m["tiles"]} | {"x_c0"}
    assert pl["wirelength"] <= pl["baseline_wirelength"] and ["x_c0", "@out"] in pl["edges"]
    rep = verify_dir(out)
    assert rep["passed"]
    v = json.loads((out / "verify.json").read_text())
    assert v["kind"] == "dynamics" and all("max_err_over_fs" in b and "settle_time" in b for b in v["blocks"])
    assert (out / "verify.html").is_file() and (out / "verify-dynamics.png").is_file()
    real = dynamics.reference
    monkeypatch.setattr(verify_dynamics, "reference",
                        lambda model, Wq, t_eval=None, x0=None: real(model, {k: 1.01 * v for k, v in Wq.items()}, t_eval, x0))
    assert not verify_dir(out)["passed"]


def test_compile_and_verify_from_the_cli(tmp_path):
    require_tool("libngspice")
    model = make_model(tmp_path / "m", 8, 1)
    out = tmp_path / "o"
    r = amsc("compile", model, "-o", out)
    assert r.returncode == 0 and "continuous-time model, 8 state(s)" in r.stderr, r.stderr
    r = amsc("verify", out)
    assert r.returncode == 0 and "8/8 blocks passed" in r.stderr, r.stderr


def test_dynamics_bad_input(tmp_path):
    model = make_model(tmp_path / "m", 4, 0)
    doc = yaml.safe_load(model.read_text())

    def bad(change: dict, *needles, drop: tuple = ()):
        d = {k: v for k, v in {**doc, **change}.items() if k not in drop}
        p = tmp_path / "m" / "bad.yaml"
        p.write_text(yaml.safe_dump(d))
        out = tmp_path / "bad_out"
        assert_clean_error(amsc("compile", p, "-o", out), *needles, out=out)

    bad({}, "x0", drop=("x0",))
    bad({"W": [[1.0, 2.0]]}, "W", "expected shape [4, 4]")
    bad({"activation": "softmax"}, "activation", "tanh")
    bad({}, "U", "required with inputs", drop=("U",))
    bad({"tau": [1.0, -1.0, 1.0, 1.0]}, "tau", "positive")
    bad({"states": 0}, "states")
    bad({"amsc_dynamics": 2}, "schema version")
    bad({"inputs": [{"name": "u", "pwl": [[1, 0], [0, 1]]}]}, "inputs[0].pwl", "increasing")
    bad({"W": {"file": "../W.npy"}}, "W.file", "inside")
    bad({"bogus": 1}, "unknown key")
    bad({"t_end": 0}, "t_end", "positive")
    bad({"t_end": -3.0}, "t_end", "positive")
    bad({"x0": [0.1, float("nan"), 0.0, 0.0]}, "x0", "finite")
    bad({"b": [0.0, 0.0, float("inf"), 0.0]}, "b", "finite")
    w = np.load(tmp_path / "m" / "W.npy")
    w[1, 2] = np.nan
    np.save(tmp_path / "m" / "Wnan.npy", w)
    bad({"W": {"file": "Wnan.npy"}}, "W", "NaN")
    u = np.load(tmp_path / "m" / "U.npy")
    u[0, 0] = np.inf
    np.save(tmp_path / "m" / "Unan.npy", u)
    bad({"U": {"file": "Unan.npy"}}, "U", "NaN")
    bad({"W": [[0.0] * 3] * 3}, "W", "expected shape [4, 4]")            # not matching 'states'
    bad({"W": [[0.0] * 4] * 3}, "W", "expected shape [4, 4]")            # not square
    bad({"vector_field": {"hidden": 3, "W1": [[0.0] * 4] * 3, "W2": [[0.0] * 3] * 4}}, "exactly one of")
    bad({"vector_field": {"hidden": 3, "W1": [[0.0] * 4] * 2, "W2": [[0.0] * 3] * 4}}, "vector_field.W1",
        "expected shape [3, 4]", drop=("W",))
    bad({"W": [[5.0] * 4] * 4, "activation": "identity", "b": 0.0, "x0": 1.0, "t_end": 1.0}, "grows", "unbounded")
    # a time scale the integrators cannot follow: refused, with the one that fits
    bad({"time_scale": 1e-9}, "time_scale", "bandwidth", "at least")
    # sky130_1t1r's refusals: tests/sim/test_dynamics_sky130.py


def make_vector_field(d: Path, activation: str, seed: int = 1) -> Path:
    """A random dissipative MLP vector field, dx/dt = W2 s(W1 x + b1) + b with W2 near -W1^T / 2."""
    rng = np.random.default_rng(seed)
    n, h = 3, 12
    d.mkdir(parents=True, exist_ok=True)
    w1 = rng.normal(0, 1, (h, n))
    np.save(d / "W1.npy", w1)
    np.save(d / "W2.npy", -0.5 * w1.T + rng.normal(0, 0.1, (n, h)))
    doc = {"amsc_dynamics": 1, "name": f"vf_{activation}", "states": n, "activation": activation,
           "vector_field": {"hidden": h, "W1": {"file": "W1.npy"}, "W2": {"file": "W2.npy"},
                            "b1": rng.normal(0, 0.3, h).round(4).tolist()},
           "b": [0.1, -0.1, 0.0], "x0": [0.5, -0.3, 0.2], "t_end": 10.0,
           "inputs": [{"name": "u", "pwl": [[0, 0.0], [3, 0.4], [6, 0.0]]}], "U": [[0.5], [0.0], [-0.3]]}
    (d / "dyn.yaml").write_text(yaml.safe_dump(doc))
    return d / "dyn.yaml"


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "identity"])
def test_vector_field_matches_solve_ivp(tmp_path, activation):
    """The MLP vector-field form: W1 and W2 on their own tiles, the hidden layer a memoryless crossbar
    read through ideal TIAs, the states' integrators without leak."""
    require_tool("libngspice")
    from compiler.driver import compile_model
    from compiler.options import CompileOptions
    from compiler.verify.run import verify_dir

    out = tmp_path / "o"
    m = compile_model(make_vector_field(tmp_path / "m", activation), out, CompileOptions())
    assert m["dynamics"]["form"] == "vector_field" and {t["layer"] for t in m["tiles"]} == {"w1", "w2"}
    deck = (out / "spice" / "dynamics.sp").read_text()
    starts = [ln.split("_")[0] for ln in deck.splitlines() if not ln.startswith("*")]
    assert starts.count("BH") == 12 and starts.count("EX") == 3 and "RL" not in starts
    rep = verify_dir(out)
    assert rep["passed"] and 0 < rep["max_err_over_fs"] <= 1e-3, rep["max_err_over_fs"]


def test_neural_ode_spiral_design(tmp_path):
    """designs/neural_ode_spiral: the fitted MLP's SPICE trajectory matches solve_ivp on the
    quantized weights, and the quantized model still traces the true spiral."""
    require_tool("libngspice")
    from compiler.driver import compile_model
    from compiler.options import CompileOptions
    from compiler.verify.run import verify_dir

    root = Path(__file__).resolve().parents[2] / "designs" / "neural_ode_spiral"
    out = tmp_path / "spiral"
    r = amsc("compile", root / "dynamics.yaml", "-o", out)
    assert r.returncode == 0 and "W1 and W2 on 2 tile(s)" in r.stderr, r.stderr
    rep = verify_dir(out)
    assert rep["passed"] and rep["max_err_over_fs"] <= 1e-3
    # the spiral itself: the quantized model from (2, 0) stays near the true system's trajectory
    import importlib.util

    spec = importlib.util.spec_from_file_location("spiral", root / "make_model.py")
    sp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sp)
    from compiler.ir import dynamics
    from compiler.verify.dynamics import load_design

    model, Wq = load_design(out, json.loads((out / "manifest.json").read_text()))
    t = np.linspace(0, sp.T_END, 400)
    _, xq = dynamics.reference(model, Wq, t)
    true = sp.trajectory(sp.true_field, t)
    # measured: 0.070 RMS, 0.11 at most, on a spiral of radius 2 to 0.74
    assert np.sqrt(np.mean(np.sum((xq.T - true) ** 2, axis=1))) < 0.08
    compile_model(root / "dynamics.yaml", tmp_path / "again", CompileOptions())
    assert (tmp_path / "again" / "spice" / "dynamics.sp").read_bytes() == (out / "spice" / "dynamics.sp").read_bytes()


def test_evaluate_runs_initial_states_with_energy(tmp_path):
    """amsc evaluate on a dynamics design: each initial state runs in ngspice against solve_ivp, and
    the supply energy from the simulated branch currents equals the same sum computed from the
    states' trajectories and the conductances (word-line driver currents V_a sum(G+ + G-), mirrored
    sense currents, biases, inputs)."""
    require_tool("libngspice")
    from compiler.ir.dynamics import act, u_at
    from compiler.verify.dynamics import load_design, run_spice
    from compiler.eval.dynamics import VDD, probe_task
    from compiler.pdk import load_pdk
    from compiler.sim.ngspice import session

    model_path = make_model(tmp_path / "m", 6, 2)
    out = tmp_path / "o"
    assert amsc("compile", model_path, "-o", out).returncode == 0
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-0.5, 0.5, (3, 6))
    y = np.sign(rng.normal(size=(3, 6)))
    np.save(tmp_path / "x0.npy", x0)
    np.save(tmp_path / "y.npy", y)
    r = amsc("evaluate", out, "--inputs", tmp_path / "x0.npy", "--labels", tmp_path / "y.npy", "--jobs", "2")
    assert r.returncode == 0 and "3 run(s) in ngspice" in r.stderr, r.stderr
    rep = json.loads((out / "eval.json").read_text())
    assert rep["runs"] == 3 and rep["max_err_over_fs"] <= 1e-3 and (out / "eval.html").is_file()
    assert sum(g["runs"] for g in rep["retrieval"]["by_flipped_bits"]) == 3
    # the energy of run 1, recomputed from its trajectory
    man = json.loads((out / "manifest.json").read_text())
    model, _ = load_design(out, man)
    d = man["dynamics"]
    pdk = load_pdk("generic")
    q = np.load(out / d["layers"]["W"]["levels"])
    gp, gn = pdk.g_min + np.maximum(q, 0) * pdk.g_step, pdk.g_min + np.maximum(-q, 0) * pdk.g_step
    tm, xs, _ = run_spice(session(), out, man, x0[1])
    va = pdk.v_read * act("tanh", xs) / d["s_max"]                     # [T, N] word lines
    mirror = np.asarray(d["mirror_gain"])
    R = np.asarray(d["integrator"]["r_ohm"])
    a = d["scaling"]["amplitude_v_per_unit"]
    u = u_at(model, tm).T
    i_sup = (np.abs(va) * (gp + gn).sum(axis=0)).sum(axis=1) \
        + ((np.abs(va @ gp.T) + np.abs(va @ gn.T)) * mirror).sum(axis=1) \
        + np.sum(np.abs(a * model["b"] / R)) + np.abs(u @ (a * model["U"] / R[:, None]).T).sum(axis=1)
    t = tm * d["scaling"]["time_s_per_unit"]
    e = VDD * np.sum(0.5 * (i_sup[1:] + i_sup[:-1]) * np.diff(t))
    got = probe_task({"out": str(out), "manifest": man, "k": 1, "x0": x0[1].tolist()})
    assert got["dynamic_j"] == pytest.approx(e, rel=1e-4)
    assert got["energy_j"] == pytest.approx(e + got["quiescent_w"] * t[-1], rel=1e-4) and got["stages"] == 12
    # bad input: initial states of the wrong width
    np.save(tmp_path / "bad.npy", np.zeros((2, 5)))
    assert_clean_error(amsc("evaluate", out, "--inputs", tmp_path / "bad.npy"), "expected [K, 6]")
    assert_clean_error(amsc("evaluate", out, "--inputs", tmp_path / "x0.npy", "--mc", "3"), "--mc", "continuous-time")


def test_controller_rtl_releases_reset_and_samples_on_time(tmp_path):
    """The dynamics controller (rtl/<design>_ctrl.v): lint-clean in Verilator, and in Icarus it holds
    the integrators in reset until start, strobes the ADCs at the manifest's sample cycles (t * k_t *
    clock, recomputed here), and presents each sample's codes, here the codes of the reference
    trajectory's state voltages at those times, in order, then raises done and resets again."""
    require_tool("iverilog", "verilator")
    import subprocess

    from compiler.ir import dynamics
    from compiler.verify.dynamics import load_design

    model = make_model(tmp_path / "m", 8, 4)
    doc = yaml.safe_load(model.read_text())
    doc["sample_times"] = [0.5, 1.0, 2.5, 7.0, 13.0, 20.0]
    model.write_text(yaml.safe_dump(doc))
    out = tmp_path / "o"
    assert amsc("compile", model, "-o", out).returncode == 0
    man = json.loads((out / "manifest.json").read_text())
    d = man["dynamics"]
    c = d["controller"]
    k_t = d["scaling"]["time_s_per_unit"]
    assert c["sample_cycles"] == [round(t * k_t * c["clock_hz"]) for t in doc["sample_times"]]
    rtl = out / c["rtl"]
    lint = subprocess.run(["verilator", "--lint-only", "-Wall", str(rtl)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stderr
    mdl, Wq = load_design(out, man)
    _, x = dynamics.reference(mdl, Wq, np.array(doc["sample_times"]))
    codes = dynamics.adc_code(d["scaling"]["amplitude_v_per_unit"] * x.T, man["pdk"]["tia_v_out_fs"], c["adc_bits"])
    bits, n, k = c["adc_bits"], 8, len(doc["sample_times"])
    words = ["".join(f"{v:0{bits}b}" for v in row[::-1]) for row in codes]      # state 0 in the low bits
    (tmp_path / "codes.mem").write_text("\n".join(words) + "\n")
    top = c["top"]
    (tmp_path / "tb.v").write_text(f"""`timescale 1ns/1ps
module tb;
  reg clk = 0, rst_n = 0, start = 0;
  reg [{n * bits - 1}:0] mem [0:{k - 1}];
  reg [{n * bits - 1}:0] adc_code = 0;
  wire int_reset, adc_sample, out_valid, done;
  wire [{c['index_bits'] - 1}:0] out_index;
  wire [{n * bits - 1}:0] out_codes;
  integer cyc = -1, taken = 0;
  {top} dut(.clk(clk), .rst_n(rst_n), .start(start), .int_reset(int_reset), .adc_sample(adc_sample),
            .adc_code(adc_code), .out_valid(out_valid), .out_index(out_index), .out_codes(out_codes), .done(done));
  always #5 clk = ~clk;
  initial begin
    $readmemb("{tmp_path / 'codes.mem'}", mem);
    #22 rst_n = 1;
    #30 if (!int_reset) $display("ERR reset released before start");
    @(negedge clk) start = 1;
    @(posedge clk) cyc = 0;
    @(negedge clk) start = 0;
    if (int_reset) $display("ERR reset held after start");
  end
  always @(posedge clk) if (cyc >= 0) cyc <= cyc + 1;
  always @(posedge clk) if (adc_sample) begin $display("STROBE %0d", cyc); adc_code <= mem[taken]; taken <= taken + 1; end
  always @(posedge clk) if (out_valid) $display("OUT %0d %b", out_index, out_codes);
  always @(posedge clk) if (done) begin $display("DONE %0d %0d", cyc, int_reset); $finish; end
  initial #{(c['sample_cycles'][-1] + 100) * 10} begin $display("ERR timeout"); $finish; end
endmodule
""")
    sim = tmp_path / "sim"
    r = subprocess.run(["iverilog", "-g2005", "-o", str(sim), str(tmp_path / "tb.v"), str(rtl)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["vvp", "-n", str(sim)], capture_output=True, text=True, timeout=300)
    lines = r.stdout.splitlines()
    assert not [ln for ln in lines if ln.startswith("ERR")], r.stdout
    # the strobe registers on the edge after the due cycle: it is seen one cycle later
    assert [int(ln.split()[1]) - 1 for ln in lines if ln.startswith("STROBE")] == c["sample_cycles"]
    got = [ln.split()[1:] for ln in lines if ln.startswith("OUT")]
    assert [int(i) for i, _ in got] == list(range(k)) and [w for _, w in got] == words
    assert [ln for ln in lines if ln.startswith("DONE")][0].endswith(" 1")     # reset again after the last sample


def test_summary_table_of_many_states():
    """Above DETAIL_MAX states the terminal table shows the worst state and the failures only (a
    256-state design once crashed the per-layer summary, which expects network blocks)."""
    from rich.console import Console

    from compiler.verify.report import DETAIL_MAX, summary_table

    blocks = [{"name": f"x_{i}", "layer": "state", "passed": i != 7, "error": None, "max_err_over_fs": 1e-4 * (i % 13),
               "rms_err_over_fs": 1e-5, "settle_time": 3.0} for i in range(DETAIL_MAX + 56)]
    con = Console(width=120, record=True)
    con.print(summary_table({"design": "big", "engine": "ngspice", "kind": "dynamics", "blocks": blocks}))
    text = con.export_text()
    assert "x_7 " in text and "FAIL" in text and "x_12 " in text and "x_3 " not in text
