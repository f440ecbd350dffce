"""Continuous-time dynamics on crossbars: ``amsc_dynamics`` YAML models (docs/dynamics.md).

Two forms of model, both integrated by capacitors in continuous time:

- **recurrent** (``W``): ``tau dx/dt = -x + W s(x) + U u(t) + b`` (continuous-time RNNs, Hopfield
  networks). Each state is a leaky integrator: a capacitor C with a leak resistor R (R C = tau,
  time-scaled) whose node voltage is the state; a crossbar of differential conductance pairs computes
  ``W s(x)``: the word lines of row block r carry ``s(x)`` of those states, and the bit lines of every
  row tile of a state sum into that state's sense node (held at 0 V), whose current is mirrored into
  its integrator (an F source: an ideal current mirror).
- **vector field** (``vector_field: {hidden, W1, b1, W2}``): ``tau dx/dt = W2 s(W1 x + b1) + U u(t) + b``,
  a neural ODE whose right-hand side is a one-hidden-layer MLP. The hidden layer is a memoryless
  crossbar read: the states drive W1's word lines (linear buffers), an ideal TIA turns each hidden
  bit-line pair's current into a voltage, s of it drives W2's word lines, and W2's bit lines feed
  the states' integrators, which have no leak. The hidden layer has no time constant of its own, so
  the lowering adds no approximation beyond the quantization of W1 and W2.

``s`` (tanh, sigmoid, relu, identity) is a behavioural voltage source on the generic PDK, driving its
word line to ``V_read s / s_max``; **u(t)** are PWL sources, each steered into the integrators
through transconductors (``U``); **b** a constant current per integrator.

Scaling (written to the manifest; verification un-scales with it):
- amplitude: state voltage = ``a x``, with ``a`` such that the largest |x| of a reference solve of
  the quantized model over [0, t_end] sits at 1 / (1 + MARGIN) of the PDK's analog full scale
  (``tia.v_out_fs``); the hidden voltages of a vector field likewise;
- time: physical time = ``k_t`` model time. The system's fastest rate is bounded by the spectral norm
  of its Jacobian, ``rate <= (1 + ||W|| s'_max) / tau_min`` (recurrent) or ``||W2|| ||W1|| s'_max /
  tau_min`` (vector field); ``k_t`` puts that rate at 1 / (1 + MARGIN) of the PDK's integrator
  bandwidth, BANDWIDTH_FRACTION of its op-amps' gain-bandwidth product. (Derived here: with a
  single-pole op-amp A(s) = 2 pi GBW / s, an inverting integrator's transfer is the ideal one times
  1 / (1 + (1 + s R C) / (A(s) s R C)), whose relative error at frequency f (>> 1 / (2 pi R C)) is
  about f / GBW.) A model's own ``time_scale`` overrides ``k_t`` and is refused, with the time
  scale that fits, when it is too fast.

``amsc verify OUT`` runs the transient in ngspice, un-scales the state waveforms and compares them
with ``scipy.integrate.solve_ivp`` (rtol 1e-9, atol 1e-12) on the quantized weights at the
simulator's time points: per state the largest and RMS error over full scale and the settling time.
``amsc evaluate OUT --inputs X0.npy`` runs many initial states (compiler/eval/dynamics.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .errors import InputError, PdkError

SCHEMA_VERSION = 1
ACTIVATIONS = ("tanh", "sigmoid", "relu", "identity")
#: the largest slope of each activation (the Jacobian bound of the time scaling)
SLOPE = {"tanh": 1.0, "sigmoid": 0.25, "relu": 1.0, "identity": 1.0}
_KEYS = {"amsc_dynamics", "name", "states", "tau", "activation", "W", "vector_field", "b", "inputs", "U", "x0",
         "t_end", "time_scale", "sample_times"}
_REQUIRED = {"amsc_dynamics", "states", "x0", "t_end"}
_VF_KEYS = {"hidden", "W1", "b1", "W2"}
#: largest state (and hidden) count (a dense N x N crossbar and an N-state transient)
MAX_STATES = 1024
#: the reference solve's tolerances (the issue's), and the sign-off tolerance on the generic PDK
RTOL, ATOL = 1e-9, 1e-12
TOLERANCE_FS = 1e-3
MARGIN = 0.25
#: the integrators' bandwidth as a fraction of the op-amps' GBW (module docstring)
BANDWIDTH_FRACTION = 1e-3
C_INT = 1e-12                 # F, every integrator's capacitor
SETTLE_FRACTION = 0.01        # a state has settled once it stays within 1 % of full scale of its end value
#: a reference trajectory this many times larger than max(1, |x0|, |b|, |U u|) is taken as diverging
DIVERGED = 1e4
#: the time-step budget: t_end times the model's rate bound (how many of its fastest time constants the
#: window spans; the bundled designs span about 100). Each costs the reference solve and the transient
#: some steps, so a window of 9e8 model time on a unit-rate model would run for hours.
MAX_SPAN = 1e5
#: the controller's default sample times: this many, evenly over (0, t_end]
SAMPLE_POINTS = 16
TRAN_POINTS = 1000            # largest step of the transient: the window over this


def is_dynamics(path: Path) -> bool:
    """A YAML file whose top level names ``amsc_dynamics``."""
    if path.suffix.lower() not in (".yaml", ".yml"):
        return False
    from .frontend.common import load_yaml

    try:
        doc = load_yaml(path.read_bytes(), path)
    except (OSError, InputError):
        return False          # the network front end reads it again and names what is wrong
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


def _count(path: Path, v, field: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= MAX_STATES:
        raise _fail(path, field, f"{v!r}; expected an integer in 1..{MAX_STATES}")
    return v


def load_dynamics(path: str | Path) -> dict:
    """Read and check an ``amsc_dynamics`` YAML model (see docs/dynamics.md)."""
    path = Path(path)
    from .frontend.common import load_yaml

    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(path, f"cannot read: {e.strerror}") from None
    doc = load_yaml(data, path)
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
    if ("W" in doc) == ("vector_field" in doc):
        raise InputError(path, "expected exactly one of 'W' (a recurrent model) and 'vector_field' (an MLP vector field)")
    n = _count(path, doc["states"], "states")
    actn = doc.get("activation", "tanh")
    if actn not in ACTIVATIONS:
        raise _fail(path, "activation", f"{actn!r}; expected one of {', '.join(ACTIVATIONS)}")
    tau = _vector(path, doc, "tau", n, 1.0)
    if np.any(tau <= 0):
        raise _fail(path, "tau", "every time constant must be positive")
    t_end = doc["t_end"]
    if not isinstance(t_end, (int, float)) or isinstance(t_end, bool) or not 0 < t_end < 1e9:
        raise _fail(path, "t_end", f"{t_end!r}; expected a positive model time")
    ts = doc.get("time_scale")
    if ts is not None and (not isinstance(ts, (int, float)) or isinstance(ts, bool) or not 0 < ts < 1e6):
        raise _fail(path, "time_scale", f"{ts!r}; expected a positive number of seconds per unit of model time")
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
    st = doc.get("sample_times")
    if st is None:
        st = [float(t_end) * (k + 1) / SAMPLE_POINTS for k in range(SAMPLE_POINTS)]
    try:
        st = np.array(st, dtype=np.float64)
    except (TypeError, ValueError):
        st = np.zeros((0, 0))
    if st.ndim != 1 or not 1 <= st.size <= 4096 or not np.all(np.isfinite(st)) or np.any(np.diff(st) <= 0) \
            or st[0] <= 0 or st[-1] > t_end:
        raise _fail(path, "sample_times", "expected 1..4096 increasing model times in (0, t_end]")
    model = {"name": str(doc.get("name") or path.stem), "n": n, "tau": tau, "activation": actn,
             "sample_times": st,
             "b": _vector(path, doc, "b", n, 0.0), "x0": _vector(path, doc, "x0", n), "t_end": float(t_end),
             "inputs": names, "pwl": pwl, "U": U, "time_scale": None if ts is None else float(ts)}
    if "W" in doc:
        return {**model, "form": "recurrent", "layers": {"W": _matrix(path, doc["W"], "W", (n, n))}}
    vf = doc["vector_field"]
    if not isinstance(vf, dict) or not {"hidden", "W1", "W2"} <= set(vf) <= _VF_KEYS:
        raise _fail(path, "vector_field", "expected {hidden: H, W1: H x N, b1: H (optional), W2: N x H}")
    h = _count(path, vf["hidden"], "vector_field.hidden")
    return {**model, "form": "vector_field", "hidden": h, "b1": _vector(path, vf, "b1", h, 0.0),
            "layers": {"W1": _matrix(path, vf["W1"], "vector_field.W1", (h, n)),
                       "W2": _matrix(path, vf["W2"], "vector_field.W2", (n, h))}}


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


def u_rate(model: dict, t: float) -> np.ndarray:
    """The inputs' slopes at model time ``t`` (of the PWL segment that starts at or before t)."""
    out = []
    for p in model["pwl"]:
        k = int(np.searchsorted(p[:, 0], t, side="right")) - 1
        out.append((p[k + 1, 1] - p[k, 1]) / (p[k + 1, 0] - p[k, 0]) if 0 <= k < len(p) - 1 else 0.0)
    return np.array(out)


