"""tile: split each quantized dense layer onto fixed-size crossbar tiles.

A tile has ``tile_rows`` word lines (one per input) and ``tile_cols`` bit lines (two per signed
output: G+ and G-). A layer with K inputs and M outputs needs ``ceil(K / tile_rows)`` row splits,
whose partial sums a digital accumulator adds after the ADCs, times ``ceil(M / (tile_cols / 2))``
independent column splits. The dense node becomes an ``accum`` node of the same name fed by its
tiles, so consumers are untouched.

A grouped convolution (``group`` g, K inputs and Mg outputs per group) is the block-diagonal
matrix of its groups: output block k reads only rows [k*K, (k+1)*K). Groups that fit a tile are
packed onto it block-diagonally, ``min(tile_rows // K, (tile_cols/2) // Mg)`` groups per tile, with
the cells between the blocks left at G_min (zero weight). A depthwise 3x3 over 32 channels (K = 9,
Mg = 1) on 64x64 tiles packs 7 groups per tile (63 of 64 rows) and takes ceil(32 / 7) = 5 tiles
instead of 32. Its utilization stays low, 126 of 4096 cells per full tile (3.1 %), because a
depthwise layer shares no input between output channels while a crossbar shares every row across
all its columns; block-diagonal packing is the best any row-shared array can do for it. A group
larger than a tile is split on its own like a dense layer (see :func:`layout`).

A convolution is lowered im2col-style: its kernel unrolls onto crossbar rows, in the order
(input channel, kernel row, kernel column), i.e. the rows of ``W.reshape(C_out, -1).T``, and its
output channels onto bit-line pairs. An ``im2col`` node in front of the tiles gathers, for each of
the Ho*Wo output positions, the input patch (zero where the window covers padding). The tiles are
evaluated once per position, and the accumulator lays the results out as (C_out, Ho, Wo).

A recurrent layer (an LSTM or GRU direction, ``ir/ops/recurrent.py``) reads ``[x_t, h_(t-1)]``
once per time step: its input rows and its recurrent rows are split onto tiles separately (an input
of 16 and 32 hidden units on 64-row tiles takes two row tiles, not one), because the two parts'
codes have different scales and the accumulator keeps their sums apart. Its tiles read the sequence
inside the accumulator's time loop.

Each layer's ADCs get one full scale: the largest column current any input in ``[0, V_read]`` can
draw from any of the layer's tiles, ``V_read * max_j sum_i |G+_ij - G-_ij|`` over each tile's rows.
This is the range a calibrated ADC is set to, and the feedback resistor maps it to the TIA's
full-scale output voltage. Sharing it across a layer's tiles gives every partial sum the same LSB,
so the digital accumulators add ADC codes directly.

``--spare-rows R --spare-cols C`` keep R word lines and C bit-line pairs of every tile free: a layer
is laid out on ``tile_rows - R`` rows and ``tile_cols / 2 - C`` outputs per tile, and a chip's
fault-aware placement (``fault_map``) may move any row or column onto a spare, as a memory macro's
repair does. The physical tile keeps its size (its periphery serves the spares too).
"""

from __future__ import annotations

import functools
import heapq
import math

import numpy as np

from ..errors import InputError
from ..ir import IR
from ..ir.graph import MATMUL_OPS
from ..ir.names import Namer


def tile_shape(options, pdk) -> tuple[int, int]:
    return (options.tile_rows or pdk.tile_rows, options.tile_cols or pdk.tile_cols)


#: Outputs per ADC unless ``--adc-share`` says otherwise: every point on both Pareto fronts of
#: ``amsc explore`` on cnn_digits (tile, ADC bits, ADC share 1/8/32, weight bits) shares an ADC among
#: 8 outputs; 32 saves little more area (the ADCs are then a small part of it) and quadruples the
#: conversion time of every read (README, "Design-space exploration"). Run again with the lanes
#: (tile x share 2/4/8/16 x lanes 2/4/8, stop 47): 8 at 4 lanes is the densest point on the PDK's
#: 64x64 tile whose digital share of the latency stays within 30 % (README, "The chip RTL").
DEFAULT_ADC_SHARE = 8


def shared_readout(pdk) -> bool:
    """Whether the PDK describes a shared-ADC readout: its circuit, its figures and its templates."""
    return pdk.readout is not None and pdk.ppa is not None and {"readout", "readout_tb"} <= set(pdk.templates)


