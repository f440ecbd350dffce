"""Reference interpreter of the IR in numpy (float64), batch-first.

Used as the golden model of the *network* (front ends and every pass are checked against
onnxruntime with it); the golden model of a *tile* is in ``compiler.verify.golden``.
"""

from __future__ import annotations

import numpy as np

from . import kernels as K
from .graph import IR
from .host import run_host


def layer_matrix(p: dict, a: dict) -> np.ndarray:
    """The ``[out, in]`` matrix a dense/conv layer computes with: quantized once it has conductances."""
    if "gpos" in p:
        return (p["gpos"] - p["gneg"]).T * p["w_scale"][:, None]
    W = p["W"]
    return W.reshape(W.shape[0], -1)


def run_ir(ir: IR, feeds: dict[str, np.ndarray], every_node: bool = False) -> dict[str, np.ndarray]:
    """Evaluate ``ir`` on batch-first inputs ``{input node: [N, *shape]}``; returns the outputs
    likewise (or, with ``every_node``, the value of every node)."""
    vals: dict[str, np.ndarray] = {}
    outs: dict[str, np.ndarray] = {}
    for n in ir.topo():
        if ir.g.nodes[n]["op"] == "input":
            vals[n] = np.asarray(feeds[n], dtype=np.float64)
            continue
        vals[n] = eval_node(ir, n, [vals[i] for i in ir.inputs(n)])
        if ir.g.nodes[n]["op"] == "output":
            outs[n] = vals[n]
    return vals if every_node else outs


def eval_node(ir: IR, n: str, xs: list[np.ndarray], tile_fn=None, pre_activation: bool = False) -> np.ndarray:
    """The value of node ``n`` (not an input) from its operands' batch-first values. ``tile_fn(n, x)``,
    if given, computes a crossbar tile's ``x @ (G+ - G-)`` instead (a circuit engine). With
    ``pre_activation`` an accumulator's value before its activation."""
    d = ir.g.nodes[n]
    op, a, p = d["op"], d["attrs"], d["params"]
    if op in ("identity", "output"):
        y = xs[0]
    elif op == "act":
        y = K.activation(xs[0], a["activation"])
    elif op == "reshape":
        y = xs[0].reshape((xs[0].shape[0],) + d["shape"])
    elif op == "transpose":
        y = xs[0].transpose([0] + [q + 1 for q in a["perm"]])
    elif op == "concat":
        y = np.concatenate(xs, axis=a["axis"] + 1)
    elif op == "add":
        y = xs[0] + xs[1]
    elif op == "add_const":
        y = xs[0] + p["c"]
    elif op == "mul_const":
        y = xs[0] * p["c"]
    elif op == "host":
        y = run_host(a, p, xs)
    elif op == "batchnorm":
        shp = (1, -1) + (1,) * (len(d["shape"]) - 1)
        s = p["scale"] / np.sqrt(p["var"] + a["eps"])
        y = (xs[0] - p["mean"].reshape(shp)) * s.reshape(shp) + p["bias"].reshape(shp)
    elif op == "pool":
        y = K.pool(xs[0], a["kind"], a["kernel"], a["stride"], a["pads"], a["dilation"],
                   a["count_include_pad"])
    elif op == "pad":
        t, l_, b, r = a["pads"]
        y = np.pad(xs[0], ((0, 0), (0, 0), (t, b), (l_, r)), constant_values=a["value"])
    elif op == "global_avgpool":
        y = xs[0].mean(axis=(2, 3), keepdims=True)
    elif op == "softmax":
        y = K.softmax(xs[0], a["axis"] + 1 if a["axis"] >= 0 else a["axis"])
    elif op == "dense":
        y = K.activation(xs[0] @ layer_matrix(p, a).T + p["b"], a["activation"])
    elif op == "conv":
        cols = K.im2col(xs[0], a["kernel"], a["stride"], a["pads"], a["dilation"])
        z = K.grouped_matmul(cols, layer_matrix(p, a), a.get("group", 1)) + p["b"]   # [N, P, C_out]
        y = K.activation(z.transpose(0, 2, 1).reshape((-1,) + d["shape"]), a["activation"])
    elif op == "im2col":
        y = K.im2col(xs[0], a["kernel"], a["stride"], a["pads"], a["dilation"])
    elif op == "xbar_tile":
        x = xs[0][..., a["row0"]:a["row1"]]
        y = x @ (p["gpos"] - p["gneg"]) if tile_fn is None else tile_fn(n, x)
    elif op == "accum":
        rs, cs = a["row_splits"], a["col_splits"]
        cols = [sum(xs[r * cs + c] for r in range(rs)) for c in range(cs)]
        z = np.concatenate(cols, axis=-1) * p["w_scale"] + p["b"]   # [N, (P,) C_out]
        if a["spatial"] is not None:
            z = z.transpose(0, 2, 1).reshape((-1,) + d["shape"])
        y = z if pre_activation else K.activation(z, a["activation"])
    else:  # pragma: no cover - the verifier rejects unknown ops first
        raise ValueError(f"interpreter has no rule for op {op!r}")
    return y


