"""Continuous-time dynamics on crossbars: ``amsc_dynamics`` YAML models (docs/dynamics.md).

A model ``tau dx/dt = -x + W s(x) + U u(t) + b`` becomes a circuit per state: a capacitor C with a
leak resistor R (R C = tau, time-scaled) is a leaky integrator whose node voltage is the state, and
a crossbar of differential conductance pairs computes ``W s(x)``:

- **W** is quantized onto the PDK's conductance levels, one pair (G+, G-) per weight, and laid out
  on PDK-sized tiles; the word lines of row block r carry ``s(x)`` of those states, and the bit
  lines of every row tile of a state sum into that state's sense node (held at 0 V), whose current
  is mirrored into its integrator (an F source: an ideal current mirror).
- **s** (tanh, sigmoid, relu, identity) is a behavioural voltage source on the generic PDK, driving
  the word line to ``V_read s(x) / s_max``.
- **u(t)** are PWL sources, each steered into the integrators through transconductors (``U``);
  **b** a constant current per integrator.

Scaling (written to the manifest; verification un-scales with it):
- amplitude: state voltage = ``a x``, with ``a`` such that the largest |x| of a reference solve of
  the quantized model over [0, t_end] sits at 1 / (1 + MARGIN) of the PDK's analog full scale
  (``tia.v_out_fs``);
- time: physical time = ``k_t`` model time, with ``k_t`` setting the fastest tau to TAU_FAST_S.

``amsc verify OUT`` runs the transient in ngspice, un-scales the state waveforms and compares them
with ``scipy.integrate.solve_ivp`` (rtol 1e-9, atol 1e-12) on the quantized W at the simulator's
time points: per state the largest and RMS error over full scale and the settling time.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import yaml

from .errors import InputError, PdkError

SCHEMA_VERSION = 1
ACTIVATIONS = ("tanh", "sigmoid", "relu", "identity")
_KEYS = {"amsc_dynamics", "name", "states", "tau", "activation", "W", "b", "inputs", "U", "x0", "t_end"}
_REQUIRED = {"amsc_dynamics", "states", "W", "x0", "t_end"}
#: largest state count (a dense N x N crossbar and an N-state transient)
MAX_STATES = 1024
#: the reference solve's tolerances (the issue's), and the sign-off tolerance on the generic PDK
RTOL, ATOL = 1e-9, 1e-12
TOLERANCE_FS = 1e-3
MARGIN = 0.25
TAU_FAST_S = 1e-6
C_INT = 1e-12                 # F, every integrator's capacitor
SETTLE_FRACTION = 0.01        # a state has settled once it stays within 1 % of full scale of its end value
TRAN_POINTS = 4000            # largest step of the transient: the window over this


def is_dynamics(path: Path) -> bool:
    """A YAML file whose top level names ``amsc_dynamics``."""
    if path.suffix.lower() not in (".yaml", ".yml"):
        return False
    try:
        doc = yaml.safe_load(path.read_bytes())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(doc, dict) and "amsc_dynamics" in doc


def act(name: str, x: np.ndarray) -> np.ndarray:
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if name == "relu":
        return np.maximum(x, 0.0)
    return np.asarray(x, float)


def _fail(path: Path, field: str, what: str) -> InputError:
    return InputError(path, f"{field}: {what}")


def _vector(path: Path, doc: dict, field: str, n: int, default=None) -> np.ndarray:
    v = doc.get(field, default)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = [float(v)] * n
    try:
        a = np.array(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise _fail(path, field, f"expected a number or a list of {n} numbers") from None
    if a.shape != (n,) or not np.all(np.isfinite(a)):
        raise _fail(path, field, f"expected {n} finite numbers, got shape {list(a.shape)}")
    return a


def _matrix(path: Path, spec, field: str, shape: tuple) -> np.ndarray:
    if isinstance(spec, dict):
        if set(spec) != {"file"} or not isinstance(spec["file"], str):
            raise _fail(path, field, "expected {file: name.npy} or an inline list of lists")
        base = path.parent.resolve()
        target = (base / spec["file"]).resolve()
        if Path(spec["file"]).is_absolute() or base not in target.parents:
            raise _fail(path, f"{field}.file", f"'{spec['file']}' must be a relative path inside {base}")
        try:
            a = np.load(target, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise _fail(path, f"{field}.file", f"cannot read '{spec['file']}': {e}") from None
    else:
        try:
            a = np.array(spec, dtype=np.float64)
        except (TypeError, ValueError):
            raise _fail(path, field, "expected a rectangular list of lists of numbers") from None
    a = np.asarray(a, dtype=np.float64)
    if a.shape != shape:
        raise _fail(path, field, f"expected shape {list(shape)}, got {list(a.shape)}")
    if not np.all(np.isfinite(a)):
        raise _fail(path, field, "holds NaN or Inf")
    return a


def load_dynamics(path: str | Path) -> dict:
    """Read and check an ``amsc_dynamics`` YAML model (see docs/dynamics.md)."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_bytes())
    except OSError as e:
        raise InputError(path, f"cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise InputError(path, f"invalid YAML: {getattr(e, 'problem', None) or type(e).__name__}") from None
    if not isinstance(doc, dict):
        raise InputError(path, "expected a mapping at the top level")
    unknown = sorted(str(k) for k in doc if k not in _KEYS)
    if unknown:
        raise InputError(path, f"unknown key(s) {unknown}; allowed: {sorted(_KEYS)}")
    missing = sorted(_REQUIRED - set(doc))
    if missing:
        raise InputError(path, f"missing required key(s) {missing}")
    if doc["amsc_dynamics"] != SCHEMA_VERSION:
        raise _fail(path, "amsc_dynamics", f"schema version {doc['amsc_dynamics']!r}; this amsc reads {SCHEMA_VERSION}")
    n = doc["states"]
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_STATES:
        raise _fail(path, "states", f"{n!r}; expected an integer in 1..{MAX_STATES}")
    actn = doc.get("activation", "tanh")
    if actn not in ACTIVATIONS:
        raise _fail(path, "activation", f"{actn!r}; expected one of {', '.join(ACTIVATIONS)}")
    tau = _vector(path, doc, "tau", n, 1.0)
    if np.any(tau <= 0):
        raise _fail(path, "tau", "every time constant must be positive")
    t_end = doc["t_end"]
    if not isinstance(t_end, (int, float)) or isinstance(t_end, bool) or not 0 < t_end < 1e9:
        raise _fail(path, "t_end", f"{t_end!r}; expected a positive model time")
    inputs = doc.get("inputs") or []
    if not isinstance(inputs, list):
        raise _fail(path, "inputs", "expected a list of {name, pwl}")
    pwl = []
    names = []
    for k, u in enumerate(inputs):
        if not isinstance(u, dict) or set(u) != {"name", "pwl"}:
            raise _fail(path, f"inputs[{k}]", "expected {name: ..., pwl: [[t, value], ...]}")
        try:
            p = np.array(u["pwl"], dtype=np.float64)
        except (TypeError, ValueError):
            p = np.zeros((0,))
        if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] < 1 or not np.all(np.isfinite(p)) \
                or np.any(np.diff(p[:, 0]) <= 0) or p[0, 0] < 0:
            raise _fail(path, f"inputs[{k}].pwl", "expected [[t, value], ...] with increasing times >= 0")
        names.append(str(u["name"]))
        pwl.append(p)
    if inputs and "U" not in doc:
        raise _fail(path, "U", f"required with inputs: an {n} x {len(inputs)} matrix")
    U = _matrix(path, doc["U"], "U", (n, len(inputs))) if inputs else np.zeros((n, 0))
    return {"name": str(doc.get("name") or path.stem), "n": n, "tau": tau, "activation": actn,
            "W": _matrix(path, doc["W"], "W", (n, n)), "b": _vector(path, doc, "b", n, 0.0),
            "x0": _vector(path, doc, "x0", n), "t_end": float(t_end), "inputs": names, "pwl": pwl, "U": U}


