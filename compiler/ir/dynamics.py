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

``amsc verify OUT`` (compiler/verify/dynamics.py) runs the transient in ngspice, un-scales the state waveforms and compares them
with ``scipy.integrate.solve_ivp`` (rtol 1e-9, atol 1e-12) on the quantized weights at the
simulator's time points: per state the largest and RMS error over full scale and the settling time.
``amsc evaluate OUT --inputs X0.npy`` runs many initial states (compiler/eval/dynamics.py).

This module holds the model's own mathematics, which every stage shares: the quantized weights, the
inputs, the right-hand side and its ``solve_ivp`` reference, the rate bound behind the time
scaling, and the ADC code of a state. The stages: the front end ``frontend/dynamics.py``, the
lowering (time scale, controller, placement) ``passes/dynamics.py``, the circuits
``backend/dynamics.py`` (generic) and ``backend/dynamics_1t1r.py`` (sky130_1t1r), the sign-off
``verify/dynamics.py`` and the evaluation ``eval/dynamics.py``; ``driver.compile_dynamics`` runs them.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

#: the largest slope of each activation (the Jacobian bound of the time scaling)
SLOPE = {"tanh": 1.0, "sigmoid": 0.25, "relu": 1.0, "identity": 1.0}
#: the reference solve's tolerances
RTOL, ATOL = 1e-9, 1e-12
MARGIN = 0.25
SETTLE_FRACTION = 0.01        # a state has settled once it stays within 1 % of full scale of its end value
#: a reference trajectory this many times larger than max(1, |x0|, |b|, |U u|) is taken as diverging
DIVERGED = 1e4
#: the time-step budget: t_end times the model's rate bound (how many of its fastest time constants the
#: window spans; the bundled designs span about 100). Each costs the reference solve and the transient
#: some steps, so a window of 9e8 model time on a unit-rate model would run for hours.
MAX_SPAN = 1e5


def act(name: str, x: np.ndarray) -> np.ndarray:
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if name == "relu":
        return np.maximum(x, 0.0)
    return np.asarray(x, float)


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


def hidden_pre(model: dict, Wq: dict, x: np.ndarray, t=None) -> np.ndarray:
    """A vector field's hidden pre-activations ``W1 x + U1 u(t) + b1`` (x: [N] at time t, or [N, T]
    at times t [T]; ``U1`` feeds the inputs, the model time among them, to the hidden layer)."""
    b1 = model["b1"] if x.ndim == 1 else model["b1"][:, None]
    pre = Wq["W1"] @ x + b1
    U1 = model.get("U1")
    if U1 is not None and U1.size and np.any(U1):
        pre = pre + U1 @ u_at(model, t)
    return pre


def rhs(model: dict, Wq: dict):
    """The right-hand side ``f(t, x)`` with the quantized weights ``Wq`` (name -> matrix); with a
    ``circuit`` (sky130_1t1r), the characterized circuit's instead. ``x`` is one state [N], or on
    the model's own math a batch [N, B] of states at the one time ``t`` (a digital sampler's step)."""
    tau, b, U, a_name = model["tau"], model["b"], model["U"], model["activation"]

    circuit = model.get("circuit")

    def f(t, x):
        batch = x.ndim == 2
        if batch:
            if circuit is not None:
                raise ValueError("the characterized circuit's right-hand side takes one state")
            t = np.full(x.shape[1], float(t))
            tau_, b_ = np.reshape(tau, (-1, 1)), np.reshape(b, (-1, 1))
        else:
            tau_, b_ = tau, b
        du = U @ u_at(model, t) if U.shape[1] else 0.0
        if circuit is not None:         # sky130_1t1r: the characterized circuit (backend/dynamics_1t1r.py)
            rate = U @ u_rate(model, t) if U.shape[1] else 0.0
            return circuit.rhs(x, model["circuit_bias"] + du + b, tau, rate)
        if model["form"] == "recurrent":
            return (-x + Wq["W"] @ act(a_name, x) + du + b_) / tau_
        return (Wq["W2"] @ act(a_name, hidden_pre(model, Wq, x, t)) + du + b_) / tau_
    return f


