"""The ``amsc_dynamics`` front end: read and check a continuous-time model (docs/dynamics.md).

A YAML file whose top level names ``amsc_dynamics`` is a continuous-time model, not a network graph
(:func:`is_dynamics`); :func:`load_dynamics` reads it into a model dict (states, time constants,
the recurrent ``W`` or an MLP ``vector_field``, inputs as PWL sources, the window and the sample
times) or refuses it in one line naming the field. The network options that do not apply to a
dynamics design are refused by :func:`check_options`.
"""

from __future__ import annotations

import dataclasses

from pathlib import Path

import numpy as np

from ..errors import InputError
from .common import NPY_ERRORS

SCHEMA_VERSION = 1
ACTIVATIONS = ("tanh", "sigmoid", "relu", "identity")
_KEYS = {"amsc_dynamics", "name", "states", "tau", "activation", "W", "vector_field", "b", "inputs", "U", "x0",
         "t_end", "time_scale", "sample_times", "noise"}
_NOISE_KEYS = {"sigma", "bandwidth", "burn_in"}
_REQUIRED = {"amsc_dynamics", "states", "x0", "t_end"}
_VF_KEYS = {"hidden", "W1", "b1", "W2", "U1"}
#: largest state (and hidden) count (a dense N x N crossbar and an N-state transient)
MAX_STATES = 1024
#: the controller's default sample times: this many, evenly over (0, t_end]
SAMPLE_POINTS = 16


def is_dynamics(path: Path) -> bool:
    """A YAML file whose top level names ``amsc_dynamics``."""
    if path.suffix.lower() not in (".yaml", ".yml"):
        return False
    from .common import load_yaml

    try:
        doc = load_yaml(path.read_bytes(), path)
    except (OSError, InputError):
        return False          # the network front end reads it again and names what is wrong
    return isinstance(doc, dict) and "amsc_dynamics" in doc


def time_pwl(t_end: float) -> np.ndarray:
    """A ``kind: time`` input as a PWL: the model time itself over [0, t_end]."""
    return np.array([[0.0, 0.0], [t_end, t_end]])


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
        except NPY_ERRORS as e:
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


def _noise(path: Path, spec, n: int, t_end: float) -> dict:
    """``noise: {sigma: S or [N], bandwidth: B, burn_in: T}`` (docs/dynamics.md): sigma >= 0 per
    state, at least one positive; the optional bandwidth (1 / model time) and burn-in (model time)."""
    if not isinstance(spec, dict) or "sigma" not in spec or not set(spec) <= _NOISE_KEYS:
        raise _fail(path, "noise", "expected {sigma: S or a list of N, bandwidth: B (optional), burn_in: T (optional)}")
    sigma = _vector(path, {"noise.sigma": spec["sigma"]}, "noise.sigma", n)
    if np.any(sigma < 0) or not np.any(sigma > 0):
        raise _fail(path, "noise.sigma", "expected intensities >= 0, at least one positive")
    out = {"sigma": sigma, "bandwidth": None, "burn_in": None}
    for key, hi in (("bandwidth", 1e12), ("burn_in", t_end)):
        v = spec.get(key)
        if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v < hi):
            raise _fail(path, f"noise.{key}", f"{v!r}; expected a positive number" + (" below t_end" if key == "burn_in" else ""))
        out[key] = None if v is None else float(v)
    return out


