"""compensate_ir: make each tile with a wire mesh compute what its ideal-wire golden model computes.

With ``--parasitics`` every word and bit line is a chain of wire segments, and the IR drop along
them makes a cell's current smaller than ``V G`` (by up to about 20 % at the far corner of a
128x128 tile with 1 ohm per pitch). The tile's transfer ``T(G)`` (bit-line current per word-line
volt) is still exactly linear, and ``sim.mna.mesh_transfer`` computes it from the conductances
and the wire resistances. This pass chooses, per tile:

- a gain per word line (``dac_gain``: the DAC's full-scale trim) and per output column
  (``tia_gain``: the TIA's feedback trim, i.e. the ADC reference), both continuous, fitted so that
  ``diag(tia) T diag(dac)`` is closest to the target ``G+ - G-`` (they take the separable part of
  the attenuation: the word-line drop along a row, the bit-line drop along a column);
- for a tile read with unipolar DACs, programmed conductances on the PDK's level grid
  (``gpos_comp``/``gneg_comp``, levels ``lpos_comp``/``lneg_comp``): each cell pre-distorted by
  the inverse of its own attenuation left after the trims (a fixed-point iteration on the mesh
  model, 6 rounds, converging to about 1e-4 LSB before rounding), then rounded per bit line so
  that the rounding errors of a bit line sum to the least possible (the largest fractional parts
  round up), within ``[G_min, G_max]``; then the trims are refitted. A tile read with signed
  inputs keeps its levels: with mean-zero inputs, moving cells off their levels only adds rounding
  noise, and the trims alone leave less error (measured on the 128x128 bench tile: 0.5 LSB).

The refit minimizes the expected squared output error for word-line inputs drawn uniformly from
[0, V_read] (mean ``mu``, variance ``s2``, as the verifier draws DAC codes),
``s2 sum_i r_i^2 + mu^2 (sum_i r_i)^2`` per output, ``r`` the transfer's residual. The target
``gpos``/``gneg`` stay the tile's golden model and the integer datapath's levels; the netlists
use the programmed conductances and the trims. What remains is reported per tile
(``attrs["compensation"]``): the predicted RMS output error in LSB of its worst column, the share
of cells moved off their target level, the cells that hit ``G_max``, and the trims' ranges.

On a design for one chip (``--chip-state``, ``amsc program``) the mesh is the chip's: each
logical cell sits where the placement put it, the physical cells it left unused hold what the chip
holds there (G_min, or a stuck cell's measured conductance), undriven word lines sit at 0 V and
unread bit lines at ground (:class:`Wires`). A stuck cell cannot be pre-distorted; its free partner
takes its share of the IR drop, so the pair's difference is still the target.
"""

from __future__ import annotations

import numpy as np

from ..ir import IR
from ..sim.mna import mesh_transfer

ROUNDS = 6          # fixed-point rounds of the per-cell pre-distortion
TRIM_ROUNDS = 20    # alternating least-squares rounds of the trim fit


def _diff(T: np.ndarray) -> np.ndarray:
    """[R, J] differential transfer from the per-bit-line one [2J, R] (G+ on even bit lines)."""
    return (T[0::2] - T[1::2]).T


def fit_trims(E: np.ndarray, D: np.ndarray, mu: float, s2: float) -> tuple[np.ndarray, np.ndarray]:
    """Word-line gains ``a`` [R] and column gains ``b`` [J] minimizing, summed over columns j,
    ``s2 sum_i r_ij^2 + mu^2 (sum_i r_ij)^2`` with ``r = a_i b_j E_ij - D_ij``. A column or row
    with no weight programmed (its target all zero) keeps gain 1: its currents are differences of
    two G_min cells, and a zero gain would only make the pre-distortion undefined."""
    R, J = E.shape
    live_c, live_r = np.any(D != 0, axis=0), np.any(D != 0, axis=1)
    a, b = np.ones(R), np.ones(J)
    for _ in range(TRIM_ROUNDS):
        X = a[:, None] * E
        den = s2 * (X * X).sum(0) + mu ** 2 * X.sum(0) ** 2
        num = s2 * (X * D).sum(0) + mu ** 2 * X.sum(0) * D.sum(0)
        b = np.where(live_c, num / np.where(live_c, den, 1.0), 1.0)
        Y = E * b[None, :]
        M = s2 * np.diag((Y * Y).sum(1)) + mu ** 2 * (Y @ Y.T)
        v = s2 * (Y * D).sum(1) + mu ** 2 * (Y @ D.sum(0))
        # rows without weights are fixed at 1: their equations become a_i = 1
        M[~live_r, :] = 0.0
        M[~live_r, ~live_r] = 1.0
        v[~live_r] = 1.0
        v[live_r] -= M[np.ix_(live_r, ~live_r)].sum(1)
        M[np.ix_(live_r, ~live_r)] = 0.0
        a = np.linalg.solve(M, v)
    return a, b