def sample_rk4(model: dict, Wq: dict, x0: np.ndarray, steps: int) -> np.ndarray:
    """A digital sampler of a noise-free model: classical Runge-Kutta, ``steps`` equal steps over
    [0, t_end], on a batch of initial states ``x0`` [B, N] at once; the final states [B, N] (a
    flow's samples). What a CPU would run in the circuit's place (bench/bench_sampler.py)."""
    f = rhs(model, Wq)
    h = model["t_end"] / steps
    x = np.array(x0, float).T
    for k in range(steps):
        t = k * h
        k1 = f(t, x)
        k2 = f(t + h / 2, x + h / 2 * k1)
        k3 = f(t + h / 2, x + h / 2 * k2)
        k4 = f(t + h, x + h * k3)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x.T


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


def adc_code(v: np.ndarray, v_fs: float, bits: int) -> np.ndarray:
    """A state voltage's ADC code: offset binary over [-v_fs, v_fs], clipped."""
    top = (1 << bits) - 1
    return np.clip(np.rint((np.asarray(v) / v_fs + 1) / 2 * top), 0, top).astype(np.int64)


def ideal_model(model: dict) -> dict:
    """The model's own math, without a characterized circuit (sky130_1t1r's golden model)."""
    return {k: v for k, v in model.items() if k not in ("circuit", "circuit_bias")}


def settle_time(tm: np.ndarray, x: np.ndarray, fs: float) -> np.ndarray:
    """Per state (x: [T, N]), the model time after which it stays within SETTLE_FRACTION of full
    scale of its final value (the window's end if it never does)."""
    away = np.abs(x - x[-1]) > SETTLE_FRACTION * fs
    last = np.where(away.any(axis=0), tm.size - 1 - np.argmax(away[::-1], axis=0), -1)
    return np.where(last < 0, 0.0, tm[np.minimum(last + 1, tm.size - 1)])


# --- noise: tau dx/dt = f(x, t) + sigma xi(t), xi unit-intensity white noise (docs/dynamics.md) ---

#: the white noise's samples per fastest time constant (the inverse of the rate bound): its bandwidth,
#: 1 / (2 dt), is NOISE_SAMPLES / 2 times the system's fastest rate, white over everything it can follow
NOISE_SAMPLES = 20
#: transient (and reference) steps per noise sample: the forcing is linear between samples
NOISE_SUBSTEPS = 4
#: noise samples over the window times noisy states, at most (the deck's noise file holds one number
#: each, about 17 bytes; the reference keeps NOISE_SUBSTEPS states and slopes per sample)
MAX_NOISE_VALUES = 4_000_000
#: the default burn-in: this many of the slowest decay time (a linear model's), or of tau_max
BURN_IN_TIMES = 10


def linear_system(model: dict, Wq: dict) -> np.ndarray | None:
    """``A`` of a linear model (identity activation, inputs constant after t = 0): dx/dt = A x + c,
    or None. A recurrent model's ``A = (W - I) / tau``, a vector field's ``W2 W1 / tau``."""
    if model["activation"] != "identity" or any(np.ptp(p[:, 1]) > 0 for p in model["pwl"]):
        return None
    if model["form"] == "recurrent":
        return (Wq["W"] - np.eye(model["n"])) / model["tau"][:, None]
    return (Wq["W2"] @ Wq["W1"]) / model["tau"][:, None]


def stationary_cov(model: dict, Wq: dict) -> np.ndarray | None:
    """The exact stationary covariance of a stable linear model with noise (an Ornstein-Uhlenbeck
    process): ``A S + S A^T + B B^T = 0`` with ``B = diag(sigma / tau)``, or None."""
    from scipy.linalg import solve_continuous_lyapunov

    A = linear_system(model, Wq)
    if A is None or model.get("noise") is None or np.max(np.linalg.eigvals(A).real) >= 0:
        return None
    b = model["noise"]["sigma"] / model["tau"]
    return solve_continuous_lyapunov(A, -np.diag(b ** 2))


