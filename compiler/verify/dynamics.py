"""``amsc verify`` of a continuous-time design: the ngspice transient against ``solve_ivp`` on the
quantized model (or, on sky130_1t1r, on the characterized circuit), per state the largest and RMS
error over full scale and the settling time (compiler/ir/dynamics.py has the model's maths)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..backend.dynamics import ic_line
from ..ir.dynamics import (ATOL, RTOL, energy_distance, ideal_model, noise_path, pathwise, reference, rhs, settle_time,
                           stationary_cov)

#: the sign-off tolerance on the generic PDK, in fractions of full scale
TOLERANCE_FS = 1e-3


def load_design(out: Path, man: dict) -> tuple[dict, dict]:
    """The compiled model (from OUT's arrays and source) and its quantized weights."""
    d = man["dynamics"]
    from ..frontend.common import load_yaml
    from ..frontend.dynamics import time_pwl

    src = load_yaml((out / man["source"]["file"]).read_bytes(), out / man["source"]["file"])
    pwl = [np.array(u["pwl"], float) if "pwl" in u else time_pwl(d["t_end"]) for u in (src.get("inputs") or [])]
    from ..design import MANIFEST, confined

    ld = lambda k: np.load(confined(out, f"arrays/{k}.npy", out / MANIFEST, "array"), allow_pickle=False)  # noqa: E731
    model = {"name": man["design"], "n": d["states"], "tau": ld("tau"), "activation": d["activation"],
             "b": ld("b"), "x0": ld("x0"), "t_end": d["t_end"], "inputs": d["inputs"], "pwl": pwl, "U": ld("U"),
             "form": d["form"], "layers": {k: ld(k) for k in d["layers"]}, "time_scale": None}
    if d["form"] == "vector_field":
        model.update(hidden=d["hidden"], b1=ld("b1"),
                     U1=ld("U1") if (out / "arrays" / "U1.npy").is_file() else np.zeros((d["hidden"], len(pwl))))
    if "noise" in d:
        model["noise"] = {"sigma": np.array(d["noise"]["sigma"], float)}
    Wq = {k: np.load(out / v["levels"], allow_pickle=False) * v["w_step"] for k, v in d["layers"].items()}
    if d.get("circuit", {}).get("kind") == "1t1r":
        from ..backend.dynamics_1t1r import circuit_from, offset_bias

        q = np.load(out / d["layers"]["W"]["levels"], allow_pickle=False)
        model["circuit"] = circuit_from(out, d, q, man["pdk"]["v_read"])
        model["circuit_bias"] = offset_bias(d["activation"], q, d["layers"]["W"]["w_step"])
    return model, Wq


def tolerance_fs(man: dict) -> float:
    """The design's sign-off tolerance in fractions of full scale (the PDK's circuit sets its own)."""
    return man["dynamics"].get("circuit", {}).get("tolerance_fs", TOLERANCE_FS)


def run_spice(eng, out: Path, man: dict, x0: np.ndarray | None = None, extra: list[str] = (),
              model: dict | None = None):
    """The design's transient in ngspice (from ``x0``, default the model's): model time, the states
    un-scaled [T, N], and the ``extra`` probes' raw vectors [T, len(extra)]. ``model``: the
    design's, if the caller has loaded it (``load_design``)."""
    d = man["dynamics"]
    sc = d["scaling"]
    deck = (out / d["deck"]).read_text()
    if x0 is not None:
        if d.get("circuit", {}).get("kind") == "1t1r":
            from ..backend.dynamics_1t1r import ic_card

            circuit = (model or load_design(out, man)[0])["circuit"]
            ic = ic_card(-sc["amplitude_v_per_unit"], x0, circuit, d["circuit"]["r_tia_ohm"], man["tiles"])
        else:
            ic = ic_line(sc["amplitude_v_per_unit"], x0)
        deck = "\n".join(ic if ln.startswith(".ic ") else ln for ln in deck.splitlines()
                         if not ln.startswith(".nodeset "))
    n = d["states"]
    t, v = eng.transient(deck, d["deck"], [f"x_{i}" for i in range(n)] + list(extra), (out / d["deck"]).parent.resolve())
    return t / sc["time_s_per_unit"], v[:, :n] / sc["amplitude_v_per_unit"], v[:, n:]


#: batches of the batch-means standard error of a sample covariance
BATCHES = 20
#: independent reference runs of a nonlinear sampler (their pairwise energy distances are the spread)
REF_RUNS = 4
#: samples per run the energy distance compares, at most (evenly thinned after the burn-in)
ED_SAMPLES = 1500


def noise_plan_of(man: dict) -> dict:
    nz = man["dynamics"]["noise"]
    return {k: nz[k] for k in ("dt", "samples", "burn_in", "substeps")}


def euler_maruyama(model: dict, Wq: dict, plan: dict, seed: int) -> np.ndarray:
    """An independent reference run of the SDE ``dx = f dt + (sigma / tau) dW``: Euler-Maruyama with
    true white-noise increments at the transient's step (dt / substeps); the states at the noise
    sample times [N, samples]."""
    f = rhs(model, Wq)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x454D]))
    b = model["noise"]["sigma"] / model["tau"]
    m, h = plan["substeps"], plan["dt"] / plan["substeps"]
    x = np.array(model["x0"], float)
    out = np.empty((plan["samples"], model["n"]))
    out[0] = x
    dw = rng.standard_normal(((plan["samples"] - 1) * m, model["n"])) * np.sqrt(h)
    for k in range(plan["samples"] - 1):
        for j in range(m):
            x = x + h * f((k * m + j) * h, x) + b * dw[k * m + j]
        out[k + 1] = x
    return out.T


