"""calibrate: per-column gain and offset of one programmed chip, absorbed by the requantizer.

After a chip is programmed, a calibration read set (known input vectors driven into each tile)
measures every output column's result through the ADC. Against what the target levels give (the
network's weights, before a chip's placement put stuck levels under some of them), a
column j of a layer (its row tiles summed, as the accumulator sums them) reads
``meas_j = a_j ideal_j + b_j``: a gain (programming error, drift, a stuck cell the placement could
not hide) and an offset. ``a_j``, ``b_j``, fitted over the read set so that ``(meas_j - b_j) / a_j``
is the least-squares estimate of ``ideal_j`` (:func:`fit_columns`), are absorbed by the
layer's digital requantizer, which already has a scale and a bias per column:
``(acc - b_j) / a_j * w_j + bias_j`` is ``acc * (w_j / a_j) + (bias_j - b_j w_j / a_j)``, so the
integer program, the RTL and ``rtl-sim`` carry the calibration in their per-column constants
(``MQ_j``, ``BQ_j``). A column without weights keeps gain 1 (its offset is still measured); a
column whose fitted gain is below MIN_GAIN (a dead column) keeps gain 1 and offset 0.

The pass runs for a design compiled for one chip (``--chip-state``, ``amsc program``), after
``program`` has given every tile its conductances: the read set is the tiles' inputs on the
design's calibration inputs (the float IR up to the tiles), or, without calibration inputs,
seeded uniform vectors. ``evaluate --mc`` calibrates each Monte-Carlo chip the same way
(:func:`fit_columns`).

A recurrent layer (an LSTM or GRU direction) accumulates its input rows' tiles and its recurrent
rows' tiles apart, ``ax`` and ``ah``, and requantizes ``ax * MQX_j + ah * MQH_j + BQ_j + BQH_j``
(a GRU's candidate keeps the two apart). Each part is a column sum of its own, so each gets its own
gain and offset, fitted on its own read set (the ``[x_t]`` and ``[h_(t-1)]`` halves of the
sequence's reads): ``a_j, b_j`` fold into the input side's scale and bias (``w_scale``, ``b``),
``ah_j, bh_j`` into the recurrent side's (``w_scale_h``, ``bh``), and so into MQX/BQ and MQH/BQH,
which the scan chain loads like every other layer's requantizer constants.
"""

from __future__ import annotations

import numpy as np

from .fault_map import target_levels
from .reads import tile_reads

#: a fitted gain below this is a dead column: left uncalibrated
MIN_GAIN = 0.05


