"""Data-movement operators: reshape, transpose, concat and slice.

On the chip a reshape is another view of the same memory; transpose, concat and slice run on the
data-movement unit (``remap``), which reads each output element at a computed address."""

from __future__ import annotations

import numpy as np

from . import Remap, fail, register, row_major, size


def _reshape_check(ir, n, d, ins) -> None:
    if size(ins[0]) != size(d["shape"]):
        fail(ir, n, f"reshape {ins[0]} -> {d['shape']} changes the element count")


def _reshape_onnx(helper, numpy_helper, n, d, ins):
    shape = numpy_helper.from_array(np.array([-1, *d["shape"]], np.int64), f"{n}__shape")
    return [helper.make_node("Reshape", [ins[0], f"{n}__shape"], [n], name=n)], [shape]


register("reshape", arity=1, check=_reshape_check,
         eval=lambda d, xs, **_: xs[0].reshape((xs[0].shape[0],) + d["shape"]),
         unit="view", swing=True, to_onnx=_reshape_onnx,
         doc="y = x in another shape (row-major, the element count kept)")


def _transpose_check(ir, n, d, ins) -> None:
    perm = d["attrs"]["perm"]
    if sorted(perm) != list(range(len(ins[0]))) or tuple(ins[0][p] for p in perm) != d["shape"]:
        fail(ir, n, f"perm {perm} does not map {ins[0]} to {d['shape']}")


def _transpose_remap(d, ins, dims) -> Remap:
    pad = len(dims) - len(d["shape"])
    st_in = row_major(ins[0])
    return Remap(strides=[[0] * pad + [st_in[p] for p in d["attrs"]["perm"]]], gain=[1.0], offset=[0.0])


def _transpose_onnx(helper, numpy_helper, n, d, ins):
    perm = [0] + [p + 1 for p in d["attrs"]["perm"]]
    return [helper.make_node("Transpose", [ins[0]], [n], name=n, perm=perm)], []


register("transpose", arity=1, attrs=("perm",), check=_transpose_check,
         eval=lambda d, xs, **_: xs[0].transpose([0] + [q + 1 for q in d["attrs"]["perm"]]),
         unit="remap", remap=_transpose_remap, swing=True, to_onnx=_transpose_onnx,
         doc="y = x with its axes permuted (perm as ONNX Transpose's, over the per-sample axes)")


def _concat_parts(d, ins) -> list:
    """The concatenated parts in order: ("x", k) for operand k, ("c", key) for a constant (attr
    ``consts``: [position, param key] pairs, a constant such as a ViT's class token)."""
    parts = [("x", k) for k in range(len(ins))]
    for pos, key in sorted(d["attrs"].get("consts", [])):
        parts.insert(pos, ("c", key))
    return parts


def _part_shape(d, ins, part):
    return tuple(ins[part[1]]) if part[0] == "x" else tuple(d["params"][part[1]].shape)


def _concat_check(ir, n, d, ins) -> None:
    shape, ax = d["shape"], d["attrs"]["axis"]
    for c in d["attrs"].get("consts", []):
        if not (isinstance(c, list) and len(c) == 2 and isinstance(c[0], int) and c[1] in d["params"]):
            fail(ir, n, f"constant part {c!r} is not [position, param key]")
    parts = [_part_shape(d, ins, p) for p in _concat_parts(d, ins)]
    if not 0 <= ax < len(shape) or any(len(s) != len(shape) for s in parts):
        fail(ir, n, f"axis {ax} / operand ranks do not fit {shape}")
    rest = [tuple(s[:ax] + s[ax + 1:]) for s in parts]
    if len(set(rest)) != 1 or rest[0] != tuple(shape[:ax] + shape[ax + 1:]) or sum(s[ax] for s in parts) != shape[ax]:
        fail(ir, n, f"operand shapes {parts} do not concatenate to {shape} on axis {ax}")


def _concat_eval(d, xs, **_):
    n = xs[0].shape[0]
    parts = [xs[k] if kind == "x" else np.broadcast_to(d["params"][k], (n,) + d["params"][k].shape)
             for kind, k in _concat_parts(d, [x.shape[1:] for x in xs])]
    return np.concatenate(parts, axis=d["attrs"]["axis"] + 1)


