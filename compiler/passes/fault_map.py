"""fault_map: place each tile's weights on one chip's cells so that stuck cells cost the least.

A post-fabrication test (a chip state, :mod:`compiler.design.chipstate`) finds cells stuck at
their lowest or highest conductance (stuck at HRS / LRS). A differential pair with one stuck cell
still reaches every difference of one sign: with G+ stuck at level ``s`` the pair gives
``s - G-`` for ``G-`` in ``[0, top]``, so a weight is exact if ``s - top <= w <= s`` and is
otherwise clipped to the nearest end; a pair with both cells stuck gives ``s+ - s-``. Healthy
pairs are exact. Which weight lands on which pair is free: the DAC gather of a tile's inputs and
the accumulation of its ADC outputs are index tables, so a logical row may drive any physical word
line and a logical column may read any physical pair of bit lines of its bank: ``w = row`` and
``q = column (mod bank)``, ``bank`` the datapath's lanes (``--lanes``; 1 with ``--route-banks off``).
The tile's gather lanes each write one bank of its DAC registers (backend/verilog.py,
``step_lanes``), so a word line needs one lane's decoder instead of every lane's, and a column's
select picks among its bank's pairs only; a recurrent layer's tiles are not banked (:func:`tile_banks`).
The rows and pair columns a layer leaves
unused, and those ``--spare-rows`` / ``--spare-cols`` reserve, are the slack.

The placement minimizes the input-weighted squared weight error of the tile,
``sum_i m_i sum_j (w_ij - reach(w_ij, cells at (row_i, col_j)))^2``, where ``m_i`` is the mean
square of row ``i``'s input (from calibration inputs; 1 without them), by alternating two
assignment problems (scipy's ``linear_sum_assignment``): the pair column of every logical column
for fixed rows, then the word line of every logical row for fixed columns, starting from the
identity placement and keeping a step only if it lowers the cost, so the result is never worse
than placing the tile where the compiler put it. The same idea is the row/column remapping of
fault-tolerant crossbar mapping (Xia et al., "Fault-tolerant training with on-line fault detection
for RRAM-based neural computing systems", DAC 2017) without the retraining.

Everything here is in conductance levels: 0 is G_min, ``top`` (levels - 1) is G_max; a stuck
cell's level is a float (a measured conductance need not sit on a level), NaN where the cell is
healthy.
"""

from __future__ import annotations

import numpy as np

from ..options import route_banks_of
from .reads import tile_reads

#: cells per cost block: the row and column costs are built in slices of at most this many terms
_BLOCK = 1 << 22
#: alternating assignment rounds (each one: columns, then rows); the cost stops falling after 2-3
ROUNDS = 4


def pair_difference(w, sp, sn, top: float) -> np.ndarray:
    """The pair difference (levels) nearest to the target ``w`` that a pair whose cells are stuck at
    ``sp`` / ``sn`` (NaN: healthy) reaches, broadcasting."""
    hp, hn = np.isnan(sp), np.isnan(sn)
    plus = sp - np.clip(sp - w, 0.0, top)      # G+ stuck, G- free
    minus = np.clip(sn + w, 0.0, top) - sn     # G- stuck, G+ free
    both = sp - sn
    return np.where(hp & hn, w, np.where(hn, plus, np.where(hp, minus, both)))


def _sq_err(w, sp, sn, top):
    d = w - pair_difference(w, sp, sn, top)
    return d * d


def placement_cost(w, sp, sn, rows, cols, top, m) -> float:
    """The weighted squared error of ``w`` [r, c] placed on physical rows ``rows`` and pair columns ``cols``."""
    e = _sq_err(w, sp[np.ix_(rows, cols)], sn[np.ix_(rows, cols)], top)
    return float(m @ e.sum(axis=1))


def _forbid_other_banks(cost: np.ndarray, bank: int) -> np.ndarray:
    """``cost`` [n, N] (logical line i on physical line k) with every k not in i's bank
    (``k != i (mod bank)``) made infinite, in place; returned."""
    if bank > 1:
        n, N = cost.shape
        cost[(np.arange(N)[None, :] - np.arange(n)[:, None]) % bank != 0] = np.inf
    return cost


