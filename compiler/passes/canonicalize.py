"""canonicalize: remove identities and no-op reshapes, fold constant adds into dense biases, fuse
ReLU into the dense layer before it. Rewrites repeat until nothing changes."""

from __future__ import annotations

import numpy as np

from ..ir import IR


def _single_consumer(ir: IR, n: str) -> str | None:
    cons = ir.consumers(n)
    return cons[0] if len(cons) == 1 else None


def _rewrite_once(ir: IR) -> bool:
    for n in ir.topo():
        d = ir.g.nodes[n]
        op = d["op"]
        if op == "identity" or (op == "reshape" and ir.g.nodes[ir.inputs(n)[0]]["shape"] == d["shape"]):
            ir.bypass(n)
            return True
        if op in ("add_const", "relu"):
            (src,) = ir.inputs(n)
            s = ir.g.nodes[src]
            if s["op"] == "dense" and s["attrs"]["activation"] == "none" and _single_consumer(ir, src) == n:
                if op == "add_const":  # W x + b + c
                    ir.set(src, params={**s["params"], "b": s["params"]["b"] + d["params"]["c"]})
                else:
                    ir.set(src, attrs={**s["attrs"], "activation": "relu"})
                ir.replace_uses(n, src)
                ir.g.remove_node(n)
                return True
        if op == "add_const":  # W (x + c) + b = W x + (W c + b)
            dst = _single_consumer(ir, n)
            if dst is not None and ir.g.nodes[dst]["op"] == "dense":
                p = ir.g.nodes[dst]["params"]
                ir.set(dst, params={**p, "b": p["b"] + p["W"] @ np.ravel(d["params"]["c"])})
                ir.bypass(n)
                return True
    return False


def canonicalize(ir: IR, options, pdk) -> IR:
    ir = ir.copy()
    while _rewrite_once(ir):
        pass
    return ir
