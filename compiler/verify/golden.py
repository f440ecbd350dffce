"""Golden model of a crossbar tile: the column currents Kirchhoff's law gives for ideal wires."""

from __future__ import annotations

import numpy as np


def tile_currents(v: np.ndarray, gpos: np.ndarray, gneg: np.ndarray) -> np.ndarray:
    """``I[k, j] = sum_i v[k, i] * (G+[i, j] - G-[i, j])`` for word-line voltages ``v[k, i]``."""
    return v @ (gpos - gneg)


def dac_vectors(n: int, rows: int, dac_bits: int, v_read: float, seed: int, block: int) -> np.ndarray:
    """``n`` random DAC outputs in ``[0, v_read]``: uniform codes on the DAC's grid, seeded per block."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(block)]))
    full = 2 ** dac_bits - 1
    codes = rng.integers(0, full, size=(n, rows), endpoint=True)
    return codes.astype(np.float64) / full * v_read
