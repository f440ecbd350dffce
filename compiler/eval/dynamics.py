"""``amsc evaluate`` of a continuous-time design: many initial states through the ngspice transient.

Each row of ``--inputs X0.npy`` [K, N] is one run from that initial state (the deck's ``.ic``
changed, nothing else). Per run: the final state and settling time in ngspice, against
``solve_ivp`` on the quantized weights (the digital reference) and on the float weights; the largest
trajectory error over full scale; and the energy drawn from the supply.

With ``--labels Y.npy`` [K, N] (target states, e.g. a Hopfield network's stored patterns) a run
*retrieves* when the signs of its final state all equal the target's. Runs are grouped by the
number of bits in which the initial state's signs differ from the target (the probe's corruption),
and each group reports retrieval accuracy in SPICE, in the digital reference and in float.

Energy per run, from the simulated currents: every active element (word-line drivers, x buffers of
a vector field, the integrators' current mirrors) is a class-AB stage on the PDK's periphery supply
(VDD, 1.8 V: ppa in pdk.yaml), so it draws |I_out| from it; the crossbar currents, the mirrors'
output currents and the input transconductors' currents come from the transient, the biases are
constant. On top of that each such stage draws its quiescent power (``ppa.tia.power_uw``) for the
run's duration. Energy is reported over the whole window and up to the SPICE settling time.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import InputError

VDD = 1.8          # V, the periphery supply the ppa figures assume (pdk.yaml, ppa)


def _energy(man: dict, model: dict, tm: np.ndarray, cur: np.ndarray, settle: float) -> dict:
    """Supply energy of one run (module docstring) from its saved currents ``cur`` [T, probes]: the
    manifest's ``dynamics.energy`` names the probes, the weight of each (a mirror's gain), the
    constant bias current, the inputs' transconductances and the number of quiescent stages."""
    from ..ir.dynamics import u_at

    d = man["dynamics"]
    spec = d["energy"]
    t = tm * d["scaling"]["time_s_per_unit"]
    i_sup = (np.abs(cur) * np.asarray(spec["weights"])).sum(axis=1) + spec["bias_a"]
    if model["U"].shape[1]:
        u = u_at(model, tm).T                                         # [T, inputs]
        i_sup = i_sup + np.abs(u @ np.asarray(spec["input_gm"]).T).sum(axis=1)
    p_q = spec["stages"] * man["ppa"]["tia"]["power_uw"] * 1e-6
    p = VDD * i_sup + p_q
    e_cum = np.concatenate([[0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(t))])
    return {"energy_j": float(e_cum[-1]), "energy_to_settle_j": float(np.interp(settle * d["scaling"]["time_s_per_unit"], t, e_cum)),
            "dynamic_j": float(e_cum[-1] - p_q * t[-1]), "quiescent_w": p_q, "stages": spec["stages"],
            "duration_s": float(t[-1]), "peak_supply_a": float(i_sup.max())}


def probe_task(task: dict) -> dict:
    """One run (a worker task): ngspice from ``task['x0']`` against solve_ivp. The task carries the
    manifest, which the parent checked against the files once."""
    from ..ir.dynamics import ideal_model, reference, settle_time
    from ..verify.dynamics import load_design, run_spice, tolerance_fs
    from ..sim.ngspice import session

    out, man = Path(task["out"]), task["manifest"]
    model, Wq = load_design(out, man)
    x0 = np.asarray(task["x0"], float)
    t0 = time.perf_counter()
    tm, xs, cur = run_spice(session(), out, man, x0, man["dynamics"]["energy"]["probes"], model)
    secs = time.perf_counter() - t0
    ideal = ideal_model(model)
    if "noise" in man["dynamics"]:      # every run is driven by the deck's one noise realization
        from ..ir.dynamics import noise_path, pathwise
        from ..verify.dynamics import noise_plan_of

        plan = noise_plan_of(man)
        forcing = noise_path(model, plan, man["dynamics"]["noise"]["seed"])
        xr = pathwise(model, Wq, plan, forcing, x0, dense=True)[1](np.clip(tm, 0, model["t_end"]))
        xf = pathwise(ideal, model["layers"], plan, forcing, x0)[1]
    else:
        _, xr = reference(model, Wq, np.clip(tm, 0, model["t_end"]), x0)
        _, xf = reference(ideal, model["layers"], np.array([model["t_end"]]), x0)
    xr = xr.T
    # the digital reference: the model's math on the quantized weights (for a sky130_1t1r design the
    # trajectory check runs against its characterized circuit, xr, instead)
    xd = xr[-1] if "circuit" not in model else reference(ideal, Wq, np.array([model["t_end"]]), x0)[1][:, -1]
    fs = float(np.max(np.abs(xr))) or 1.0
    settle_s = float(settle_time(tm, xs, fs).max())
    return {"k": task["k"], "final_spice": xs[-1].tolist(), "final_ref": xd.tolist(), "final_float": xf[:, -1].tolist(),
            "settle_spice": settle_s, "settle_ref": float(settle_time(tm, xr, fs).max()),
            "max_err_over_fs": float(np.abs(xs - xr).max() / fs), "tolerance_fs": tolerance_fs(man),
            "spice_seconds": secs, **_energy(man, model, tm, cur, settle_s)}


