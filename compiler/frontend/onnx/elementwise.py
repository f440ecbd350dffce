"""Elementwise arithmetic: Add, Sub, Mul, Div, Sum (of runtime values or with constants)."""

from __future__ import annotations

import numpy as np

from ...errors import UnsupportedOpError
from ...ir.ops.elementwise import gate_broadcast
from ..common import check_weights
from .reader import Val
from .registry import lowers


@lowers("Add")
def op_add(cx, node, attrs):
    cx._nin(node, 2, 2)
    a, b = (cx.get(node, i) for i in node.input)
    return _add(cx, node, a, b, "constant operand")


def _add(cx, node, a, b, what: str):
    if not isinstance(a, Val) and not isinstance(b, Val):
        return a + b
    if isinstance(a, Val) and isinstance(b, Val):
        if (a.shape, a.batch_axis) != (b.shape, b.batch_axis) and cx.batch_one \
                and a.full_shape(1) == b.full_shape(1) and None in (a.batch_axis, b.batch_axis):
            # a model defined at batch 1: a per-sample operand (no batch axis) and one with its batch
            # axis of 1 are the same tensor at batch 1; add them per sample
            a, b = (Val(cx.emit(node, "reshape", v.full_shape(1), [v.node]), v.full_shape(1), None)
                    if v.batch_axis is not None else v for v in (a, b))
        if a.shape != b.shape or a.batch_axis != b.batch_axis:
            raise cx.err(node, f"runtime operands of shapes {list(a.full_shape(1))} and "
                                 f"{list(b.full_shape(1))} differ; only same-shape residual adds are supported",
                           UnsupportedOpError)
        return Val(cx.emit(node, "add", a.shape, [a.node, b.node]), a.shape, a.batch_axis)
    x, c = (a, b) if isinstance(a, Val) else (b, a)
    return _offset(cx, node, x, c, what)


@lowers("Sum")
def op_sum(cx, node, attrs):
    vals = [cx.get(node, i) for i in node.input if i]
    if not vals:
        raise cx.err(node, "expected at least one input")
    acc = vals[0]
    for k, v in enumerate(vals[1:], start=1):
        acc = _add(cx, node, acc, v, f"operand {k}")
    if len(vals) == 1 and isinstance(acc, Val):
        return Val(cx.emit(node, "identity", acc.shape, [acc.node]), acc.shape, acc.batch_axis)
    return acc


def _scale(cx, node, x: Val, c, what: str) -> Val:
    c = cx.per_sample(node, check_weights(cx.where, cx.label(node), what, c), x, what)
    return Val(cx.emit(node, "mul_const", x.shape, [x.node], params={"c": c}), x.shape, x.batch_axis)


def _offset(cx, node, x: Val, c, what: str) -> Val:
    c = cx.per_sample(node, check_weights(cx.where, cx.label(node), what, c), x, what)
    return Val(cx.emit(node, "add_const", x.shape, [x.node], params={"c": c}), x.shape, x.batch_axis)


@lowers("Mul")
def op_mul(cx, node, attrs):
    cx._nin(node, 2, 2)
    a, b = (cx.get(node, i) for i in node.input)
    if isinstance(a, Val) and isinstance(b, Val):
        return _product(cx, node, a, b)
    x, c = (a, b) if isinstance(a, Val) else (b, a)
    return _scale(cx, node, x, c, "constant factor")


def _product(cx, node, a: Val, b: Val) -> Val:
    """A product of two runtime tensors on the datapath's product unit: the operand of the output's
    shape times a gate that broadcasts over a run of its axes (squeeze-excite's [N, C, 1, 1] scale)."""
    if a.batch_axis != b.batch_axis or a.batch_axis is None or len(a.shape) != len(b.shape):
        raise cx.err(node, f"runtime operands of shapes {list(a.full_shape(1))} and {list(b.full_shape(1))} "
                           "do not share a batch axis and rank", UnsupportedOpError)
    for x, g in ((a, b), (b, a)):
        if gate_broadcast(x.shape, g.shape) is not None:
            return Val(cx.emit(node, "mul", x.shape, [x.node, g.node]), x.shape, x.batch_axis)
    raise cx.err(node, f"runtime operands of shapes {list(a.full_shape(1))} and {list(b.full_shape(1))}: "
                       "neither broadcasts over a run of the other's axes", UnsupportedOpError)


@lowers("Div")
def op_div(cx, node, attrs):
    cx._nin(node, 2, 2)
    a, b = (cx.get(node, i) for i in node.input)
    if not isinstance(a, Val) or isinstance(b, Val):
        raise cx.err(node, "only a runtime tensor divided by a constant has a lowering", UnsupportedOpError)
    c = check_weights(cx.where, cx.label(node), "constant divisor", b)
    if np.any(c == 0):
        raise cx.err(node, "constant divisor has zeros")
    return _scale(cx, node, a, 1.0 / c, "constant divisor")


@lowers("Sub")
def op_sub(cx, node, attrs):
    cx._nin(node, 2, 2)
    a, b = (cx.get(node, i) for i in node.input)
    if isinstance(a, Val) and isinstance(b, Val):
        raise cx.err(node, "both operands are runtime tensors (difference)", UnsupportedOpError)
    if isinstance(a, Val):
        return _offset(cx, node, a, -check_weights(cx.where, cx.label(node), "constant subtrahend", b),
                            "constant subtrahend")
    # c - x = (-1) x + c
    neg = _scale(cx, node, b, -np.ones(b.full_shape(1)), "negation")
    return _offset(cx, node, neg, a, "constant minuend")