#: Calibration samples evaluated together, at most: bounds the interpreter's memory to a few
#: samples' worth of activations, however many samples there are ...
RANGE_BATCH = 8
#: ... and fewer when one sample's largest tensor is big: its float64 working copy for the whole
#: batch stays within this many bytes.
RANGE_BYTES = 512 * 1024 * 1024


#: Activations the datapath computes by a table over the calibrated pre-activation range.
TABLE_ACTS = ("gelu", "hardswish")


def value_ranges(ir: IR, feeds: dict[str, np.ndarray], batch: int | None = None) -> dict:
    """``{node: [min, max]}`` of every node's value over all samples of ``feeds``, evaluated
    ``batch`` samples at a time (default: RANGE_BATCH, fewer for large tensors, see RANGE_BYTES).
    Each value is kept in float32 and freed after its last consumer, so peak memory does not grow
    with the number of samples (the calibration of large models). A layer whose activation is a
    table (:data:`TABLE_ACTS`) also gets the range of its pre-activation, under ``(node, "pre")``."""
    order = ir.topo()
    pre_of = {n for n in order if ir.g.nodes[n]["op"] == "accum"
              and ir.g.nodes[n]["attrs"]["activation"]["kind"] in TABLE_ACTS}
    if batch is None:
        biggest = max(int(np.prod(ir.g.nodes[n]["shape"], dtype=np.int64)) for n in order)
        batch = int(np.clip(RANGE_BYTES // (8 * biggest), 1, RANGE_BATCH))
    last_use: dict[str, int] = {}
    for k, n in enumerate(order):
        for i in ir.inputs(n):
            last_use[i] = k
    n_samples = next(iter(feeds.values())).shape[0]
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    for b0 in range(0, n_samples, batch):
        vals: dict[str, np.ndarray] = {}
        for k, n in enumerate(order):
            if ir.g.nodes[n]["op"] == "input":
                y = np.asarray(feeds[n][b0:b0 + batch], dtype=np.float32)
            else:
                y = eval_node(ir, n, [vals[i] for i in ir.inputs(n)]).astype(np.float32, copy=False)
                if n in pre_of and y.size:   # the pre-activation too: the range a table unit must cover
                    z = eval_node(ir, n, [vals[i] for i in ir.inputs(n)], pre_activation=True)
                    lo[(n, "pre")] = min(lo.get((n, "pre"), np.inf), float(z.min()))
                    hi[(n, "pre")] = max(hi.get((n, "pre"), -np.inf), float(z.max()))
            if y.size:
                lo[n] = min(lo.get(n, np.inf), float(y.min()))
                hi[n] = max(hi.get(n, -np.inf), float(y.max()))
            vals[n] = y
            for i in ir.inputs(n):
                if last_use[i] == k:
                    del vals[i]
    return {n: np.array([lo[n], hi[n]]) for n in lo}
