"""Lowering of a continuous-time model: its time scale against the PDK's integrator bandwidth, the
controller's sample timing, and the floorplan of its tiles and analog units (the model's maths:
``compiler/ir/dynamics.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError, PdkError
from ..ir.dynamics import MARGIN, rate_bound

#: the integrators' bandwidth as a fraction of the op-amps' GBW (module docstring)
BANDWIDTH_FRACTION = 1e-3


def integrator_bandwidth(pdk) -> tuple[float, float]:
    """(the PDK's integrator bandwidth in Hz, the op-amp GBW it comes from)."""
    if pdk.tia.get("type") == "opamp":
        gbw = float(pdk.tia["gbw_hz"])
    elif pdk.ppa is not None:
        gbw = float(pdk.ppa["tia"]["gbw_hz"])
    else:
        raise PdkError(pdk.name, "names no op-amp gain-bandwidth (tia.gbw_hz or ppa.tia.gbw_hz) to bound the "
                                 "integrators' bandwidth")
    return BANDWIDTH_FRACTION * gbw, gbw


def time_scale(model: dict, Wq: dict, pdk, where) -> dict:
    """The time scaling: ``k_t`` seconds per unit of model time (the model's ``time_scale`` or the
    automatic one), with the bandwidths behind it."""
    rate = rate_bound(model, Wq)
    f_bw, gbw = integrator_bandwidth(pdk)
    fit = rate / (2 * np.pi * f_bw)           # the fastest time scale at which the system fits the bandwidth
    k_t = model["time_scale"] if model["time_scale"] is not None else fit * (1 + MARGIN)
    f_sys = rate / (2 * np.pi * k_t)
    if f_sys > f_bw:
        raise InputError(Path(where), f"time_scale: {k_t:.4g} s per unit puts the system's fastest rate at "
                    f"{f_sys:.4g} Hz, above the PDK's integrator bandwidth of {f_bw:.4g} Hz ({BANDWIDTH_FRACTION:g} "
                    f"of its op-amps' {gbw:.4g} Hz GBW); a time_scale of at least {fit:.4g} s per unit fits")
    return {"time_s_per_unit": k_t, "rate_bound_per_unit": rate, "system_bandwidth_hz": f_sys,
            "pdk_bandwidth_hz": f_bw, "automatic": model["time_scale"] is None}


def _units(prefix: str, count: int, block: int) -> list[tuple[str, int, int]]:
    return [(f"{prefix}_c{k // block}", k, min(k + block, count)) for k in range(0, count, block)]


def place_dynamics(name: str, model: dict, tiles: list[dict], pdk, seed: int):
    """The floorplan of a dynamics design, by the network placer's annealer: the crossbar tiles and
    one analog unit per block of outputs of a tile column (``x_c<k>``: those states' integrators,
    mirrors and drivers; ``h_c<k>``: a vector field's hidden TIAs and drivers). Edges follow the
    currents: the unit driving a tile's word lines feeds it, the tile feeds the unit its bit lines
    sum into, the inputs' pad feeds every state unit, and every state unit feeds the ADCs' pad.
    Returns a placement IR (backend/floorplan.py draws and writes it)."""
    from ..ir import IR
    from .place import anneal, grid_shape, wirelength

    block = pdk.tile_cols // 2
    xs = _units("x", model["n"], block)
    hs = _units("h", model.get("hidden", 0), block)
    ir = IR(name)
    for u, lo, hi in xs + hs:
        ir.add(u, "accum", (hi - lo,), attrs={"layer": "states" if u[0] == "x" else "hidden"})
    feeds = {"w": xs, "w1": xs, "w2": hs}           # whose outputs drive each layer's word lines
    sums = {"w": xs, "w1": hs, "w2": xs}            # whose inputs its bit lines feed
    edges = set()
    for t in tiles:
        ir.add(t["name"], "xbar_tile", (t["rows"][1] - t["rows"][0], t["cols"][1] - t["cols"][0]),
               attrs={"layer": t["layer"]})
        edges |= {(u, t["name"]) for u, lo, hi in feeds[t["layer"]] if lo < t["rows"][1] and t["rows"][0] < hi}
        edges |= {(t["name"], u) for u, lo, hi in sums[t["layer"]] if lo < t["cols"][1] and t["cols"][0] < hi}
    edges |= {("@in", u) for u, _, _ in xs if model["U"].shape[1]} | {(u, "@out") for u, _, _ in xs}
    cells = [u for u, _, _ in xs + hs] + [t["name"] for t in tiles]
    edges = sorted(edges)
    rows, cols = grid_shape(len(cells))
    final, baseline, moves = anneal(cells, edges, rows, cols, seed)
    pads = {"@in": (rows / 2 - 0.5, -1.0), "@out": (rows / 2 - 0.5, float(cols))}
    for c in cells:
        ir.set(c, attrs={**ir.g.nodes[c]["attrs"], "grid": list(final[c])})
    ir.g.graph["floorplan"] = {
        "grid": [rows, cols], "seed": seed, "edges": [list(e) for e in edges], "pads": {k: list(v) for k, v in pads.items()},
        "wirelength": wirelength(final, edges, pads), "baseline_wirelength": wirelength(baseline, edges, pads),
        "baseline": "row-major: state units, hidden units, then tiles", "moves": moves,
        "units": "analog: integrators, TIAs, drivers"}
    return ir


def controller(model: dict, pdk, k_t: float, where) -> dict:
    """The controller's timing: each sample time in clock cycles after the integrators' release."""
    if pdk.ppa is None:
        raise PdkError(pdk.name, "names no ppa.digital.clock_mhz and ppa.adc.rate_msps for the dynamics controller")
    clock = pdk.ppa["digital"]["clock_mhz"] * 1e6
    lat = max(1, int(np.ceil(clock / (pdk.ppa["adc"]["rate_msps"] * 1e6))))
    cyc = np.rint(model["sample_times"] * k_t * clock).astype(np.int64)
    gaps = np.diff(np.concatenate([[0], cyc]))
    if np.any(gaps <= lat):
        k = int(np.argmax(gaps <= lat))
        raise InputError(Path(where), f"sample_times: sample {k} comes {int(gaps[k])} clock cycle(s) after the "
                    f"{'previous one' if k else 'release'}; at {clock / 1e6:g} MHz the ADC needs more than {lat} "
                    f"(model time {lat / (clock * k_t):.3g})")
    return {"clock_hz": clock, "adc_latency_cycles": lat, "adc_bits": pdk.adc_bits,
            "sample_times": model["sample_times"].tolist(), "sample_cycles": cyc.tolist(),
            "counter_bits": int(cyc[-1]).bit_length() + 1, "index_bits": max(1, int(len(cyc)).bit_length()),
            "code": "offset binary over [-v_fs, v_fs] of the state voltage (ir/dynamics.adc_code)"}
