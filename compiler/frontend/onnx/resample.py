"""Resampling: DepthToSpace, SpaceToDepth, Resize (and the older Upsample), Expand.

DepthToSpace and SpaceToDepth are a reshape, a 5-axis transpose and a reshape: the data-movement
unit walks the transpose. A Resize that repeats pixels (nearest, integer factors) is an ``expand``
on the data-movement unit. Any other Resize (linear, cubic, nearest at other scales) is separable
into one interpolation matrix per spatial axis, which onnxruntime gives: the node itself is run on
probe inputs, and the matrices are checked against it on a random input. Each matrix that is not the
identity becomes a ``dense`` layer on crossbars over its axis (the other axes are its tokens), the
matrix product an interpolation is."""

from __future__ import annotations

import numpy as np

from ...errors import UnsupportedOpError
from ...ir import kernels as K
from .reader import Val
from .registry import lowers

#: the largest map side a Resize is probed on (the probes run the node once per row and column) ...
RESIZE_MAX_SIDE = 4096
#: ... and the largest map (elements per sample): a larger one runs on the host
RESIZE_MAX_ELEMENTS = 1 << 24


def view(cx, node, x: Val, shape) -> Val:
    shape = tuple(int(s) for s in shape)
    return x if shape == x.shape else Val(cx.emit(node, "reshape", shape, [x.node]), shape, x.batch_axis)


def transpose(cx, node, x: Val, perm) -> Val:
    shape = tuple(x.shape[p] for p in perm)
    return Val(cx.emit(node, "transpose", shape, [x.node], attrs={"perm": [int(p) for p in perm]}), shape,
               x.batch_axis)


def depth_to_space(cx, node, x: Val, bh: int, bw: int, mode: str = "CRD") -> Val:
    """(C, H, W) -> (C / (bh bw), H bh, W bw): channel (c, a, b) (CRD) or (a, b, c) (DCR) moves to
    pixel (y bh + a, x bw + b)."""
    C, H, W = x.shape
    c = C // (bh * bw)
    if mode == "DCR":
        t = transpose(cx, node, view(cx, node, x, (bh, bw, c, H, W)), (2, 3, 0, 4, 1))
    else:
        t = transpose(cx, node, view(cx, node, x, (c, bh, bw, H, W)), (0, 3, 1, 4, 2))
    return view(cx, node, t, (c, H * bh, W * bw))


def _image(cx, node) -> Val:
    x = cx.get(node, node.input[0])
    if not isinstance(x, Val) or x.batch_axis != 0 or len(x.shape) != 3:
        shape = list(x.full_shape(1)) if isinstance(x, Val) else "constant"
        raise cx.err(node, f"expects a runtime [N, C, H, W] tensor, got {shape}", UnsupportedOpError)
    return x


def _mode(cx, attrs) -> str:
    m = cx._attr(attrs, "mode", b"DCR")
    return m.decode() if isinstance(m, bytes) else str(m)


@lowers("DepthToSpace")
def op_depthtospace(cx, node, attrs):
    cx._nin(node, 1, 1)
    x = _image(cx, node)
    b, mode = int(cx._attr(attrs, "blocksize", 0)), _mode(cx, attrs)
    if b < 1 or x.shape[0] % (b * b) or mode not in ("DCR", "CRD"):
        raise cx.err(node, f"blocksize {b} / mode {mode!r} do not fit {x.shape[0]} channels (DCR or CRD)")
    return depth_to_space(cx, node, x, b, b, mode)


