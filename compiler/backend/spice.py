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
from collections import Counter

import numpy as np

from .. import __version__
from ..ir import IR
from ..ir.names import sanitize
from ..passes.fault_map import physical_tile
from ..pdk.devices import SINH_LIMIT, model_cards, specialize_fet
from ..passes.tile import adc_groups, adc_pool_of, adc_pools, tile_adc_share
from .readout import emit_readout, files as readout_files
from .render import chunks, render, spice_num

PORTS_PER_LINE = 8


def _esc(text: str) -> str:
    """Fixed netlist text inside a %-template."""
    return text.replace("%", "%%")


def _cell_template(pdk, fet_model: dict | None, side: str, j: int, top: str, bottom: str, guard: bool = False) -> str:
    """The line(s) of one device as a %-template: ``%s`` stands for its value (see
    :func:`_cell_values`); ``{I}`` for its row. A 1R cell is a resistor; a 1T1R cell an RRAM B
    source to a mid node plus the access transistor (see compiler/pdk/devices.py). ``guard``: the
    RRAM's sinh continues along its tangent beyond SINH_LIMIT V0, for decks whose Newton iterates
    can leave the supply range (continuous-time dynamics); it doubles the B sources' cost, and a
    network tile's operating point never needed it."""
    name = f"{side}_{{I}}_{j}"
    if pdk.cell["type"] == "1r":
        return f"R{name} {_esc(top)} {_esc(bottom)} %s\n"
    rram = pdk.cell["rram"]
    mid = f"m{side.lower()}_{{I}}_{j}"
    x = f"V({_esc(top)},{mid})/{_esc(spice_num(rram['v0']))}"
    if rram["nonlinear"] and guard:
        xc = f"min(max({x},-{SINH_LIMIT}),{SINH_LIMIT})"
        br = f"BR{name} {top} {mid} I = %s*(sinh({xc})+{spice_num(math.cosh(SINH_LIMIT))}*({x}-{xc}))\n"
    elif rram["nonlinear"]:
        br = f"BR{name} {top} {mid} I = %s*sinh({x})\n"
    else:
        br = f"BR{name} {top} {mid} I = %s*V({_esc(top)},{mid})\n"
    return br + f"M{name} {mid} sel {_esc(bottom)} 0 {_esc(fet_model['model'])} {_esc(fet_model['attrs'])}\n"


def _cell_values(pdk, g: np.ndarray) -> np.ndarray:
    """The number each device's line carries: 1/G of a resistor, G*V0 (or G) of an RRAM source."""
    if pdk.cell["type"] == "1r":
        return 1.0 / g
    rram = pdk.cell["rram"]
    return g * rram["v0"] if rram["nonlinear"] else g


def format_unique(values: np.ndarray) -> np.ndarray:
    """``spice_num`` of every element, formatting each distinct value once (quantized conductances
    take only a few hundred distinct values): an object array of the input's shape."""
    u, inv = np.unique(values, return_inverse=True)
    return np.array([spice_num(x) for x in u], dtype=object)[inv.reshape(values.shape)]


def _row_templates(pdk, fet_model, rows: int, cols: int, par: dict | None, wl: str = "wl",
                   guard: bool = False, reader: np.ndarray | None = None) -> tuple[str, str]:
    """%-templates of one row of devices (and, with parasitics, its wire segments), for the rows
    above the last and for the last row (where the bit-line segments end at the TIA nodes).
    ``wl``: the word-line nodes the rows start at (``wlt`` behind a compensated tile's DAC trims);
    with parasitics a row's driver node is ``{W}``. ``reader``: the output each physical pair of bit
    lines is read as (-1: unread, its bit lines end at ground); identity without it."""
    if not par:
        t = "".join(_cell_template(pdk, fet_model, s, j, "wl_{I}", f"bl{s.lower()}_{j}", guard)
                    for j in range(cols) for s in ("P", "N"))
        return t, t
    rw, rb = _esc(spice_num(par["r_wl_segment"])), _esc(spice_num(par["r_bl_segment"]))
    out = []
    for last in (False, True):
        parts = [f"RW_{{I}}_0 {{W}} w_{{I}}_0 {rw}\n"]
        for k in range(2 * cols):
            j, side = divmod(k, 2)
            s = "N" if side else "P"
            parts.append(_cell_template(pdk, fet_model, s, j, f"w_{{I}}_{k}", f"b_{k}_{{I}}", guard))
            if k + 1 < 2 * cols:
                parts.append(f"RW_{{I}}_{k + 1} w_{{I}}_{k} w_{{I}}_{k + 1} {rw}\n")
            out_j = j if reader is None else int(reader[j])
            below = (f"bl{s.lower()}_{out_j}" if out_j >= 0 else "0") if last else f"b_{k}_{{I1}}"
            parts.append(f"RB_{k}_{{I}} b_{k}_{{I}} {below} {rb}\n")
        out.append("".join(parts))
    return out[0], out[1]


