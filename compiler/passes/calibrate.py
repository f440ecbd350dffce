"""calibrate: per-column gain and offset of one programmed chip, absorbed by the requantizer.

After a chip is programmed, a calibration read set (known input vectors driven into each tile)
measures every output column's result through the ADC. Against what the target levels give (the
network's weights, before a chip's placement put stuck levels under some of them), a
column j of a layer (its row tiles summed, as the accumulator sums them) reads
``meas_j = a_j ideal_j + b_j``: a gain (programming error, drift, a stuck cell the placement could
not hide) and an offset. The least-squares ``a_j``, ``b_j`` over the read set are absorbed by the
layer's digital requantizer, which already has a scale and a bias per column:
``(acc - b_j) / a_j * w_j + bias_j`` is ``acc * (w_j / a_j) + (bias_j - b_j w_j / a_j)``, so the
integer program, the RTL and ``rtl-sim`` carry the calibration in their per-column constants
(``MQ_j``, ``BQ_j``). A column without weights keeps gain 1 (its offset is still measured); a
column whose fitted gain is below MIN_GAIN (a dead column) keeps gain 1 and offset 0.

The pass runs for a design compiled for one chip (``--chip-state``, ``amsc program``), after
``program`` has given every tile its conductances: the read set is the tiles' inputs on the
design's calibration inputs (the float IR up to the tiles), or, without calibration inputs,
seeded uniform vectors. ``evaluate --mc`` calibrates each Monte-Carlo chip the same way
(:func:`fit_columns`). Recurrent layers keep gain 1 (their input and recurrent sums are two
requantizer inputs; not calibrated yet).
"""

from __future__ import annotations

import numpy as np

from .fault_map import target_levels
from .reads import tile_reads

#: a fitted gain below this is a dead column: left uncalibrated
MIN_GAIN = 0.05


def fit_columns(meas: np.ndarray, ideal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares gain and offset of every column, ``meas ~ a * ideal + b`` over the rows (read
    vectors) of ``meas`` and ``ideal`` [vectors, columns]; gain 1 where the ideal column is constant
    (its offset the mean difference), gain 1 and offset 0 for a dead column."""
    di = ideal - ideal.mean(axis=0)
    var = (di * di).sum(axis=0)
    a = np.where(var > 0, (di * (meas - meas.mean(axis=0))).sum(axis=0) / np.where(var > 0, var, 1.0), 1.0)
    b = meas.mean(axis=0) - a * ideal.mean(axis=0)
    bad = ~(a > MIN_GAIN)
    return np.where(bad, 1.0, a), np.where(bad, 0.0, b)


def calibrate(ir, options, pdk):
    """The pass: with ``options.chip_state``, every non-recurrent layer's per-column gain and offset
    of its tiles' conductances against their levels, folded into ``w_scale`` and ``b`` (kept as the
    layer's ``cal_gain`` / ``cal_offset`` arrays). Without a chip state the IR is unchanged."""
    if options.chip_state is None:
        return ir
    ir = ir.copy()
    reads = tile_reads(ir, options.calibration, options.seed)
    for n in ir.nodes_of("accum"):
        d = ir.g.nodes[n]
        a, p = d["attrs"], d["params"]
        if a.get("recurrent"):
            continue
        tiles = ir.inputs(n)
        rs, cs = a["row_splits"], a["col_splits"]
        gains, offsets = [], []
        for c in range(cs):
            meas = ideal = 0.0
            for r in range(rs):
                t = tiles[r * cs + c]
                tp = ir.g.nodes[t]["params"]
                X = reads[t]
                meas = meas + X @ (tp["gpos"] - tp["gneg"])
                lp, ln = target_levels(tp)
                ideal = ideal + X @ ((lp.astype(np.float64) - ln) * pdk.g_step)
            g, o = fit_columns(meas, ideal)
            gains.append(g)
            offsets.append(o)
        gain, off = np.concatenate(gains), np.concatenate(offsets)
        w = p["w_scale"] / gain
        ir.set(n, params={**p, "w_scale": w, "b": p["b"] - off * w, "cal_gain": gain, "cal_offset": off,
                          "w_scale_nominal": p["w_scale"], "b_nominal": p["b"]})
    return ir


def nominal_ir(ir, pdk):
    """The network as compiled, before one chip was programmed: every tile at its target levels
    (without programming error, stuck cells or a chip's placement levels) and every layer's
    requantizer without its calibration. The chip's datapath (its feature-map scales, shifts and
    register widths) is laid out on this network, so every chip of a design shares one RTL and
    differs only in what the scan chain loads. An IR whose tiles were programmed exactly and for no
    chip is its own nominal network, returned as it is."""
    from .program import draws_error

    if not draws_error(pdk) and not ir.g.graph.get("chip_state"):
        return ir
    ir = ir.copy()
    for t in ir.nodes_of("xbar_tile"):
        p = ir.g.nodes[t]["params"]
        lp, ln = target_levels(p)
        ir.set(t, params={**p, "gpos": pdk.g_min + lp.astype(np.float64) * pdk.g_step,
                          "gneg": pdk.g_min + ln.astype(np.float64) * pdk.g_step})
    for n in ir.nodes_of("accum"):
        p = ir.g.nodes[n]["params"]
        if "w_scale_nominal" in p:
            ir.set(n, params={**p, "w_scale": p["w_scale_nominal"], "b": p["b_nominal"]})
    return ir
