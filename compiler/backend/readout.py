"""The readout of a shared ADC (``compile --adc-share M``): M outputs of a tile take turns on one ADC.

Each output's TIA voltage is held on a sample-and-hold while the ADC converts the outputs one after
another through an analog multiplexer (as ISAAC shares one ADC among the columns of an array:
A. Shafiee et al., ISCA 2016). The circuit, per PDK in ``readout.sp.j2`` (a subckt ``amsc_ro<M>``
with ports ``in_0 .. in_<M-1> smp rst sel_0 .. sel_<M-1> adp adn``):

* channel k samples ``in_k`` and the ground reference onto a matched pair of hold capacitors
  (``hp_k``, ``hn_k``) while ``smp`` is high (pseudo-differential sampling);
* in slot k, ``rst`` first discharges the ADC's two sampling capacitors (``adp``, ``adn``), then
  ``sel_k`` connects the channel's pair to them; the ADC converts ``V(adp) - V(adn)``;
* every switch couples its clock into the nodes it touches (charge injection and clock feedthrough,
  ``inject_cap_f``); the two sides of a channel differ by a seeded mismatch (``inject_mismatch``), so
  the injection cancels in the difference only up to that mismatch.

Charge sharing makes ``V(adp) - V(adn) = a * in_k`` with ``a = C_h / (C_h + C_a)`` (:func:`gain`):
``C_h`` the hold node's capacitance, ``C_a`` the ADC node's. The ADC's reference is scaled by
``a``, so its codes are those of the TIA output. ``amsc verify`` runs the testbench
(``readout_tb.sp.j2``: seeded inputs over the ADC's range, the clocks of M conversions per read) in
ngspice and compares each conversion with ``a * in_k``.

The TIA outputs are ideal voltage sources in the tile netlists (an ideal TIA's CCVS or the op-amp
macromodel's unity buffer), so the readout does not load the tile: a tile verified at DC and its
readout verified in a transient compose exactly.
"""

from __future__ import annotations

import io

import numpy as np

from .render import chunks, render, spice_num

#: conversions of the readout testbench: rounds of M samples each (the first three at +full scale,
#: -full scale and alternating signs, the rest uniform over the range)
ROUNDS = 8
#: a readout of more channels than this (an ADC across tiles, backend/verilog.adc_balance) is tested
#: in half the rounds: its transient grows with the channels squared (128 channels, 8 rounds: 110 s
#: in ngspice), and 4 rounds of 128 are still 512 conversions, the three patterns and one at random
WIDE_CHANNELS = 64


def rounds(share: int) -> int:
    """The readout testbench's rounds for ``share`` channels (:data:`ROUNDS`, :data:`WIDE_CHANNELS`)."""
    return ROUNDS if share <= WIDE_CHANNELS else ROUNDS // 2


#: within a slot: reset of the ADC node until RESET_END, multiplexer from SEL_START until the slot's
#: end, the ADC samples at SAMPLE (fractions of the slot)
RESET_END, SEL_START, SAMPLE = 0.2, 0.25, 0.9


def hold_capacitance(ro: dict) -> float:
    """A hold node's capacitance: the hold capacitor and the injection of its sample and mux switches."""
    return ro["hold_cap_f"] + 2 * ro["inject_cap_f"]


def gain(ro: dict, share: int) -> float:
    """``a``: the ADC node's voltage per volt held, after charge sharing (nominal capacitances)."""
    c_h = hold_capacitance(ro)
    c_a = ro["adc_cap_f"] + (share + 1) * ro["inject_cap_f"]            # ADC cap, M mux switches and reset
    return c_h / (c_h + c_a)


def hold_energy(ro: dict, share: int, v_new: np.ndarray, v_old: np.ndarray) -> float:
    """Energy (J) the TIA outputs give the hold capacitors to sample ``v_new`` where ``v_old`` was
    sampled before: after its conversion a hold node keeps ``a * v_old`` (the rest went to the ADC's
    capacitor), so each output delivers ``C_h * v_new * (v_new - a * v_old)``."""
    return float(hold_capacitance(ro) * np.sum(v_new * (v_new - gain(ro, share) * v_old)))


