"""Recurrent layers: an LSTM or GRU direction whose input and recurrent weights sit on one crossbar.

A direction of ``hidden`` units over a sequence ``x`` ([T, I] per sample) reads, at each time step
t, the vector ``[x_t, h_{t-1}]`` (I + H word lines) through the stacked matrix ``W = [W_x | W_h]``
([G*H, I + H], G = 4 gates for an LSTM, 3 for a GRU, in ONNX's gate order): the crossbar is read
once per time step, and the time loop runs in the chip's schedule (``backend/qmodel.py``). After
tiling, the input rows and the recurrent rows sit on separate tiles, so the pre-activations of the
input part ``zx`` and of the recurrent part ``zh`` are accumulated separately (they have different
code scales, and a GRU's candidate gate needs them apart). With ``b`` the input-side and ``bh`` the
recurrent-side bias:

LSTM (gates i, o, f, c)::

    z = zx + zh;  i, o, f = sigmoid(z_i, z_o, z_f);  g = tanh(z_c)
    c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t)

GRU (gates z, r, n; ``linear_before_reset`` = 1, as PyTorch exports it)::

    u, r = sigmoid(zx + zh) on the z and r gates;  n = tanh(zx_n + r * zh_n)
    h_t = (1 - u) * n + u * h_{t-1}

A reverse direction walks t from T - 1 down to 0. The value is every step's ``h_t``, [T, H].
"""

from __future__ import annotations

import numpy as np

from . import fail, register
from ..kernels import layer_matrix

GATES = {"lstm": 4, "gru": 3}


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def cell_update(cell: str, H: int, zx: np.ndarray, zh: np.ndarray, h: np.ndarray, c: np.ndarray | None):
    """One time step of the cell from the pre-activations of its input part ``zx`` and recurrent part
    ``zh`` ([N, G*H], biases included): returns (h_t, c_t)."""
    if cell == "lstm":
        z = zx + zh
        i, o, f = _sigmoid(z[:, :H]), _sigmoid(z[:, H:2 * H]), _sigmoid(z[:, 2 * H:3 * H])
        c = f * c + i * np.tanh(z[:, 3 * H:])
        return o * np.tanh(c), c
    u = _sigmoid(zx[:, :H] + zh[:, :H])
    r = _sigmoid(zx[:, H:2 * H] + zh[:, H:2 * H])
    n = np.tanh(zx[:, 2 * H:] + r * zh[:, 2 * H:])
    return (1.0 - u) * n + u * h, None


def run_sequence(rec: dict, x: np.ndarray, read, h0: np.ndarray, c0: np.ndarray | None) -> np.ndarray:
    """Every step's hidden state [N, T, H] of a direction over ``x`` [N, T, I]: ``read(v)`` gives the
    pre-activations (zx, zh) of the stacked vector ``v = [x_t, h_{t-1}]`` ([N, I + H])."""
    n, T, _ = x.shape
    H = rec["hidden"]
    h = np.broadcast_to(np.asarray(h0, float), (n, H)).copy()
    c = None if rec["cell"] != "lstm" else np.broadcast_to(np.asarray(c0, float), (n, H)).copy()
    out = np.zeros((n, T, H))
    for t in (range(T - 1, -1, -1) if rec["reverse"] else range(T)):
        zx, zh = read(np.concatenate([x[:, t], h], axis=1))
        h, c = cell_update(rec["cell"], H, zx, zh, h, c)
        out[:, t] = h
    return out


def check_recurrent(ir, n, d, rec: dict, width: int) -> None:
    """The recurrent attributes and state parameters of a direction whose gates are ``width`` wide."""
    p = d["params"]
    if not (isinstance(rec, dict) and rec.get("cell") in GATES and isinstance(rec.get("hidden"), int)
            and rec["hidden"] > 0 and isinstance(rec.get("inputs"), int) and rec["inputs"] > 0
            and isinstance(rec.get("reverse"), bool)):
        fail(ir, n, f"recurrent attributes {rec!r} need cell (lstm/gru), hidden, inputs and reverse")
    H, G = rec["hidden"], GATES[rec["cell"]]
    if width != G * H:
        fail(ir, n, f"{width} gate outputs, expected {G} x {H} for a {rec['cell']}")
    if d["shape"][-1:] != (H,) or len(d["shape"]) != 2:
        fail(ir, n, f"output shape {d['shape']} is not [T, {H}]")
    for key in ("bh", "h0") + (("c0",) if rec["cell"] == "lstm" else ()):
        want = (width,) if key == "bh" else (H,)
        if key not in p or p[key].shape != want:
            fail(ir, n, f"'{key}' must have shape {want}")


def _rnn_check(ir, n, d, ins) -> None:
    W, b, rec = d["params"]["W"], d["params"]["b"], d["attrs"]["recurrent"]
    check_recurrent(ir, n, d, rec, W.shape[0] if W.ndim == 2 else -1)
    if len(ins[0]) != 2 or ins[0][1] != rec["inputs"] or W.shape[1] != rec["inputs"] + rec["hidden"]:
        fail(ir, n, f"weight {W.shape} does not fit the sequence {ins[0]} and {rec['hidden']} hidden units")
    if d["shape"][0] != ins[0][0] or b.shape != (W.shape[0],):
        fail(ir, n, f"output {d['shape']} / bias {b.shape} do not fit the sequence {ins[0]}")


def _rnn_eval(d, xs, **_):
    p, rec = d["params"], d["attrs"]["recurrent"]
    W = layer_matrix(p)
    i = rec["inputs"]
    return run_sequence(rec, xs[0], lambda v: (v[:, :i] @ W[:, :i].T + p["b"], v[:, i:] @ W[:, i:].T + p["bh"]),
                        p["h0"], p.get("c0"))


register("rnn", arity=1, attrs=("activation", "recurrent"), params=("W", "b", "bh", "h0"), home="crossbar",
         check=_rnn_check, eval=_rnn_eval,
         doc="one direction of an LSTM or GRU over a [T, I] sequence (attr recurrent: cell, hidden, inputs, "
             "reverse): W = [W_x | W_h] [G*H, I+H] read once per time step with [x_t, h_(t-1)]; b and bh the "
             "input- and recurrent-side biases, h0 (c0) the initial state; the value is every h_t, [T, H]. "
             "After `tile`, an accum of kind rnn whose tiles hold the input rows or the recurrent rows")


def tile_part(tile_attrs: dict, inputs: int) -> int:
    """0 if a recurrent layer's tile holds input rows, 1 if it holds recurrent rows."""
    return int(tile_attrs["row0"] >= inputs)


def recurrent_accum_eval(d, xs, tiles, tile_eval) -> np.ndarray:
    """The float value of a recurrent layer after tiling: the time loop over its tiles. ``tiles``:
    the tiles' node data, in operand order; ``tile_eval(k, v)`` reads tile k with the stacked vectors
    ``v`` [N, I + H]."""
    p, rec = d["params"], d["attrs"]["recurrent"]

    def read(v):
        z = [np.zeros((v.shape[0], len(p["b"]))), np.zeros((v.shape[0], len(p["b"])))]
        for k, t in enumerate(tiles):
            ta = t["attrs"]
            z[tile_part(ta, rec["inputs"])][:, ta["col0"]:ta["col1"]] += tile_eval(k, v)
        # a chip's calibration scales the recurrent side on its own (passes/calibrate.py)
        return z[0] * p["w_scale"] + p["b"], z[1] * p.get("w_scale_h", p["w_scale"]) + p["bh"]

    return run_sequence(rec, xs[0], read, p["h0"], p.get("c0"))