def hidden_pre(model: dict, Wq: dict, x: np.ndarray) -> np.ndarray:
    """A vector field's hidden pre-activations ``W1 x + b1`` (x: [N] or [N, T])."""
    b1 = model["b1"] if x.ndim == 1 else model["b1"][:, None]
    return Wq["W1"] @ x + b1


def rhs(model: dict, Wq: dict):
    """The right-hand side ``f(t, x)`` with the quantized weights ``Wq`` (name -> matrix); with a
    ``circuit`` (sky130_1t1r), the characterized circuit's instead."""
    tau, b, U, a_name = model["tau"], model["b"], model["U"], model["activation"]

    circuit = model.get("circuit")

    def f(t, x):
        du = U @ u_at(model, t) if U.shape[1] else 0.0
        if circuit is not None:         # sky130_1t1r: the characterized circuit (compiler/dynamics_1t1r.py)
            rate = U @ u_rate(model, t) if U.shape[1] else 0.0
            return circuit.rhs(x, model["circuit_bias"] + du + b, tau, rate)
        if model["form"] == "recurrent":
            return (-x + Wq["W"] @ act(a_name, x) + du + b) / tau
        return (Wq["W2"] @ act(a_name, hidden_pre(model, Wq, x)) + du + b) / tau
    return f


