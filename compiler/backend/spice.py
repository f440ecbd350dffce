"""SPICE back end (ngspice dialect): one subckt per tile, a testbench deck per tile, chip.sp.

Net names inside a tile subckt: word lines ``wl_<i>``, bit lines ``blp_<j>``/``bln_<j>`` (G+/G-),
TIA outputs ``outp_<j>``/``outn_<j>``, and the differential outputs ``out_<j>`` (ports).
Resistors are emitted word line by word line (row-major), the order the matrix is stored in.

With wire parasitics the array is a distributed resistor mesh. Physical bit lines interleave the
pair of each output (column ``2j`` is G+, ``2j+1`` is G-). Word line ``i`` runs from its driver
``wl_i`` through one segment to the tap ``w_i_0`` of the first cell, then one segment per cell
pitch. Bit line ``k`` has a tap ``b_k_i`` at every row, one segment per pitch, and one last segment
from the bottom row to the TIA's virtual-ground node ``blp_j``/``bln_j``. Each row is emitted as
its driver segment, then per cell the device, the next word-line segment and the bit-line segment
below it, so node numbers grow along the mesh.
"""

from __future__ import annotations

import math

from .. import __version__
from ..ir import IR
from ..ir.names import sanitize
from ..pdk.devices import model_cards, specialize_fet
from .render import chunks, render, spice_num

PORTS_PER_LINE = 8


def _res(name: str, a: str, b: str, ohm: float) -> dict:
    return {"type": "res", "name": name, "a": a, "b": b, "value": spice_num(ohm)}


def _cell(side: str, i: int, j: int, top: str, bottom: str, g: float) -> dict:
    """A programmed device from node ``top`` (word-line side) to ``bottom`` (bit-line side)."""
    return {"type": "cell", "side": side, "i": i, "j": j, "top": top, "bottom": bottom, "g": float(g)}


def _ideal(gpos, gneg) -> list[dict]:
    rows, cols = gpos.shape
    out = []
    for i in range(rows):
        for j in range(cols):
            out.append(_cell("P", i, j, f"wl_{i}", f"blp_{j}", gpos[i, j]))
            out.append(_cell("N", i, j, f"wl_{i}", f"bln_{j}", gneg[i, j]))
    return out


def _mesh(gpos, gneg, par: dict) -> list[dict]:
    rows, cols = gpos.shape
    rw, rb = par["r_wl_segment"], par["r_bl_segment"]
    out = []
    for i in range(rows):
        out.append(_res(f"RW_{i}_0", f"wl_{i}", f"w_{i}_0", rw))
        for k in range(2 * cols):
            j, side = divmod(k, 2)
            out.append(_cell("N" if side else "P", i, j, f"w_{i}_{k}", f"b_{k}_{i}", gneg[i, j] if side else gpos[i, j]))
            if k + 1 < 2 * cols:
                out.append(_res(f"RW_{i}_{k + 1}", f"w_{i}_{k}", f"w_{i}_{k + 1}", rw))
            below = f"b_{k}_{i + 1}" if i + 1 < rows else f"bl{'n' if side else 'p'}_{j}"
            out.append(_res(f"RB_{k}_{i}", f"b_{k}_{i}", below, rb))
    return out


def _render_cells(elements: list[dict], pdk, fet_model: dict | None) -> list[dict]:
    """Cells as the PDK builds them: a resistor (1R), or an RRAM B source plus an access
    transistor (1T1R, see compiler/pdk/devices.py for the RRAM equation and ``specialize_fet``)."""
    out = []
    for e in elements:
        if e["type"] != "cell":
            out.append(e)
        elif pdk.cell["type"] == "1r":
            out.append(_res(f"R{e['side']}_{e['i']}_{e['j']}", e["top"], e["bottom"], 1.0 / e["g"]))
        else:
            rram = pdk.cell["rram"]
            mid = f"m{e['side'].lower()}_{e['i']}_{e['j']}"
            out.append({"type": "rram", "name": f"BR{e['side']}_{e['i']}_{e['j']}", "a": e["top"], "b": mid,
                        "nonlinear": rram["nonlinear"], "g": spice_num(e["g"]),
                        "coef": spice_num(e["g"] * rram["v0"]), "v0": spice_num(rram["v0"])})
            out.append({"type": "fet", "name": f"M{e['side']}_{e['i']}_{e['j']}", "d": mid, "g": "sel",
                        "s": e["bottom"], "model": fet_model["model"], "attrs": fet_model["attrs"]})
    return out


