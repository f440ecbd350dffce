"""Small pattern helpers shared by the canonicalize passes."""

from __future__ import annotations

import numpy as np

from ..ir import IR
from ..ir.graph import MATMUL_OPS


def single_consumer(ir: IR, n: str) -> str | None:
    cons = ir.consumers(n)
    return cons[0] if len(cons) == 1 and not ir.g.nodes[n]["op"] == "output" else None


def plain_layer_before(ir: IR, n: str) -> str | None:
    """The dense/conv node feeding ``n`` if ``n`` is its only consumer and it has no activation yet."""
    (src,) = ir.inputs(n)
    d = ir.g.nodes[src]
    if d["op"] in MATMUL_OPS and d["attrs"]["activation"]["kind"] == "none" and single_consumer(ir, src) == n \
            and "recurrent" not in d["attrs"]:   # a recurrent layer's output is its cell's, not an affine map
        return src
    return None


def batchnorm_before(ir: IR, n: str) -> str | None:
    """The BatchNormalization feeding ``n`` if ``n`` is its only consumer."""
    (src,) = ir.inputs(n)
    return src if ir.g.nodes[src]["op"] == "batchnorm" and single_consumer(ir, src) == n else None


def per_channel(c: np.ndarray, shape: tuple, axis: int = 0) -> np.ndarray | None:
    """``c`` (shaped like ``shape``) as one value per channel (on ``axis``), if it is one."""
    flat = np.moveaxis(np.asarray(c).reshape(shape), axis, 0).reshape(shape[axis], -1)
    return flat[:, 0] if np.all(flat == flat[:, :1]) else None


def channel_axis(ir: IR, layer: str) -> int:
    """The output-channel axis of a dense/conv layer's value: 0 for a convolution's (C, H, W) and a
    dense layer's [M], the last for a per-token dense layer's [T, M]."""
    d = ir.g.nodes[layer]
    return len(d["shape"]) - 1 if d["op"] == "dense" else 0


def remove(ir: IR, n: str, keep: str) -> None:
    """Drop node ``n``; its consumers read ``keep`` instead."""
    ir.replace_uses(n, keep)
    ir.g.remove_node(n)


def rewrite_all(ir: IR, rule) -> IR:
    """Apply ``rule(ir, node) -> bool`` in topological order until no rule fires."""
    ir = ir.copy()
    changed = True
    while changed:
        changed = False
        for n in ir.topo():
            if n in ir.g and rule(ir, n):
                changed = True
                break
    return ir