def reference(model: dict, Wq: dict, t_eval: np.ndarray | None = None, x0: np.ndarray | None = None):
    """``solve_ivp`` of the model with the quantized weights (rtol 1e-9, atol 1e-12), from ``x0``
    (default: the model's)."""
    from scipy.integrate import solve_ivp

    f = rhs(model, Wq)
    knots = sorted({float(k) for p in model["pwl"] for k in p[:, 0] if 0 < k < model["t_end"]})
    # integrate between the PWL knots, where the right-hand side has kinks
    edges = [0.0] + knots + [model["t_end"]]
    sols = []
    x = (model["x0"] if x0 is None else np.asarray(x0, float)).copy()
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


def rate_bound(model: dict, Wq: dict) -> float:
    """An upper bound of the system's fastest rate (1 / model time): the spectral norm of its
    Jacobian over every state (module docstring). A vector field's bound is at least 1 / tau_max."""
    d, inv = SLOPE[model["activation"]], 1.0 / float(np.min(model["tau"]))
    if model["form"] == "recurrent":
        return inv * (1.0 + float(np.linalg.norm(Wq["W"], 2)) * d)
    r = inv * float(np.linalg.norm(Wq["W2"], 2) * np.linalg.norm(Wq["W1"], 2)) * d
    return max(r, 1.0 / float(np.max(model["tau"])))


def integrator_bandwidth(pdk) -> tuple[float, float]:
    """(the PDK's integrator bandwidth in Hz, the op-amp GBW it comes from)."""
    if pdk.tia.get("type") == "opamp":
        gbw = float(pdk.tia["gbw_hz"])
    elif pdk.ppa is not None:
        gbw = float(pdk.ppa["tia"]["gbw_hz"])
    else:
        raise PdkError(pdk.name, "names no op-amp gain-bandwidth (tia.gbw_hz or ppa.tia.gbw_hz) to bound the "
                                 "integrators' bandwidth")
    return BANDWIDTH_FRACTION * gbw, gbw


def time_scale(model: dict, Wq: dict, pdk, where) -> dict:
    """The time scaling: ``k_t`` seconds per unit of model time (the model's ``time_scale`` or the
    automatic one), with the bandwidths behind it."""
    rate = rate_bound(model, Wq)
    f_bw, gbw = integrator_bandwidth(pdk)
    fit = rate / (2 * np.pi * f_bw)           # the fastest time scale at which the system fits the bandwidth
    k_t = model["time_scale"] if model["time_scale"] is not None else fit * (1 + MARGIN)
    f_sys = rate / (2 * np.pi * k_t)
    if f_sys > f_bw:
        raise _fail(Path(where), "time_scale", f"{k_t:.4g} s per unit puts the system's fastest rate at "
                    f"{f_sys:.4g} Hz, above the PDK's integrator bandwidth of {f_bw:.4g} Hz ({BANDWIDTH_FRACTION:g} "
                    f"of its op-amps' {gbw:.4g} Hz GBW); a time_scale of at least {fit:.4g} s per unit fits")
    return {"time_s_per_unit": k_t, "rate_bound_per_unit": rate, "system_bandwidth_hz": f_sys,
            "pdk_bandwidth_hz": f_bw, "automatic": model["time_scale"] is None}


