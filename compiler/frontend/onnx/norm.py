"""Normalizations and reductions: BatchNormalization, Softmax, ReduceMean."""

from __future__ import annotations

import numpy as np

from ...errors import UnsupportedOpError
from ..common import check_weights
from .reader import Val
from .registry import lowers


@lowers("BatchNormalization")
def op_batchnormalization(cx, node, attrs):
    cx._nin(node, 5, 5)
    if int(cx._attr(attrs, "training_mode", 0)) or len([o for o in node.output if o]) > 1:
        raise cx.err(node, "training mode is not supported (inference only)", UnsupportedOpError)
    x = cx.get(node, node.input[0])
    if not isinstance(x, Val) or x.batch_axis != 0:
        raise cx.err(node, "expects a runtime [N, C, ...] tensor", UnsupportedOpError)
    params = {}
    for k, key in enumerate(("scale", "bias", "mean", "var"), start=1):
        v = check_weights(cx.where, cx.label(node), f"{key} '{node.input[k]}'",
                          cx.const(node, node.input[k], key)).reshape(-1)
        if v.shape != (x.shape[0],):
            raise cx.err(node, f"{key} '{node.input[k]}' has {v.size} values for {x.shape[0]} channels")
        params[key] = v
    if np.any(params["var"] < 0):
        raise cx.err(node, "variance has negative values")
    eps = float(cx._attr(attrs, "epsilon", 1e-5))
    return Val(cx.emit(node, "batchnorm", x.shape, [x.node], attrs={"eps": eps}, params=params), x.shape, 0)


@lowers("Softmax")
def op_softmax(cx, node, attrs):
    cx._nin(node, 1, 1)
    x = cx._batch0(node, cx.get(node, node.input[0]))
    rank = len(x.shape) + 1
    axis = int(cx._attr(attrs, "axis", -1 if cx.opset >= 13 else 1))
    axis = axis + rank if axis < 0 else axis
    if not 1 <= axis < rank or (cx.opset < 13 and axis != rank - 1):
        raise cx.err(node, f"attribute axis={axis}: only a feature axis (and, before opset 13, the last "
                             "axis) is supported", UnsupportedOpError)
    return Val(cx.emit(node, "softmax", x.shape, [x.node], attrs={"axis": axis - 1}), x.shape, 0)


@lowers("ReduceMean")
def op_reducemean(cx, node, attrs):
    """The mean over a run of adjacent feature axes, as average pooling: the operand seen as
    (before, reduced, after) is pooled with a (reduced x 1) window (ReduceMean over the tokens
    of a transformer, or over H and W as a global average pool). The batch may sit on any axis
    but a reduced one (a sequence-first [T, N, D] averaged over T)."""
    x = cx.get(node, node.input[0])
    if not isinstance(x, Val):
        raise cx.err(node, "has no runtime operand")
    b = x.batch_axis
    rank = len(x.shape) + (b is not None)
    if cx.opset >= 18 or (len(node.input) > 1 and node.input[1]):
        axes = [int(v) for v in cx.const(node, node.input[1], "axes").reshape(-1)] \
            if len(node.input) > 1 and node.input[1] else []
    else:
        axes = [int(v) for v in cx._attr(attrs, "axes", [])]
    axes = sorted({a + rank if a < 0 else a for a in axes})
    if any(not 0 <= a < rank for a in axes):
        raise cx.err(node, f"axes {axes} are out of range for rank {rank}")
    if not axes or b in axes:
        raise cx.err(node, "reducing the batch axis is not supported", UnsupportedOpError)
    per = [a - (b is not None and a > b) for a in axes]   # the reduced per-sample axes
    if per != list(range(per[0], per[-1] + 1)):
        raise cx.err(node, f"axes {axes} are not adjacent", UnsupportedOpError)
    sh = list(x.shape)
    lo, hi = per[0], per[-1] + 1
    pre, red, post = int(np.prod(sh[:lo])), int(np.prod(sh[lo:hi])), int(np.prod(sh[hi:]))
    keep = int(cx._attr(attrs, "keepdims", 1))
    out = tuple(sh[:lo] + ([1] * (hi - lo) if keep else []) + sh[hi:]) or (1,)
    out_b = None if b is None else b - (0 if keep else sum(a < b for a in axes))
    v = cx.emit(node, "reshape", (pre, red, post), [x.node])
    a = {"kind": "avg", "kernel": [red, 1], "stride": [1, 1], "pads": [0, 0, 0, 0], "dilation": [1, 1],
         "count_include_pad": True}
    v = cx.emit(node, "pool", (pre, 1, post), [v], attrs=a)
    return Val(cx.emit(node, "reshape", out, [v]), out, out_b)
