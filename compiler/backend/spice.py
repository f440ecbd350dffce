"""SPICE back end (ngspice dialect): one subckt per tile, a testbench deck per tile, chip.sp.

Net names inside a tile subckt: word lines ``wl_<i>``, bit lines ``blp_<j>``/``bln_<j>`` (G+/G-),
TIA outputs ``outp_<j>``/``outn_<j>``, and the differential outputs ``out_<j>`` (ports).
Resistors are emitted word line by word line (row-major), the order the matrix is stored in.
"""

from __future__ import annotations

from .. import __version__
from ..ir import IR
from ..ir.names import sanitize
from .render import chunks, render, spice_num

PORTS_PER_LINE = 8


def tile_context(ir: IR, t: str) -> dict:
    d = ir.g.nodes[t]
    a, p = d["attrs"], d["params"]
    rows, cols = p["gpos"].shape
    res = []
    for i in range(rows):
        for j in range(cols):
            res.append({"name": f"RP_{i}_{j}", "a": f"wl_{i}", "b": f"blp_{j}", "value": spice_num(1.0 / p["gpos"][i, j])})
            res.append({"name": f"RN_{i}_{j}", "a": f"wl_{i}", "b": f"bln_{j}", "value": spice_num(1.0 / p["gneg"][i, j])})
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