def _tiles(prefix: str, q: np.ndarray, inputs: list[str], out_p: str, out_n: str, pdk,
           fet_model: dict | None = None) -> list[dict]:
    """The crossbar tiles of one weight matrix ``q`` [outputs, inputs] (levels): input j drives word
    line ``inputs[j]``; output i's pair sums on nodes ``<out_p>_i`` / ``<out_n>_i``. Each tile is a
    subckt on local ports (wl_*, blp_*, bln_*), its devices formatted in bulk as a network tile's."""
    from .backend.render import chunks
    from .backend.spice import PORTS_PER_LINE, device_block

    rows, cols = pdk.tile_rows, pdk.tile_cols // 2
    n_out, n_in = q.shape
    gp = pdk.g_min + np.maximum(q, 0) * pdk.g_step
    gn = pdk.g_min + np.maximum(-q, 0) * pdk.g_step
    tiles = []
    for r0 in range(0, n_in, rows):
        for c0 in range(0, n_out, cols):
            r1, c1 = min(r0 + rows, n_in), min(c0 + cols, n_out)
            ports = [f"wl_{j}" for j in range(r1 - r0)] + [f"bl{s}_{i}" for i in range(c1 - c0) for s in ("p", "n")]
            nodes = inputs[r0:r1] + [f"{o}_{i}" for i in range(c0, c1) for o in (out_p, out_n)]
            if fet_model is not None:          # 1T1R: the access transistors' gates
                ports, nodes = ports + ["sel"], nodes + ["sel"]
            tiles.append({"name": f"{prefix}_r{r0 // rows}c{c0 // cols}", "layer": prefix, "rows": [r0, r1],
                          "cols": [c0, c1], "port_lines": chunks(ports, PORTS_PER_LINE),
                          "node_lines": chunks(nodes, PORTS_PER_LINE),
                          "devices": device_block(gp[c0:c1, r0:r1].T, gn[c0:c1, r0:r1].T, pdk, fet_model, None,
                                                  guard=True)})
    return tiles


_EXPR = {"tanh": "tanh({x})", "sigmoid": "1/(1+exp(-({x})))", "relu": "max({x},0)", "identity": "({x})"}


def ic_line(a: float, x0: np.ndarray) -> str:
    """The deck's ``.ic`` card for initial state ``x0`` at ``a`` volts per unit."""
    from .backend.render import spice_num

    return ".ic " + " ".join(f"V(x_{i})={spice_num(a * v)}" for i, v in enumerate(x0))