def tia_context(rf: float, pdk) -> dict:
    """Numbers of one TIA. The op-amp macromodel is a transconductor gm into R1 || C1 and a unity
    buffer: DC gain A0 = gm * R1 and gain-bandwidth GBW = gm / (2 pi C1)."""
    if pdk.tia["type"] == "ideal":
        return {"type": "ideal", "rf": spice_num(rf), "gain": spice_num(-rf), "transimpedance": rf}
    a0, r1 = pdk.tia["gain"], 1.0e6
    gm = a0 / r1
    return {"type": "opamp", "rf": spice_num(rf), "gm": spice_num(gm), "r1": spice_num(r1),
            "c1": spice_num(gm / (2 * math.pi * pdk.tia["gbw_hz"])), "a0": spice_num(a0),
            # at DC: V(bl) = Rf I / (A0 + 1) and V(out) = -Rf I A0 / (A0 + 1)
            "transimpedance": rf * a0 / (a0 + 1.0)}


def tile_context(ir: IR, t: str, pdk, fet_model: dict | None = None) -> dict:
    d = ir.g.nodes[t]
    a, p = d["attrs"], d["params"]
    rows, cols = p["gpos"].shape
    par = a["parasitics"]
    cells = _mesh(p["gpos"], p["gneg"], par) if par else _ideal(p["gpos"], p["gneg"])
    ports = [f"wl_{i}" for i in range(rows)] + [f"out_{j}" for j in range(cols)]
    if pdk.cell["type"] == "1t1r":
        ports.append("sel")
    return {
        "name": t,
        "subckt": f"xbar_{t}",
        "rows": rows,
        "cols": cols,
        "port_lines": chunks(ports, PORTS_PER_LINE),
        "elements": _render_cells(cells, pdk, fet_model),
        "columns": list(range(cols)),
        "tia": tia_context(a["rf_ohm"], pdk),
        "parasitics": None if not par else {k: spice_num(v) for k, v in par.items()},
        "adc_full_scale": spice_num(a["adc_full_scale_a"]),
        "layer": a["layer"],
        "row0": a["row0"],
        "col0": a["col0"],
    }


def emit_spice(ir: IR, pdk, env, source_sha: str, corner: str = "tt") -> dict[str, str]:
    design = sanitize(ir.name)
    cards = model_cards(pdk.models, corner) if pdk.models else []
    fet_model = None
    if pdk.cell["type"] == "1t1r":
        fet = pdk.cell["transistor"]
        fet_model = specialize_fet(pdk.models, fet["subckt"], fet["w_um"], fet["l_um"])
        cards += fet_model["cards"]
    common = {"version": __version__, "design": design, "source_sha": source_sha, "pdk": pdk,
              "reltol": spice_num(pdk.reltol), "abstol": spice_num(pdk.abstol), "model_cards": cards,
              "v_gate": spice_num(pdk.cell.get("v_gate", 0.0))}
    files: dict[str, str] = {}
    tiles = ir.nodes_of("xbar_tile")
    ctxs = [tile_context(ir, t, pdk, fet_model) for t in tiles]
    for c in ctxs:
        sub = render(env, "crossbar", tile=c, **common)
        files[f"spice/tiles/{c['name']}.sp"] = sub
        ins = [{"src": f"VIN_{i}", "node": f"in_{i}"} for i in range(c["rows"])]
        conns = [s["node"] for s in ins] + [f"out_{j}" for j in range(c["cols"])]
        files[f"spice/tb/{c['name']}_tb.sp"] = render(
            env, "testbench", tile=c, subckt_text=sub, sources=ins,
            conn_lines=chunks(conns, PORTS_PER_LINE), **common)
    # chip.sp: tiles of one layer that read the same rows share the DAC nets of those rows
    dacs: dict[tuple[str, int], str] = {}
    insts = []
    for c in ctxs:
        nets = []
        for i in range(c["rows"]):
            key = (c["layer"], c["row0"] + i)
            dacs.setdefault(key, f"{c['layer']}_x_{c['row0'] + i}")
            nets.append(dacs[key])
        nets += [f"{c['name']}_out_{j}" for j in range(c["cols"])]
        insts.append({"inst": f"X{c['name']}", "subckt": c["subckt"], "conn_lines": chunks(nets, PORTS_PER_LINE),
                      "include": f"tiles/{c['name']}.sp"})
    sources = [{"src": f"V{net}", "node": net} for _, net in sorted(dacs.items())]
    files["spice/chip.sp"] = render(env, "chip", instances=insts, sources=sources, **common)
    return files
