"""remove_identity: drop Identity nodes, reshapes that keep the shape and identity transposes."""

from __future__ import annotations

from ..ir import IR
from ._match import rewrite_all


def _rule(ir: IR, n: str) -> bool:
    d = ir.g.nodes[n]
    noop_reshape = d["op"] == "reshape" and ir.g.nodes[ir.inputs(n)[0]]["shape"] == d["shape"]
    noop_transpose = d["op"] == "transpose" and d["attrs"]["perm"] == sorted(d["attrs"]["perm"])
    if d["op"] == "identity" or noop_reshape or noop_transpose:
        ir.bypass(n)
        return True
    return False


def remove_identity(ir: IR, options, pdk) -> IR:
    return rewrite_all(ir, _rule)