def noise_plan(model: dict, Wq: dict, where) -> dict | None:
    """The noise's sample interval ``dt`` (model time; bandwidth 1 / (2 dt)), sample count and
    burn-in, or None without noise. Refuses a bandwidth the system would see as coloured, and one
    whose samples the transient cannot resolve within MAX_NOISE_SAMPLES."""
    nz = model.get("noise")
    if nz is None:
        return None
    rate = rate_bound(model, Wq)
    least = NOISE_SAMPLES * rate / 2
    if nz["bandwidth"] is not None and nz["bandwidth"] < least:
        raise InputError(where, f"noise.bandwidth: {nz['bandwidth']:g} per unit of model time is not white over the "
                                f"system's band (its rate bound is {rate:.4g} per unit); expected at least {least:.4g}")
    dt = 1.0 / (2 * nz["bandwidth"]) if nz["bandwidth"] is not None else 1.0 / (NOISE_SAMPLES * rate)
    count = int(np.ceil(model["t_end"] / dt)) + 1
    noisy = int(np.count_nonzero(nz["sigma"]))
    if count * noisy > MAX_NOISE_VALUES:
        raise InputError(where, f"noise: a bandwidth of {1 / (2 * dt):.4g} per unit takes a noise sample every {dt:.4g} "
                                f"and a transient step of {dt / NOISE_SUBSTEPS:.4g} model time: {count} samples of "
                                f"{noisy} state(s) over t_end = {model['t_end']:g}, more than the {MAX_NOISE_VALUES} values "
                                "the deck's noise file holds (shorten t_end or lower noise.bandwidth)")
    burn = nz["burn_in"]
    if burn is None:
        A = linear_system(model, Wq)
        slow = -float(np.max(np.linalg.eigvals(A).real)) if A is not None else 0.0
        burn = min(BURN_IN_TIMES * (1.0 / slow if slow > 0 else float(np.max(model["tau"]))), model["t_end"] / 2)
    return {"dt": dt, "samples": count, "bandwidth": 1.0 / (2 * dt), "burn_in": burn, "substeps": NOISE_SUBSTEPS}


def noise_path(model: dict, plan: dict, seed: int) -> np.ndarray:
    """``sigma xi`` sampled every ``dt`` [samples, N]: independent Gaussians of variance sigma^2 / dt
    from ``seed`` (unit-intensity white noise, band-limited to 1 / (2 dt)); linear in between."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x4E5A]))
    return rng.standard_normal((plan["samples"], model["n"])) * (model["noise"]["sigma"] / np.sqrt(plan["dt"]))


def pathwise(model: dict, Wq: dict, plan: dict, forcing: np.ndarray, x0: np.ndarray | None = None,
             dense: bool = False):
    """The model driven by one noise realization ``forcing`` (``noise_path``; linear between its
    samples): classical Runge-Kutta at NOISE_SUBSTEPS steps per sample, the forcing interpolated at
    each stage, from ``x0`` (default the model's). Returns the model times of the samples and the
    states there [N, samples]; with ``dense``, a callable ``x(t)`` [N, len(t)] instead of the states,
    cubic Hermite between the substeps (where the forcing is linear and the trajectory smooth)."""
    from scipy.interpolate import CubicHermiteSpline

    f = rhs(model, Wq)
    tau = model["tau"]
    x = np.array(model["x0"] if x0 is None else x0, dtype=np.float64)
    dt, m = plan["dt"], plan["substeps"]
    h = dt / m
    out = np.empty((plan["samples"],) + x.shape)
    out[0] = x
    if dense:
        fine = np.empty(((plan["samples"] - 1) * m + 1,) + x.shape)
        slope = np.empty_like(fine)
    for k in range(plan["samples"] - 1):
        g0, g1 = forcing[k], forcing[k + 1]
        t0 = k * dt
        for j in range(m):
            a, c = j / m, (j + 0.5) / m
            ga, gc, gb = g0 + (g1 - g0) * a, g0 + (g1 - g0) * c, g0 + (g1 - g0) * (a + 1 / m)
            ts = t0 + j * h
            k1 = f(ts, x) + ga / tau
            if dense:
                fine[k * m + j], slope[k * m + j] = x, k1
            k2 = f(ts + h / 2, x + h / 2 * k1) + gc / tau
            k3 = f(ts + h / 2, x + h / 2 * k2) + gc / tau
            k4 = f(ts + h, x + h * k3) + gb / tau
            x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        out[k + 1] = x
    ts = np.arange(plan["samples"]) * dt
    if not dense:
        return ts, np.moveaxis(out, 0, 1)
    fine[-1], slope[-1] = x, f(ts[-1], x) + forcing[-1] / tau
    spline = CubicHermiteSpline(np.arange(fine.shape[0]) * h, fine, slope, axis=0)
    return ts, lambda t: spline(np.clip(t, 0, ts[-1])).T


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """The energy distance between samples x [n, d] and y [m, d]: 2 E|X - Y| - E|X - X'| - E|Y - Y'|
    (Szekely and Rizzo, 2013), the V-statistic."""
    from scipy.spatial.distance import cdist

    return float(2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean())
