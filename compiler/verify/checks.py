"""Tolerances.

A tile's result leaves the analog domain through its ADC, so an error smaller than one ADC LSB is
invisible to the digital side, and one larger than it changes codes. The bound for ideal wires is
therefore one LSB, ``2 * I_fs / 2**adc_bits`` for a bipolar ADC whose range ``[-I_fs, +I_fs]`` is the
tile's calibrated full scale, plus the solver's own error: ``reltol * |I| + abstol`` per column
(ngspice's convergence criterion for branch currents).
"""

from __future__ import annotations

import numpy as np


def lsb(adc_full_scale_a: float, adc_bits: int) -> float:
    return 2.0 * adc_full_scale_a / 2 ** adc_bits


def tolerance(adc_full_scale_a: float, adc_bits: int, golden: np.ndarray, reltol: float, abstol: float,
              n_lsb: float = 1.0) -> float:
    """``n_lsb`` ADC LSBs plus the solver's error. One LSB is the bound for ideal wires; with wire
    parasitics the IR drop is a design property, so the threshold is the user's choice
    (``--tolerance-lsb``), and the report gives the error itself."""
    peak = float(np.max(np.abs(golden))) if golden.size else 0.0
    return n_lsb * lsb(adc_full_scale_a, adc_bits) + reltol * peak + abstol
