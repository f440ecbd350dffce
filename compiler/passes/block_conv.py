"""block_conv: a convolution followed by a b x b pooling of stride b reads each pooling window's b^2
output positions in one crossbar read (output blocking; a bh x bw window the same way, a 1-D
convolution's 1 x b).

A convolution's tiles read once per output position, and each read is an ADC conversion time long
whatever its size, so a layer with many positions and few channels (an early layer: cnn_digits'
conv1, 64 positions of 8 channels from 9 inputs) is the slowest stage of the chip's pipeline while
its tiles' rows and columns stand mostly empty. When a b x b pooling of stride b follows it, the b^2
positions of one pooling window become one read: the convolution is rewritten into an equivalent
one of stride ``b * s`` whose window covers all b^2 windows (kernel ``k + (b - 1) * s``) and whose
output channel ``c * b^2 + dy * b + dx`` is channel c at sub-position (dy, dx), its weights the
original kernel shifted by (dy * s, dx * s) and zero elsewhere. The pooling then takes the maximum
(or mean) over the b^2 sub-positions of each channel: on the new layer's (C * b^2, H', W') output,
read as (C, b^2, H' * W') (a reshape, free on the chip), a (b^2, 1) window of stride (b^2, 1), and
read back as (C, H', W'). The arithmetic is the original's: each column holds the same weights (the
same per-column quantization and ADC full scale), and the overlapping windows share their inputs,
so a read drives ``C_in * (k + (b - 1) s)^2`` word lines for b^2 positions instead of
``b^2 * C_in * k^2``. cnn_digits' conv1 becomes 16 reads of a 16 x 32 matrix instead of 64 of 9 x 8.

The price is columns: b^2 times the outputs, and with them ADCs (the conversions per inference do
not change). The rewrite is made only where the layer keeps its tile count (``--conv-blocking
auto``, the default): a layer small enough to leave its tiles mostly empty. The structural zeros are
not operations: the layer's ``mac_fraction`` (``k^2 / (k + (b - 1) s)^2``, the share of its matrix
that holds the original kernel) scales its multiply-accumulates in the compile summary and in
``amsc report``'s TOPS. ``--conv-blocking off`` leaves every layer as the model has it.
"""

from __future__ import annotations

import numpy as np

from ..ir import IR
from ..ir.kernels import window_geometry
from ..ir.names import Namer
from .tile import layout, tile_shape


def _blocked(ir: IR, n: str, options, pdk) -> dict | None:
    """The rewrite of conv ``n`` and the pooling after it, or None where it does not apply or would
    take more tiles."""
    d = ir.g.nodes[n]
    a = d["attrs"]
    if d["op"] != "conv" or a.get("group", 1) != 1 or a["dilation"] != [1, 1] or "recurrent" in a \
            or a.get("mac_fraction") is not None:
        return None
    cons = ir.consumers(n)
    if len(cons) != 1 or ir.g.nodes[cons[0]]["op"] != "pool":
        return None
    p = cons[0]
    pa = ir.g.nodes[p]["attrs"]
    bh, bw = pa["kernel"]
    if bh * bw < 2 or pa["stride"] != [bh, bw] or any(pa["pads"]) or pa["dilation"] != [1, 1]:
        return None
    C, Ho, Wo = d["shape"]
    (src,) = ir.inputs(n)
    cin, H, W = ir.g.nodes[src]["shape"]
    (kh, kw), (sh, sw), (pt, pl, _, _) = a["kernel"], a["stride"], a["pads"]
    Hb, Wb = Ho // bh, Wo // bw
    kernel = [kh + (bh - 1) * sh, kw + (bw - 1) * sw]
    stride = [bh * sh, bw * sw]
    # the bottom and right padding the last block's window reaches into (zeros, as the original's)
    pads = [pt, pl, max(0, (Hb - 1) * stride[0] + kernel[0] - H - pt),
            max(0, (Wb - 1) * stride[1] + kernel[1] - W - pl)]
    if Hb < 1 or Wb < 1 or ir.g.nodes[p]["shape"] != (C, Hb, Wb) \
            or window_geometry((cin, H, W), kernel, stride, pads, [1, 1]) != (Hb, Wb):
        return None
    tr, tc = tile_shape(options, pdk)
    rows, outs = tr - options.spare_rows, tc // 2 - options.spare_cols
    before = layout(cin * kh * kw, C, 1, rows, outs)
    after = layout(cin * kernel[0] * kernel[1], C * bh * bw, 1, rows, outs)
    if len(after[2]) > len(before[2]):
        return None
    return {"pool": p, "block": [bh, bw], "kernel": kernel, "stride": stride, "pads": pads, "Hb": Hb, "Wb": Wb}


def _rewrite(ir: IR, n: str, r: dict, namer: Namer) -> None:
    d = ir.g.nodes[n]
    a, prm = d["attrs"], d["params"]
    (bh, bw), p = r["block"], r["pool"]
    nb = bh * bw
    (kh, kw), (sh, sw) = a["kernel"], a["stride"]
    Wt, bias = prm["W"], prm["b"]
    C = Wt.shape[0]
    W2 = np.zeros((C * nb,) + Wt.shape[1:2] + tuple(r["kernel"]), Wt.dtype)
    for dy in range(bh):
        for dx in range(bw):
            W2[dy * bw + dx::nb, :, dy * sh:dy * sh + kh, dx * sw:dx * sw + kw] = Wt
    ir.set(n, shape=(C * nb, r["Hb"], r["Wb"]), params={**prm, "W": W2, "b": np.repeat(bias, nb)},
           attrs={**a, "kernel": r["kernel"], "stride": r["stride"], "pads": r["pads"],
                  "mac_fraction": kh * kw / (r["kernel"][0] * r["kernel"][1])})
    # the pooling over the sub-positions of each channel, between two free reshapes
    pd = ir.g.nodes[p]
    view = namer.fresh(f"{n}_blocks")
    ir.add(view, "reshape", (C, nb, r["Hb"] * r["Wb"]), inputs=[n], origin=f"{d['origin']}.blocks")
    ir.g.remove_edge(n, p)
    ir.g.add_edge(view, p, slot=0)
    out = namer.fresh(f"{p}_map")
    ir.add(out, "reshape", pd["shape"], origin=f"{pd['origin']}.map")
    ir.replace_uses(p, out)
    ir.g.add_edge(p, out, slot=0)
    ir.set(p, shape=(C, 1, r["Hb"] * r["Wb"]), attrs={**pd["attrs"], "kernel": [nb, 1], "stride": [nb, 1]})


def block_conv(ir: IR, options, pdk) -> IR:
    if options.conv_blocking == "off":
        return ir
    ir = ir.copy()
    namer = Namer(list(ir.g.nodes))
    for n in ir.topo():
        r = _blocked(ir, n, options, pdk)
        if r is not None:
            _rewrite(ir, n, r, namer)
    return ir

