"""place: assign each tile a slot on a 2-D grid, row-major in schedule order.

The grid is the smallest square that holds all tiles. (A wirelength-driven placer replaces this.)
"""

from __future__ import annotations

import math

from ..ir import IR


def place(ir: IR, options, pdk) -> IR:
    ir = ir.copy()
    order = {n: k for k, n in enumerate(ir.topo())}
    tiles = sorted(ir.nodes_of("xbar_tile"), key=lambda t: (ir.g.nodes[t]["attrs"]["step"], order[t]))
    width = max(1, math.ceil(math.sqrt(len(tiles))))
    for k, t in enumerate(tiles):
        a = ir.g.nodes[t]["attrs"]
        ir.set(t, attrs={**a, "grid": [k // width, k % width]})
    return ir
