"""Activations: Relu, LeakyRelu, Sigmoid, Tanh, Gelu, HardSwish, HardSigmoid, Clip."""

from __future__ import annotations

import numpy as np

from ...ir import kernels as K
from .elementwise import _offset, _scale
from .reader import Val
from .registry import lowers


def _act(cx, node, act: dict):
    x = cx.get(node, node.input[0])
    if not isinstance(x, Val):
        return K.activation(np.asarray(x, dtype=np.float64), act)
    return Val(cx.emit(node, "act", x.shape, [x.node], attrs={"activation": act}), x.shape, x.batch_axis)


def _plain(kind: str):
    """The lowering of a one-operand activation without attributes."""
    def lower(cx, node, attrs):
        cx._nin(node, 1, 1)
        return _act(cx, node, {"kind": kind})
    return lower


for _op, _kind in (("Relu", "relu"), ("Sigmoid", "sigmoid"), ("Tanh", "tanh"), ("HardSwish", "hardswish")):
    lowers(_op)(_plain(_kind))


@lowers("LeakyRelu")
def op_leakyrelu(cx, node, attrs):
    cx._nin(node, 1, 1)
    return _act(cx, node, {"kind": "leaky_relu", "alpha": float(cx._attr(attrs, "alpha", 0.01))})


@lowers("Gelu")
def op_gelu(cx, node, attrs):
    cx._nin(node, 1, 1)
    approx = cx._attr(attrs, "approximate", b"none")
    approx = approx.decode() if isinstance(approx, bytes) else str(approx)
    if approx not in ("none", "tanh"):
        raise cx.err(node, f"attribute approximate='{approx}' must be 'none' or 'tanh'")
    return _act(cx, node, {"kind": "gelu", "approximate": approx})


@lowers("Clip")
def op_clip(cx, node, attrs):
    cx._nin(node, 1, 3)
    if cx.opset < 11:
        lo, hi = float(cx._attr(attrs, "min", -np.inf)), float(cx._attr(attrs, "max", np.inf))
    else:
        def bound(k, default):
            if len(node.input) > k and node.input[k]:
                return float(np.asarray(cx.const(node, node.input[k], "bound")).reshape(()))
            return default
        lo, hi = bound(1, -np.inf), bound(2, np.inf)
    if lo > hi:
        raise cx.err(node, f"min {lo} exceeds max {hi}")
    return _act(cx, node, {"kind": "clip", "lo": lo, "hi": hi})


@lowers("HardSigmoid")
def op_hardsigmoid(cx, node, attrs):
    # max(0, min(1, alpha x + beta)): a scale, an offset and a clip, each its own digital step
    cx._nin(node, 1, 1)
    x = cx.get(node, node.input[0])
    if not isinstance(x, Val):
        raise cx.err(node, "has no runtime operand")
    alpha, beta = float(cx._attr(attrs, "alpha", 0.2)), float(cx._attr(attrs, "beta", 0.5))
    y = _scale(cx, node, x, np.full(x.full_shape(1), alpha), "alpha")
    y = _offset(cx, node, y, np.full(x.full_shape(1), beta), "beta")
    return Val(cx.emit(node, "act", y.shape, [y.node], attrs={"activation": {"kind": "clip", "lo": 0.0, "hi": 1.0}}),
               y.shape, y.batch_axis)