def _load_states(path, what: str, n: int) -> np.ndarray:
    from ..frontend.common import load_floats

    x = load_floats(path, what)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] != n or not x.shape[0]:
        raise InputError(path, f"{what}: expected [K, {n}] states, got shape {list(x.shape)}")
    if not np.all(np.isfinite(x)):
        raise InputError(path, f"{what} hold NaN or Inf")
    return x


def evaluate_dynamics(out: Path, man: dict, inputs, labels=None, samples: int | None = None, jobs: int = 1,
                      timeout: float = 600.0, progress=None, data=None) -> dict:
    """``amsc evaluate`` of a dynamics design (module docstring); writes OUT/eval.json and eval.html."""
    from ..sim.executor import run_local
    from ..design import write_json_atomic
    from ..verify.run import warm_up

    t0 = time.perf_counter()
    n = man["dynamics"]["states"]
    x0 = _load_states(inputs, "initial states", n)
    y = None if labels is None else _load_states(labels, "target states", n)
    if y is not None and y.shape[0] != x0.shape[0]:
        raise InputError(labels, f"{y.shape[0]} target states for {x0.shape[0]} initial states")
    if samples is not None:
        if samples > x0.shape[0]:
            raise InputError(inputs, f"holds {x0.shape[0]} initial states; --samples {samples} asks for more")
        x0, y = x0[:samples], (None if y is None else y[:samples])
    if not 1 <= jobs <= 256:
        raise InputError("--jobs", f"{jobs}; expected 1..256")
    d_pts = None if data is None else _load_states(data, "data points", n)
    if d_pts is not None and d_pts.shape[0] < 2:
        raise InputError(data, "data points: expected at least 2 (the data's own spread is its two halves' distance)")
    if "ppa" not in man:
        raise InputError(out, "the manifest has no ppa figures (compiled by an older amsc); recompile")
    tasks = [{"out": str(Path(out).resolve()), "manifest": man, "k": k, "x0": x0[k].tolist()} for k in range(len(x0))]
    got: dict[int, dict] = {}
    failed: list[str] = []

    def done(j: int, res: tuple) -> None:
        status, val = res
        if status == "ok":
            got[j] = val
        else:
            failed.append(f"run {j}: {val}")
        if progress is not None:
            progress("ngspice runs", len(got) + len(failed), len(tasks))

    run_local(probe_task, tasks, jobs, timeout, on_done=done, init=partial(warm_up, "ngspice"))
    if failed:
        raise InputError(out, f"{len(failed)} of {len(tasks)} ngspice run(s) failed; first: {failed[0]}")
    runs = [got[k] for k in range(len(tasks))]
    fs = np.array([r["final_spice"] for r in runs])
    fr = np.array([r["final_ref"] for r in runs])
    ff = np.array([r["final_float"] for r in runs])
    rep = {"design": man["design"], "kind": "dynamics", "runs": len(runs), "engine": "ngspice",
           "agreement": float(np.mean(np.all(np.sign(fs) == np.sign(fr), axis=1))),
           "max_err_over_fs": max(r["max_err_over_fs"] for r in runs),
           "settle_spice_mean": float(np.mean([r["settle_spice"] for r in runs])),
           "settle_ref_mean": float(np.mean([r["settle_ref"] for r in runs])),
           "energy_per_run_j": float(np.mean([r["energy_j"] for r in runs])),
           "energy_to_settle_j": float(np.mean([r["energy_to_settle_j"] for r in runs])),
           "energy_rule": f"VDD {VDD:g} V x sum |I| of every driver and mirror output (simulated) + biases + "
                          "inputs + quiescent ppa.tia.power_uw per stage, over the run",
           "reference": "solve_ivp on the quantized weights (digital reference) and on the float weights",
           "time_unit": "model time", "per_run": runs}
    if y is not None:
        ok = lambda f: np.all(np.sign(f) == np.sign(y), axis=1)  # noqa: E731
        flips = np.sum(np.sign(x0) != np.sign(y), axis=1)
        groups = []
        for g in sorted(set(flips.tolist())):
            m = flips == g
            st_s = np.array([r["settle_spice"] for r in runs])[m]
            st_r = np.array([r["settle_ref"] for r in runs])[m]
            groups.append({"flipped_bits": int(g), "flipped_percent": 100.0 * g / n, "runs": int(m.sum()), "accuracy_spice": float(ok(fs)[m].mean()),
                           "accuracy_digital": float(ok(fr)[m].mean()), "accuracy_float": float(ok(ff)[m].mean()),
                           "settle_spice_mean": float(st_s.mean()), "settle_ref_mean": float(st_r.mean())})
        rep["retrieval"] = {"accuracy_spice": float(ok(fs).mean()), "accuracy_digital": float(ok(fr).mean()),
                            "accuracy_float": float(ok(ff).mean()), "by_flipped_bits": groups}
    if d_pts is not None:       # a generative model: its final states are its samples
        from ..ir.dynamics import energy_distance

        half = d_pts.shape[0] // 2
        ed = {k: energy_distance(v, d_pts) for k, v in (("spice", fs), ("digital", fr), ("float", ff))}
        err = np.linalg.norm(fs - fr, axis=1)
        rep["generation"] = {"data": str(data), "data_points": int(d_pts.shape[0]), "samples": len(runs),
                             **{f"energy_distance_{k}": v for k, v in ed.items()},
                             "energy_distance_data_halves": energy_distance(d_pts[:half], d_pts[half:]),
                             "spice_over_float": ed["spice"] / ed["float"] if ed["float"] else float("inf"),
                             "max_sample_err": float(err.max()), "rms_sample_err": float(np.sqrt(np.mean(err ** 2))),
                             "rule": "energy distance (Szekely and Rizzo, V-statistic) of the final states to the data; "
                                     "per sample, |final state ngspice - solve_ivp on the quantized model|"}
    rep["seconds"] = time.perf_counter() - t0
    write_json_atomic(Path(out) / "eval.json", rep)
    _html(Path(out), rep, {"data": d_pts, "spice": fs, "float": ff} if d_pts is not None and n == 2 else None)
    return rep


