"""Verilog back end: per-tile analog macro (black box) and wrapper, the sequencing controller and
the top level. Buses are flat: ``dac_in[(i+1)*DAC_BITS-1 : i*DAC_BITS]`` is word line ``i``."""

from __future__ import annotations

import math

from .. import __version__
from ..ir import IR
from ..ir.names import sanitize
from .render import render


def verilog_context(ir: IR, pdk) -> dict:
    prefix = sanitize(ir.name)
    tiles = []
    for k, t in enumerate(sorted(ir.nodes_of("xbar_tile"), key=lambda n: (ir.g.nodes[n]["attrs"]["step"], n))):
        a = ir.g.nodes[t]["attrs"]
        rows, cols = a["row1"] - a["row0"], a["col1"] - a["col0"]
        tiles.append({
            "index": k, "name": t, "step": a["step"], "rows": rows, "cols": cols,
            "module": f"{prefix}_tile_{t}", "macro": f"{prefix}_xbar_{t}",
            "dac_width": rows * pdk.dac_bits, "adc_width": cols * pdk.adc_bits,
            "grid": a["grid"], "layer": a["layer"],
        })
    n_steps = max((t["step"] for t in tiles), default=0) + 1
    masks = []
    for s in range(n_steps):
        bits = "".join("1" if t["step"] == s else "0" for t in reversed(tiles))
        masks.append({"step": s, "bits": bits})
    return {
        "version": __version__, "design": prefix, "prefix": prefix, "pdk": pdk, "tiles": tiles,
        "n_tiles": len(tiles), "n_steps": n_steps, "step_width": max(1, math.ceil(math.log2(n_steps))),
        "masks": masks, "dac_bits": pdk.dac_bits, "adc_bits": pdk.adc_bits,
    }


def emit_verilog(ir: IR, pdk, env, source_sha: str) -> dict[str, str]:
    ctx = verilog_context(ir, pdk)
    ctx["source_sha"] = source_sha
    files = {}
    for t in ctx["tiles"]:
        files[f"rtl/{t['macro']}.v"] = render(env, "verilog_macro", tile=t, **ctx)
        files[f"rtl/{t['module']}.v"] = render(env, "verilog_tile", tile=t, **ctx)
    files[f"rtl/{ctx['prefix']}_ctrl.v"] = render(env, "verilog_ctrl", **ctx)
    files[f"rtl/{ctx['prefix']}_top.v"] = render(env, "verilog_top", **ctx)
    files["rtl/files.f"] = "".join(f"{p[len('rtl/'):]}\n" for p in sorted(files))
    return files
