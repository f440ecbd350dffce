"""place: put every tile and every layer's digital unit on a 2-D grid of slots, minimizing the
total Manhattan wirelength of the data-flow edges, by simulated annealing.

Cells are the crossbar tiles and one digital unit per layer (its ADC read-out, accumulators and
activation; im2col and pooling sit in the same unit). Edges follow the data: the unit (or the chip
input) that produces a layer's input feeds every tile of that layer, every tile feeds its layer's
unit, and the last unit feeds the chip output. The chip input is a pad at the middle of the left
edge and the output a pad at the middle of the right edge.

The grid is the smallest near-square with a free slot for every fifth cell. The annealer starts
from the row-major order of the schedule (the baseline), proposes swaps of two slots (either may be
empty), accepts by the Metropolis rule, and cools geometrically. Every random choice comes from
``--seed``, so a seed gives one placement. Every state is legal (one cell per slot), so no
legalization step is needed.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import IR

MOVES_PER_CELL = 400


def _cells_and_edges(ir: IR) -> tuple[list[str], list[tuple[str, str]]]:
    order = {n: k for k, n in enumerate(ir.topo())}
    tiles = sorted(ir.nodes_of("xbar_tile"), key=lambda t: (ir.g.nodes[t]["attrs"]["step"], order[t]))
    units = ir.nodes_of("accum")
    unit_of = {}  # IR node -> the placed cell that produces it (or the input pad)
    for n in ir.topo():
        d = ir.g.nodes[n]
        if d["op"] == "input":
            unit_of[n] = "@in"
        elif d["op"] == "accum":
            unit_of[n] = n
        elif d["op"] != "xbar_tile":
            ins = ir.inputs(n)
            # digital glue (im2col, pooling, reshapes) lives in the unit that produced its input
            unit_of[n] = unit_of[ins[0]] if ins else "@in"
    edges = []
    for t in tiles:
        edges.append((unit_of[ir.inputs(t)[0]], t))
        edges.append((t, ir.g.nodes[t]["attrs"]["layer"]))
    for o in ir.nodes_of("output"):
        edges.append((unit_of[ir.inputs(o)[0]], "@out"))
    cells = tiles + units
    return cells, sorted(set(edges))


def grid_shape(n: int) -> tuple[int, int]:
    slots = n + max(1, math.ceil(n / 5))
    cols = max(1, math.ceil(math.sqrt(slots)))
    return math.ceil(slots / cols), cols


def wirelength(pos: dict, edges, pads: dict) -> int:
    total = 0
    for a, b in edges:
        pa, pb = pads.get(a) or pos[a], pads.get(b) or pos[b]
        total += abs(pa[0] - pb[0]) + abs(pa[1] - pb[1])
    return total


def anneal(cells: list[str], edges, rows: int, cols: int, seed: int) -> tuple[dict, dict]:
    """Row-major start, then simulated annealing over slot swaps. Returns (final, baseline) positions."""
    pads = {"@in": (rows / 2 - 0.5, -1.0), "@out": (rows / 2 - 0.5, float(cols))}
    slot_of = {c: divmod(k, cols) for k, c in enumerate(cells)}
    baseline = dict(slot_of)
    if len(cells) < 2:
        return slot_of, baseline
    occupant = {s: c for c, s in slot_of.items()}
    incident: dict[str, list] = {c: [] for c in cells}
    for e in edges:
        for x in e:
            if x in incident:
                incident[x].append(e)

    def local(cs) -> float:
        seen = {e for c in cs if c for e in incident[c]}
        return wirelength(slot_of, seen, pads)

    rng = np.random.default_rng(seed)
    all_slots = [(r, c) for r in range(rows) for c in range(cols)]
    moves = MOVES_PER_CELL * len(cells)
    # initial temperature: accept a typical uphill move with probability ~0.5
    cost = wirelength(slot_of, edges, pads)
    t0 = max(1.0, cost / max(1, len(edges)))
    alpha = (0.01 / t0) ** (1.0 / moves)  # cool to T = 0.01 over the run
    temp = t0
    best, best_cost = dict(slot_of), cost
    for _ in range(moves):
        a = cells[int(rng.integers(len(cells)))]
        s_new = all_slots[int(rng.integers(len(all_slots)))]
        s_old = slot_of[a]
        if s_new == s_old:
            temp *= alpha
            continue
        b = occupant.get(s_new)
        before = local((a, b))
        slot_of[a] = s_new
        if b:
            slot_of[b] = s_old
        delta = local((a, b)) - before
        if delta <= 0 or rng.random() < math.exp(-delta / temp):
            occupant[s_new] = a
            if b:
                occupant[s_old] = b
            else:
                del occupant[s_old]
            cost += delta
            if cost < best_cost:
                best, best_cost = dict(slot_of), cost
        else:
            slot_of[a] = s_old
            if b:
                slot_of[b] = s_new
        temp *= alpha
    return best, baseline


def place(ir: IR, options, pdk) -> IR:
    ir = ir.copy()
    cells, edges = _cells_and_edges(ir)
    rows, cols = grid_shape(len(cells))
    final, baseline = anneal(cells, edges, rows, cols, options.seed)
    pads = {"@in": (rows / 2 - 0.5, -1.0), "@out": (rows / 2 - 0.5, float(cols))}
    for c in cells:
        ir.set(c, attrs={**ir.g.nodes[c]["attrs"], "grid": list(final[c])})
    ir.g.graph["floorplan"] = {
        "grid": [rows, cols], "seed": options.seed, "edges": [list(e) for e in edges],
        "pads": {k: list(v) for k, v in pads.items()},
        "wirelength": wirelength(final, edges, pads), "baseline_wirelength": wirelength(baseline, edges, pads),
        "baseline": "row-major in schedule order",
    }
    return ir
