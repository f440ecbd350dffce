"""fold_batchnorm: fold inference-mode BatchNormalization into the dense/conv layer before it.

``BN(z) = (z - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)`` per channel, so the layer's
weights of output channel ``k`` scale by ``s_k`` and its bias becomes ``(b - mean) * s + beta``.
A BatchNormalization that does not follow such a layer stays: a per-channel scale and shift in a
digital unit."""

from __future__ import annotations

import numpy as np

from ..ir import IR
from ._match import plain_layer_before, remove, rewrite_all


def _rule(ir: IR, n: str) -> bool:
    d = ir.g.nodes[n]
    if d["op"] != "batchnorm":
        return False
    src = plain_layer_before(ir, n)
    if src is None:
        return False
    p, a = d["params"], d["attrs"]
    s = p["scale"] / np.sqrt(p["var"] + a["eps"])
    lp = ir.g.nodes[src]["params"]
    W = lp["W"] * s.reshape((-1,) + (1,) * (lp["W"].ndim - 1))
    ir.set(src, params={**lp, "W": W, "b": (lp["b"] - p["mean"]) * s + p["bias"]})
    remove(ir, n, src)
    return True


def fold_batchnorm(ir: IR, options, pdk) -> IR:
    return rewrite_all(ir, _rule)