def _concat_remap(d, ins, dims) -> Remap:
    """Each operand a source at its offset along the axis; a constant part reads operand 0 with a
    gain of 0 and the constant as its offset (spread along the axis, so that it varies along the
    other axes only)."""
    pad = len(dims) - len(d["shape"])
    ax = d["attrs"]["axis"] + pad
    strides, offs, gain, offset, src, at = [], [], [], [], [], 0
    for kind, k in _concat_parts(d, ins):
        sh = [1] * pad + list(_part_shape(d, ins, (kind, k)))
        offs.append(at)
        at += sh[ax]
        if kind == "x":
            strides.append(row_major(sh))
            gain.append(1.0)
            offset.append(0.0)
            src.append(k)
        else:
            c = np.asarray(d["params"][k], float).reshape(sh)
            strides.append([0] * len(dims))
            gain.append(0.0)
            offset.append(np.broadcast_to(c, dims) if sh[ax] == 1 else _spread(c, ax, dims, offs[-1]))
            src.append(0)
    return Remap(strides=strides, gain=gain, offset=offset, ax=ax, offs=offs, base=[0] * len(offs), src=src)


def _spread(c: np.ndarray, ax: int, dims, start: int) -> np.ndarray:
    """A constant part of several rows along ``ax`` laid into the output's dims at ``start``."""
    out = np.zeros(dims)
    idx = [slice(None)] * len(dims)
    idx[ax] = slice(start, start + c.shape[ax])
    out[tuple(idx)] = c
    return out


register("concat", arity=None, attrs=("axis",), check=_concat_check, eval=_concat_eval,
         unit="remap", remap=_concat_remap,
         doc="y = the operands (and constants, attr consts: [position, param key]) joined along a per-sample axis")


def _slice_check(ir, n, d, ins) -> None:
    a, shape = d["attrs"], d["shape"]
    ax, start, step = a["axis"], a["start"], a["step"]
    if not (isinstance(ax, int) and 0 <= ax < len(ins[0]) and len(shape) == len(ins[0])):
        fail(ir, n, f"axis {ax!r} does not fit operand shape {ins[0]}")
    if not (isinstance(start, int) and isinstance(step, int) and step >= 1 and 0 <= start < ins[0][ax]):
        fail(ir, n, f"start {start!r} / step {step!r} do not fit axis {ax} of {ins[0]}")
    count = shape[ax] if len(shape) == len(ins[0]) else 0
    if shape[:ax] != ins[0][:ax] or shape[ax + 1:] != ins[0][ax + 1:] or start + (count - 1) * step >= ins[0][ax]:
        fail(ir, n, f"shape {shape} is not a slice of {ins[0]} on axis {ax} from {start} by {step}")


def _slice_eval(d, xs, **_):
    a = d["attrs"]
    ax, start, step, count = a["axis"], a["start"], a["step"], d["shape"][a["axis"]]
    idx = [slice(None)] * xs[0].ndim
    idx[ax + 1] = slice(start, start + (count - 1) * step + 1, step)
    return xs[0][tuple(idx)]


def _slice_remap(d, ins, dims) -> Remap:
    pad = len(dims) - len(d["shape"])
    a = d["attrs"]
    st = [0] * pad + row_major(ins[0])
    base = a["start"] * st[pad + a["axis"]]
    st[pad + a["axis"]] *= a["step"]
    return Remap(strides=[st], gain=[1.0], offset=[0.0], base=[base])


register("slice", arity=1, attrs=("axis", "start", "step"), check=_slice_check, eval=_slice_eval,
         unit="remap", remap=_slice_remap,
         doc="y = x[start::step] along one per-sample axis, shape[axis] elements (ONNX Slice, Split)")


def _expand_check(ir, n, d, ins) -> None:
    if len(ins[0]) != len(d["shape"]) or any(i not in (1, o) for i, o in zip(ins[0], d["shape"])):
        fail(ir, n, f"operand shape {ins[0]} does not broadcast to {d['shape']} (same rank, 1 or equal per axis)")


def _expand_remap(d, ins, dims) -> Remap:
    pad = len(dims) - len(d["shape"])
    st = row_major(ins[0])
    return Remap(strides=[[0] * pad + [0 if i == 1 and o > 1 else s for i, o, s in zip(ins[0], d["shape"], st)]],
                 gain=[1.0], offset=[0.0])


register("expand", arity=1, check=_expand_check,
         eval=lambda d, xs, **_: np.broadcast_to(xs[0], (xs[0].shape[0],) + d["shape"]).copy(),
         unit="remap", remap=_expand_remap,
         doc="y = x repeated along its size-1 axes to the output shape (ONNX Expand; a nearest upsampling by "
             "integer factors, between two reshapes)")