def _generic_circuit(model: dict, quant: dict, pdk, a: float, k_t: float, s_max: float, s_in_max: float,
                     x_max: float, common: dict) -> dict:
    """The generic PDK's deck: RC integrators fed by ideal current mirrors, behavioural activations
    (module docstring). Returns the deck, the tiles and the manifest's circuit fields."""
    from .backend.render import environment, render, spice_num

    n, vf = model["n"], model["form"] == "vector_field"
    v_fs, v_read, g_step = pdk.tia_v_out_fs, pdk.v_read, pdk.g_step
    R = model["tau"] * k_t / C_INT
    # current into integrator i: a (W s + U u + b) / R_i; the crossbar gives sum_j q_ij g_step A_j with
    # word-line voltage A_j = V_read s_j / s_max, so the mirror gain is a w_step s_max / (g_step V_read R_i)
    mirror = a * quant["W2" if vf else "W"][1] * s_max / (g_step * v_read * R)
    drive = f"{spice_num(v_read / s_max)}*{_EXPR[model['activation']]}"
    hidden, drivers, extra = [], [], {}
    if vf:
        h = model["hidden"]
        x_fs = x_max * (1 + MARGIN)                       # x drives W1's word lines at V_read x / x_fs
        a_h = v_fs / (s_in_max * (1 + MARGIN))            # hidden pre-activation h at a_h volts per unit
        rf = a_h * quant["W1"][1] * x_fs / (g_step * v_read)
        drivers = [{"i": j, "gain": spice_num(v_read / (a * x_fs))} for j in range(n)]
        hidden = [{"k": k, "rf": spice_num(rf), "off": spice_num(a_h * model["b1"][k]),
                   "act": drive.format(x=f"V(hv_{k})/{spice_num(a_h)}")} for k in range(h)]
        tiles = (_tiles("w1", quant["W1"][0], [f"ax_{j}" for j in range(n)], "hp", "hn", pdk)
                 + _tiles("w2", quant["W2"][0], [f"a_{k}" for k in range(h)], "blp", "bln", pdk))
        extra = {"hidden_v_per_unit": a_h, "hidden_max_reference": s_in_max}
    else:
        h = 0
        tiles = _tiles("w", quant["W"][0], [f"a_{j}" for j in range(n)], "blp", "bln", pdk)
    states = []
    for i in range(n):
        states.append({"i": i, "r": None if vf else spice_num(R[i]), "mirror": spice_num(mirror[i]),
                       "act": None if vf else drive.format(x=f"V(x_{i})/{spice_num(a)}"),
                       "bias": spice_num(a * model["b"][i] / R[i]),
                       "inputs": [{"k": k, "gm": spice_num(a * model["U"][i, k] / R[i])}
                                  for k in range(len(model["inputs"])) if model["U"][i, k] != 0]})
    deck = render(environment(pdk), "dynamics", **common, states=states, hidden=hidden, drivers=drivers,
                  tiles=tiles, c=spice_num(C_INT), ic=ic_line(a, model["x0"]), a=spice_num(a))
    # supply energy (compiler/eval/dynamics.py): every stage draws |I_out|; the mirrors scale their
    # sense currents; a vector field's hidden TIAs source their bit lines' currents
    drv = ([f"i(ex_{j})" for j in range(n)] + [f"i(ba_{k})" for k in range(h)]
           + [f"i(vh{s}_{k})" for k in range(h) for s in ("p", "n")]) if vf else [f"i(ba_{j})" for j in range(n)]
    sense = [f"i(vs{s}_{i})" for i in range(n) for s in ("p", "n")]
    energy = {"probes": drv + sense, "weights": [1.0] * len(drv) + np.repeat(mirror, 2).tolist(),
              "bias_a": float(np.sum(np.abs(a * model["b"] / R))), "input_gm": (a * model["U"] / R[:, None]).tolist(),
              "stages": 2 * n + 2 * h}
    return {"deck": deck, "tiles": tiles, "scaling_extra": extra, "energy": energy,
            "integrator": {"c_f": [C_INT] * n, "r_ohm": R.tolist(), "leak": not vf},
            "circuit": {"mirror_gain": mirror.tolist(), "s_max": s_max}}