def timing(ppa: dict, share: int) -> dict:
    """The testbench's clocks: one slot per conversion at the ADC's rate; the sample phase (the
    read, during which the TIA outputs settle onto the hold capacitors) takes one slot."""
    slot = 1.0 / (ppa["adc"]["rate_msps"] * 1e6)
    return {"slot_s": slot, "track_s": slot, "round_s": slot * (share + 1)}


def test_inputs(share: int, v_fs: float, seed: int) -> np.ndarray:
    """The testbench's inputs [rounds(M), M] in V, a function of the design's seed."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5244]))
    v = rng.uniform(-v_fs, v_fs, size=(rounds(share), share))
    v[0], v[1] = v_fs, -v_fs
    v[2] = v_fs * np.where(np.arange(share) % 2, -1.0, 1.0)
    return v


def _pwl(points: list[tuple[float, float]]) -> str:
    return "PWL(" + " ".join(f"{spice_num(t)} {spice_num(v)}" for t, v in points) + ")"


def _clock(edges: list[tuple[float, float]], high: float, t_e: float) -> str:
    """A PWL clock high during each ``(on, off)`` window, with edges of ``t_e``."""
    pts = [(0.0, 0.0)]
    for on, off in edges:
        pts += [(on, 0.0), (on + t_e, high), (off - t_e, high), (off, 0.0)]
    return _pwl(pts)


def slot_starts(rounds: int, share: int, slot_s: float, track_s: float) -> np.ndarray:
    """When each conversion slot of the readout's testbench starts, [rounds, share]: a round is the
    sample phase (``track_s``), then ``share`` conversion slots of ``slot_s`` (:func:`timing`)."""
    r, k = np.meshgrid(np.arange(rounds), np.arange(share), indexing="ij")
    return r * (track_s + share * slot_s) + track_s + k * slot_s


def readout_context(pdk, share: int, seed: int) -> dict:
    ro = pdk.readout
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x524F]))
    mis = 1.0 + ro["inject_mismatch"] * rng.standard_normal((share, 2))
    ports = [f"in_{k}" for k in range(share)] + ["smp", "rst"] + [f"sel_{k}" for k in range(share)] + ["adp", "adn"]
    return {
        "subckt": f"amsc_ro{share}", "share": share, "port_lines": chunks(ports, 8),
        "channels": [{"k": k, "cinj_p": spice_num(ro["inject_cap_f"] * mis[k, 0]),
                      "cinj_n": spice_num(ro["inject_cap_f"] * mis[k, 1])} for k in range(share)],
        "hold_cap": spice_num(ro["hold_cap_f"]), "adc_cap": spice_num(ro["adc_cap_f"]),
        "cinj": spice_num(ro["inject_cap_f"]), "ron": spice_num(ro["switch_ron"]), "roff": spice_num(ro["switch_roff"]),
        "vt": spice_num(ro["v_clock"] / 2), "gain": gain(ro, share), "mismatch": ro["inject_mismatch"],
    }


def testbench_context(pdk, share: int, v_fs: float, seed: int) -> dict:
    ro, tm = pdk.readout, timing(pdk.ppa, share)
    t_e, slot = ro["t_edge_s"], tm["slot_s"]
    v = test_inputs(share, v_fs, seed)
    n = rounds(share)
    starts = [r * tm["round_s"] for r in range(n)]
    inputs = []
    for k in range(share):
        pts = [(0.0, float(v[0, k]))]
        for r in range(1, n):
            pts += [(starts[r], float(v[r - 1, k])), (starts[r] + t_e, float(v[r, k]))]
        inputs.append({"src": f"VIN_{k}", "node": f"in_{k}", "wave": _pwl(pts)})
    slots = [(float(t), k) for row in slot_starts(n, share, slot, tm["track_s"]) for k, t in enumerate(row)]
    clocks = [{"src": "VSMP", "node": "smp", "wave": _clock([(s + 2 * t_e, s + tm["track_s"] - t_e) for s in starts],
                                                             ro["v_clock"], t_e)},
              {"src": "VRST", "node": "rst", "wave": _clock([(s + t_e, s + RESET_END * slot) for s, _ in slots],
                                                             ro["v_clock"], t_e)}]
    clocks += [{"src": f"VSEL_{k}", "node": f"sel_{k}",
                "wave": _clock([(s + SEL_START * slot, s + slot - t_e) for s, j in slots if j == k], ro["v_clock"], t_e)}
               for k in range(share)]
    conns = [f"in_{k}" for k in range(share)] + ["smp", "rst"] + [f"sel_{k}" for k in range(share)] + ["adp", "adn"]
    return {"sources": inputs + clocks, "conn_lines": chunks(conns, 8),
            "t_stop": spice_num(n * tm["round_s"]), "t_step": spice_num(slot / 100), **tm}


def npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def files(share: int, own: bool) -> dict:
    """Where the readout of ``share`` outputs per ADC is written: the design's (``compile
    --adc-share``, ``own``) as spice/readout.sp, another a layer takes under ``--adc-balance on`` with
    its share in the name."""
    tag = "" if own else str(share)
    return {"subckt_file": f"spice/readout{tag}.sp", "testbench": f"spice/tb/readout{tag}_tb.sp",
            "inputs": f"spice/tb/readout{tag}_inputs.npy"}


def emit_readout(pdk, env, common: dict, share: int, v_fs: float, seed: int, own: bool = True):
    """``(relative path, content)`` of the readout subckt, its testbench and the testbench's inputs."""
    ro, f = readout_context(pdk, share, seed), files(share, own)
    yield f["subckt_file"], render(env, "readout", ro=ro, **common)
    yield f["testbench"], render(env, "readout_tb", ro=ro, tb=testbench_context(pdk, share, v_fs, seed),
                                 include="../" + f["subckt_file"].split("/", 1)[1], **common)
    yield f["inputs"], npy(test_inputs(share, v_fs, seed))


