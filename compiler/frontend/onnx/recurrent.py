"""Recurrent operators: LSTM and GRU, each direction one recurrent crossbar layer (``ir/ops/recurrent.py``).

Both layouts (0: X [T, N, I], Y [T, D, N, H]; 1: X [N, T, I], Y [N, T, D, H]) and both directions
(forward, reverse, bidirectional) are lowered; a bidirectional node becomes two layers whose
outputs are joined on the direction axis. Y_h (the last state of each direction) is a slice of Y.
The default activations only (sigmoid, tanh, tanh), no peepholes, no ``clip`` and no
``input_forget``; a GRU with ``linear_before_reset`` = 1 (PyTorch's form). Initial states must be
constants (the exporters write zeros), the same for every sample, and ``sequence_lens``, if given,
the full length. Anything else runs on the host, with the reason in the manifest. Y_c (the last
cell state) is not kept on the chip: an LSTM whose Y_c is read runs on the host.
"""

from __future__ import annotations

import numpy as np

from ...errors import UnsupportedOpError
from ...ir import kernels as K
from ..common import check_weights
from .reader import Val
from .registry import lowers

_DEFAULT_ACTS = {"LSTM": ["sigmoid", "tanh", "tanh"], "GRU": ["sigmoid", "tanh"]}


def _state(cx, node, k: int, D: int, H: int, what: str, layout: int) -> np.ndarray:
    """Optional initial state input ``k`` ([D, N, H], or [N, D, H] in layout 1) as [D, H], zeros if absent."""
    if len(node.input) <= k or not node.input[k]:
        return np.zeros((D, H))
    v = cx.get(node, node.input[k])
    if isinstance(v, Val):
        raise cx.err(node, f"{what} '{node.input[k]}' is a runtime tensor; the chip starts from a constant state",
                     UnsupportedOpError)
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 3:
        raise cx.err(node, f"{what} has shape {list(v.shape)}, expected [D, N, H]", UnsupportedOpError)
    if layout == 1:
        v = v.transpose(1, 0, 2)
    if v.shape[0] != D or v.shape[2] != H or np.any(v != v[:, :1]):
        raise cx.err(node, f"{what} of shape {list(v.shape)} is not one [{D}, {H}] state for every sample",
                     UnsupportedOpError)
    return v[:, 0]