def quantize_w(W: np.ndarray, levels: int) -> tuple[np.ndarray, float]:
    """Signed weight levels (|q| <= levels - 1, one differential pair each) and the weight of one level."""
    w_max = float(np.max(np.abs(W))) or 1.0
    step = w_max / (levels - 1)
    return np.rint(W / step).astype(np.int64), step


def u_at(model: dict, t: float | np.ndarray) -> np.ndarray:
    """The inputs at model time ``t`` (PWL; held at the last value, zero before the first knot
    unless it is at t = 0)."""
    return np.array([np.interp(t, p[:, 0], p[:, 1], left=p[0, 1] if p[0, 0] == 0 else 0.0, right=p[-1, 1])
                     for p in model["pwl"]])


def reference(model: dict, Wq: np.ndarray, t_eval: np.ndarray | None = None):
    """``solve_ivp`` of the model with the quantized W (rtol 1e-9, atol 1e-12)."""
    from scipy.integrate import solve_ivp

    tau, b, U, a_name = model["tau"], model["b"], model["U"], model["activation"]
    knots = sorted({float(k) for p in model["pwl"] for k in p[:, 0] if 0 < k < model["t_end"]})

    def f(t, x):
        du = U @ u_at(model, t) if U.shape[1] else 0.0
        return (-x + Wq @ act(a_name, x) + du + b) / tau

    # integrate between the PWL knots, where the right-hand side has kinks
    edges = [0.0] + knots + [model["t_end"]]
    sols = []
    x = model["x0"].copy()
    for lo, hi in zip(edges[:-1], edges[1:]):
        sol = solve_ivp(f, (lo, hi), x, method="DOP853", rtol=RTOL, atol=ATOL, dense_output=True)
        if not sol.success:
            raise InputError(model["name"], f"the reference solve failed: {sol.message}")
        sols.append(sol)
        x = sol.y[:, -1]
    if t_eval is None:
        t = np.concatenate([s.t for s in sols])
        y = np.concatenate([s.y for s in sols], axis=1)
        keep = np.concatenate([[True], np.diff(t) > 0])
        return t[keep], y[:, keep]
    seg = np.clip(np.searchsorted(np.asarray(edges), t_eval, side="right") - 1, 0, len(sols) - 1)
    y = np.empty((model["n"], t_eval.size))
    for k, sol in enumerate(sols):
        m = seg == k
        if m.any():
            y[:, m] = sol.sol(t_eval[m])
    return t_eval, y


