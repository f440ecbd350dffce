"""fold_scale: fold a multiplication by a constant (ONNX Mul/Div/Sub by a constant become
``mul_const``) into the layer or BatchNormalization next to it, where that is exact.

- After a plain dense/conv layer (its only consumer, no activation yet), with one factor per output
  channel: ``c (W x + b) = (c W) x + c b``, so the layer's rows and bias scale.
- After a BatchNormalization (its only consumer), one factor per channel: its scale and shift
  scale, ``c ((z - mean) s + beta) = (z - mean) (c s) + c beta``.
- Before a dense layer (the scale's only consumer): ``W (c x) = (W diag c) x``, the columns scale
  (for per-token input, when every token has the same factors).
- Before a convolution (the scale's only consumer), one factor per input channel: the kernel's
  input-channel slices scale. Zero padding stays zero under the scale, so this is exact too.

A scale that fits none of these stays a ``mul_const`` node: a digital scale unit."""

from __future__ import annotations

import numpy as np

from ..ir import IR
from ._match import batchnorm_before, channel_axis, per_channel, plain_layer_before, remove, rewrite_all, single_consumer


def _rule(ir: IR, n: str) -> bool:
    d = ir.g.nodes[n]
    if d["op"] != "mul_const":
        return False
    c = d["params"]["c"]
    ch = per_channel(c, d["shape"])
    src = plain_layer_before(ir, n)
    out_ch = None if src is None else per_channel(c, d["shape"], channel_axis(ir, src))
    if out_ch is not None:     # one factor per output channel of the layer before
        p = ir.g.nodes[src]["params"]
        W = p["W"] * out_ch.reshape((-1,) + (1,) * (p["W"].ndim - 1))
        ir.set(src, params={**p, "W": W, "b": p["b"] * out_ch})
        remove(ir, n, src)
        return True
    bn = batchnorm_before(ir, n)
    if bn is not None and ch is not None:
        p = ir.g.nodes[bn]["params"]
        ir.set(bn, params={**p, "scale": p["scale"] * ch, "bias": p["bias"] * ch})
        remove(ir, n, bn)
        return True
    dst = single_consumer(ir, n)
    if dst is None:
        return False
    dd = ir.g.nodes[dst]
    rows = np.asarray(c).reshape(-1, d["shape"][-1])
    if dd["op"] == "dense" and np.all(rows == rows[:1]):    # the same factors for every token
        p = dd["params"]
        ir.set(dst, params={**p, "W": p["W"] * rows[0][None, :]})
        ir.bypass(n)
        return True
    if dd["op"] == "conv" and ch is not None:
        p = dd["params"]
        g = dd["attrs"].get("group", 1)
        co, cg = p["W"].shape[:2]
        W = p["W"].reshape(g, co // g, cg, *p["W"].shape[2:]) * ch.reshape(g, 1, cg, 1, 1)
        ir.set(dst, params={**p, "W": W.reshape(p["W"].shape)})
        ir.bypass(n)
        return True
    return False


def fold_scale(ir: IR, options, pdk) -> IR:
    return rewrite_all(ir, _rule)
