"""fuse_bias: fold constant additions into the bias of a dense/conv layer.

``(W x + b) + c`` becomes ``W x + (b + c)`` when ``c`` is constant per output channel (likewise
into the shift of a BatchNormalization before it), and
``W (x + c) + b`` becomes ``W x + (W c + b)`` for a dense layer (not for a padded convolution,
where the zero padding would not be offset)."""

from __future__ import annotations

import numpy as np

from ..ir import IR
from ._match import batchnorm_before, channel_axis, per_channel, plain_layer_before, remove, rewrite_all, single_consumer


def _rule(ir: IR, n: str) -> bool:
    d = ir.g.nodes[n]
    if d["op"] != "add_const":
        return False
    # into the bias of the layer before (one value per output channel), or the shift of the
    # BatchNormalization before (one per channel, axis 0)
    layer = plain_layer_before(ir, n)
    for src, key in ((layer, "b"), (batchnorm_before(ir, n), "bias")):
        c = None if src is None else per_channel(d["params"]["c"], d["shape"],
                                                 channel_axis(ir, src) if src == layer else 0)
        if c is not None:
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