def _col_cost(w, sp, sn, rows, top, m, bank: int = 1) -> np.ndarray:
    """[c, P]: the cost of logical column j on physical pair column q, rows fixed; infinite where q
    is not in column j's bank (``q != j (mod bank)``)."""
    r, c = w.shape
    P = sp.shape[1]
    out = np.empty((c, P))
    step = max(1, _BLOCK // max(1, r * c))
    a, b = sp[rows], sn[rows]
    for q0 in range(0, P, step):
        q1 = min(P, q0 + step)
        e = _sq_err(w[:, :, None], a[:, None, q0:q1], b[:, None, q0:q1], top)    # [r, c, q]
        out[:, q0:q1] = np.einsum("i,ijq->jq", m, e)
    return _forbid_other_banks(out, bank)


def _row_cost(w, sp, sn, cols, top, m, bank: int = 1) -> np.ndarray:
    """[r, R]: the cost of logical row i on physical word line p, columns fixed; infinite where p
    is not in row i's bank (``p != i (mod bank)``)."""
    r, c = w.shape
    R = sp.shape[0]
    out = np.empty((r, R))
    step = max(1, _BLOCK // max(1, r * c))
    a, b = sp[:, cols], sn[:, cols]
    for p0 in range(0, R, step):
        p1 = min(R, p0 + step)
        e = _sq_err(w[:, None, :], a[None, p0:p1], b[None, p0:p1], top)           # [r, p, c]
        out[:, p0:p1] = e.sum(axis=2) * m[:, None]
    return _forbid_other_banks(out, bank)


def place_tile(w: np.ndarray, sp: np.ndarray, sn: np.ndarray, top: float, m: np.ndarray | None = None,
               rounds: int = ROUNDS, bank: int = 1) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Physical word line of each logical row and physical pair column of each logical column of
    the weights ``w`` [r, c] (level differences) on a tile whose cells are stuck at ``sp`` / ``sn``
    [R, P] (NaN: healthy; R >= r, P >= c), each row on a word line and each column on a pair of its
    bank (``rows[i] = i``, ``cols[j] = j (mod bank)``; the identity placement is one). Returns
    ``(rows, cols, cost at the identity placement, cost of the placement)``."""
    from scipy.optimize import linear_sum_assignment

    w = np.asarray(w, dtype=np.float64)
    r, c = w.shape
    m = np.ones(r) if m is None else np.asarray(m, dtype=np.float64)
    rows, cols = np.arange(r), np.arange(c)
    base = best = placement_cost(w, sp, sn, rows, cols, top, m)
    if best == 0.0:        # nothing stuck under the weights: the compiler's placement is exact
        return rows, cols, base, best
    for _ in range(rounds):
        improved = False
        for which in ("cols", "rows"):
            if which == "cols":
                _, cand = linear_sum_assignment(_col_cost(w, sp, sn, rows, top, m, bank))
                cost = placement_cost(w, sp, sn, rows, cand, top, m)
            else:
                _, cand = linear_sum_assignment(_row_cost(w, sp, sn, cols, top, m, bank))
                cost = placement_cost(w, sp, sn, cand, cols, top, m)
            if cost < best - 1e-12 * max(1.0, best):
                best, improved = cost, True
                if which == "cols":
                    cols = cand
                else:
                    rows = cand
            if best == 0.0:
                return rows, cols, base, best
        if not improved:
            break
    return rows, cols, base, best


def pair_levels(lp: np.ndarray, ln: np.ndarray, sp: np.ndarray, sn: np.ndarray, top: float):
    """The levels to program on pairs stuck at ``sp`` / ``sn`` for targets ``lp`` / ``ln``: a healthy
    pair keeps its targets; a stuck cell reads its stuck level, and its partner is set to keep the
    pair's difference as far as ``[0, top]`` allows (what write-verify does once its reads find the
    stuck cell)."""
    lp, ln = np.asarray(lp, np.float64), np.asarray(ln, np.float64)
    w = lp - ln
    hp, hn = np.isnan(sp), np.isnan(sn)
    gp = np.where(hp, np.where(hn, lp, np.clip(sn + w, 0.0, top)), sp)
    gn = np.where(hn, np.where(hp, ln, np.clip(sp - w, 0.0, top)), sn)
    return gp, gn


def target_levels(p: dict) -> tuple[np.ndarray, np.ndarray]:
    """A tile's target levels (``lpos``, ``lneg``): what the network wants of it, before a chip's
    placement put stuck levels under some of them (``*_target`` on a design for one chip)."""
    return p.get("lpos_target", p["lpos"]), p.get("lneg_target", p["lneg"])


def stuck_levels(p: dict, g_min: float, g_step: float) -> tuple[np.ndarray, np.ndarray]:
    """A chip tile's stuck cells as levels, NaN where healthy, from the conductances its test
    measured (``stuck`` and ``gpos``/``gneg`` of a design for one chip)."""
    st = p["stuck"]
    return tuple(np.where(st[k] != 0, (p[g] - g_min) / g_step, np.nan) for k, g in ((0, "gpos"), (1, "gneg")))


def tile_banks(ir, options) -> dict[str, int]:
    """Per tile, the banks its placement keeps its rows and columns in (:func:`place_tile`): the
    design's (``--route-banks``, ``options``: CompileOptions or a manifest's options), or 1 for the
    tiles of a recurrent layer, whose tile wrappers are not banked (a recurrent layer's gather
    writes one row at a time: backend/verilog.py gives them BANK 1)."""
    bank = route_banks_of(options)
    return {t: 1 if any(ir.g.nodes[n]["attrs"].get("recurrent") for n in ir.g.successors(t)) else bank
            for t in ir.nodes_of("xbar_tile")}


def place_chip(tiles: dict, state, weights: dict | None = None, spares: dict | None = None,
               bank: int | dict = 1) -> dict[str, dict]:
    """:func:`place_tile` for every tile ``{name: (lpos, lneg)}`` (target levels) on the chip state
    ``state`` (:class:`compiler.design.chipstate.ChipState`), with ``weights`` ``{name: m [rows]}``
    where known; ``spares`` ``{name: (rows, cols)}`` keeps a tile's last spare word lines and pairs
    out of the placement (the placement without the spares' repair); ``bank``: the word-line and
    pair banks (:func:`place_tile`), one count or each tile's (:func:`tile_banks`). Per tile: ``rows``, ``cols``
    (physical indices) and the weighted squared level error at the identity placement
    (``cost_before``) and at this one (``cost``)."""
    top = float(state.header["levels"] - 1)
    out = {}
    for name, (lp, ln) in tiles.items():
        sp, sn = state.stuck_levels(name)
        if spares and name in spares:
            sr, sc = spares[name]
            sp, sn = sp[:sp.shape[0] - sr, :sp.shape[1] - sc], sn[:sn.shape[0] - sr, :sn.shape[1] - sc]
        w = np.asarray(lp, np.float64) - np.asarray(ln, np.float64)
        rows, cols, base, best = place_tile(w, sp, sn, top, (weights or {}).get(name),
                                            bank=bank.get(name, 1) if isinstance(bank, dict) else bank)
        out[name] = {"rows": rows, "cols": cols, "cost_before": base, "cost": best}
    return out


def tile_row_weights(ir, calibration: str | None, seed: int = 0) -> dict | None:
    """Per tile, the mean square of each row's input over its calibration read set
    (:func:`compiler.passes.reads.tile_reads`), or None without calibration inputs."""
    if calibration is None:
        return None
    return {t: (X * X).mean(axis=0) for t, X in tile_reads(ir, calibration, seed).items()}


def fault_map(ir, options, pdk):
    """The pass: with ``options.chip_state``, every tile placed on that chip's cells
    (:func:`place_tile`), its levels and conductances the chip's (:func:`pair_levels`; a stuck cell
    at its measured conductance), the stuck map kept as the tile's ``stuck`` array [2, r, c] and
    the placement as its ``placement`` attribute; with ``options.parasitics`` also the cells the
    placement leaves unused (``mesh_bg``, see :func:`physical_tile`), for the wire mesh. Without a
    chip state the IR is unchanged."""
    if options.chip_state is None:
        return ir
    from ..design.chipstate import HEALTHY, read_state

    tiles = ir.nodes_of("xbar_tile")
    want = [{"name": t, "tile_size": [ir.g.nodes[t]["attrs"]["tile_rows"], ir.g.nodes[t]["attrs"]["tile_cols"]]}
            for t in tiles]
    state = read_state(options.chip_state, want, {"g_min": pdk.g_min, "g_max": pdk.g_max, "levels": pdk.levels},
                       ir.name)
    ir = ir.copy()
    weights = tile_row_weights(ir, options.calibration, options.seed)
    banks = tile_banks(ir, options)
    top = float(pdk.levels - 1)
    step = (pdk.g_max - pdk.g_min) / top
    for t in tiles:
        d = ir.g.nodes[t]
        p = d["params"]
        sp, sn = state.stuck_levels(t)
        w = p["lpos"].astype(np.float64) - p["lneg"]
        rows, cols, base, best = place_tile(w, sp, sn, top, (weights or {}).get(t), bank=banks[t])
        ix = np.ix_(rows, cols)
        spl, snl = sp[ix], sn[ix]
        lp, ln = pair_levels(p["lpos"], p["lneg"], spl, snl, top)
        stuck = np.stack([state.stuck[t][0][ix], state.stuck[t][1][ix]])
        g = state.g[t].astype(np.float64)
        gpos = np.where(stuck[0] != HEALTHY, g[0][ix], pdk.g_min + lp * step)
        gneg = np.where(stuck[1] != HEALTHY, g[1][ix], pdk.g_min + ln * step)
        mesh = {"mesh_bg": mesh_background(state.g[t], state.stuck[t], rows, cols, pdk.g_min)} \
            if options.parasitics else {}
        ir.set(t, params={**p, "gpos": gpos, "gneg": gneg, "stuck": stuck, **mesh,
                          # what the network wants of the tile: calibration measures the chip against it
                          "lpos_target": p["lpos"], "lneg_target": p["lneg"],
                          # the chip's levels: what the scan chain writes and the integer model reads
                          "lpos": np.clip(np.rint(lp), 0, top).astype(p["lpos"].dtype),
                          "lneg": np.clip(np.rint(ln), 0, top).astype(p["lneg"].dtype)},
               attrs={**d["attrs"], "placement": {"rows": rows.tolist(), "cols": cols.tolist()},
                      "faults": {"stuck_cells": int((stuck != HEALTHY).sum()),
                                 "error_before": base, "error": best}})
    ir.g.graph["chip_state"] = {"header": state.header, "weights": "calibration inputs" if weights else "uniform"}
    return ir


def mesh_background(g: np.ndarray, stuck: np.ndarray, rows, cols, g_min: float) -> np.ndarray:
    """The conductances [2, R', P'] of a placed tile's physical cells up to the last word line and
    pair it uses (R' = max(rows) + 1, P' = max(cols) + 1), as the chip holds them where no weight
    was placed: a stuck cell at its measured conductance, a healthy one reset to G_min (what
    programming writes to a cell without a weight). The placed cells are filled in by
    :func:`physical_tile`."""
    R, P = int(np.max(rows)) + 1, int(np.max(cols)) + 1
    return np.where(stuck[:, :R, :P] != 0, g[:, :R, :P].astype(np.float64), g_min)


def physical_tile(p: dict, a: dict, gpos: np.ndarray, gneg: np.ndarray):
    """A tile's array as the wire mesh sees it: the conductances ``G`` [R', 2 P'] of its physical
    cells in netlist order (word lines top to bottom; bit lines G+, G- of each pair), the logical
    row each physical word line is driven by (``driver`` [R'], -1: held at 0 V) and the logical
    column each physical pair is read as (``reader`` [P'], -1: its bit lines end at ground, as an
    unread TIA input sits at virtual ground). ``gpos``/``gneg`` [r, c] are the logical cells
    (programmed or compensated values). A tile of a design for no chip (or compiled without a wire
    mesh) is its logical array: identity ``driver`` and ``reader``."""
    r, c = gpos.shape
    G = np.stack([gpos, gneg], axis=-1)
    if "mesh_bg" not in p:
        return G.reshape(r, 2 * c), np.arange(r), np.arange(c)
    bg = p["mesh_bg"]
    rows, cols = np.asarray(a["placement"]["rows"]), np.asarray(a["placement"]["cols"])
    full = np.stack([bg[0], bg[1]], axis=-1)                  # [R', P', 2]
    full[np.ix_(rows, cols)] = G
    driver = np.full(bg.shape[1], -1)
    driver[rows] = np.arange(r)
    reader = np.full(bg.shape[2], -1)
    reader[cols] = np.arange(c)
    return full.reshape(bg.shape[1], 2 * bg.shape[2]), driver, reader


def placed(index: np.ndarray) -> np.ndarray:
    """The physical line of each logical one, from :func:`physical_tile`'s ``driver`` or ``reader``."""
    live = np.flatnonzero(index >= 0)
    out = np.empty(live.size, dtype=np.int64)
    out[index[live]] = live
    return out