def _after_burn_in(t: np.ndarray, x: np.ndarray, burn: float) -> np.ndarray:
    """Samples [count, N] of states ``x`` [N, T] at times ``t`` after the burn-in."""
    return x[:, t >= burn].T


def _thin(x: np.ndarray, most: int) -> np.ndarray:
    return x[np.linspace(0, x.shape[0] - 1, min(most, x.shape[0])).astype(int)]


def distribution_check(model: dict, Wq: dict, man: dict, t_grid: np.ndarray, x_grid: np.ndarray) -> dict:
    """The circuit's samples ``x_grid`` [N, samples] (at the noise sample times ``t_grid``) in
    distribution: a linear model's sample covariance against the exact stationary covariance (the
    Lyapunov equation), with a batch-means standard error; a nonlinear model's energy distance to
    independent Euler-Maruyama runs, against the spread of those runs' distances to each other."""
    plan = noise_plan_of(man)
    seed = man["dynamics"]["noise"]["seed"]
    xs = _after_burn_in(t_grid, x_grid, plan["burn_in"])
    res = {"samples": int(xs.shape[0]), "burn_in": plan["burn_in"], "sample_interval": plan["dt"]}
    S = stationary_cov(model, Wq)
    if S is not None:
        est = np.cov(xs.T).reshape(S.shape)
        covs = np.array([np.cov(bt.T).reshape(S.shape) for bt in np.array_split(xs, BATCHES)])
        se = covs.std(axis=0, ddof=1) / np.sqrt(BATCHES)
        norm = float(np.linalg.norm(S))
        err = float(np.linalg.norm(est - S)) / norm
        se_rel = float(np.linalg.norm(se)) / norm
        # a variance estimated from N independent Gaussian samples has variance 2 s^4 / N
        n_eff = float(np.mean(2 * np.diag(S) ** 2 / np.maximum(np.diag(se) ** 2, 1e-300)))
        res.update(kind="linear", stationary_cov_rel_err=err, stationary_cov_std_err=se_rel, effective_samples=n_eff,
                   passed=bool(err <= 3 * se_rel), exact_cov=S.tolist(), sample_cov=est.tolist(),
                   rule="||S_circuit - S_exact||_F / ||S_exact||_F within 3 batch-means standard errors "
                        f"({BATCHES} batches) of the sample covariance; S_exact solves A S + S A^T + B B^T = 0")
        return res
    refs = [_after_burn_in(t_grid, euler_maruyama(model, Wq, plan, seed + 1 + r), plan["burn_in"])
            for r in range(REF_RUNS)]
    c = _thin(xs, ED_SAMPLES)
    rs = [_thin(r, ED_SAMPLES) for r in refs]
    ed = [energy_distance(c, r) for r in rs]
    spread = [energy_distance(rs[i], rs[j]) for i in range(REF_RUNS) for j in range(i + 1, REF_RUNS)]
    res.update(kind="nonlinear", energy_distance=float(np.mean(ed)), energy_distance_ref=float(np.mean(spread)),
               energy_distance_ref_max=float(np.max(spread)), passed=bool(np.mean(ed) <= np.max(spread)),
               rule=f"mean energy distance of the circuit's samples to {REF_RUNS} independent Euler-Maruyama runs "
                    "(step dt / substeps, white-noise increments) at most the largest distance between two of those runs")
    return res


def distribution_line(dist: dict) -> str:
    """One sentence of the distribution check (the terminal and verify.html)."""
    head = f"in distribution ({dist['samples']} samples after a burn-in of {dist['burn_in']:.4g}): "
    if dist["kind"] == "linear":
        return head + (f"stationary covariance off the exact (Lyapunov) one by {dist['stationary_cov_rel_err']:.4f} "
                       f"(Frobenius, relative), standard error {dist['stationary_cov_std_err']:.4f} "
                       f"(about {dist['effective_samples']:.0f} independent samples): "
                       + ("pass" if dist["passed"] else "FAIL") + " at 3 standard errors")
    return head + (f"energy distance to Euler-Maruyama runs {dist['energy_distance']:.4g}, between those runs "
                   f"{dist['energy_distance_ref']:.4g} (largest {dist['energy_distance_ref_max']:.4g}): "
                   + ("pass" if dist["passed"] else "FAIL"))