def _html(out: Path, rep: dict, samples: dict | None = None) -> None:
    """OUT/eval.html with its plots; ``samples`` (``data``, ``spice``, ``float`` points) adds a
    scatter of a two-state generative model's samples."""
    from ..verify.report import figure, png_bytes, render_page, write_page

    runs = rep["per_run"]
    fig = figure(6.5, 3.2)
    ax = fig.add_axes((0.1, 0.16, 0.38, 0.72))
    ax.scatter([r["settle_ref"] for r in runs], [r["settle_spice"] for r in runs], s=8)
    lim = max(max(r["settle_ref"] for r in runs), max(r["settle_spice"] for r in runs)) * 1.05 or 1.0
    ax.plot([0, lim], [0, lim], lw=0.8, color="k")
    ax.set_xlabel("settling, solve_ivp")
    ax.set_ylabel("settling, ngspice")
    ax.set_title("settling time (model time)", fontsize=9)
    ax2 = fig.add_axes((0.6, 0.16, 0.36, 0.72))
    ax2.hist([1e12 * r["energy_j"] for r in runs], bins=20)
    ax2.set_xlabel("energy per run [pJ]")
    ax2.set_title("supply energy", fontsize=9)
    (out / "eval-dynamics.png").write_bytes(png_bytes(fig))
    plots = ["eval-dynamics.png"]
    if samples is not None:     # a 2-D generative model: where its samples land, against the data
        fig = figure(4.2, 4.0)
        ax = fig.add_axes((0.14, 0.12, 0.82, 0.8))
        ax.scatter(samples["data"][:, 0], samples["data"][:, 1], s=4, color="#bbbbbb", label="data")
        ax.scatter(samples["float"][:, 0], samples["float"][:, 1], s=18, facecolors="none", edgecolors="C0",
                   linewidths=0.7, label="float model")
        ax.scatter(samples["spice"][:, 0], samples["spice"][:, 1], s=6, color="C3", marker="x", label="ngspice")
        ax.legend(fontsize=8)
        ax.set_title("generated samples", fontsize=9)
        (out / "eval-samples.png").write_bytes(png_bytes(fig))
        plots.append("eval-samples.png")
    write_page(out / "eval.html", render_page(Path(__file__).parent / "templates", "evaluate_dynamics.html.j2",
                                              rep=rep, plots=plots))
