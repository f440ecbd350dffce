"""Golden model of a crossbar tile: the column currents Kirchhoff's law gives for ideal wires."""

from __future__ import annotations

import numpy as np


def tile_currents(v: np.ndarray, gpos: np.ndarray, gneg: np.ndarray) -> np.ndarray:
    """``I[k, j] = sum_i v[k, i] * (G+[i, j] - G-[i, j])`` for word-line voltages ``v[k, i]``."""
    return v @ (gpos - gneg)


def dac_vectors(n: int, rows: int, dac_bits: int, v_read: float, seed: int, block: int,
                bipolar: bool = False) -> np.ndarray:
    """``n`` random DAC outputs in ``[0, v_read]`` (``[-v_read, v_read]`` for a bipolar tile): uniform
    codes on the DAC's grid, seeded per block."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(block)]))
    full = 2 ** dac_bits - 1
    codes = rng.integers(-full if bipolar else 0, full, size=(n, rows), endpoint=True)
    return codes.astype(np.float64) / full * v_read


def tile_currents_1t1r(v: np.ndarray, gpos: np.ndarray, gneg: np.ndarray, cell: dict, table: dict,
                       tia: dict, rf_ohm: float) -> np.ndarray:
    """Differential column currents of a 1T1R tile: every cell solved against the calibrated
    access transistor (compiler.pdk.devices.cell_currents). An op-amp TIA of finite gain A0 holds
    its bit line at ``Rf I / (A0 + 1)`` rather than 0 V; that voltage and the column current
    depend on each other, so they are iterated to a fixed point (the coupling is ~1e-4, three
    rounds leave it far below solver tolerance)."""
    from ..pdk.devices import cell_currents

    a0 = tia.get("gain")
    cols = []
    for g in (gpos, gneg):
        v_bl = np.zeros((v.shape[0], 1, g.shape[1]))
        for _ in range(4):
            i_col = cell_currents(v[:, :, None], g[None, :, :], v_bl, cell["rram"], table).sum(axis=1)
            if a0 is None:
                break
            v_bl = (rf_ohm * i_col / (a0 + 1.0))[:, None, :]
        cols.append(i_col)
    return cols[0] - cols[1]
