"""``amsc verify`` of a continuous-time design: the ngspice transient against ``solve_ivp`` on the
quantized model (or, on sky130_1t1r, on the characterized circuit), per state the largest and RMS
error over full scale and the settling time (compiler/ir/dynamics.py has the model's maths)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..backend.dynamics import ic_line
from ..ir.dynamics import ATOL, RTOL, ideal_model, reference, settle_time

#: the sign-off tolerance on the generic PDK, in fractions of full scale
TOLERANCE_FS = 1e-3


def load_design(out: Path, man: dict) -> tuple[dict, dict]:
    """The compiled model (from OUT's arrays and source) and its quantized weights."""
    d = man["dynamics"]
    from ..frontend.common import load_yaml

    src = load_yaml((out / man["source"]["file"]).read_bytes(), out / man["source"]["file"])
    pwl = [np.array(u["pwl"], float) for u in (src.get("inputs") or [])]
    from ..design import MANIFEST, confined

    ld = lambda k: np.load(confined(out, f"arrays/{k}.npy", out / MANIFEST, "array"), allow_pickle=False)  # noqa: E731
    model = {"name": man["design"], "n": d["states"], "tau": ld("tau"), "activation": d["activation"],
             "b": ld("b"), "x0": ld("x0"), "t_end": d["t_end"], "inputs": d["inputs"], "pwl": pwl, "U": ld("U"),
             "form": d["form"], "layers": {k: ld(k) for k in d["layers"]}, "time_scale": None}
    if d["form"] == "vector_field":
        model.update(hidden=d["hidden"], b1=ld("b1"))
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
    t, v = eng.transient(deck, d["deck"], [f"x_{i}" for i in range(n)] + list(extra))
    return t / sc["time_s_per_unit"], v[:, :n] / sc["amplitude_v_per_unit"], v[:, n:]


def verify_dynamics(out: Path, man: dict) -> dict:
    """``amsc verify`` of a dynamics design: the ngspice transient against solve_ivp (see the module docstring)."""
    from ..design import write_json_atomic
    from ..sim.ngspice import session
    from .report import figure, png_bytes

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
           "reference": f"scipy solve_ivp DOP853, rtol {RTOL:g}, atol {ATOL:g}, quantized weights"
                        + (", the characterized sky130_1t1r circuit (backend/dynamics_1t1r.py)" if intended else ""),
           "spice_seconds": t_spice, "solve_ivp_seconds": t_ivp, "scaling": sc,
           **({"intended": intended} if intended else {})}
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
    rows = "".join(f"<tr><td>{b['name']}</td><td>{'pass' if b['passed'] else 'FAIL'}</td><td>{b['max_err_over_fs']:.3e}</td>"
                   f"<td>{b['rms_err_over_fs']:.3e}</td><td>{b['settle_time']:.4g}</td></tr>" for b in blocks)
    html = ("<!doctype html><html><head><meta charset='utf-8'><title>amsc verify " + man["design"] + "</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;text-align:right}</style></head><body>"
            f"<h1>{man['design']}: ngspice transient against solve_ivp</h1><p>{rep['tolerance_rule']}; "
            f"reference: {rep['reference']}; amplitude {sc['amplitude_v_per_unit']:.4g} V per unit, time "
            f"{sc['time_s_per_unit']:.4g} s per unit; ngspice {t_spice:.2f} s, solve_ivp {t_ivp:.2f} s.</p>"
            + (f"<p>The reference is the characterized circuit; {intended['what']}: max "
               f"{intended['max_err_over_fs']:.3e}, RMS {intended['rms_err_over_fs']:.3e} of full scale.</p>"
               if intended else "") +
            "<p><img src='verify-dynamics.png'></p><table><tr><th>state</th><th>status</th><th>max err / FS</th>"
            f"<th>RMS err / FS</th><th>settling time</th></tr>{rows}</table></body></html>\n")
    (out / ".verify.html.tmp").write_text(html)
    (out / ".verify.html.tmp").replace(out / "verify.html")
    rep["seconds"] = time.perf_counter() - t0
    write_json_atomic(out / "verify.json", rep)
    return rep