def device_block(gpos: np.ndarray, gneg: np.ndarray, pdk, fet_model: dict | None, par: dict | None,
                 wl: str = "wl", guard: bool = False, driver: np.ndarray | None = None,
                 reader: np.ndarray | None = None) -> str:
    """Every device (and wire segment) line of a tile, formatted in bulk: one %-template per row,
    filled with the row's pre-formatted values. Rows run word line by word line; within a row the
    devices go G+ then G- per output, and with parasitics each device is followed by its next
    word-line segment and the bit-line segment below it. With parasitics, ``driver`` and ``reader``
    (:func:`compiler.passes.fault_map.physical_tile`) say which input drives each physical word line
    and which output reads each physical pair (a chip's placement); identity without them."""
    rows, cols = gpos.shape
    vals = format_unique(_cell_values(pdk, np.stack([gpos, gneg], axis=-1).reshape(rows, 2 * cols)))
    inner, last = _row_templates(pdk, fet_model, rows, cols, par, wl, guard, reader)
    parts = []
    for i in range(rows):
        t = last if i == rows - 1 else inner
        src = i if driver is None else int(driver[i])
        t = t.replace("{W}", f"{wl}_{src}" if src >= 0 else "0")
        parts.append(t.replace("{I1}", str(i + 1)).replace("{I}", str(i)) % tuple(vals[i]))
    return "".join(parts)[:-1]


def tia_context(rf: float, pdk) -> dict:
    """Numbers of one TIA. The op-amp macromodel is a transconductor gm into R1 || C1 and a unity
    buffer: DC gain A0 = gm * R1 and gain-bandwidth GBW = gm / (2 pi C1)."""
    if pdk.tia["type"] == "ideal":
        return {"type": "ideal", "rf": spice_num(rf), "gain": spice_num(-rf), "transimpedance": rf}
    a0, r1 = pdk.tia["gain"], 1.0e6
    gm = a0 / r1
    return {"type": "opamp", "rf": spice_num(rf), "gm": spice_num(gm), "r1": spice_num(r1),
            "c1": spice_num(gm / (2 * math.pi * pdk.tia["gbw_hz"])), "a0": spice_num(a0),
            "gbw_hz": spice_num(pdk.tia["gbw_hz"]),
            # at DC: V(bl) = Rf I / (A0 + 1) and V(out) = -Rf I A0 / (A0 + 1)
            "transimpedance": rf * a0 / (a0 + 1.0)}