def adc_share(options, pdk, outputs: int) -> int:
    """The outputs per ADC of tiles with ``outputs`` outputs: ``--adc-share`` (which must divide
    them, so that every tile's ADCs serve full groups), or the largest divisor up to the default;
    1 on a PDK that describes no shared readout."""
    divisors = [m for m in range(1, outputs + 1) if outputs % m == 0]
    able = shared_readout(pdk)
    if options.adc_balance == "on" and not able:   # (the default is off there)
        raise InputError("--adc-balance", f"on: PDK {pdk.name} describes no shared-ADC readout (its readout and ppa "
                                          "sections and readout templates); expected off")
    if options.adc_share is None:
        return max(m for m in divisors if m <= DEFAULT_ADC_SHARE) if able else 1
    if options.adc_share > 1 and not able:
        raise InputError("--adc-share", f"{options.adc_share}: PDK {pdk.name} describes no shared-ADC readout (its "
                                        "readout and ppa sections and readout templates); expected 1")
    if options.adc_share not in divisors:
        raise InputError("--adc-share", f"{options.adc_share}; expected a divisor of the tile's {outputs} outputs "
                                        f"(one ADC serves that many columns): {', '.join(map(str, divisors))}")
    return options.adc_share


def tile_adc_share(ir, t: str) -> int:
    """Outputs per ADC of tile ``t``: its layer's under ``--adc-balance on`` (``ir.g.graph["adc_shares"]``,
    set by the driver from the schedule, backend/verilog.adc_balance), else the design's."""
    g = ir.g.graph
    return g.get("adc_shares", {}).get(ir.g.nodes[t]["attrs"]["layer"], g.get("adc_share", 1))


#: The most channels one ADC's multiplexer takes (an ADC serving several tiles of a layer,
#: backend/verilog.adc_balance, or the layers of a pipeline stage, :func:`adc_pools`): ISAAC's 128
#: bit lines an ADC (Shafiee et al., "ISAAC: A Convolutional Neural Network Accelerator with In-Situ
#: Analog Arithmetic in Crossbars", ISCA 2016: the 128 columns of a crossbar share one 8-bit ADC
#: through sample-and-holds)
MAX_ADC_CHANNELS = 128


def adc_groups(ir) -> dict[str, tuple[str, int]]:
    """The tiles whose ADCs serve several tiles of their layer (``ir.g.graph["adc_tiles"]``: a layer's
    ``g``, set by the driver from backend/verilog.adc_balance): each such tile's ADC group,
    ``<layer>_adc<k>``, and its place in it. The layer's tiles in order of their column and then row
    slices, ``g`` at a time; the group's ADC converts the first tile's outputs, then the second's,
    each tile padded to its layer's most outputs a tile."""
    per = ir.g.graph.get("adc_tiles", {})
    if not per:
        return {}
    by_layer: dict[str, list] = {}
    for t in ir.nodes_of("xbar_tile"):
        a = ir.g.nodes[t]["attrs"]
        if a["layer"] in per:
            by_layer.setdefault(a["layer"], []).append((a["col0"], a["row0"], t))
    out = {}
    for layer, ts in by_layer.items():
        g = per[layer]
        for i, (_, _, t) in enumerate(sorted(ts)):
            out[t] = (f"{layer}_adc{i // g}", i % g)
    return out


def _layer_slots(ir, tiles: list[str], m: int, g: int) -> list[list[tuple[str, int]]]:
    """A layer's ADCs at ``m`` outputs an ADC and ``g`` tiles an ADC, each as the outputs it converts,
    ``(tile, output)``, in order (its channels on ground, past a tile's outputs, left out)."""
    ts = sorted(tiles, key=lambda t: (ir.g.nodes[t]["attrs"]["col0"], ir.g.nodes[t]["attrs"]["row0"], t))
    outs = [[(t, j) for j in range(ir.g.nodes[t]["params"]["gpos"].shape[1])] for t in ts]
    if g > 1:
        return [[ch for o in outs[i:i + g] for ch in o] for i in range(0, len(ts), g)]
    return [o[s:s + m] for o in outs for s in range(0, len(o), m)]


def pool_slots(slots: list[list[int]], cap: int = MAX_ADC_CHANNELS) -> list[list[tuple[int, int]]]:
    """The ADCs of a pool that the layers of one pipeline stage share, each as the ``(layer, slot)``
    it converts: ``slots[l]`` are layer ``l``'s ADCs by their channels. The stage's layers read one
    after another, so one ADC serves a slot of each of several layers, never two of one layer (a
    layer's slots convert at once), with at most ``cap`` channels in all. Two packings, the one with
    fewer ADCs (the first on a tie): first fit over all slots, the most channels first; and layer by
    layer, the layers with the most slots first, each slot onto the emptiest ADC that takes it (on the
    SqueezeNet 1.1 export's last stage 86 ADCs against first fit's 102, the channels' bound 82; on
    Inception v1 2,000, the bound, against 2,450). Either gives exactly as many ADCs as the layer with
    the most slots whenever one slot of every layer fits an ADC."""
    return [list(a) for a in _pool_slots(tuple(map(tuple, slots)), cap)]