def _recurrent(cx, node, attrs, cell: str) -> Val:
    op = node.op_type
    G = 4 if cell == "lstm" else 3
    x = cx.get(node, node.input[0])
    layout = int(cx._attr(attrs, "layout", 0))
    H = int(cx._attr(attrs, "hidden_size", 0))
    direction = cx._attr(attrs, "direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else str(direction)
    D = 2 if direction == "bidirectional" else 1

    def host(why):
        return cx.err(node, why, UnsupportedOpError)

    if not isinstance(x, Val):
        raise host("the sequence X is a constant")
    if layout not in (0, 1) or direction not in ("forward", "reverse", "bidirectional"):
        raise host(f"layout {layout} / direction {direction!r} is not one ONNX defines")
    seq_axis = 0 if layout == 0 else 1
    if x.batch_axis == seq_axis and len(x.shape) == 2 and x.node in cx.symbolic_inputs:
        raise cx.err(node, f"the sequence length (axis {seq_axis} of '{node.input[0]}') is not static; the chip runs a "
                           "fixed number of steps: export with a fixed sequence length")
    if x.batch_axis != (1 if layout == 0 else 0) or len(x.shape) != 2:
        raise host(f"the sequence has per-sample shape {list(x.shape)} with the batch on axis {x.batch_axis}; "
                   f"layout {layout} needs {'[T, N, I]' if layout == 0 else '[N, T, I]'}")
    acts = [a.decode() if isinstance(a, bytes) else a for a in cx._attr(attrs, "activations", [])]
    if acts and [a.lower() for a in acts] != _DEFAULT_ACTS[op] * D:
        raise host(f"activations {acts}: the chip's cell has the default {_DEFAULT_ACTS[op]}")
    if "clip" in attrs:
        raise host("a cell clip is not in the chip's cell")
    if cell == "lstm" and int(cx._attr(attrs, "input_forget", 0)):
        raise host("input_forget (coupled input and forget gates) is not in the chip's cell")
    if cell == "gru" and int(cx._attr(attrs, "linear_before_reset", 0)) != 1:
        raise host("linear_before_reset = 0 applies the reset gate before the recurrent weights (a second read per "
                   "step); the chip's cell has PyTorch's linear_before_reset = 1")
    if cell == "lstm" and len(node.input) > 7 and node.input[7]:
        raise host("peephole weights P are not in the chip's cell")
    if cell == "lstm" and len(node.output) > 2 and node.output[2] and node.output[2] in cx.used:
        raise host("its last cell state Y_c is read; the chip keeps the cell state inside the layer")
    W = check_weights(cx.where, cx.label(node), "W", cx.const(node, node.input[1], "weight W"))
    R = check_weights(cx.where, cx.label(node), "R", cx.const(node, node.input[2], "weight R"))
    T, I = x.shape
    if H <= 0 or W.shape != (D, G * H, I) or R.shape != (D, G * H, H):
        raise cx.err(node, f"W {list(W.shape)} / R {list(R.shape)} do not fit hidden_size {H}, {D} direction(s) "
                           f"and {I} inputs")
    if len(node.input) > 3 and node.input[3]:
        B = check_weights(cx.where, cx.label(node), "B", cx.const(node, node.input[3], "bias B"))
        if B.shape != (D, 2 * G * H):
            raise cx.err(node, f"bias B {list(B.shape)} is not [{D}, {2 * G * H}]")
    else:
        B = np.zeros((D, 2 * G * H))
    if len(node.input) > 4 and node.input[4]:
        lens = cx.get(node, node.input[4])
        if isinstance(lens, Val) or np.any(np.asarray(lens) != T):
            raise host(f"sequence_lens must be the full length {T} for every sample (the chip runs {T} steps)")
    h0 = _state(cx, node, 5, D, H, "initial_h", layout)
    c0 = _state(cx, node, 6, D, H, "initial_c", layout) if cell == "lstm" else None
    outs = []
    for d in range(D):
        wb, rb = B[d, :G * H], B[d, G * H:]
        b, bh = wb + rb, np.zeros(G * H)
        if cell == "gru":   # the candidate gate keeps its recurrent bias inside r * (R h + Rb)
            b[2 * H:], bh[2 * H:] = wb[2 * H:], rb[2 * H:]
        rec = {"cell": cell, "hidden": H, "inputs": I, "reverse": direction == "reverse" or d == 1}
        params = {"W": np.concatenate([W[d], R[d]], axis=1), "b": b, "bh": bh, "h0": h0[d]}
        if c0 is not None:
            params["c0"] = c0[d]
        outs.append(cx.emit(node, "rnn", (T, H), [x.node], attrs={"activation": dict(K.NO_ACT), "recurrent": rec},
                            params=params))
    if len(node.output) > 1 and node.output[1] and node.output[1] in cx.used:
        # Y_h: [D, H] per sample (batch axis 1, or 0 in layout 1): each direction's last step
        last = [cx.emit(node, "slice", (1, H), [o], attrs={"axis": 0, "start": 0 if k == 1 or direction == "reverse"
                                                                    else T - 1, "step": 1})
                for k, o in enumerate(outs)]
        yh = last[0] if D == 1 else cx.emit(node, "concat", (D, H), last, attrs={"axis": 0})
        cx.env[node.output[1]] = Val(yh, (D, H), 1 if layout == 0 else 0)
    if node.output[0] not in cx.used:     # only Y_h is read: nothing joins the steps' states
        return Val(outs[0], (T, H), None)
    # Y: [T, D, H] per sample, the batch on axis 2 (layout 0) or 0 (layout 1)
    parts = [cx.emit(node, "reshape", (T, 1, H), [o]) for o in outs]
    y = parts[0] if D == 1 else cx.emit(node, "concat", (T, D, H), parts, attrs={"axis": 1})
    return Val(y, (T, D, H), 2 if layout == 0 else 0)


@lowers("LSTM")
def op_lstm(cx, node, attrs):
    return _recurrent(cx, node, attrs, "lstm")


@lowers("GRU")
def op_gru(cx, node, attrs):
    return _recurrent(cx, node, attrs, "gru")