def tile_context(ir: IR, t: str, pdk, fet_model: dict | None = None) -> dict:
    d = ir.g.nodes[t]
    a, p = d["attrs"], d["params"]
    rows, cols = p["gpos"].shape
    par = a["parasitics"]
    ports = [f"wl_{i}" for i in range(rows)] + [f"out_{j}" for j in range(cols)]
    if pdk.cell["type"] == "1t1r":
        ports.append("sel")
    tia = tia_context(a["rf_ohm"], pdk)
    comp = "gpos_comp" in p     # compensated (passes/compensate_ir.py): programmed values and trims
    gp, gn = (p["gpos_comp"], p["gneg_comp"]) if comp else (p["gpos"], p["gneg"])
    if par:     # the mesh in physical order: a chip's placement decides where each cell sits on the wires
        G, driver, reader = physical_tile(p, a, gp, gn)
        gp, gn, wires = G[:, 0::2], G[:, 1::2], {"driver": driver, "reader": reader}
    else:
        wires = {}
    if comp:
        devices = device_block(gp, gn, pdk, fet_model, par, "wlt", **wires)
        dac_trims = [{"i": i, "gain": spice_num(float(g))} for i, g in enumerate(p["dac_gain"])]
        gains = [spice_num(-a["rf_ohm"] * float(g)) for g in p["tia_gain"]]
        rfs = [spice_num(a["rf_ohm"] * float(g)) for g in p["tia_gain"]]      # an op-amp TIA's trimmed feedback
    else:
        devices = device_block(gp, gn, pdk, fet_model, par, **wires)
        dac_trims, gains, rfs = [], [tia.get("gain")] * cols, [tia["rf"]] * cols
    return {
        "name": t,
        "subckt": f"xbar_{t}",
        "rows": rows,
        "cols": cols,
        "port_lines": chunks(ports, PORTS_PER_LINE),
        "devices": devices,
        "columns": list(range(cols)),
        "tia_gains": gains,
        "tia_rfs": rfs,
        "dac_trims": dac_trims,
        "compensation": a.get("compensation"),
        "tia": tia,
        "parasitics": None if not par else {k: spice_num(v) for k, v in par.items()},
        "adc_full_scale": spice_num(a["adc_full_scale_a"]),
        "layer": a["layer"],
        "row0": a["row0"],
        "col0": a["col0"],
    }


def deck_context(design: str, pdk, source_sha: str, cards: list[str] = ()) -> dict:
    """What every SPICE template of a design is rendered with, besides its own items."""
    return {"version": __version__, "design": sanitize(design), "source_sha": source_sha, "pdk": pdk,
            "reltol": spice_num(pdk.reltol), "abstol": spice_num(pdk.abstol), "model_cards": list(cards),
            "v_gate": spice_num(pdk.cell.get("v_gate", 0.0))}


def readout_circuits(ir: IR, pools: dict | None = None) -> tuple[int, list[int]]:
    """The readout circuits a design's chip.sp instantiates, by their channels: the design's own
    share's (``--adc-share``; 1 when no tile keeps its ADCs at that share, as when the layers of a
    one-stage chip all share their stage's pool) and the others, sorted: the shares of its layers
    whose tiles keep their ADCs (``--adc-balance on``) and the ADCs the layers of a pipeline stage
    share (passes/tile.adc_pools, or ``pools`` where the caller has them); 1 (no readout) left out."""
    share = ir.g.graph.get("adc_share", 1)
    pooled = adc_pool_of(ir)
    used = {tile_adc_share(ir, t) for t in ir.nodes_of("xbar_tile") if t not in pooled}
    used |= {len(ch) for ch in (adc_pools(ir) if pools is None else pools).values()}
    return (share if share in used and share > 1 else 1), sorted(used - {1, share})


def _readout_inst(inst: str, m: int, ins: list[str], adp: str, adn: str) -> dict:
    """chip.sp's instance of readout ``amsc_ro<m>``: its ``m`` channels ``ins``, the readout clocks and
    its ADC's two inputs."""
    nets = ins + ["ro_smp", "ro_rst"] + [f"ro_sel_{k}" for k in range(m)] + [adp, adn]
    return {"inst": inst, "subckt": f"amsc_ro{m}", "conn_lines": chunks(nets, PORTS_PER_LINE), "include": None,
            "tile": False}