@lowers("SpaceToDepth")
def op_spacetodepth(cx, node, attrs):
    cx._nin(node, 1, 1)
    x = _image(cx, node)
    b = int(cx._attr(attrs, "blocksize", 0))
    C, H, W = x.shape
    if b < 1 or H % b or W % b:
        raise cx.err(node, f"blocksize {b} does not divide the map {H}x{W}")
    t = transpose(cx, node, view(cx, node, x, (C, H // b, b, W // b, b)), (2, 4, 0, 1, 3))
    return view(cx, node, t, (C * b * b, H // b, W // b))


@lowers("Expand")
def op_expand(cx, node, attrs):
    cx._nin(node, 2, 2)
    x = cx.get(node, node.input[0])
    if not isinstance(x, Val) or x.batch_axis != 0:
        raise cx.err(node, "expands a tensor without its batch on axis 0", UnsupportedOpError)
    want = [int(v) for v in cx.const(node, node.input[1], "shape").reshape(-1)]
    full = list(x.full_shape(1))
    try:
        out = list(np.broadcast_shapes(tuple(full), tuple(want)))
    except ValueError:
        raise cx.err(node, f"shape {want} does not broadcast with the operand's {full}") from None
    if len(out) != len(full) or out[0] != 1:
        raise cx.err(node, f"expanding {full} to {out} changes the rank or the batch", UnsupportedOpError)
    shape = tuple(out[1:])
    if shape == x.shape:
        return x
    return Val(cx.emit(node, "expand", shape, [x.node]), shape, 0)


def _probe_model(cx, node, full_in):
    """The node alone as a model (its constant inputs as initializers) on a fixed input shape."""
    from onnx import TensorProto, helper, numpy_helper

    inits, names = [], []
    for k, name in enumerate(node.input):
        if k == 0 or not name:
            names.append("x" if k == 0 else "")
            continue
        inits.append(numpy_helper.from_array(np.asarray(cx.const(node, name, f"input {k}")), f"c{k}"))
        names.append(f"c{k}")
    probe = helper.make_node(node.op_type, names, ["y"], **{a.name: helper.get_attribute_value(a)
                                                           for a in node.attribute})
    graph = helper.make_graph([probe], "probe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, full_in)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=list(cx.model.opset_import))
    model.ir_version = min(cx.model.ir_version or 8, 10)
    return model


def _axis_matrices(cx, node, x: Val):
    """The interpolation matrix of each spatial axis, [out, in], from onnxruntime on probe inputs."""
    import onnxruntime as ort

    full = [1, *x.shape]
    try:
        sess = ort.InferenceSession(_probe_model(cx, node, full).SerializeToString(),
                                    providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise cx.err(node, f"onnxruntime cannot run it alone: {first}", UnsupportedOpError) from None

    def run(v):
        try:
            return np.asarray(sess.run(None, {"x": v.astype(np.float32)})[0], np.float64)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise cx.err(node, f"onnxruntime cannot run it alone: {first}", UnsupportedOpError) from None

    spatial = list(range(2, len(full)))
    base = run(np.zeros(full))
    if base.shape[:2] != (1, full[1]):
        raise cx.err(node, f"resizes the batch or channel axes ({full} -> {list(base.shape)})", UnsupportedOpError)
    mats = []
    for ax in spatial:
        n_in = full[ax]
        cols = []
        for i in range(n_in):
            p = np.zeros(full)
            idx = [slice(None)] * len(full)
            idx[ax] = i
            p[tuple(idx)] = 1.0     # constant along the other axes: their interpolation keeps it
            out = run(p)
            line = [0] * len(full)
            line[ax] = slice(None)
            cols.append(out[tuple(line)])
        mats.append(np.stack(cols, axis=1).astype(np.float64))
    # the matrices must reproduce the node on a random input (separable interpolation)
    r = np.random.default_rng(0).uniform(-1, 1, full)
    want = run(r)
    got = r[0]
    for k, A in enumerate(mats):
        got = np.moveaxis(np.tensordot(A, got, axes=([1], [k + 1])), 0, k + 1)
    if got.shape != want.shape[1:] or not np.allclose(got, want[0], atol=1e-4):
        raise cx.err(node, "its interpolation is not separable into one matrix per axis", UnsupportedOpError)
    return mats


def _repeat_factor(A: np.ndarray) -> int | None:
    """f if A repeats each input f times (A[i, i // f] = 1), else None."""
    n_out, n_in = A.shape
    if n_out % n_in:
        return None
    f = n_out // n_in
    want = np.zeros_like(A)
    want[np.arange(n_out), np.arange(n_out) // f] = 1.0
    return f if np.array_equal(A, want) else None


@lowers("Resize")
@lowers("Upsample")
def op_resize(cx, node, attrs):
    x = cx.get(node, node.input[0])
    if not isinstance(x, Val) or x.batch_axis != 0 or len(x.shape) not in (2, 3):
        shape = list(x.full_shape(1)) if isinstance(x, Val) else "constant"
        raise cx.err(node, f"expects a runtime [N, C, L] or [N, C, H, W] tensor, got {shape}", UnsupportedOpError)
    if max(x.shape[1:]) > RESIZE_MAX_SIDE or int(np.prod(x.shape)) > RESIZE_MAX_ELEMENTS:
        raise cx.err(node, f"map {list(x.shape)} exceeds the probed sizes (sides {RESIZE_MAX_SIDE}, "
                           f"{RESIZE_MAX_ELEMENTS} elements)", UnsupportedOpError)
    mats = _axis_matrices(cx, node, x)
    factors = [_repeat_factor(A) for A in mats]
    if all(f is not None for f in factors):
        # nearest by integer factors: each pixel repeated, on the data-movement unit
        C, *sides = x.shape
        grid = [v for s in sides for v in (s, 1)]
        v = view(cx, node, x, (C, *grid))
        big = (C, *[v for s, f in zip(sides, factors) for v in (s, f)])
        if big != v.shape:
            v = Val(cx.emit(node, "expand", big, [v.node]), big, 0)
        return view(cx, node, v, (C, *[s * f for s, f in zip(sides, factors)]))
    # one dense layer per axis that changes, the last axis first (the others are its tokens)
    y = x
    rank = len(x.shape)
    for k in reversed(range(len(mats))):
        A = mats[k]
        if A.shape[0] == A.shape[1] and np.array_equal(A, np.eye(A.shape[0])):
            continue
        ax = k + 1
        if ax != rank - 1:
            perm = list(range(rank))
            perm[ax], perm[-1] = perm[-1], perm[ax]
            y = transpose(cx, node, y, perm)
        shape = y.shape[:-1] + (A.shape[0],)
        y = Val(cx.emit(node, "dense", shape, [y.node], attrs={"activation": dict(K.NO_ACT)},
                        params={"W": A, "b": np.zeros(A.shape[0])}), shape, 0)
        if ax != rank - 1:
            y = transpose(cx, node, y, perm)
    return y
