"""Reference interpreter of the IR in numpy (float64), batch-first.

Used as the golden model of the *network* (front ends and every pass are checked against
onnxruntime with it); the golden model of a *tile* is in ``compiler.verify.golden``.
"""

from __future__ import annotations

import numpy as np

from .graph import IR
from .ops import REGISTRY


def run_ir(ir: IR, feeds: dict[str, np.ndarray], every_node: bool = False, tile_fn=None) -> dict[str, np.ndarray]:
    """Evaluate ``ir`` on batch-first inputs ``{input node: [N, *shape]}``; returns the outputs
    likewise (or, with ``every_node``, the value of every node; without it a value is freed once
    every node that reads it has run). ``tile_fn`` as in :func:`eval_node`."""
    vals: dict[str, np.ndarray] = {}
    outs: dict[str, np.ndarray] = {}
    for n in ir.topo():
        if ir.g.nodes[n]["op"] == "input":
            vals[n] = np.asarray(feeds[n], dtype=np.float64)
            continue
        vals[n] = eval_node(ir, n, [vals[i] for i in ir.inputs(n)], tile_fn)
        if ir.g.nodes[n]["op"] == "output":
            outs[n] = vals[n]
        if not every_node:
            for i in ir.inputs(n):
                if all(c in vals for c in ir.consumers(i)):
                    vals.pop(i, None)
    return vals if every_node else outs


def eval_node(ir: IR, n: str, xs: list[np.ndarray], tile_fn=None, pre_activation: bool = False) -> np.ndarray:
    """The value of node ``n`` (not an input) from its operands' batch-first values. ``tile_fn(n, x)``,
    if given, computes a crossbar tile's ``x @ (G+ - G-)`` instead (a circuit engine). With
    ``pre_activation`` an accumulator's value before its activation."""
    d = ir.g.nodes[n]
    return REGISTRY[d["op"]].eval(d, xs, tile_fn=tile_fn, pre_activation=pre_activation, name=n, ir=ir)


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
