"""Verification of a shared-ADC readout (``compile --adc-share M``, backend/readout.py) in ngspice.

The readout's testbench is one transient: rounds of M inputs, each sampled onto the hold
capacitors and converted slot by slot through the multiplexer. Every conversion, ``V(adp) - V(adn)``
at the ADC's sampling instant, is compared with ``a * V(in_k)``, the charge-shared value of the
input held; its error is stated in LSBs of the ADC at the TIA output (``2 v_fs / 2^bits``). The
block passes when every conversion is within half the verification tolerance (``--tolerance-lsb``;
the other half is the tile's). Also reported: the common-mode pedestal (what the switches inject,
cancelled in the difference), and how far each conversion still moves between the ADC's sampling
instant and the end of its slot (incomplete settling), and the energy the inputs (the TIA outputs)
deliver to the hold capacitors, measured (``-V I`` of the input sources) and from the report's model
(:func:`backend.readout.hold_energy`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..backend.readout import hold_energy, slot_starts
from ..sim.netlist import read_deck

#: where in a slot the settling is judged: just before the multiplexer opens (fraction of the slot)
LATE = 0.97


#: a readout block's fields (verify.json's ``readout`` and its ``others``) and its waveform's arrays
RESULT_KEYS = ("name", "subckt", "subckt_file", "share", "conversions", "passed", "max_err_lsb", "rms_err_lsb",
               "mean_err_lsb", "tolerance_lsb", "lsb_v", "gain", "pedestal_v", "settling_lsb", "hold_energy_spice_j",
               "hold_energy_model_j", "hold_energy_rel_err", "simulator", "seconds")
WAVE_KEYS = ("t", "adc", "samples_t", "expected")


def readout_task(task: dict) -> dict:
    """:func:`verify_readout` in a worker of verify's process pool, one readout circuit a task (the
    circuits are independent transients: a design with several runs them side by side). ``task``: the
    design folder ``out``, its ADC ``bits``, ``tolerance_lsb`` and the circuit's manifest entry ``ro``."""
    from ..sim.ngspice import session

    return verify_readout(Path(task["out"]), task["ro"], task["bits"], task["tolerance_lsb"], session())


def verify_readout(out: Path, ro: dict, bits: int, tolerance_lsb: float, eng) -> dict:
    """The ``readout`` block of verify.json, simulated with the ngspice session ``eng``: of ``ro``, one
    of the manifest's readout circuits (backend.readout.entries: the design's share, a layer's own
    under ``--adc-balance on``, an ADC across tiles or a stage's pool), with ADCs of ``bits``."""
    t0 = time.perf_counter()
    share = ro["share"]
    v_in = np.load(out / ro["inputs"], allow_pickle=False)
    t, y = eng.transient(read_deck(out / ro["testbench"]), ro["testbench"],
                         ["adp", "adn"] + [f"in_{k}" for k in range(share)] + [f"i(vin_{k})" for k in range(share)])
    start = slot_starts(ro["rounds"], share, ro["slot_s"], ro["track_s"])

    def at(frac):
        ts = start + frac * ro["slot_s"]
        return np.interp(ts, t, y[:, 0]), np.interp(ts, t, y[:, 1])

    p, n = at(ro["sample_at"])
    p2, n2 = at(LATE)
    lsb = 2.0 * ro["v_full_scale"] / 2 ** bits
    err = ((p - n) / ro["gain"] - v_in) / lsb
    settle = np.abs((p2 - n2) - (p - n)) / ro["gain"] / lsb
    tol = tolerance_lsb / 2
    # the TIA outputs' work on the hold capacitors, rounds 1.. (round 0 starts from the operating point)
    t1 = ro["slot_s"] * (share + 1)
    keep = t >= t1
    p_in = -np.sum(y[:, 2:2 + share] * y[:, 2 + share:], axis=1)
    e_spice = float(np.trapezoid(p_in[keep], t[keep]))
    e_model = hold_energy(ro["circuit"], share, v_in[1:], v_in[:-1])
    max_err = float(np.max(np.abs(err)))
    return {"name": "readout", "subckt": ro["subckt"], "subckt_file": ro["subckt_file"], "share": share, "conversions": int(v_in.size),
            "passed": bool(max_err <= tol), "max_err_lsb": max_err, "rms_err_lsb": float(np.sqrt(np.mean(err ** 2))),
            "mean_err_lsb": float(np.mean(err)), "tolerance_lsb": tol, "lsb_v": lsb, "gain": ro["gain"],
            "pedestal_v": float(np.max(np.abs(n))), "settling_lsb": float(np.max(settle)),
            "hold_energy_spice_j": e_spice, "hold_energy_model_j": e_model,
            "hold_energy_rel_err": abs(e_model - e_spice) / abs(e_spice) if e_spice else 0.0, "simulator": eng.version, "seconds": time.perf_counter() - t0,
            "wave": {"t": t, "adc": y[:, 0] - y[:, 1], "samples_t": start + ro["sample_at"] * ro["slot_s"],
                     "expected": ro["gain"] * v_in}}