def compile_dynamics(path: Path, out: Path, options, pdk) -> dict:
    """``amsc compile dyn.yaml -o OUT``: the SPICE deck, the manifest and the arrays."""
    from . import __version__
    from .backend.plan import OutputWriter, sha256
    from .backend.render import chunks, environment, render, spice_num
    from .backend.spice import deck_context
    from .driver import pdk_summary
    from .ir.names import sanitize

    if pdk.cell["type"] != "1r" or "dynamics" not in pdk.templates:
        raise PdkError(options.pdk, f"PDK '{pdk.name}' has no dynamics templates; continuous-time models compile on "
                                    "the generic PDK (sky130_1t1r's transistor activations are not built yet)")
    data = path.read_bytes()
    model = load_dynamics(path)
    n = model["n"]
    q, w_step = quantize_w(model["W"], pdk.levels)
    Wq = q * w_step
    t_ref, x_ref = reference(model, Wq)
    x_max = float(np.max(np.abs(x_ref))) or 1.0
    a = pdk.tia_v_out_fs / (x_max * (1 + MARGIN))
    k_t = TAU_FAST_S / float(np.min(model["tau"]))
    s_max = {"tanh": 1.0, "sigmoid": 1.0}.get(model["activation"], x_max * (1 + MARGIN))
    g_step = pdk.g_step
    R = model["tau"] * k_t / C_INT
    # current into integrator i: a (W s + U u + b) / R_i; the crossbar gives sum_j q_ij g_step A_j with
    # word-line voltage A_j = V_read s_j / s_max, so the mirror gain is a w_step s_max / (g_step V_read R_i)
    mirror = a * w_step * s_max / (g_step * pdk.v_read * R)
    rows, cols = pdk.tile_rows, pdk.tile_cols // 2
    gp = pdk.g_min + np.maximum(q, 0) * g_step
    gn = pdk.g_min + np.maximum(-q, 0) * g_step
    # cell (i, j) is word line j (state j's activation) to bit line i (state i's sum)
    tiles = []
    for r0 in range(0, n, rows):
        for c0 in range(0, n, cols):
            r1, c1 = min(r0 + rows, n), min(c0 + cols, n)
            name = f"w_r{r0 // rows}c{c0 // cols}"
            lines = []
            for j in range(r0, r1):
                for i in range(c0, c1):
                    lines.append(f"RP_{j}_{i} a_{j} blp_{i} {spice_num(1.0 / gp[i, j])}")
                    lines.append(f"RN_{j}_{i} a_{j} bln_{i} {spice_num(1.0 / gn[i, j])}")
            ports = [f"a_{j}" for j in range(r0, r1)] + [f"bl{s}_{i}" for i in range(c0, c1) for s in ("p", "n")]
            tiles.append({"name": name, "rows": [r0, r1], "cols": [c0, c1], "port_lines": chunks(ports, 8),
                          "devices": "\n".join(lines)})
    expr = {"tanh": "tanh({x})", "sigmoid": "1/(1+exp(-({x})))", "relu": "max({x},0)", "identity": "({x})"}[model["activation"]]
    states = []
    for i in range(n):
        x = f"V(x_{i})/{spice_num(a)}"
        states.append({"i": i, "r": spice_num(R[i]), "ic": spice_num(a * model["x0"][i]),
                       "act": f"{spice_num(pdk.v_read / s_max)}*{expr.format(x=x)}", "mirror": spice_num(mirror[i]),
                       "bias": spice_num(a * model["b"][i] / R[i]),
                       "inputs": [{"k": k, "gm": spice_num(a * model["U"][i, k] / R[i])}
                                  for k in range(len(model["inputs"])) if model["U"][i, k] != 0]})
    srcs = [{"k": k, "name": sanitize(nm), "pwl": " ".join(f"{spice_num(t * k_t)} {spice_num(v)}" for t, v in p)}
            for k, (nm, p) in enumerate(zip(model["inputs"], model["pwl"]))]
    t_stop = model["t_end"] * k_t
    design = sanitize(model["name"])
    deck = render(environment(pdk), "dynamics", **deck_context(model["name"], pdk, sha256(data)), n=n, states=states, tiles=tiles, sources=srcs, c=spice_num(C_INT),
                  tstep=spice_num(t_stop / TRAN_POINTS), tstop=spice_num(t_stop), a=spice_num(a), k_t=spice_num(k_t),
                  activation=model["activation"])
    man = {"amsc_version": __version__, "kind": "dynamics", "design": design,
           "source": {"name": path.name, "sha256": sha256(data), "file": f"source/{path.name}"},
           "pdk": pdk_summary(pdk),
           "dynamics": {"states": n, "activation": model["activation"], "tau": model["tau"].tolist(),
                        "t_end": model["t_end"], "inputs": model["inputs"], "deck": "spice/dynamics.sp",
                        "w_step": w_step, "levels": "arrays/w_levels.npy",
                        "scaling": {"amplitude_v_per_unit": a, "time_s_per_unit": k_t, "x_max_reference": x_max,
                                    "margin": MARGIN, "v_full_scale": pdk.tia_v_out_fs},
                        "integrator": {"c_f": C_INT, "r_ohm": R.tolist()}},
           "tiles": [{"name": t["name"], "rows": t["rows"], "cols": t["cols"]} for t in tiles]}
    with OutputWriter(out) as w:
        w.add("spice/dynamics.sp", deck)
        w.add_npy("arrays/w_levels.npy", q)
        w.add_file(f"source/{path.name}", path)
        # the model's own arrays travel with the design (the source YAML may name files next to it)
        for key in ("W", "U", "b", "x0", "tau"):
            w.add_npy(f"arrays/{key}.npy", np.asarray(model[key], float))
        man["files"] = [{"path": k, "sha256": v} for k, v in w.digests().items()]
        w.commit(man)
    return man