def manifest_entry(pdk, share: int, v_fs: float, own: int, others: list[int] = (), pools: dict | None = None) -> dict:
    """The manifest's ``readout`` section (what 'amsc verify' and 'amsc report' read): the design's
    outputs per ADC (``share``, ``--adc-share``) with its readout circuit when a tile keeps its ADCs at
    it (``own``: ``share``, or 1 for none; backend/spice.readout_circuits), under ``balanced`` those of
    the ``others`` channel counts its layers' ADCs take (``--adc-balance``), and under ``pools`` each
    pipeline stage's ADCs where its layers share them (passes/tile.adc_pools)."""
    def entry(m: int, own: bool) -> dict:
        tm = timing(pdk.ppa, m)
        return {"share": m, "subckt": f"amsc_ro{m}", **files(m, own), "gain": gain(pdk.readout, m),
                "v_full_scale": v_fs, "rounds": rounds(m), "slot_s": tm["slot_s"], "track_s": tm["track_s"],
                "sample_at": SAMPLE, "circuit": dict(pdk.readout)}
    out = entry(share, True) if own > 1 else {"share": share}
    if others:
        out["balanced"] = [entry(m, False) for m in others]
    if pools:
        out["pools"] = dict(sorted(pools.items()))
    return out


def entries(ro: dict) -> list[dict]:
    """Every readout circuit of a manifest's ``readout`` section: the design's (when a tile keeps its
    ADCs at its share) and the others its layers and stages take."""
    return ([ro] if "subckt" in ro else []) + list(ro.get("balanced", []))


def entry_of(ro: dict, share: int) -> dict:
    """The readout section of the circuit with ``share`` outputs per ADC ({"share": 1}: none)."""
    return next((e for e in entries(ro) if e["share"] == share), {"share": 1})
