"""Operators the host computes: ONNX nodes run by onnxruntime, and softmax."""

from __future__ import annotations

from .. import kernels as K
from . import fail, register, same_shape


def _host_check(ir, n, d, ins) -> None:
    attrs, params = d["attrs"], d["params"]
    xs = [o for o in attrs["operands"] if o[0] == "x"]
    if sorted(o[1] for o in xs) != list(range(len(ins))) or len(attrs["in_axes"]) != len(ins):
        fail(ir, n, f"host operands {attrs['operands']} do not match its {len(ins)} IR operand(s)")
    for o in attrs["operands"]:
        if o[0] == "c" and o[1] not in params:
            fail(ir, n, f"host constant '{o[1]}' is missing from params")


def _host_eval(d, xs, **_):
    from ..host import run_host

    return run_host(d["attrs"], d["params"], xs)


register("host", arity=None, attrs=("op_type", "onnx", "operands", "in_axes", "out_axis", "output", "opset",
                                    "reason"),
         home="host", check=_host_check, eval=_host_eval,
         doc="an ONNX node run on the host by onnxruntime (see ir/host.py); params are its constant inputs")


def _softmax_check(ir, n, d, ins) -> None:
    same_shape(ir, n, d, ins)
    ax = d["attrs"]["axis"]
    if not -len(d["shape"]) <= ax < len(d["shape"]):
        fail(ir, n, f"axis {ax} out of range for shape {d['shape']}")


def _softmax_eval(d, xs, **_):
    ax = d["attrs"]["axis"]
    return K.softmax(xs[0], ax + 1 if ax >= 0 else ax)


register("softmax", arity=1, attrs=("axis",), home="host", check=_softmax_check, eval=_softmax_eval,
         doc="softmax over a per-sample axis (the host computes it as an opset-13 Softmax)")
