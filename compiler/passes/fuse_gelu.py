"""fuse_gelu: GELU written out with Erf becomes one activation.

PyTorch exports ``nn.GELU()`` before opset 20 as ``x * 0.5 * (1 + erf(x / sqrt(2)))``: a Div (or a
Mul by 1/sqrt(2)), an Erf, an Add of 1, a Mul by x and a Mul by 0.5, in either order of the two
products. The Erf and the runtime x runtime product have no chip lowering, so left alone they send
every MLP of a transformer to the host twice. Matched here (the front end has made the constant
Mul/Div ``mul_const`` and the Add ``add_const``; Erf and the product are ``host`` nodes), the
chain becomes ``act`` with ``{"kind": "gelu"}``, which ``fuse_activation`` then moves into the layer
before it and the datapath computes with a table. The constants must match to float32 precision;
anything else is left as it is."""

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


def _rule(ir: IR, n: str) -> bool:
    if not _host_op(ir, n, "Erf", 1):
        return False
    (div,) = ir.inputs(n)
    if not _const_is(ir, div, "mul_const", 1.0 / np.sqrt(2.0)) or single_consumer(ir, div) != n:
        return False
    (x,) = ir.inputs(div)
    add = single_consumer(ir, n)
    if add is None or not _const_is(ir, add, "add_const", 1.0):
        return False
    prod = single_consumer(ir, add)
    if prod is None or not _host_op(ir, prod, "Mul", 2):
        return False
    other = [v for v in ir.inputs(prod) if v != add]
    if len(other) != 1:
        return False
    dead = [div, n, add, prod]
    if other[0] == x:                     # x * (1 + erf): the 0.5 must follow
        target = single_consumer(ir, prod)
        if target is None or not _const_is(ir, target, "mul_const", 0.5):
            return False
        dead.append(target)
    elif _const_is(ir, other[0], "mul_const", 0.5) and ir.inputs(other[0]) == [x] \
            and single_consumer(ir, other[0]) == prod:   # (0.5 x) * (1 + erf)
        target = prod
        dead.append(other[0])
    else:
        return False
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
