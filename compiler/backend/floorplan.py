"""Floorplan back end: placement.json and a drawing of the tile grid as placement.png and placement.svg."""

from __future__ import annotations

import io

from ..ir import IR
from ..design.writer import json_text


def placement_json(ir: IR) -> str:
    fp = ir.g.graph["floorplan"]
    cells = []
    for n in ir.topo():
        d = ir.g.nodes[n]
        if "grid" in d["attrs"]:
            cells.append({"name": n, "kind": "tile" if d["op"] == "xbar_tile" else "digital",
                          "layer": d["attrs"]["layer"], "slot": d["attrs"]["grid"]})
    return json_text({**fp, "cells": cells})


#: Above this many placed cells the picture drops per-cell labels and data-flow lines: tiles are
#: pixels coloured by layer, units are marked, and a per-layer summary stands beside the grid.
DETAIL_MAX = 400


def _cells(ir: IR) -> tuple[list, dict]:
    order = {n: k for k, n in enumerate(ir.topo())}
    cells = [(n, ir.g.nodes[n]["attrs"], ir.g.nodes[n]["op"]) for n in order if "grid" in ir.g.nodes[n]["attrs"]]
    return cells, order


def placement_images(ir: IR) -> tuple[bytes, bytes]:
    """placement.png and placement.svg: the same drawing, as pixels and as vectors."""
    fig = _figure(ir)
    return _save(fig, "png"), _save(fig, "svg")


def _figure(ir: IR):
    cells, order = _cells(ir)
    if len(cells) > DETAIL_MAX:
        return _summary_figure(ir, cells, order)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    fp = ir.g.graph["floorplan"]
    rows, cols = fp["grid"]
    pos, layer_of, kind = {}, {}, {}
    for n, a, op in cells:
        pos[n] = (a["grid"][1], rows - 1 - a["grid"][0])  # x = column, y up
        layer_of[n] = a["layer"]
        kind[n] = op
    for pad, (r, c) in fp["pads"].items():
        pos[pad] = (c, rows - 1 - r)
    layers = sorted(set(layer_of.values()), key=lambda lay: order.get(lay, 10 ** 9))
    colors = {lay: f"C{k % 10}" for k, lay in enumerate(layers)}
    fig = Figure(figsize=(max(4.0, 0.9 * cols + 2.5), max(3.0, 0.9 * rows + 1.0)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.05, 0.08, 0.7, 0.84))
    for a, b in fp["edges"]:
        (x0, y0), (x1, y1) = pos[a], pos[b]
        ax.plot([x0, x1], [y0, y1], color="0.55", linewidth=0.8, zorder=1)
    for n, (x, y) in pos.items():
        if n.startswith("@"):
            ax.add_patch(Rectangle((x - 0.2, y - 0.2), 0.4, 0.4, color="black", zorder=2))
            ax.text(x, y - 0.38, "in" if n == "@in" else "out", ha="center", va="top", fontsize=7)
            continue
        tile = kind[n] == "xbar_tile"
        ax.add_patch(Rectangle((x - 0.4, y - 0.4), 0.8, 0.8, facecolor=colors[layer_of[n]], alpha=0.85 if tile else 0.35,
                               edgecolor="black", hatch=None if tile else "//", zorder=2))
        ax.text(x, y, n if len(n) <= 12 else n[:11] + "…", ha="center", va="center", fontsize=6, zorder=3)
    ax.set_xlim(-1.6, cols + 0.6)
    ax.set_ylim(-0.8, rows - 0.2)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"{ir.name}: wirelength {fp['wirelength']} (row-major {fp['baseline_wirelength']}), seed {fp['seed']}",
                 fontsize=9)
    handles = [Rectangle((0, 0), 1, 1, color=colors[lay]) for lay in layers]
    fig.legend(handles, [f"{lay}" for lay in layers], loc="center right", fontsize=7, title=f"layer (hatched: {fp.get('units', 'digital')})",
               title_fontsize=7)
    return fig


def _save(fig, fmt: str) -> bytes:
    """The figure as PNG or SVG bytes, deterministic: no software or date stamps, fixed SVG ids."""
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "amsc", "svg.fonttype": "none"}):
        meta = {"Software": None} if fmt == "png" else {"Date": None, "Creator": None}
        fig.savefig(buf, format=fmt, metadata=meta)
    return buf.getvalue()


def _summary_figure(ir: IR, cells: list, order: dict):
    """A large floorplan: one pixel per slot coloured by layer (digital units outlined in black),
    and the tile count of every layer as bars in the same colours."""
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fp = ir.g.graph["floorplan"]
    rows, cols = fp["grid"]
    layers = sorted({a["layer"] for _, a, _ in cells}, key=lambda lay: order.get(lay, 10 ** 9))
    lid = {lay: k for k, lay in enumerate(layers)}
    cmap = colormaps["tab20"]
    img = np.ones((rows, cols, 3))
    counts = np.zeros(len(layers), int)
    units = []
    for _, a, op in cells:
        r, c = a["grid"]
        k = lid[a["layer"]]
        img[r, c] = cmap(k % 20)[:3]
        if op == "xbar_tile":
            counts[k] += 1
        else:
            units.append((c, r))
    fig = Figure(figsize=(13.0, 8.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.03, 0.06, 0.6, 0.86))
    ax.imshow(img, interpolation="nearest", aspect="equal")
    if units:
        ux, uy = zip(*units)
        ax.scatter(ux, uy, s=12, facecolors="none", edgecolors="black", linewidths=0.8, label="digital unit")
        ax.legend(loc="lower left", fontsize=7, bbox_to_anchor=(0, -0.07))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"{ir.name}: {int(counts.sum())} tiles and {len(units)} digital units on a {rows}x{cols} grid; "
                 f"wirelength {fp['wirelength']:.0f} (row-major {fp['baseline_wirelength']:.0f}), seed {fp['seed']}",
                 fontsize=9)
    bx = fig.add_axes((0.72, 0.06, 0.26, 0.86))
    y = np.arange(len(layers))
    bx.barh(y, counts, color=[cmap(k % 20) for k in range(len(layers))])
    bx.set_yticks(y)
    bx.set_yticklabels(layers, fontsize=max(3, min(7, int(500 / max(1, len(layers))))))
    bx.invert_yaxis()
    bx.set_xlabel("tiles per layer", fontsize=8)
    bx.tick_params(axis="x", labelsize=7)
    return fig