@functools.lru_cache(maxsize=16)
def _pool_slots(slots: tuple[tuple[int, ...], ...], cap: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """:func:`pool_slots`, kept for the back ends that ask again (Inception v1: 13,878 slots)."""
    # first fit, the slots with the most channels first
    first: list[list[tuple[int, int]]] = []
    used: list[int] = []
    layers: list[set] = []
    for l, k in sorted(((l, k) for l, ss in enumerate(slots) for k in range(len(ss))),
                       key=lambda lk: (-slots[lk[0]][lk[1]], lk)):
        c = slots[l][k]
        i = next((i for i in range(len(first)) if l not in layers[i] and used[i] + c <= cap), None)
        if i is None:
            first.append([])
            used.append(0)
            layers.append(set())
            i = len(first) - 1
        first[i].append((l, k))
        used[i] += c
        layers[i].add(l)
    # layer by layer onto the emptiest ADC: a heap of (channels, ADC) without the layer's own ADCs,
    # which wait aside until its last slot is placed
    emptiest: list[list[tuple[int, int]]] = []
    heap: list[tuple[int, int]] = []
    for l in sorted(range(len(slots)), key=lambda l: (-len(slots[l]), -sum(slots[l]), l)):
        aside = []
        for k in sorted(range(len(slots[l])), key=lambda k: (-slots[l][k], k)):
            c = slots[l][k]
            if heap and heap[0][0] + c <= cap:
                n, i = heapq.heappop(heap)
            else:
                n, i = 0, len(emptiest)
                emptiest.append([])
            emptiest[i].append((l, k))
            aside.append((n + c, i))
        for x in aside:
            heapq.heappush(heap, x)
    best = emptiest if len(emptiest) < len(first) else first
    return tuple(tuple(a) for a in best)


def stage_pools(ir) -> dict[str, list[list]]:
    """The ADCs the layers of each pipeline stage share (``ir.g.graph["adc_stages"]``: the stages'
    layers with shared ADCs, set by the driver under ``--adc-balance on``), by stage: each ADC's
    channels in the order it converts them, ``(tile, output)`` (:func:`pool_slots`; each layer's
    slots as its share and its ADCs across tiles make them, :func:`_layer_slots`). A pool's ADC is
    the readout of the next power of two channels, at least 2 (None: a channel on ground, as past a
    tile's outputs on its last ADC): a few readout circuits to design and sign off, not one for
    every count, and never one of a single channel (an ADC of its own needs no multiplexer)."""
    stages = ir.g.graph.get("adc_stages")
    if not stages:
        return {}
    tiles: dict[str, list[str]] = {}
    for t in ir.nodes_of("xbar_tile"):
        tiles.setdefault(ir.g.nodes[t]["attrs"]["layer"], []).append(t)
    per = ir.g.graph.get("adc_tiles", {})
    out = {}
    for s, layers in stages.items():
        slots = [_layer_slots(ir, tiles[layer], tile_adc_share(ir, tiles[layer][0]), per.get(layer, 1))
                 for layer in layers]
        out[s] = []
        for members in pool_slots([[len(c) for c in ss] for ss in slots]):
            ch = [ch for l, i in members for ch in slots[l][i]]
            out[s].append(ch + [None] * (max(2, 1 << (len(ch) - 1).bit_length()) - len(ch)))
    return out


def adc_pools(ir, stages: dict | None = None) -> dict[str, list]:
    """Every stage's pool ADC (:func:`stage_pools`, or ``stages`` where the caller has them) by its
    name, ``stage<s>_adc<k>``: its channels."""
    stages = stage_pools(ir) if stages is None else stages
    return {f"{s}_adc{k}": ch for s, adcs in stages.items() for k, ch in enumerate(adcs)}


def adc_pool_of(ir) -> dict[str, str]:
    """Each tile whose layer shares its stage's ADCs (:func:`adc_pools`): the pool's name."""
    stages = ir.g.graph.get("adc_stages") or {}
    layer_pool = {layer: s for s, layers in stages.items() for layer in layers}
    return {t: layer_pool[ir.g.nodes[t]["attrs"]["layer"]] for t in ir.nodes_of("xbar_tile")
            if ir.g.nodes[t]["attrs"]["layer"] in layer_pool}


def adc_full_scale(gpos: np.ndarray, gneg: np.ndarray, pdk) -> float:
    fs = pdk.v_read * float(np.max(np.sum(np.abs(gpos - gneg), axis=0))) if gpos.size else 0.0
    return fs if fs > 0 else pdk.v_read * (pdk.g_max - pdk.g_min)


def layout(K: int, M: int, group: int, tr: int, opt: int) -> tuple[int, int, list[tuple]]:
    """How a layer with ``K`` inputs per group, ``M`` outputs and ``group`` groups goes onto tiles of
    ``tr`` rows and ``opt`` outputs: ``(row_splits, col_splits, slices)``. Each slice is
    ``(r0, r1, c0, c1, blocks)`` over the layer's full ``group*K x M`` matrix, in grid order
    ``r * col_splits + c``; ``blocks`` lists the (tile-local) programmed blocks of a packed grouped
    tile, or is None for a dense slice."""
    Mg = M // group
    if group == 1:
        rs, cs = math.ceil(K / tr), math.ceil(M / opt)
        return rs, cs, [(r * tr, min(K, (r + 1) * tr), c * opt, min(M, (c + 1) * opt), None)
                        for r in range(rs) for c in range(cs)]
    if K <= tr and Mg <= opt:
        # several whole groups per tile, block-diagonally: rows and columns of consecutive groups
        per = min(tr // K, opt // Mg, group)
        cs = math.ceil(group / per)
        slices = []
        for c in range(cs):
            g0, g1 = c * per, min(group, (c + 1) * per)
            blocks = [((k - g0) * K, (k - g0 + 1) * K, (k - g0) * Mg, (k - g0 + 1) * Mg) for k in range(g0, g1)]
            slices.append((g0 * K, g1 * K, g0 * Mg, g1 * Mg, blocks))
        return 1, cs, slices
    # a group larger than a tile: each group on its own tiles, split like a dense layer
    rs, cg = math.ceil(K / tr), math.ceil(Mg / opt)
    slices = [(k * K + r * tr, k * K + min(K, (r + 1) * tr), k * Mg + c * opt, k * Mg + min(Mg, (c + 1) * opt), None)
              for r in range(rs) for k in range(group) for c in range(cg)]
    return rs, group * cg, slices


def _slice(arr: np.ndarray, r0, r1, c0, c1, blocks, Mg: int, fill) -> np.ndarray:
    """The tile's share of a layer's conductance or level array, which is stored compactly as
    ``[K, M]`` (``K`` inputs per group, ``Mg`` outputs per group): full row ``k*K + i`` of output
    block ``k`` is stored row ``i``."""
    K = arr.shape[0]
    if blocks is None:
        off = (c0 // Mg) * K        # a dense slice lies inside one group (group k = c0 // Mg)
        return arr[r0 - off:r1 - off, c0:c1]
    out = np.full((r1 - r0, c1 - c0), fill, dtype=arr.dtype)
    for b0, b1, d0, d1 in blocks:
        out[b0:b1, d0:d1] = arr[:, c0 + d0:c0 + d1]
    return out


def adc_balance_of(options, pdk) -> bool:
    """Whether the layers' ADC shares follow their stages' slack (``--adc-balance``; by default
    wherever the PDK describes a shared readout)."""
    return options.adc_balance == "on" or (options.adc_balance is None and shared_readout(pdk))


def check_tile_options(options, pdk) -> int:
    """The checks of the tile options that need no model (spare rows and columns within the tile,
    ``--adc-share`` a divisor of its outputs; InputError otherwise), made by the tile pass and by
    ``amsc explore`` on every grid point before any runs; returns the outputs per ADC."""
    TR, tc = tile_shape(options, pdk)
    sr, sc = options.spare_rows, options.spare_cols
    if not 0 <= sr < TR:
        raise InputError("--spare-rows", f"{sr}; expected 0 up to {TR - 1} (the tile has {TR} word lines)")
    if not 0 <= sc < tc // 2:
        raise InputError("--spare-cols", f"{sc}; expected 0 up to {tc // 2 - 1} (the tile has {tc // 2} bit-line "
                                         "pairs)")
    # the ADC groups cover the tile's outputs, spares included (a repaired column is read like any other)
    return adc_share(options, pdk, tc // 2)


def tile(ir: IR, options, pdk) -> IR:
    ir = ir.copy()
    TR, tc = tile_shape(options, pdk)
    sr, sc = options.spare_rows, options.spare_cols
    ir.g.graph["adc_share"] = check_tile_options(options, pdk)
    # the driver sets each layer's share from the schedule when this holds (backend/verilog.adc_balance)
    ir.g.graph["adc_balance"] = adc_balance_of(options, pdk)
    # the spares are left free on every tile: a layer is laid out on what remains
    tr, outs_per_tile = TR - sr, tc // 2 - sc
    layers = [n for n in ir.topo() if ir.g.nodes[n]["op"] in MATMUL_OPS]
    plans = {}
    for n in layers:
        d = ir.g.nodes[n]
        K, M = d["params"]["gpos"].shape
        rec = d["attrs"].get("recurrent")
        if rec:   # the input rows and the recurrent rows on separate tiles (their codes have different scales)
            xs, hs = (layout(k, M, 1, tr, outs_per_tile) for k in (rec["inputs"], rec["hidden"]))
            plans[n] = (xs[0] + hs[0], xs[1], xs[2] + [(r0 + rec["inputs"], r1 + rec["inputs"], c0, c1, b)
                                                       for r0, r1, c0, c1, b in hs[2]])
        else:
            plans[n] = layout(K, M, d["attrs"].get("group", 1), tr, outs_per_tile)
    total = sum(len(p[2]) for p in plans.values())
    if total > options.max_tiles:
        raise InputError(ir.source or ir.name, f"the design needs {total} tiles of {TR}x{tc}; the limit "
                                               f"is --max-tiles {options.max_tiles}")
    namer = Namer(list(ir.g.nodes))
    for n in layers:
        d = ir.g.nodes[n]
        p, a = d["params"], d["attrs"]
        K, M = p["gpos"].shape
        group = a.get("group", 1)
        rec = a.get("recurrent")
        rs, cs, slices = plans[n]
        (src,) = ir.inputs(n)
        ir.g.remove_edge(src, n)
        spatial = None
        if d["op"] == "conv":
            geo = {k: a[k] for k in ("kernel", "stride", "pads", "dilation")}
            spatial = list(d["shape"][1:])
            patches = namer.fresh(f"{n}_im2col")
            ir.add(patches, "im2col", (spatial[0] * spatial[1], K * group), inputs=[src], attrs=geo,
                   origin=f"{d['origin']}.im2col")
            src = patches
        Mg = M // group
        arrays = []
        for r0, r1, c0, c1, blocks in slices:
            arrays.append({key: _slice(p[key], r0, r1, c0, c1, blocks, Mg, pdk.g_min if key[0] == "g" else 0)
                           for key in ("gpos", "gneg", "lpos", "lneg")})
        ifs = max(adc_full_scale(t["gpos"], t["gneg"], pdk) for t in arrays)
        tiles = []
        for k, ((r0, r1, c0, c1, blocks), arr) in enumerate(zip(slices, arrays)):
            r, c = divmod(k, cs)
            t = namer.fresh(f"{n}_r{r}c{c}")
            attrs = {"layer": n, "row0": r0, "row1": r1, "col0": c0, "col1": c1,
                     "split": [r, c], "tile_rows": TR, "tile_cols": tc,
                     "adc_full_scale_a": ifs, "rf_ohm": pdk.tia_v_out_fs / ifs,
                     "parasitics": ({"r_wl_segment": pdk.r_wl_segment, "r_bl_segment": pdk.r_bl_segment}
                                    if options.parasitics else None)}
            if blocks is not None:
                attrs["blocks"] = [list(b) for b in blocks]
            if a.get("mac_fraction") is not None:   # a blocked convolution's structural zeros (passes/block_conv.py)
                attrs["mac_fraction"] = a["mac_fraction"]
            if sr or sc:
                attrs["spares"] = [sr, sc]
            if rec:
                attrs["recurrent"] = K
            ir.add(t, "xbar_tile", ir.g.nodes[src]["shape"] if rec else ir.g.nodes[src]["shape"][:-1] + (c1 - c0,),
                   inputs=[src],
                   origin=f"{d['origin']}[{r0}:{r1},{c0}:{c1}]", attrs=attrs, params=arr)
            tiles.append(t)
        extra = {k: p[k] for k in ("bh", "h0", "c0") if k in p}
        ir.set(n, op="accum", params={"b": p["b"], "w_scale": p["w_scale"], **extra},
               attrs={"layer": n, "kind": d["op"], "activation": a["activation"],
                      **({"recurrent": rec} if rec else {}),
                      "weight_scale": a["weight_scale"], "row_splits": rs, "col_splits": cs, "spatial": spatial,
                      # a partial sum of up to rs ADC codes needs ceil(log2(rs)) extra bits
                      "acc_bits": pdk.adc_bits + max(0, math.ceil(math.log2(rs)))})
        for slot, t in enumerate(tiles):
            ir.g.add_edge(t, n, slot=slot)
    return ir
