"""tile: split each quantized dense layer onto fixed-size crossbar tiles.

A tile has ``tile_rows`` word lines (one per input) and ``tile_cols`` bit lines (two per signed
output: G+ and G-). A layer with K inputs and M outputs needs ``ceil(K / tile_rows)`` row splits,
whose partial sums a digital accumulator adds after the ADCs, times ``ceil(M / (tile_cols / 2))``
independent column splits. The dense node becomes an ``accum`` node of the same name fed by its
tiles, so consumers are untouched.

A convolution is lowered im2col-style: its kernel unrolls onto crossbar rows, in the order
(input channel, kernel row, kernel column), i.e. the rows of ``W.reshape(C_out, -1).T``, and its
output channels onto bit-line pairs. An ``im2col`` node in front of the tiles gathers, for each of
the Ho*Wo output positions, the input patch (zero where the window covers padding). The tiles are
evaluated once per position, and the accumulator lays the results out as (C_out, Ho, Wo).

Each layer's ADCs get one full scale: the largest column current any input in ``[0, V_read]`` can
draw from any of the layer's tiles, ``V_read * max_j sum_i |G+_ij - G-_ij|`` over each tile's rows.
This is the range a calibrated ADC is set to, and the feedback resistor maps it to the TIA's
full-scale output voltage. Sharing it across a layer's tiles gives every partial sum the same LSB,
so the digital accumulators add ADC codes directly.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from ..ir import IR
from ..ir.graph import MATMUL_OPS
from ..ir.names import Namer


def tile_shape(options, pdk) -> tuple[int, int]:
    return (options.tile_rows or pdk.tile_rows, options.tile_cols or pdk.tile_cols)


def adc_full_scale(gpos: np.ndarray, gneg: np.ndarray, pdk) -> float:
    fs = pdk.v_read * float(np.max(np.sum(np.abs(gpos - gneg), axis=0))) if gpos.size else 0.0
    return fs if fs > 0 else pdk.v_read * (pdk.g_max - pdk.g_min)


def tile(ir: IR, options, pdk) -> IR:
    ir = ir.copy()
    tr, tc = tile_shape(options, pdk)
    outs_per_tile = tc // 2
    layers = [n for n in ir.topo() if ir.g.nodes[n]["op"] in MATMUL_OPS]
    total = sum(math.ceil(ir.g.nodes[n]["params"]["gpos"].shape[0] / tr)
                * math.ceil(ir.g.nodes[n]["params"]["gpos"].shape[1] / outs_per_tile) for n in layers)
    if total > options.max_tiles:
        raise InputError(ir.source or ir.name, f"the design needs {total} tiles of {tr}x{tc}; the limit "
                                               f"is --max-tiles {options.max_tiles}")
    namer = Namer(list(ir.g.nodes))
    for n in layers:
        d = ir.g.nodes[n]
        p, a = d["params"], d["attrs"]
        K, M = p["gpos"].shape
        rs, cs = math.ceil(K / tr), math.ceil(M / outs_per_tile)
        (src,) = ir.inputs(n)
        ir.g.remove_edge(src, n)
        spatial = None
        if d["op"] == "conv":
            geo = {k: a[k] for k in ("kernel", "stride", "pads", "dilation")}
            spatial = list(d["shape"][1:])
            patches = namer.fresh(f"{n}_im2col")
            ir.add(patches, "im2col", (spatial[0] * spatial[1], K), inputs=[src], attrs=geo,
                   origin=f"{d['origin']}.im2col")
            src = patches
        slices = [(r * tr, min(K, (r + 1) * tr), c * outs_per_tile, min(M, (c + 1) * outs_per_tile))
                  for r in range(rs) for c in range(cs)]
        ifs = max(adc_full_scale(p["gpos"][r0:r1, c0:c1], p["gneg"][r0:r1, c0:c1], pdk) for r0, r1, c0, c1 in slices)
        tiles = []
        for r in range(rs):
            for c in range(cs):
                r0, r1 = r * tr, min(K, (r + 1) * tr)
                c0, c1 = c * outs_per_tile, min(M, (c + 1) * outs_per_tile)
                gpos, gneg = p["gpos"][r0:r1, c0:c1], p["gneg"][r0:r1, c0:c1]
                t = namer.fresh(f"{n}_r{r}c{c}")
                ir.add(t, "xbar_tile", ir.g.nodes[src]["shape"][:-1] + (c1 - c0,), inputs=[src], origin=f"{d['origin']}[{r0}:{r1},{c0}:{c1}]",
                       attrs={"layer": n, "row0": r0, "row1": r1, "col0": c0, "col1": c1,
                              "split": [r, c], "tile_rows": tr, "tile_cols": tc,
                              "adc_full_scale_a": ifs, "rf_ohm": pdk.tia_v_out_fs / ifs,
                              "parasitics": ({"r_wl_segment": pdk.r_wl_segment, "r_bl_segment": pdk.r_bl_segment}
                                             if options.parasitics else None)},
                       params={"gpos": gpos, "gneg": gneg,
                               "lpos": p["lpos"][r0:r1, c0:c1], "lneg": p["lneg"][r0:r1, c0:c1]})
                tiles.append(t)
        ir.set(n, op="accum", params={"b": p["b"], "w_scale": p["w_scale"]},
               attrs={"layer": n, "kind": d["op"], "activation": a["activation"],
                      "weight_scale": a["weight_scale"], "row_splits": rs, "col_splits": cs, "spatial": spatial,
                      # a partial sum of up to rs ADC codes needs ceil(log2(rs)) extra bits
                      "acc_bits": pdk.adc_bits + max(0, math.ceil(math.log2(rs)))})
        for slot, t in enumerate(tiles):
            ir.g.add_edge(t, n, slot=slot)
    return ir
