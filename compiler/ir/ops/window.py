"""Window operators over (C, H, W) maps: pooling, global average pooling, padding and im2col.

Window attributes: kernel [kh, kw], stride [sh, sw], pads [top, left, bottom, right], dilation
[dh, dw]. A 1-D window is the 2-D one with a unit height (the front end lifts it)."""

from __future__ import annotations

import numpy as np

from .. import kernels as K
from . import fail, register


def check_window(ir, n, a: dict, in_shape) -> tuple[int, int]:
    """Verify a window's attributes on a (C, H, W) operand; returns the output (Ho, Wo)."""
    for key, ln in (("kernel", 2), ("stride", 2), ("pads", 4), ("dilation", 2)):
        v = a[key]
        if not (isinstance(v, list) and len(v) == ln and all(isinstance(x, int) for x in v)):
            fail(ir, n, f"attribute '{key}' must be a list of {ln} integers, got {v!r}")
    if min(a["kernel"] + a["stride"] + a["dilation"]) < 1 or min(a["pads"]) < 0:
        fail(ir, n, "kernel, stride and dilation must be >= 1 and pads >= 0")
    if len(in_shape) != 3:
        fail(ir, n, f"operand shape {in_shape} is not (C, H, W)")
    ho, wo = K.window_geometry(in_shape, a["kernel"], a["stride"], a["pads"], a["dilation"])
    if ho < 1 or wo < 1:
        fail(ir, n, f"kernel {a['kernel']} does not fit the padded input {in_shape}")
    return ho, wo


def _pool_check(ir, n, d, ins) -> None:
    ho, wo = check_window(ir, n, d["attrs"], ins[0])
    if d["attrs"]["kind"] not in ("max", "avg") or d["shape"] != (ins[0][0], ho, wo):
        fail(ir, n, f"pool kind {d['attrs']['kind']!r} / shape {d['shape']} do not fit {ins[0]}")


def _pool_eval(d, xs, **_):
    a = d["attrs"]
    return K.pool(xs[0], a["kind"], a["kernel"], a["stride"], a["pads"], a["dilation"], a["count_include_pad"])


register("pool", arity=1, attrs=("kind", "kernel", "stride", "pads", "dilation", "count_include_pad"),
         check=_pool_check, eval=_pool_eval, unit="pool",
         doc="max or average pooling over windows (average: over the in-bounds part unless count_include_pad)")


def _gap_check(ir, n, d, ins) -> None:
    if len(ins[0]) != 3 or d["shape"] != (ins[0][0], 1, 1):
        fail(ir, n, f"shape {d['shape']} does not fit global pooling of {ins[0]}")


register("global_avgpool", arity=1, check=_gap_check,
         eval=lambda d, xs, **_: xs[0].mean(axis=(2, 3), keepdims=True), unit="pool",
         doc="the mean of each channel, (C, H, W) -> (C, 1, 1)")


def _pad_check(ir, n, d, ins) -> None:
    t, l_, b, r = d["attrs"]["pads"]
    if len(ins[0]) != 3 or min(d["attrs"]["pads"]) < 0 or \
            d["shape"] != (ins[0][0], ins[0][1] + t + b, ins[0][2] + l_ + r):
        fail(ir, n, f"pads {d['attrs']['pads']} do not map {ins[0]} to {d['shape']}")


def _pad_eval(d, xs, **_):
    t, l_, b, r = d["attrs"]["pads"]
    return np.pad(xs[0], ((0, 0), (0, 0), (t, b), (l_, r)), constant_values=d["attrs"]["value"])


register("pad", arity=1, attrs=("pads", "value"), check=_pad_check, eval=_pad_eval,
         doc="constant padding of a (C, H, W) map, pads [top, left, bottom, right] (merged into a following conv)")


def _im2col_check(ir, n, d, ins) -> None:
    ho, wo = check_window(ir, n, d["attrs"], ins[0])
    k = d["attrs"]["kernel"]
    if d["shape"] != (ho * wo, ins[0][0] * k[0] * k[1]):
        fail(ir, n, f"shape {d['shape']} does not fit the patches of {ins[0]}")


def _im2col_eval(d, xs, **_):
    a = d["attrs"]
    return K.im2col(xs[0], a["kernel"], a["stride"], a["pads"], a["dilation"])


register("im2col", arity=1, attrs=("kernel", "stride", "pads", "dilation"), check=_im2col_check,
         eval=_im2col_eval, unit="fused",
         doc="(C, H, W) -> (Ho*Wo, C*kh*kw): the patches a convolution's crossbar sees, one per output position "
             "(on the chip, the layer unit's address generator)")