def load_dynamics(path: str | Path) -> dict:
    """Read and check an ``amsc_dynamics`` YAML model (see docs/dynamics.md)."""
    path = Path(path)
    from .common import load_yaml

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
        raise _fail(path, "inputs", "expected a list of {name, pwl} or {name, kind: time}")
    pwl = []
    names = []
    kinds = []
    for k, u in enumerate(inputs):
        if isinstance(u, dict) and u.get("kind") == "time":
            if "pwl" in u:
                raise _fail(path, f"inputs[{k}]", "a kind: time input is the model time itself; it takes no pwl")
            if set(u) != {"name", "kind"}:
                raise _fail(path, f"inputs[{k}]", "expected {name: ..., kind: time}")
            if "W" in doc:
                raise _fail(path, f"inputs[{k}]", "kind: time is for a vector field (it reaches the hidden layer through "
                                                  "vector_field.U1); the recurrent form does not support it")
            names.append(str(u["name"]))
            kinds.append("time")
            pwl.append(time_pwl(float(t_end)))
            continue
        if not isinstance(u, dict) or set(u) != {"name", "pwl"}:
            raise _fail(path, f"inputs[{k}]", "expected {name: ..., pwl: [[t, value], ...]} or {name: ..., kind: time}")
        kinds.append("pwl")
        try:
            p = np.array(u["pwl"], dtype=np.float64)
        except (TypeError, ValueError):
            p = np.zeros((0,))
        if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] < 1 or not np.all(np.isfinite(p)) \
                or np.any(np.diff(p[:, 0]) <= 0) or p[0, 0] < 0:
            raise _fail(path, f"inputs[{k}].pwl", "expected [[t, value], ...] with increasing times >= 0")
        names.append(str(u["name"]))
        pwl.append(p)
    vf_u1 = isinstance(doc.get("vector_field"), dict) and "U1" in doc["vector_field"]
    if inputs and "U" not in doc and not vf_u1:
        raise _fail(path, "U", f"required with inputs (or vector_field.U1): an {n} x {len(inputs)} matrix")
    U = _matrix(path, doc["U"], "U", (n, len(inputs))) if inputs and "U" in doc else np.zeros((n, len(inputs)))
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
    noise = _noise(path, doc.get("noise"), n, float(t_end)) if "noise" in doc else None
    model = {"name": str(doc.get("name") or path.stem), "n": n, "tau": tau, "activation": actn, "noise": noise,
             "sample_times": st,
             "b": _vector(path, doc, "b", n, 0.0), "x0": _vector(path, doc, "x0", n), "t_end": float(t_end),
             "inputs": names, "input_kinds": kinds, "pwl": pwl, "U": U, "time_scale": None if ts is None else float(ts)}
    if "W" in doc:
        return {**model, "form": "recurrent", "layers": {"W": _matrix(path, doc["W"], "W", (n, n))}}
    vf = doc["vector_field"]
    if not isinstance(vf, dict) or not {"hidden", "W1", "W2"} <= set(vf) <= _VF_KEYS:
        raise _fail(path, "vector_field", "expected {hidden: H, W1: H x N, b1: H (optional), W2: N x H, "
                                          "U1: H x inputs (optional)}")
    h = _count(path, vf["hidden"], "vector_field.hidden")
    if "U1" in vf and not inputs:
        raise _fail(path, "vector_field.U1", "feeds the inputs to the hidden layer; the model has no inputs")
    U1 = _matrix(path, vf["U1"], "vector_field.U1", (h, len(inputs))) if "U1" in vf else np.zeros((h, len(inputs)))
    return {**model, "form": "vector_field", "hidden": h, "b1": _vector(path, vf, "b1", h, 0.0), "U1": U1,
            "layers": {"W1": _matrix(path, vf["W1"], "vector_field.W1", (h, n)),
                       "W2": _matrix(path, vf["W2"], "vector_field.W2", (n, h))}}


#: compile options of a network that a dynamics design has no use for, and why
NETWORK_ONLY = (("tile_rows", "--tile", "its crossbars follow the PDK's tile size"),
                ("parasitics", "--parasitics", "its decks have no wire mesh"),
                ("compensate_ir", "--compensate-ir", "its decks have no wire mesh to compensate"),
                ("wire_r", "--wire-r", "its decks have no wire mesh"),
                ("spare_rows", "--spare-rows", "it has no fault-aware placement"),
                ("spare_cols", "--spare-cols", "it has no fault-aware placement"),
                ("chip_state", "--chip-state", "it has no fault-aware placement"),
                ("finetune_data", "--finetune-data", "it has no final layer"),
                ("adc_share", "--adc-share", "its ADCs sample the state at each output time, one per state"),
                ("adc_balance", "--adc-balance", "its ADCs sample the state at each output time, one per state"),
                ("lanes", "--lanes", "its controller has no datapath lanes: the circuit computes the dynamics"),
                ("dac_bits", "--dac-bits", "its word lines are driven by its activation stages, not by DACs"),
                ("calibration", "--calibration", "it has no activation ranges to calibrate"))


def check_options(path: Path, options) -> None:
    """Refuse, in one line, a network compile option given for a dynamics model."""
    defaults = {f.name: f.default for f in dataclasses.fields(options)}
    for field, flag, why in NETWORK_ONLY:
        if getattr(options, field) not in (None, False, 0, defaults[field]):
            raise InputError(flag, f"does not apply to the continuous-time model {path.name}: {why}")