def emit_spice(ir: IR, pdk, env, source_sha: str, corner: str = "tt", seed: int = 0):
    """Yield ``(relative path, text)`` of every SPICE file, one tile at a time (a tile's text is
    dropped once it is written: no list of every netlist is ever held). With ADCs shared among M
    outputs (``ir.g.graph["adc_share"]``), also the readout subckt, its testbench and inputs
    (backend/readout.py), and in chip.sp one readout per M outputs of each tile."""
    cards = model_cards(pdk.models, corner) if pdk.models else []
    fet_model = None
    if pdk.cell["type"] == "1t1r":
        fet = pdk.cell["transistor"]
        fet_model = specialize_fet(pdk.models, fet["subckt"], fet["w_um"], fet["l_um"])
        cards += fet_model["cards"]
    common = deck_context(ir.name, pdk, source_sha, cards)
    # chip.sp: tiles of one layer that read the same rows share the DAC nets of those rows
    dacs: dict[tuple[str, int], str] = {}
    insts = []
    groups = adc_groups(ir)
    sizes = Counter(name for name, _ in groups.values())
    pooled, names, pools = adc_pool_of(ir), {}, adc_pools(ir)
    members: dict[str, list] = {}
    own, others = readout_circuits(ir, pools)
    # the readout circuits: the design's share's (when a tile keeps its ADCs at it), then the other
    # shares its layers take (--adc-balance on) and its stages' pools
    circuits = ([own] if own > 1 else []) + others
    for m in circuits:
        yield from emit_readout(pdk, env, common, m, pdk.tia_v_out_fs, seed, own=m == own)
    for t in ir.nodes_of("xbar_tile"):
        c = tile_context(ir, t, pdk, fet_model)
        yield f"spice/tiles/{c['name']}.sp", render(env, "crossbar", tile=c, **common)
        ins = [{"src": f"VIN_{i}", "node": f"in_{i}"} for i in range(c["rows"])]
        conns = [s["node"] for s in ins] + [f"out_{j}" for j in range(c["cols"])]
        yield f"spice/tb/{c['name']}_tb.sp", render(
            env, "testbench", tile=c, include=f"../tiles/{c['name']}.sp", sources=ins,
            conn_lines=chunks(conns, PORTS_PER_LINE), **common)
        nets = []
        for i in range(c["rows"]):
            key = (c["layer"], c["row0"] + i)
            dacs.setdefault(key, f"{c['layer']}_x_{c['row0'] + i}")
            nets.append(dacs[key])
        nets += [f"{c['name']}_out_{j}" for j in range(c["cols"])]
        insts.append({"inst": f"X{c['name']}", "subckt": c["subckt"], "conn_lines": chunks(nets, PORTS_PER_LINE),
                      "include": f"tiles/{c['name']}.sp", "tile": True})
        m = tile_adc_share(ir, t)
        if t in pooled:     # its ADCs are its stage's (below)
            names[t] = c["name"]
            continue
        if t in groups:
            # its ADC serves several tiles of its layer (passes/tile.adc_groups): one readout for the
            # group, with its last tile; tile q's outputs on channels q u.., u = m / g, the rest ground
            name, q = groups[t]
            members.setdefault(name, []).append((q, c["name"], c["cols"]))
            if len(members[name]) == sizes[name]:
                u, ins = m // ir.g.graph["adc_tiles"][ir.g.nodes[t]["attrs"]["layer"]], ["0"] * m
                for q, tn, cols in members.pop(name):
                    ins[q * u:q * u + cols] = [f"{tn}_out_{j}" for j in range(cols)]
                insts.append(_readout_inst(f"X{name}_ro", m, ins, f"{name}_adp", f"{name}_adn"))
            continue
        for g in range(-(-c["cols"] // m) if m > 1 else 0):
            # the last group's channels beyond the tile's outputs sample ground
            ins = [f"{c['name']}_out_{j}" if j < c["cols"] else "0" for j in range(g * m, (g + 1) * m)]
            insts.append(_readout_inst(f"X{c['name']}_ro{g}", m, ins, f"{c['name']}_adp_{g}", f"{c['name']}_adn_{g}"))
    for name, chans in pools.items():
        # an ADC the layers of a pipeline stage share (passes/tile.adc_pools): a slot of each
        # layer's outputs in turn, its channels past them on ground
        ins = [f"{names[ch[0]]}_out_{ch[1]}" if ch else "0" for ch in chans]
        insts.append(_readout_inst(f"X{name}_ro", len(chans), ins, f"{name}_adp", f"{name}_adn"))
    sources = [{"src": f"V{net}", "node": net} for _, net in sorted(dacs.items())]
    if circuits:   # the readout clocks, driven by the RTL's schedule (held low here: every switch open)
        sources += [{"src": f"V{net}", "node": net}
                    for net in ["ro_smp", "ro_rst"] + [f"ro_sel_{k}" for k in range(max(circuits))]]
        insts[:0] = [{"include": readout_files(m, m == own)["subckt_file"].split("/", 1)[1], "inst": None}
                     for m in circuits]
    yield "spice/chip.sp", render(env, "chip", instances=insts, sources=sources, share=own, others=others,
                                 grouped=bool(groups), pooled=bool(pooled), **common)
