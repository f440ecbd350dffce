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

from .. import __version__
from ..ir import IR
from ..ir.names import sanitize
from .render import chunks, render, spice_num

PORTS_PER_LINE = 8


def _res(name: str, a: str, b: str, ohm: float) -> dict:
    return {"name": name, "a": a, "b": b, "value": spice_num(ohm)}


def _ideal(gpos, gneg) -> list[dict]:
    rows, cols = gpos.shape
    out = []
    for i in range(rows):
        for j in range(cols):
            out.append(_res(f"RP_{i}_{j}", f"wl_{i}", f"blp_{j}", 1.0 / gpos[i, j]))
            out.append(_res(f"RN_{i}_{j}", f"wl_{i}", f"bln_{j}", 1.0 / gneg[i, j]))
    return out


def _mesh(gpos, gneg, par: dict) -> list[dict]:
    rows, cols = gpos.shape
    rw, rb = par["r_wl_segment"], par["r_bl_segment"]
    out = []
    for i in range(rows):
        out.append(_res(f"RW_{i}_0", f"wl_{i}", f"w_{i}_0", rw))
        for k in range(2 * cols):
            j, side = divmod(k, 2)
            g = gneg[i, j] if side else gpos[i, j]
            out.append(_res(f"R{'N' if side else 'P'}_{i}_{j}", f"w_{i}_{k}", f"b_{k}_{i}", 1.0 / g))
            if k + 1 < 2 * cols:
                out.append(_res(f"RW_{i}_{k + 1}", f"w_{i}_{k}", f"w_{i}_{k + 1}", rw))
            below = f"b_{k}_{i + 1}" if i + 1 < rows else f"bl{'n' if side else 'p'}_{j}"
            out.append(_res(f"RB_{k}_{i}", f"b_{k}_{i}", below, rb))
    return out


def tile_context(ir: IR, t: str) -> dict:
    d = ir.g.nodes[t]
    a, p = d["attrs"], d["params"]
    rows, cols = p["gpos"].shape
    par = a["parasitics"]
    res = _mesh(p["gpos"], p["gneg"], par) if par else _ideal(p["gpos"], p["gneg"])
    columns = [{"j": j, "gain": spice_num(-a["rf_ohm"])} for j in range(cols)]
    ports = [f"wl_{i}" for i in range(rows)] + [f"out_{j}" for j in range(cols)]
    return {
        "name": t,
        "subckt": f"xbar_{t}",
        "rows": rows,
        "cols": cols,
        "port_lines": chunks(ports, PORTS_PER_LINE),
        "resistors": res,
        "columns": columns,
        "rf": spice_num(a["rf_ohm"]),
        "parasitics": None if not par else {k: spice_num(v) for k, v in par.items()},
        "adc_full_scale": spice_num(a["adc_full_scale_a"]),
        "layer": a["layer"],
        "row0": a["row0"],
        "col0": a["col0"],
    }


def emit_spice(ir: IR, pdk, env, source_sha: str) -> dict[str, str]:
    design = sanitize(ir.name)
    common = {"version": __version__, "design": design, "source_sha": source_sha, "pdk": pdk,
              "reltol": spice_num(pdk.reltol), "abstol": spice_num(pdk.abstol)}
    files: dict[str, str] = {}
    tiles = ir.nodes_of("xbar_tile")
    ctxs = [tile_context(ir, t) for t in tiles]
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