def compile_dynamics(path: Path, out: Path, options, pdk) -> dict:
    """``amsc compile dyn.yaml -o OUT``: the SPICE deck, the manifest and the arrays."""
    from . import __version__
    from .backend.floorplan import placement_images, placement_json
    from .design.writer import OutputWriter, sha256
    from .backend.render import environment, render, spice_num
    from .backend.spice import deck_context
    from .driver import pdk_summary
    from .ir.names import sanitize

    if "dynamics" not in pdk.templates:
        raise PdkError(options.pdk, f"PDK '{pdk.name}' has no dynamics template; continuous-time models compile on "
                                    "the generic and sky130_1t1r PDKs")
    data = path.read_bytes()
    model = load_dynamics(path)
    n, vf = model["n"], model["form"] == "vector_field"
    quant = {k: quantize_w(W, pdk.levels) for k, W in model["layers"].items()}
    Wq = {k: q * step for k, (q, step) in quant.items()}
    span = model["t_end"] * rate_bound(model, Wq)
    if span > MAX_SPAN:
        raise _fail(path, "t_end", f"{model['t_end']:g} spans {span:.3g} of the model's fastest time constant (the "
                    f"inverse of its rate bound); the reference solve and the transient resolve at most {MAX_SPAN:.0e}, "
                    f"so t_end may be at most {MAX_SPAN / span * model['t_end']:.4g} for this model")
    sky = pdk.cell["type"] == "1t1r"
    if sky:
        from . import dynamics_1t1r as d1

        char, k_x = d1.prepare(model, quant, pdk, options.corner, path)
    scaling = time_scale(model, Wq, pdk, path)
    k_t = scaling["time_s_per_unit"]
    _, x_ref = reference(model, Wq)
    x_max = float(np.max(np.abs(x_ref))) or 1.0
    drive = max([1.0, float(np.max(np.abs(model["x0"]))), float(np.max(np.abs(model["b"])))]
                + [float(np.max(np.abs(model["U"][:, k])) * np.max(np.abs(p[:, 1]))) for k, p in enumerate(model["pwl"])])
    if x_max > DIVERGED * drive:
        raise InputError(path, f"the quantized model's trajectory grows to |x| = {x_max:.3g} over [0, t_end]; an "
                               "unbounded system has no amplitude scaling (check W's gain or shorten t_end)")
    v_fs = pdk.tia_v_out_fs
    a = v_fs / (x_max * (1 + MARGIN))
    sig = x_ref if not vf else hidden_pre(model, Wq, x_ref)
    s_in_max = float(np.max(np.abs(sig))) or 1.0          # the largest argument of the activation
    s_max = {"tanh": 1.0, "sigmoid": 1.0}.get(model["activation"], s_in_max * (1 + MARGIN))
    design = sanitize(model["name"])
    srcs = [{"k": k, "name": sanitize(nm), "pwl": " ".join(f"{spice_num(t * k_t)} {spice_num(v)}" for t, v in p)}
            for k, (nm, p) in enumerate(zip(model["inputs"], model["pwl"]))]
    t_stop = model["t_end"] * k_t
    common = {**deck_context(model["name"], pdk, sha256(data)), "n": n, "sources": srcs,
              "tstep": spice_num(t_stop / TRAN_POINTS), "tstop": spice_num(t_stop), "k_t": spice_num(k_t),
              "activation": model["activation"], "form": model["form"]}
    if sky:
        built = d1.build(model, quant, pdk, options.corner, a, k_t, k_x, char, common, path)
    else:
        built = _generic_circuit(model, quant, pdk, a, k_t, s_max, s_in_max, x_max, common)
    deck, tiles = built.pop("deck"), built.pop("tiles")
    ctrl = controller(model, pdk, k_t, path)
    ctrl_v = render(environment(pdk), "dynamics_ctrl", **deck_context(model["name"], pdk, sha256(data)), prefix=design,
                    n=n, adc_bits=pdk.adc_bits, cycles=ctrl["sample_cycles"], adc_lat=ctrl["adc_latency_cycles"],
                    cw=ctrl["counter_bits"], iw=ctrl["index_bits"], clock_hz=spice_num(ctrl["clock_hz"]),
                    k_t=spice_num(k_t)) if "dynamics_ctrl" in pdk.templates else None
    fp_ir = place_dynamics(design, model, tiles, pdk, options.seed)
    # the state node's volts per unit: sky130_1t1r's inverting integrators give -a
    sc = {"amplitude_v_per_unit": built.get("amplitude", a), "x_max_reference": x_max, "margin": MARGIN,
          "v_full_scale": v_fs, **scaling, **built["scaling_extra"]}
    man = {"amsc_version": __version__, "kind": "dynamics", "design": design,
           "source": {"name": path.name, "sha256": sha256(data), "file": f"source/{path.name}"},
           "pdk": pdk_summary(pdk), **({"ppa": pdk.ppa} if pdk.ppa is not None else {}),
           "dynamics": {"form": model["form"], "states": n, "hidden": model.get("hidden", 0),
                        "activation": model["activation"], "tau": model["tau"].tolist(), "t_end": model["t_end"],
                        "inputs": model["inputs"], "deck": "spice/dynamics.sp",
                        "layers": {k: {"levels": f"arrays/{k}_levels.npy", "w_step": step, "shape": list(q.shape)}
                                   for k, (q, step) in quant.items()},
                        "scaling": sc, "integrator": built["integrator"], "energy": built["energy"],
                        **built["circuit"],
                        **({"controller": {**ctrl, "rtl": f"rtl/{design}_ctrl.v", "top": f"{design}_ctrl"}}
                           if ctrl_v is not None else {})},
           "tiles": [{k: t[k] for k in ("name", "layer", "rows", "cols")} for t in tiles],
           "placement": {k: fp_ir.g.graph["floorplan"][k] for k in ("grid", "wirelength", "baseline_wirelength", "seed")}}
    with OutputWriter(out) as w:
        w.add("spice/dynamics.sp", deck)
        if ctrl_v is not None:
            w.add(f"rtl/{design}_ctrl.v", ctrl_v)
            w.add("rtl/files.f", f"{design}_ctrl.v\n")
        w.add("placement.json", placement_json(fp_ir))
        png, svg = placement_images(fp_ir)
        w.add("placement.png", png)
        w.add("placement.svg", svg)
        for k, (q, _) in quant.items():
            w.add_npy(f"arrays/{k}_levels.npy", q)
        for k, v in built.get("arrays", {}).items():       # sky130_1t1r: the circuit's characterization
            w.add_npy(f"arrays/{k}.npy", v)
        w.add_file(f"source/{path.name}", path)
        # the model's own arrays travel with the design (the source YAML may name files next to it)
        for key, v in _arrays(model).items():
            w.add_npy(f"arrays/{key}.npy", v)
        man["files"] = [{"path": k, "sha256": v} for k, v in w.digests().items()]
        w.commit(man)
    return man