def round_bitlines(c: np.ndarray, top: int) -> np.ndarray:
    """Integer levels of continuous levels ``c`` [R, K], rounded per bit line (column) so that the
    column's rounding errors sum to the least possible: the largest fractional parts round up."""
    fl = np.floor(c)
    frac = c - fl
    up = np.rint(frac.sum(0)).astype(int)                   # how many cells of each bit line round up
    rank = np.argsort(np.argsort(-frac, axis=0, kind="stable"), axis=0, kind="stable")
    return np.clip(fl + (rank < up[None, :]), 0, top).astype(np.int64)


class Wires:
    """A tile's cells on its wire mesh, as the compensation sees them: the logical cells [R, 2J]
    (word lines of the layer's inputs; G+, G- of each output) on the physical array. A design for
    one chip places them (``passes/fault_map.py``): its mesh also holds the cells the placement
    left unused (``mesh_bg``), and its stuck cells (``stuck``) cannot be re-programmed."""

    def __init__(self, p: dict, a: dict, par: dict, to_domain=None):
        from .fault_map import physical_tile, placed

        self.r_wl, self.r_bl = par["r_wl_segment"], par["r_bl_segment"]
        R, J = p["gpos"].shape
        st = p.get("stuck")
        self.fixed = np.zeros((R, 2 * J), bool) if st is None else np.stack([st[0], st[1]], -1).reshape(R, 2 * J) != 0
        self.bg = None
        if "mesh_bg" in p:
            G, driver, reader = physical_tile(p, a, p["gpos"], p["gneg"])
            self.bg = G if to_domain is None else to_domain(G)
            self.rows = placed(driver)
            q = placed(reader)
            self.bls = np.stack([2 * q, 2 * q + 1], axis=-1).reshape(-1)

    def transfer(self, g: np.ndarray) -> np.ndarray:
        """``T`` [2J, R] of the logical cells ``g`` [R, 2J] (:func:`compiler.sim.mna.mesh_transfer`)."""
        if self.bg is None:
            return mesh_transfer(g, self.r_wl, self.r_bl)
        full = self.bg.copy()
        full[np.ix_(self.rows, self.bls)] = g
        return mesh_transfer(full, self.r_wl, self.r_bl)[np.ix_(self.bls, self.rows)]

    def predistort(self, G: np.ndarray, gain: np.ndarray, lo: float | None = None, hi: float | None = None):
        """Each free cell pre-distorted so that the current it delivers, times its trims ``gain``,
        is its target ``G`` (fixed-point rounds on the mesh model). A stuck cell keeps its
        conductance; its free partner in the pair takes the stuck cell's error instead (so the pair's
        difference is the target), within ``[lo, hi]``."""
        gc = G.copy()
        swap = np.arange(G.shape[1]) ^ 1          # each bit line's partner in its pair
        for _ in range(ROUNDS):
            T = self.transfer(gc).T * gain
            target = G
            if self.fixed.any():
                excess = np.where(self.fixed, T - G, 0.0)[:, swap]
                target = np.maximum(G + np.where(self.fixed, 0.0, excess), 1e-3 * G)
            gc = gc * target / T
            if lo is not None:
                gc = np.clip(gc, lo, hi)
            gc = np.where(self.fixed, G, gc)
        return gc


def compensate_tile(p: dict, a: dict, pdk, lsb: float, bipolar: bool) -> dict:
    """The compensation of one tile, params ``p`` and attributes ``a`` (see the module docstring)."""
    gpos, gneg = p["gpos"], p["gneg"]
    wires = Wires(p, a, a["parasitics"])
    R, J = gpos.shape
    G = np.stack([gpos, gneg], axis=-1).reshape(R, 2 * J)
    D = gpos - gneg
    v = pdk.v_read
    top = pdk.levels - 1
    target = np.rint((G - pdk.g_min) / pdk.g_step).astype(np.int64)
    # the separable part of the attenuation first (a plain least-squares fit: every cell alike)
    E = _diff(wires.transfer(G))
    a, b = fit_trims(E, D, 0.0, 1.0)
    if bipolar:
        # signed inputs (mean 0): the error is the residual's spread alone, and moving cells off
        # their levels only adds rounding noise to it; the trims do the work
        mu, s2 = 0.0, v * v / 3.0
        lv, gq = target, G
    else:
        # unipolar inputs (mean V_read / 2): pre-distort each cell for what the trims cannot take,
        # round each bit line so that its rounding errors cancel in the mean, refit the trims
        mu, s2 = v / 2.0, v * v / 12.0
        gc = wires.predistort(G, a[:, None] * np.repeat(b, 2)[None, :])
        lv = np.where(wires.fixed, target, round_bitlines((gc - pdk.g_min) / pdk.g_step, top))
        gq = np.where(wires.fixed, G, pdk.g_min + lv * pdk.g_step)     # a stuck cell reads what it is stuck at
        E = _diff(wires.transfer(gq))
        a, b = fit_trims(E, D, mu, s2)
    r = a[:, None] * b[None, :] * E - D
    rms = np.sqrt(s2 * (r * r).sum(0) + mu ** 2 * r.sum(0) ** 2)     # expected RMS output error per column, A
    lv3, gq3 = lv.reshape(R, J, 2), gq.reshape(R, J, 2)
    return {"gpos_comp": gq3[..., 0], "gneg_comp": gq3[..., 1],
            "lpos_comp": lv3[..., 0].astype(np.uint16), "lneg_comp": lv3[..., 1].astype(np.uint16),
            "dac_gain": a, "tia_gain": b,
            "report": {"predicted_rms_lsb": float(np.max(rms) / lsb), "inputs": "signed" if bipolar else "unipolar",
                       "levels_changed": float(np.mean(lv != target)),
                       "cells_at_g_max": int(np.sum((lv == top) & (target != top))),
                       "dac_gain": [float(a.min()), float(a.max())], "tia_gain": [float(b.min()), float(b.max())]}}


