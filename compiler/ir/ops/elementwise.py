"""Elementwise operators: activations, the residual add, constant scale and offset, BatchNorm.

On the chip each runs on the data-movement unit as ``gain * x + offset`` (per channel or per
element), except a residual add (the ``add`` unit) and activations other than ReLU, which the
datapath computes only fused into a crossbar layer's activation unit."""

from __future__ import annotations

import numpy as np

from .. import kernels as K
from . import Remap, fail, register, same_shape


def check_act(ir, n, act) -> None:
    """Verify an activation attribute: {"kind": one of kernels.ACT_KINDS, plus its parameters}."""
    if not isinstance(act, dict) or act.get("kind") not in K.ACT_KINDS:
        fail(ir, n, f"activation {act!r} is not one of {K.ACT_KINDS}")
    need = {"leaky_relu": ("alpha",), "clip": ("lo", "hi")}.get(act["kind"], ())
    for k in need:
        if not isinstance(act.get(k), (int, float)):
            fail(ir, n, f"activation {act['kind']} needs a number '{k}'")


def _act_check(ir, n, d, ins) -> None:
    same_shape(ir, n, d, ins)
    check_act(ir, n, d["attrs"]["activation"])


def _act_unit(d):
    # ReLU of signed codes clamps on the data-movement unit; the others read a table of source codes
    return "remap" if d["attrs"]["activation"]["kind"] == "relu" else "lut"


register("act", arity=1, attrs=("activation",), check=_act_check,
         eval=lambda d, xs, **_: K.activation(xs[0], d["attrs"]["activation"]),
         unit=_act_unit, remap=lambda d, ins, dims: Remap(strides=[None], gain=[1.0], offset=[0.0], keep_scale=True),
         doc="y = activation(x), a standalone activation that no layer absorbed")


def _add_check(ir, n, d, ins) -> None:
    if ins[0] != d["shape"] or ins[1] != d["shape"]:
        fail(ir, n, f"operand shapes {ins} differ from {d['shape']}")


register("add", arity=2, check=_add_check, eval=lambda d, xs, **_: xs[0] + xs[1], unit="add",
         doc="y = a + b, both runtime values of one shape (a residual connection)")


def _const_check(ir, n, d, ins) -> None:
    same_shape(ir, n, d, ins)
    if d["params"]["c"].shape != d["shape"]:
        fail(ir, n, f"constant shape {d['params']['c'].shape} differs from {d['shape']}")


def _const_onnx(onnx_op):
    def to_onnx(helper, numpy_helper, n, d, ins):
        c = numpy_helper.from_array(np.asarray(d["params"]["c"], np.float32), f"{n}__c")
        return [helper.make_node(onnx_op, [ins[0], f"{n}__c"], [n], name=n)], [c]
    return to_onnx


def _per_element(d, dims):
    return np.asarray(d["params"]["c"], float).reshape(dims)


register("add_const", arity=1, params=("c",), check=_const_check, eval=lambda d, xs, **_: xs[0] + d["params"]["c"],
         unit="remap", remap=lambda d, ins, dims: Remap(strides=[None], gain=[1.0], offset=[_per_element(d, dims)]),
         swing=True, to_onnx=_const_onnx("Add"),
         doc="y = x + c elementwise, c of the per-sample shape (an Add/Sub of a constant no layer absorbed)")
register("mul_const", arity=1, params=("c",), check=_const_check, eval=lambda d, xs, **_: xs[0] * d["params"]["c"],
         unit="remap", remap=lambda d, ins, dims: Remap(strides=[None], gain=[_per_element(d, dims)], offset=[0.0]),
         swing=True, to_onnx=_const_onnx("Mul"),
         doc="y = x * c elementwise, c of the per-sample shape (a Mul/Div by a constant no layer absorbed)")


def _bn_check(ir, n, d, ins) -> None:
    same_shape(ir, n, d, ins)
    for p in ("scale", "bias", "mean", "var"):
        if d["params"][p].shape != (d["shape"][0],):
            fail(ir, n, f"'{p}' must have one value per channel ({d['shape'][0]})")


def _bn_gain(d):
    p = d["params"]
    return p["scale"] / np.sqrt(p["var"] + d["attrs"]["eps"])


def _bn_eval(d, xs, **_):
    p = d["params"]
    shp = (1, -1) + (1,) * (len(d["shape"]) - 1)
    return (xs[0] - p["mean"].reshape(shp)) * _bn_gain(d).reshape(shp) + p["bias"].reshape(shp)


def _bn_remap(d, ins, dims) -> Remap:
    p, g = d["params"], _bn_gain(d)
    pad = len(dims) - len(d["shape"])
    chan = [d["shape"][0] if j == pad else 1 for j in range(len(dims))]
    return Remap(strides=[None], gain=[g.reshape(chan)], offset=[(p["bias"] - p["mean"] * g).reshape(chan)])


register("batchnorm", arity=1, attrs=("eps",), params=("scale", "bias", "mean", "var"), check=_bn_check,
         eval=_bn_eval, unit="remap", remap=_bn_remap,
         doc="y = (x - mean) * scale / sqrt(var + eps) + bias per channel (axis 0): one no layer absorbed")


def gate_broadcast(shape, gshape) -> tuple[int, int] | None:
    """How a gate of per-sample shape ``gshape`` broadcasts over ``shape`` (same rank): as
    ``(div, mod)``, element ``i`` of the output reads gate element ``(i // div) % mod``; None when
    the broadcast is not of that form (it repeats along axes between kept ones)."""
    if len(gshape) != len(shape) or any(g not in (1, s) for g, s in zip(gshape, shape)):
        return None
    kept = [k for k, g in enumerate(gshape) if g != 1]
    if not kept:
        return int(np.prod(shape, dtype=np.int64)), 1
    lo, hi = kept[0], kept[-1]
    if any(gshape[k] != shape[k] for k in range(lo, hi + 1)):
        return None
    return int(np.prod(shape[hi + 1:], dtype=np.int64)), int(np.prod(shape[lo:hi + 1], dtype=np.int64))


def _mul_check(ir, n, d, ins) -> None:
    if ins[0] != d["shape"] or gate_broadcast(ins[0], ins[1]) is None:
        fail(ir, n, f"operand shapes {ins} are not a value of shape {d['shape']} and a gate that broadcasts "
                    "over a run of its axes")


register("mul", arity=2, check=_mul_check, eval=lambda d, xs, **_: xs[0] * xs[1], unit="mul",
         doc="y = x * g, both runtime values; the gate g broadcasts over x (a squeeze-excite scale per channel, "
             "a GLU-style gate of x's own shape)")