def _units(prefix: str, count: int, block: int) -> list[tuple[str, int, int]]:
    return [(f"{prefix}_c{k // block}", k, min(k + block, count)) for k in range(0, count, block)]


def place_dynamics(name: str, model: dict, tiles: list[dict], pdk, seed: int):
    """The floorplan of a dynamics design, by the network placer's annealer: the crossbar tiles and
    one analog unit per block of outputs of a tile column (``x_c<k>``: those states' integrators,
    mirrors and drivers; ``h_c<k>``: a vector field's hidden TIAs and drivers). Edges follow the
    currents: the unit driving a tile's word lines feeds it, the tile feeds the unit its bit lines
    sum into, the inputs' pad feeds every state unit, and every state unit feeds the ADCs' pad.
    Returns a placement IR (compiler/backend/floorplan.py draws and writes it)."""
    from .ir import IR
    from .passes.place import anneal, grid_shape, wirelength

    block = pdk.tile_cols // 2
    xs = _units("x", model["n"], block)
    hs = _units("h", model.get("hidden", 0), block)
    ir = IR(name)
    for u, lo, hi in xs + hs:
        ir.add(u, "accum", (hi - lo,), attrs={"layer": "states" if u[0] == "x" else "hidden"})
    feeds = {"w": xs, "w1": xs, "w2": hs}           # whose outputs drive each layer's word lines
    sums = {"w": xs, "w1": hs, "w2": xs}            # whose inputs its bit lines feed
    edges = set()
    for t in tiles:
        ir.add(t["name"], "xbar_tile", (t["rows"][1] - t["rows"][0], t["cols"][1] - t["cols"][0]),
               attrs={"layer": t["layer"]})
        edges |= {(u, t["name"]) for u, lo, hi in feeds[t["layer"]] if lo < t["rows"][1] and t["rows"][0] < hi}
        edges |= {(t["name"], u) for u, lo, hi in sums[t["layer"]] if lo < t["cols"][1] and t["cols"][0] < hi}
    edges |= {("@in", u) for u, _, _ in xs if model["U"].shape[1]} | {(u, "@out") for u, _, _ in xs}
    cells = [u for u, _, _ in xs + hs] + [t["name"] for t in tiles]
    edges = sorted(edges)
    rows, cols = grid_shape(len(cells))
    final, baseline, moves = anneal(cells, edges, rows, cols, seed)
    pads = {"@in": (rows / 2 - 0.5, -1.0), "@out": (rows / 2 - 0.5, float(cols))}
    for c in cells:
        ir.set(c, attrs={**ir.g.nodes[c]["attrs"], "grid": list(final[c])})
    ir.g.graph["floorplan"] = {
        "grid": [rows, cols], "seed": seed, "edges": [list(e) for e in edges], "pads": {k: list(v) for k, v in pads.items()},
        "wirelength": wirelength(final, edges, pads), "baseline_wirelength": wirelength(baseline, edges, pads),
        "baseline": "row-major: state units, hidden units, then tiles", "moves": moves,
        "units": "analog: integrators, TIAs, drivers"}
    return ir


def adc_code(v: np.ndarray, v_fs: float, bits: int) -> np.ndarray:
    """A state voltage's ADC code: offset binary over [-v_fs, v_fs], clipped."""
    top = (1 << bits) - 1
    return np.clip(np.rint((np.asarray(v) / v_fs + 1) / 2 * top), 0, top).astype(np.int64)