def fit_columns(meas: np.ndarray, ideal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gain and offset of every column (``meas ~ a * ideal + b``) over the rows (read vectors) of
    ``meas`` and ``ideal`` [vectors, columns], fitted so that the requantizer's correction
    ``(meas - b) / a`` is the least-squares estimate of ``ideal``: the regression of ``ideal`` on
    ``meas``, ``ideal ~ c meas + d``, with ``a = 1 / c`` and ``b = -d / c``. On a column that reads its
    weights up to a gain and an offset this is the same as fitting ``meas`` on ``ideal``; on one
    whose stuck cells the placement could not hide (clipped weights: a part of ``meas`` the ideal
    does not explain) the fit of ``meas`` on ``ideal`` finds a small gain, and dividing by it
    amplifies that part, while this fit's correction is never further from ``ideal`` on the read
    set than the uncorrected column (``c = 1, d = 0`` is one of its candidates). Gain 1 where the
    ideal column is constant (its offset the mean difference); gain 1 and offset 0 for a dead column
    (a gain below MIN_GAIN, or a measurement that does not follow the ideal at all)."""
    mi, mm = ideal.mean(axis=0), meas.mean(axis=0)
    dm = meas - mm
    var_m = (dm * dm).sum(axis=0)
    cov = (dm * (ideal - mi)).sum(axis=0)
    c = np.where(var_m > 0, cov / np.where(var_m > 0, var_m, 1.0), 0.0)
    live = (c > 0) & (c * MIN_GAIN < 1.0)
    a = np.where(live, 1.0 / np.where(live, c, 1.0), 1.0)
    b = np.where(live, mm - a * mi, 0.0)
    flat = ~((ideal - mi) ** 2).sum(axis=0).astype(bool)      # no weight on the column: an offset only
    return np.where(flat, 1.0, a), np.where(flat, mm - mi, b)


def calibrate(ir, options, pdk):
    """The pass: with ``options.chip_state``, every layer's per-column gain and offset of its tiles'
    conductances against their levels, folded into ``w_scale`` and ``b`` (kept as the layer's
    ``cal_gain`` / ``cal_offset`` arrays; a recurrent layer's recurrent side into ``w_scale_h`` and
    ``bh``, kept as ``cal_gain_h`` / ``cal_offset_h``). Without a chip state the IR is unchanged."""
    if options.chip_state is None:
        return ir
    ir = ir.copy()
    reads = tile_reads(ir, options.calibration, options.seed)
    for n in ir.nodes_of("accum"):
        d = ir.g.nodes[n]
        a, p = d["attrs"], d["params"]
        rec = a.get("recurrent")
        parts = layer_parts(ir, n)
        gain, off = _fit_part(ir, parts[0], reads, pdk.g_step, len(p["b"]))
        w = p["w_scale"] / gain
        new = {"w_scale": w, "b": p["b"] - off * w, "cal_gain": gain, "cal_offset": off,
               "w_scale_nominal": p["w_scale"], "b_nominal": p["b"]}
        if rec:
            gh, oh = _fit_part(ir, parts[1], reads, pdk.g_step, len(p["b"]))
            wh = p["w_scale"] / gh
            new.update({"w_scale_h": wh, "bh": p["bh"] - oh * wh, "cal_gain_h": gh, "cal_offset_h": oh,
                        "bh_nominal": p["bh"]})
        ir.set(n, params={**p, **new})
    return ir


def layer_parts(ir, n: str) -> list[list[str]]:
    """A layer's tiles by the sum they add to: one part (every tile) for a layer; for a recurrent
    layer the input rows' tiles, then the recurrent rows' (``ir.ops.recurrent.tile_part``)."""
    from ..ir.ops.recurrent import tile_part

    tiles = ir.inputs(n)
    rec = ir.g.nodes[n]["attrs"].get("recurrent")
    if not rec:
        return [tiles]
    return [[t for t in tiles if tile_part(ir.g.nodes[t]["attrs"], rec["inputs"]) == k] for k in (0, 1)]


def _fit_part(ir, tiles: list[str], reads: dict, g_step: float, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Gain and offset of every output column of one sum of tiles (the tiles of a column added as
    the accumulator adds them), fitted over each tile's read set (:func:`fit_columns`)."""
    gain, off = np.ones(cols), np.zeros(cols)
    by_cols: dict = {}
    for t in tiles:
        ta = ir.g.nodes[t]["attrs"]
        by_cols.setdefault((ta["col0"], ta["col1"]), []).append(t)

    def programmed(t, X):     # the tile read at the conductances it was programmed to
        p = ir.g.nodes[t]["params"]
        return X @ (p["gpos"] - p["gneg"])

    for (c0, c1), group in by_cols.items():
        gain[c0:c1], off[c0:c1] = fit_group(ir, group, reads, g_step, programmed)
    return gain, off


def fit_group(ir, tiles: list[str], reads: dict, g_step: float, read) -> tuple[np.ndarray, np.ndarray]:
    """Gain and offset (:func:`fit_columns`) of the output columns one group of tiles adds up (the
    row tiles of a column range, of one sum): the measured sum ``sum_t read(t, X_t)`` against the
    targets' ``sum_t X_t (lpos - lneg) G_step`` over each tile's read set ``X_t``. ``read``: how the
    chip reads a tile (this design's conductances, or a Monte-Carlo chip's with read noise)."""
    meas = ideal = 0.0
    for t in tiles:
        X = reads[t]
        meas = meas + read(t, X)
        lp, ln = target_levels(ir.g.nodes[t]["params"])
        ideal = ideal + X @ ((lp.astype(np.float64) - ln) * g_step)
    return fit_columns(meas, ideal)


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
            q = {k: v for k, v in p.items() if k != "w_scale_h"}
            ir.set(n, params={**q, "w_scale": p["w_scale_nominal"], "b": p["b_nominal"],
                              **({"bh": p["bh_nominal"]} if "bh_nominal" in p else {})})
    return ir
