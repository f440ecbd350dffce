"""A fast reference engine for linear resistive decks: modified nodal analysis with scipy.sparse.

The circuit matrix depends only on the elements, not on the source values, so it is factorized
once (SuperLU) and every input vector is one forward/backward solve. ngspice stays the sign-off
engine; this one answers the same questions much faster, straight from the same netlist text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SimulationError
from .netlist import parse


@dataclass
class Circuit:
    """The MNA system ``A x = rhs`` of a deck: node voltages first, then source branch currents."""

    A: object                 # scipy.sparse.csc_matrix
    rhs0: np.ndarray          # right-hand side with every source at its deck value
    node: dict                # node name -> row
    branch: dict              # source name -> row of its branch equation (and current)

    def rhs(self, sources: list[str], values: np.ndarray, where: str) -> np.ndarray:
        """One right-hand side column per row of ``values`` (the DC values of ``sources``)."""
        rows = []
        for s in sources:
            if s.lower() not in self.branch:
                raise SimulationError(where, f"source '{s}' not in the deck")
            rows.append(self.branch[s.lower()])
        rhs = np.repeat(self.rhs0[:, None], values.shape[0], axis=1)
        rhs[rows, :] = values.T
        return rhs

    def probe_rows(self, probes: list[str], where: str) -> list[int]:
        """Rows of the probes: node voltages, or ``I(Vname)``, the branch current of a source (into its
        + terminal, as ngspice reports it)."""
        rows = []
        for p in probes:
            q = p.lower()
            table, key, what = ((self.branch, q[2:-1], "source") if q.startswith("i(") and q.endswith(")")
                                else (self.node, q, "node"))
            if key not in table:
                raise SimulationError(where, f"{what} '{key}' not in the deck")
            rows.append(table[key])
        return rows


def assemble(deck: str, where: str, base_dir: Path | None = None) -> Circuit:
    import scipy.sparse as sp

    elems = parse(deck, where, base_dir)
    nodes = sorted({n for e in elems for n in e.nodes} - {"0"})
    idx = {n: k for k, n in enumerate(nodes)}
    sources = [e for e in elems if e.kind in ("V", "E", "H")]
    bidx = {e.name: len(nodes) + k for k, e in enumerate(sources)}
    size = len(nodes) + len(sources)
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
        elif e.kind == "E":  # V(n+) - V(n-) = gain * (V(nc+) - V(nc-))
            stamp(k, idx.get(e.nodes[2]), -e.value), stamp(k, idx.get(e.nodes[3]), e.value)
        else:  # H: V(n+) - V(n-) = gain * I(ctrl)
            if e.ctrl not in bidx:
                raise SimulationError(where, f"{e.name}: controlling source '{e.ctrl}' not found")
            stamp(k, bidx[e.ctrl], -e.value)
    A = sp.csc_matrix((vals, (rows, cols)), shape=(size, size))
    return Circuit(A, rhs0, idx, bidx)


class MnaEngine:
    name = "mna"

    def __init__(self):
        import scipy

        self.version = f"scipy-{scipy.__version__}"

    def sweep(self, deck: str, where: str, sources: list[str], values: np.ndarray, probes: list[str],
              base_dir: Path | None = None) -> np.ndarray:
        """Same contract as the ngspice engine's ``sweep``: factorize once, solve every vector."""
        import scipy.sparse.linalg as spla

        c = assemble(deck, where, base_dir)
        try:
            lu = spla.splu(c.A)
        except RuntimeError as err:
            raise SimulationError(where, f"singular circuit matrix ({err})") from None
        x = lu.solve(c.rhs(sources, values, where))
        return x[c.probe_rows(probes, where), :].T


def mesh_transfer(g: np.ndarray, r_wl: float, r_bl: float, dac_gain: np.ndarray | None = None) -> np.ndarray:
    """The transfer of a 1R tile with its wire mesh, built straight from its conductances: ``T [K, R]``,
    the current into bit line k's virtual ground per volt on word line i (``g``: [R, K] cell
    conductances, bit lines in netlist order, G+ and G- of each output interleaved).

    The topology is the emitted one (``backend/spice.py``): word line i runs from its driver
    through one ``r_wl`` segment per cell, bit line k from row 0 through one ``r_bl`` segment per
    cell to its TIA, which holds it at 0 V. One sparse LU and R solves; it equals the MNA of the
    netlist (``tests/unit/test_compensate_ir.py``). ``dac_gain`` scales each word line's drive."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    R, K = g.shape
    nw = R * K
    ii, kk = np.meshgrid(np.arange(R), np.arange(K), indexing="ij")
    w, b = ii * K + kk, nw + ii * K + kk
    gw, gb = 1.0 / r_wl, 1.0 / r_bl
    rows, cols, vals = [], [], []

    def add(r, c, v):
        rows.append(r.ravel())
        cols.append(c.ravel())
        vals.append(np.broadcast_to(v, r.shape).ravel())

    add(w, w, g), add(b, b, g), add(w, b, -g), add(b, w, -g)                       # the cells
    add(w, w, np.full(w.shape, gw))                      # each word-line node to its left (k = 0: the driver)
    m = kk < K - 1
    add(w[m], w[m], gw), add(w[m], w[m] + 1, -gw), add(w[m] + 1, w[m], -gw)         # ... and to its right
    add(b, b, np.full(b.shape, gb))                      # each bit-line node below it (last row: the TIA)
    m = ii < R - 1
    add(b[m], b[m] + K, -gb), add(b[m] + K, b[m], -gb), add(b[m] + K, b[m] + K, gb)
    A = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(2 * nw, 2 * nw))
    rhs = np.zeros((2 * nw, R))
    rhs[np.arange(R) * K, np.arange(R)] = gw * (1.0 if dac_gain is None else np.asarray(dac_gain))
    x = spla.splu(A).solve(rhs)
    return gb * x[nw + (R - 1) * K + np.arange(K), :]
