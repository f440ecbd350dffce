"""fuse_bias: fold constant additions into the bias of a dense/conv layer.

``(W x + b) + c`` becomes ``W x + (b + c)`` when ``c`` is constant per output channel (likewise
into the shift of a BatchNormalization before it), and
``W (x + c) + b`` becomes ``W x + (W c + b)`` for a dense layer (not for a padded convolution,
where the zero padding would not be offset)."""

from __future__ import annotations

import numpy as np

from ..ir import IR
from ._match import batchnorm_before, per_channel, plain_layer_before, remove, rewrite_all, single_consumer


def _rule(ir: IR, n: str) -> bool:
    d = ir.g.nodes[n]
    if d["op"] != "add_const":
        return False
    c = per_channel(d["params"]["c"], d["shape"])
    # into the bias of the layer before, or the shift of the BatchNormalization before
    for src, key in ((plain_layer_before(ir, n), "b"), (batchnorm_before(ir, n), "bias")):
        if src is not None and c is not None:
            p = ir.g.nodes[src]["params"]
            ir.set(src, params={**p, key: p[key] + c})
            remove(ir, n, src)
            return True
    dst = single_consumer(ir, n)
    if dst is not None and ir.g.nodes[dst]["op"] == "dense" and len(d["shape"]) == 1:
        p = ir.g.nodes[dst]["params"]
        ir.set(dst, params={**p, "b": p["b"] + p["W"] @ np.ravel(d["params"]["c"])})
        ir.bypass(n)
        return True
    return False


def fuse_bias(ir: IR, options, pdk) -> IR:
    return rewrite_all(ir, _rule)
