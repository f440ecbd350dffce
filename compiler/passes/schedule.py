"""schedule: give each tile the step in which it runs.

Tiles run as soon as every tile their input depends on has finished (ASAP by data dependence);
all tiles of one layer therefore share a step and run in parallel.
"""

from __future__ import annotations

from ..ir import IR


def schedule(ir: IR, options, pdk) -> IR:
    ir = ir.copy()
    depth: dict[str, int] = {}
    for n in ir.topo():
        d = ir.g.nodes[n]
        base = max((depth[p] for p in ir.inputs(n)), default=0)
        if d["op"] == "xbar_tile":
            ir.set(n, attrs={**d["attrs"], "step": base})
            depth[n] = base + 1
        else:
            depth[n] = base
    return ir
