"""merge_pad: fold a zero Pad into the convolution that reads it.

``Conv(Pad(x))`` with zero padding of H and W is ``Conv(x)`` with the pad amounts added to the
convolution's own pads (the im2col gather reads zeros there). A Pad with a non-zero value, or one
whose result something else reads too, stays: a digital pad."""

from __future__ import annotations

from ..ir import IR
from ._match import rewrite_all, single_consumer


def _rule(ir: IR, n: str) -> bool:
    d = ir.g.nodes[n]
    if d["op"] != "pad" or d["attrs"]["value"] != 0.0:
        return False
    dst = single_consumer(ir, n)
    if dst is None or ir.g.nodes[dst]["op"] != "conv":
        return False
    a = ir.g.nodes[dst]["attrs"]
    ir.set(dst, attrs={**a, "pads": [p + q for p, q in zip(a["pads"], d["attrs"]["pads"])]})
    ir.bypass(n)
    return True


def merge_pad(ir: IR, options, pdk) -> IR:
    return rewrite_all(ir, _rule)