def controller(model: dict, pdk, k_t: float, where) -> dict:
    """The controller's timing: each sample time in clock cycles after the integrators' release."""
    if pdk.ppa is None:
        raise PdkError(pdk.name, "names no ppa.digital.clock_mhz and ppa.adc.rate_msps for the dynamics controller")
    clock = pdk.ppa["digital"]["clock_mhz"] * 1e6
    lat = max(1, int(np.ceil(clock / (pdk.ppa["adc"]["rate_msps"] * 1e6))))
    cyc = np.rint(model["sample_times"] * k_t * clock).astype(np.int64)
    gaps = np.diff(np.concatenate([[0], cyc]))
    if np.any(gaps <= lat):
        k = int(np.argmax(gaps <= lat))
        raise _fail(Path(where), "sample_times", f"sample {k} comes {int(gaps[k])} clock cycle(s) after the "
                    f"{'previous one' if k else 'release'}; at {clock / 1e6:g} MHz the ADC needs more than {lat} "
                    f"(model time {lat / (clock * k_t):.3g})")
    return {"clock_hz": clock, "adc_latency_cycles": lat, "adc_bits": pdk.adc_bits,
            "sample_times": model["sample_times"].tolist(), "sample_cycles": cyc.tolist(),
            "counter_bits": int(cyc[-1]).bit_length() + 1, "index_bits": max(1, int(len(cyc)).bit_length()),
            "code": "offset binary over [-v_fs, v_fs] of the state voltage (dynamics.adc_code)"}


def _arrays(model: dict) -> dict:
    keys = ["U", "b", "x0", "tau"] + (["b1"] if model["form"] == "vector_field" else [])
    return {**{k: np.asarray(W, float) for k, W in model["layers"].items()},
            **{k: np.asarray(model[k], float) for k in keys}}


def load_design(out: Path, man: dict) -> tuple[dict, dict]:
    """The compiled model (from OUT's arrays and source) and its quantized weights."""
    d = man["dynamics"]
    from .frontend.common import load_yaml

    src = load_yaml((out / man["source"]["file"]).read_bytes(), out / man["source"]["file"])
    pwl = [np.array(u["pwl"], float) for u in (src.get("inputs") or [])]
    from .design import MANIFEST, confined

    ld = lambda k: np.load(confined(out, f"arrays/{k}.npy", out / MANIFEST, "array"), allow_pickle=False)  # noqa: E731
    model = {"name": man["design"], "n": d["states"], "tau": ld("tau"), "activation": d["activation"],
             "b": ld("b"), "x0": ld("x0"), "t_end": d["t_end"], "inputs": d["inputs"], "pwl": pwl, "U": ld("U"),
             "form": d["form"], "layers": {k: ld(k) for k in d["layers"]}, "time_scale": None}
    if d["form"] == "vector_field":
        model.update(hidden=d["hidden"], b1=ld("b1"))
    Wq = {k: np.load(out / v["levels"], allow_pickle=False) * v["w_step"] for k, v in d["layers"].items()}
    if d.get("circuit", {}).get("kind") == "1t1r":
        from .dynamics_1t1r import circuit_from, offset_bias

        q = np.load(out / d["layers"]["W"]["levels"], allow_pickle=False)
        model["circuit"] = circuit_from(out, d, q, man["pdk"]["v_read"])
        model["circuit_bias"] = offset_bias(d["activation"], q, d["layers"]["W"]["w_step"])
    return model, Wq


def ideal_model(model: dict) -> dict:
    """The model's own math, without a characterized circuit (sky130_1t1r's golden model)."""
    return {k: v for k, v in model.items() if k not in ("circuit", "circuit_bias")}


def tolerance_fs(man: dict) -> float:
    """The design's sign-off tolerance in fractions of full scale (the PDK's circuit sets its own)."""
    return man["dynamics"].get("circuit", {}).get("tolerance_fs", TOLERANCE_FS)


def settle_time(tm: np.ndarray, x: np.ndarray, fs: float) -> np.ndarray:
    """Per state (x: [T, N]), the model time after which it stays within SETTLE_FRACTION of full
    scale of its final value (the window's end if it never does)."""
    away = np.abs(x - x[-1]) > SETTLE_FRACTION * fs
    last = np.where(away.any(axis=0), tm.size - 1 - np.argmax(away[::-1], axis=0), -1)
    return np.where(last < 0, 0.0, tm[np.minimum(last + 1, tm.size - 1)])


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
            from .dynamics_1t1r import ic_card

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
    from .sim.ngspice import session
    from .verify.report import figure, png_bytes
    from .design import write_json_atomic

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
                        + (", the characterized sky130_1t1r circuit (compiler/dynamics_1t1r.py)" if intended else ""),
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