def verify_dynamics(out: Path, man: dict) -> dict:
    """``amsc verify`` of a dynamics design: the ngspice transient against solve_ivp (see the module docstring)."""
    from ..design import write_json_atomic
    from ..sim.ngspice import session
    from .report import figure, png_bytes, render_page, write_page

    t0 = time.perf_counter()
    d = man["dynamics"]
    model, Wq = load_design(out, man)
    n = d["states"]
    sc = d["scaling"]
    eng = session()
    t_sim = time.perf_counter()
    tm, x_spice, _ = run_spice(eng, out, man)
    t_spice = time.perf_counter() - t_sim
    t_ref0 = time.perf_counter()
    noisy = "noise" in d
    if noisy:     # the same noise realization as the deck's file: pathwise, then in distribution
        plan = noise_plan_of(man)
        t_grid, x_at = pathwise(model, Wq, plan, noise_path(model, plan, d["noise"]["seed"]), dense=True)
        x_ref = x_at(np.clip(tm, 0, model["t_end"]))
    else:
        _, x_ref = reference(model, Wq, np.clip(tm, 0, model["t_end"]))
    t_ivp = time.perf_counter() - t_ref0
    x_ref = x_ref.T
    fs = float(np.max(np.abs(x_ref))) or 1.0
    err = x_spice - x_ref
    intended = None
    if "circuit" in model:      # sky130_1t1r: how far the characterized circuit is from the model's own math
        x_int = reference(ideal_model(model), Wq, np.clip(tm, 0, model["t_end"]))[1].T
        e_int = np.abs(x_ref - x_int)
        intended = {"max_err_over_fs": float(e_int.max() / fs), "rms_err_over_fs": float(np.sqrt(np.mean(e_int ** 2)) / fs),
                    "what": f"the characterized circuit against the intended model ({d['activation']}, quantized W, "
                            "ideal integrators)"}
    tol = tolerance_fs(man)
    settle = settle_time(tm, x_ref, fs)
    settle_spice = settle_time(tm, x_spice, fs)
    blocks = []
    for i in range(n):
        e = np.abs(err[:, i])
        mx, rms = float(e.max() / fs), float(np.sqrt(np.mean(e ** 2)) / fs)
        blocks.append({"name": f"x_{i}", "layer": "state", "passed": mx <= tol, "error": None,
                       "max_err_over_fs": mx, "rms_err_over_fs": rms, "settle_time": float(settle[i]),
                       "settle_time_spice": float(settle_spice[i]),
                       "max_abs_err": float(e.max()), "rms_err": float(np.sqrt(np.mean(e ** 2))),
                       "tolerance": tol * fs})
    rep = {"design": man["design"], "kind": "dynamics", "engine": "ngspice", "simulator": eng.version,
           "passed": all(b["passed"] for b in blocks), "blocks": blocks, "simulated": n, "vectors": int(tm.size),
           "seed": 0, "tolerance_lsb": 1.0, "tolerance_rule": f"max |x_spice - x_ref| <= {tol:g} of full scale "
           f"({fs:.4g}, the largest |x| of the reference)", "full_scale": fs,
           "max_err_over_fs": max(b["max_err_over_fs"] for b in blocks),
           "rms_err_over_fs": float(np.sqrt(np.mean(err ** 2)) / fs),
           "reference": ("classical Runge-Kutta on the deck's own noise realization (4 steps per noise sample), "
                         "quantized weights" if noisy else f"scipy solve_ivp DOP853, rtol {RTOL:g}, atol {ATOL:g}, quantized weights")
                        + (", the characterized sky130_1t1r circuit (backend/dynamics_1t1r.py)" if intended else ""),
           "spice_seconds": t_spice, "solve_ivp_seconds": t_ivp, "scaling": sc,
           **({"intended": intended} if intended else {})}
    if noisy:
        x_grid = np.array([np.interp(t_grid, tm, x_spice[:, i]) for i in range(n)])
        dist = distribution_check(model, Wq, man, t_grid, x_grid)
        rep["distribution"] = dist
        rep["passed"] = rep["passed"] and dist["passed"]
        # the issue's keys, at the top level too
        rep.update({k: dist[k] for k in ("samples", "burn_in", "stationary_cov_rel_err", "energy_distance",
                                         "energy_distance_ref") if k in dist})
    fig = figure(6.5, 3.6)
    ax = fig.add_axes((0.1, 0.15, 0.86, 0.75))
    for i in range(min(n, 8)):
        ax.plot(tm, x_ref[:, i], lw=1.2, color=f"C{i}")
        ax.plot(tm, x_spice[:, i], lw=0.8, ls="--", color="k")
    ax.set_xlabel("model time")
    ax.set_ylabel("state x")
    ax.set_title(f"{man['design']}: solve_ivp (colour) and ngspice (dashed), first {min(n, 8)} states", fontsize=9)
    png = png_bytes(fig)
    (out / "verify-dynamics.png").write_bytes(png)
    write_page(out / "verify.html", render_page(Path(__file__).parent / "templates", "verify_dynamics.html.j2", rep=rep,
                                                noisy=noisy, distribution=distribution_line(rep["distribution"])
                                                if noisy else None))
    rep["seconds"] = time.perf_counter() - t0
    write_json_atomic(out / "verify.json", rep)
    return rep
