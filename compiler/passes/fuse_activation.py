"""fuse_activation: move an activation into the dense/conv layer before it, so the digital unit
after that layer's ADCs and accumulators applies it."""

from __future__ import annotations

from ..ir import IR
from ._match import plain_layer_before, remove, rewrite_all


def _rule(ir: IR, n: str) -> bool:
    d = ir.g.nodes[n]
    if d["op"] != "act":
        return False
    src = plain_layer_before(ir, n)
    if src is None:
        return False
    ir.set(src, attrs={**ir.g.nodes[src]["attrs"], "activation": dict(d["attrs"]["activation"])})
    remove(ir, n, src)
    return True


def fuse_activation(ir: IR, options, pdk) -> IR:
    return rewrite_all(ir, _rule)
