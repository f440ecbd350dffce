"""fuse_gelu: GELU written out with Erf becomes one activation.

PyTorch exports ``nn.GELU()`` before opset 20 as ``x * 0.5 * (1 + erf(x / sqrt(2)))``: a Div (or a
Mul by 1/sqrt(2)), an Erf, an Add of 1, a Mul by x and a Mul by 0.5, in either order of the two
products. The Erf has no chip lowering, so left alone it sends every MLP of a transformer to the
host. Matched here (the front end has made the constant
Mul/Div ``mul_const``, the Add ``add_const`` and the product ``mul``, or a ``host`` node where it
could not; Erf is a ``host`` node), the
chain becomes ``act`` with ``{"kind": "gelu"}``, which ``fuse_activation`` then moves into the layer
before it and the datapath computes with a table. The match is on the algebra, not on one node
order: any association of the product and any split of the 1/2 (``0.5 + 0.5 erf``) is found. The
constants must match to float32 precision; anything else is left as it is."""

from __future__ import annotations

import numpy as np

from ..ir import IR
from ._match import rewrite_all, single_consumer


def _const_is(ir: IR, n: str, op: str, value: float) -> bool:
    d = ir.g.nodes[n]
    return d["op"] == op and np.allclose(d["params"]["c"], value, rtol=1e-6, atol=0.0)


def _host_op(ir: IR, n: str, op_type: str, runtime: int) -> bool:
    d = ir.g.nodes[n]
    return (d["op"] == "host" and d["attrs"]["op_type"] == op_type and len(ir.inputs(n)) == runtime
            and all(o[0] == "x" for o in d["attrs"]["operands"]))


#: a value of the cluster around one Erf, as the algebra sees it: ``k * x**m * (alpha + beta * E)``
#: with ``E = erf(x / sqrt 2)``; GELU is ``m = 1, k alpha = k beta = 1/2``
_TOL = 1e-6


def _scaled_x(ir: IR, v: str, x: str) -> float | None:
    """``s`` if value ``v`` is ``s * x`` (``x`` itself, or a constant Mul of it by one number)."""
    if v == x:
        return 1.0
    if ir.g.nodes[v]["op"] == "mul_const" and ir.inputs(v) == [x]:
        return _scalar(ir, v)
    return None


def _scalar(ir: IR, n: str) -> float | None:
    c = np.asarray(ir.g.nodes[n]["params"]["c"])
    return float(c.ravel()[0]) if c.size and np.all(c == c.ravel()[0]) else None


def _rule(ir: IR, n: str) -> bool:
    """Match GELU on the algebra, whatever the association order: from an Erf of ``x / sqrt 2``,
    follow the single-consumer chain of constant scales, constant offsets and products with a
    scaled ``x`` (``x * 0.5 * (1 + E)``, ``0.5 * (x * (1 + E))``, ``x * (0.5 + 0.5 E)``,
    ``(0.5 x) * (E + 1)``, ...), tracking ``k x^m (alpha + beta E)``, until it equals
    ``0.5 x (1 + E)``."""
    if not _host_op(ir, n, "Erf", 1):
        return False
    (div,) = ir.inputs(n)
    if not _const_is(ir, div, "mul_const", 1.0 / np.sqrt(2.0)) or single_consumer(ir, div) != n:
        return False
    (x,) = ir.inputs(div)
    k, m, alpha, beta = 1.0, 0, 0.0, 1.0
    dead, cur = [div, n], n
    while True:
        if m == 1 and np.isclose(k * alpha, 0.5, rtol=_TOL, atol=0) and np.isclose(k * beta, 0.5, rtol=_TOL, atol=0):
            break
        nxt = single_consumer(ir, cur)
        if nxt is None:
            return False
        op = ir.g.nodes[nxt]["op"]
        c = _scalar(ir, nxt) if op in ("mul_const", "add_const") else None
        if op == "mul_const" and c is not None:
            k *= c
        elif op == "add_const" and c is not None and m == 0:
            alpha, beta, k = k * alpha + c, k * beta, 1.0
        elif (op == "mul" or _host_op(ir, nxt, "Mul", 2)) and m == 0:
            other = [v for v in ir.inputs(nxt) if v != cur]
            s = _scaled_x(ir, other[0], x) if len(other) == 1 else None
            if s is None:
                return False
            if other[0] != x:
                if single_consumer(ir, other[0]) != nxt:
                    return False
                dead.append(other[0])
            k, m = k * s, 1
        else:
            return False
        dead.append(nxt)
        cur = nxt
    target = cur
    name = f"{target}_gelu"
    while name in ir.g:
        name += "_"
    ir.add(name, "act", ir.g.nodes[target]["shape"], inputs=[x], attrs={"activation": {"kind": "gelu"}},
           origin=ir.g.nodes[target]["origin"])
    ir.replace_uses(target, name)
    ir.g.remove_nodes_from(dead)
    return True


def fuse_gelu(ir: IR, options, pdk) -> IR:
    return rewrite_all(ir, _rule)