def _model_from(out: Path, man: dict) -> dict:
    d = man["dynamics"]
    src = yaml.safe_load((out / man["source"]["file"]).read_bytes())
    pwl = [np.array(u["pwl"], float) for u in (src.get("inputs") or [])]
    ld = lambda k: np.load(out / f"arrays/{k}.npy", allow_pickle=False)  # noqa: E731
    return {"name": man["design"], "n": d["states"], "tau": ld("tau"), "activation": d["activation"], "W": ld("W"),
            "b": ld("b"), "x0": ld("x0"), "t_end": d["t_end"], "inputs": d["inputs"], "pwl": pwl, "U": ld("U")}


def verify_dynamics(out: Path, man: dict) -> dict:
    """``amsc verify`` of a dynamics design: the ngspice transient against solve_ivp (see the module docstring)."""
    from .sim.ngspice import session
    from .verify.report import figure, png_bytes
    from .verify.run import write_json_atomic

    t0 = time.perf_counter()
    d = man["dynamics"]
    model = _model_from(out, man)
    n = d["states"]
    Wq = np.load(out / d["levels"], allow_pickle=False) * d["w_step"]
    sc = d["scaling"]
    eng = session()
    deck = (out / d["deck"]).read_text()
    t_sim = time.perf_counter()
    t, v = eng.transient(deck, d["deck"], [f"x_{i}" for i in range(n)])
    t_spice = time.perf_counter() - t_sim
    tm = t / sc["time_s_per_unit"]
    x_spice = v / sc["amplitude_v_per_unit"]
    t_ref0 = time.perf_counter()
    _, x_ref = reference(model, Wq, np.clip(tm, 0, model["t_end"]))
    t_ivp = time.perf_counter() - t_ref0
    x_ref = x_ref.T
    fs = float(np.max(np.abs(x_ref))) or 1.0
    err = x_spice - x_ref
    blocks = []
    for i in range(n):
        e = np.abs(err[:, i])
        away = np.nonzero(np.abs(x_ref[:, i] - x_ref[-1, i]) > SETTLE_FRACTION * fs)[0]
        settle = float(tm[away[-1] + 1]) if away.size and away[-1] + 1 < tm.size else (0.0 if not away.size else float(tm[-1]))
        mx, rms = float(e.max() / fs), float(np.sqrt(np.mean(e ** 2)) / fs)
        blocks.append({"name": f"x_{i}", "layer": "state", "passed": mx <= TOLERANCE_FS, "error": None,
                       "max_err_over_fs": mx, "rms_err_over_fs": rms, "settle_time": settle,
                       "max_abs_err": float(e.max()), "rms_err": float(np.sqrt(np.mean(e ** 2))),
                       "tolerance": TOLERANCE_FS * fs})
    rep = {"design": man["design"], "kind": "dynamics", "engine": "ngspice", "simulator": eng.version,
           "passed": all(b["passed"] for b in blocks), "blocks": blocks, "simulated": n, "vectors": int(t.size),
           "seed": 0, "tolerance_lsb": 1.0, "tolerance_rule": f"max |x_spice - x_ref| <= {TOLERANCE_FS:g} of full scale "
           f"({fs:.4g}, the largest |x| of the reference)", "full_scale": fs,
           "max_err_over_fs": max(b["max_err_over_fs"] for b in blocks),
           "rms_err_over_fs": float(np.sqrt(np.mean(err ** 2)) / fs),
           "reference": f"scipy solve_ivp DOP853, rtol {RTOL:g}, atol {ATOL:g}, quantized W",
           "spice_seconds": t_spice, "solve_ivp_seconds": t_ivp, "scaling": sc}
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
            "<p><img src='verify-dynamics.png'></p><table><tr><th>state</th><th>status</th><th>max err / FS</th>"
            f"<th>RMS err / FS</th><th>settling time</th></tr>{rows}</table></body></html>\n")
    (out / ".verify.html.tmp").write_text(html)
    (out / ".verify.html.tmp").replace(out / "verify.html")
    rep["seconds"] = time.perf_counter() - t0
    write_json_atomic(out / "verify.json", rep)
    return rep
