"""A fast reference engine for linear resistive decks: modified nodal analysis with scipy.sparse.

The circuit matrix depends only on the elements, not on the source values, so it is factorized
once (SuperLU) and every input vector is one forward/backward solve. ngspice stays the sign-off
engine; this one answers the same questions much faster, straight from the same netlist text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SimulationError
from .netlist import parse


class MnaEngine:
    name = "mna"

    def __init__(self):
        import scipy

        self.version = f"scipy-{scipy.__version__}"

    def sweep(self, deck: str, where: str, sources: list[str], values: np.ndarray, probes: list[str],
              base_dir: Path | None = None) -> np.ndarray:
        import scipy.sparse as sp
        import scipy.sparse.linalg as spla

        elems = parse(deck, where, base_dir)
        nodes = sorted({n for e in elems for n in e.nodes} - {"0"})
        idx = {n: k for k, n in enumerate(nodes)}
        branch = [e for e in elems if e.kind in ("V", "E", "H")]
        bidx = {e.name: len(nodes) + k for k, e in enumerate(branch)}
        size = len(nodes) + len(branch)
        rows, cols, vals = [], [], []

        def stamp(r, c, v):
            if r is not None and c is not None:
                rows.append(r)
                cols.append(c)
                vals.append(v)

        rhs0 = np.zeros(size)
        for e in elems:
            a, b = idx.get(e.nodes[0]), idx.get(e.nodes[1])
            if e.kind == "R":
                if e.value <= 0:
                    raise SimulationError(where, f"{e.name}: non-positive resistance {e.value}")
                g = 1.0 / e.value
                stamp(a, a, g), stamp(b, b, g), stamp(a, b, -g), stamp(b, a, -g)
                continue
            k = bidx[e.name]
            # branch current k flows into the + terminal, through the source, out of the - terminal
            stamp(a, k, 1.0), stamp(b, k, -1.0), stamp(k, a, 1.0), stamp(k, b, -1.0)
            if e.kind == "V":
                rhs0[k] = e.value
            elif e.kind == "E":
                stamp(k, idx.get(e.nodes[2]), -e.value), stamp(k, idx.get(e.nodes[3]), e.value)
            else:  # H: V(n+) - V(n-) = gain * I(ctrl)
                if e.ctrl not in bidx:
                    raise SimulationError(where, f"{e.name}: controlling source '{e.ctrl}' not found")
                stamp(k, bidx[e.ctrl], -e.value)
        A = sp.csc_matrix((vals, (rows, cols)), shape=(size, size))
        try:
            lu = spla.splu(A)
        except RuntimeError as err:
            raise SimulationError(where, f"singular circuit matrix ({err})") from None
        src_rows = []
        for s in sources:
            if s.lower() not in bidx:
                raise SimulationError(where, f"source '{s}' not in the deck")
            src_rows.append(bidx[s.lower()])
        rhs = np.repeat(rhs0[:, None], values.shape[0], axis=1)
        rhs[src_rows, :] = values.T
        x = lu.solve(rhs)
        try:
            pidx = [idx[p.lower()] for p in probes]
        except KeyError as err:
            raise SimulationError(where, f"node {err} not in the deck") from None
        return x[pidx, :].T
