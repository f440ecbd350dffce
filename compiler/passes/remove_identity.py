"""remove_identity: drop Identity nodes, reshapes that keep the shape and identity transposes; fold a
reshape of a reshape into one, and move a standalone activation in front of the reshape it follows.

The last two undo what a front end's lifting leaves between a layer and its activation: a 1-D
convolution runs as a 2-D one of unit height, so a PyTorch ``Conv1d -> ReLU -> MaxPool1d`` arrives
as conv -> reshape (C, L) -> act -> reshape (C, 1, L) -> pool. An activation is elementwise, so it
commutes with a reshape; moved in front of it, the two reshapes meet, fold into one that keeps the
shape and vanish, and the activation reaches its layer (fuse_activation puts it in the layer's
requantizer instead of a unit of its own)."""

from __future__ import annotations

from ..ir import IR
from ._match import rewrite_all, single_consumer


def _rule(ir: IR, n: str) -> bool:
    d = ir.g.nodes[n]
    noop_reshape = d["op"] == "reshape" and ir.g.nodes[ir.inputs(n)[0]]["shape"] == d["shape"]
    noop_transpose = d["op"] == "transpose" and d["attrs"]["perm"] == sorted(d["attrs"]["perm"])
    if d["op"] == "identity" or noop_reshape or noop_transpose:
        ir.bypass(n)
        return True
    if d["op"] == "reshape":
        (src,) = ir.inputs(n)
        if ir.g.nodes[src]["op"] == "reshape":   # a reshape of a reshape: one reshape of the first's operand
            (inner,) = ir.inputs(src)
            ir.g.remove_edge(src, n)
            ir.g.add_edge(inner, n, slot=0)
            if not ir.consumers(src):
                ir.g.remove_node(src)
            return True
    if d["op"] == "act" and not d["params"]:
        (src,) = ir.inputs(n)
        s = ir.g.nodes[src]
        if s["op"] == "reshape" and single_consumer(ir, src) == n:
            # act(reshape(x)) = reshape(act(x)): swap the two nodes' places, each keeping its name
            (x,) = ir.inputs(src)
            ir.g.remove_edge(x, src)
            ir.g.remove_edge(src, n)
            ir.replace_uses(n, src)
            ir.g.add_edge(x, n, slot=0)
            ir.g.add_edge(n, src, slot=0)
            ir.set(n, shape=ir.g.nodes[x]["shape"])
            return True
    return False


def remove_identity(ir: IR, options, pdk) -> IR:
    return rewrite_all(ir, _rule)