def compensate_tile_1t1r(p: dict, a: dict, pdk, lsb: float, table: dict) -> dict:
    """The compensation of one 1T1R tile, linearized: each cell (RRAM and access transistor, solved
    against the calibrated transistor table) becomes its large-signal conductance at half the read
    voltage, ``G_eff = I(V_read / 2) / (V_read / 2)``, the mean word-line voltage of unipolar inputs;
    on those the mesh is linear, and the 1R procedure (trims, per-cell pre-distortion, refit) runs as
    for a unipolar tile. Each pre-distorted ``G_eff`` maps back to the small-signal conductance the
    cell is programmed to, through the same (monotone) cell model. The cells of a 1T1R PDK are
    programmed off the level grid already (the programming error of the compiled chip): the
    compensated values stay continuous, within the range of the tile's programmed conductances and
    [G_min, G_max]."""
    from ..pdk.devices import cell_currents

    gpos, gneg = p["gpos"], p["gneg"]
    R, J = gpos.shape
    G = np.stack([gpos, gneg], axis=-1).reshape(R, 2 * J)
    rram, v = pdk.cell["rram"], pdk.v_read
    lo, hi = min(float(G.min()), pdk.g_min), max(float(G.max()), pdk.g_max)
    grid = np.geomspace(lo / 4, hi * 4, 2001)
    eff = cell_currents(v / 2, grid, 0.0, rram, table) / (v / 2)          # increasing in G
    to_eff = lambda g: np.interp(np.log(g), np.log(grid), eff)            # noqa: E731
    wires = Wires(p, a, a["parasitics"], to_eff)
    Ge = to_eff(G)
    D = Ge[:, 0::2] - Ge[:, 1::2]
    E = _diff(wires.transfer(Ge))
    ta, tb = fit_trims(E, D, 0.0, 1.0)
    mu, s2 = v / 2.0, v * v / 12.0
    gc = wires.predistort(Ge, ta[:, None] * np.repeat(tb, 2)[None, :], to_eff(lo), to_eff(hi))
    E = _diff(wires.transfer(gc))
    ta, tb = fit_trims(E, D, mu, s2)
    r = ta[:, None] * tb[None, :] * E - D
    rms = np.sqrt(s2 * (r * r).sum(0) + mu ** 2 * r.sum(0) ** 2)
    gq = np.where(wires.fixed, G, np.exp(np.interp(gc, eff, np.log(grid)))).reshape(R, J, 2)
    return {"gpos_comp": gq[..., 0], "gneg_comp": gq[..., 1], "dac_gain": ta, "tia_gain": tb,
            "report": {"predicted_rms_lsb": float(np.max(rms) / lsb), "inputs": "unipolar",
                       "model": "1T1R cells linearized at V_read / 2",
                       "moved_rel": float(np.max(np.abs(gq.reshape(R, 2 * J) / G - 1))),
                       "dac_gain": [float(ta.min()), float(ta.max())], "tia_gain": [float(tb.min()), float(tb.max())]}}


def compensate_ir(ir: IR, options, pdk, bipolar: frozenset = frozenset(), table: dict | None = None) -> IR:
    """Every tile with a wire mesh compensated; ``bipolar``: the tiles whose word lines are driven to
    either sign (the integer program decides it from the calibration, so the back end calls this
    pass after building the program, not the pipeline); ``table``: a 1T1R PDK's calibrated access
    transistor."""
    ir = ir.copy()
    for t in ir.nodes_of("xbar_tile"):
        d = ir.g.nodes[t]
        a, p = d["attrs"], d["params"]
        if not a["parasitics"]:
            continue
        lsb = 2.0 * a["adc_full_scale_a"] / 2 ** pdk.adc_bits
        if pdk.cell["type"] == "1t1r":
            c = compensate_tile_1t1r(p, a, pdk, lsb, table)
        else:
            c = compensate_tile(p, a, pdk, lsb, t in bipolar)
        rep = c.pop("report")
        ir.set(t, params={**p, **c}, attrs={**a, "compensation": rep})
    return ir
