"""IR graph: a networkx DiGraph whose nodes carry typed attributes.

Every node produces one tensor. Shapes are *per sample* (the batch axis is not part of the IR).
Node data, all required:

``op``      one of :data:`OPS` (the operator registry, ``ir/ops``)
``shape``   tuple of ints, the per-sample output shape
``dtype``   ``"float32"``
``attrs``   dict of JSON-able scalars/lists (op-specific, see the op's registry entry)
``params``  dict name -> read-only numpy array (weights, conductances)
``origin``  the name the node had in the source model (never emitted into SPICE/Verilog)

Edges carry ``slot``: the operand position at the consumer.
"""

from __future__ import annotations

import copy

import networkx as nx
import numpy as np

from .ops import REGISTRY

#: op -> (number of operands or None for "one or more", required attrs, required params): a view of the
#: operator registry (``ir/ops``), where each op is defined with its shape rule, kernels, home and unit.
OPS: dict[str, tuple[int | None, tuple[str, ...], tuple[str, ...]]] = {
    name: (o.arity, o.attrs, o.params) for name, o in sorted(REGISTRY.items())}

#: Ops that run on crossbars; everything else in the lowered IR is digital, or host (HOST_OPS).
MATMUL_OPS = tuple(sorted(n for n, o in REGISTRY.items() if o.home == "crossbar" and n != "xbar_tile"))
HOST_OPS = tuple(sorted(n for n, o in REGISTRY.items() if o.home == "host"))
#: Digital ops a host segment can compute too, as the ONNX operator they came from: the partition
#: moves one between host nodes to the host (passes/partition.py, ir/segment.py).
SWING_OPS = tuple(sorted(n for n, o in REGISTRY.items() if o.swing))


def _frozen(a: np.ndarray) -> np.ndarray:
    """A read-only array: a read-only array (or a view of one, such as a tile's slice of its layer's
    conductances) is shared as it is, anything else is copied once."""
    if isinstance(a, np.ndarray) and not a.flags.writeable:
        return a
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


class IR:
    """A model as a graph. Passes take an IR and return a new one (see :meth:`copy`)."""

    def __init__(self, name: str, source: str = ""):
        self.name = name
        self.source = source
        self.g = nx.DiGraph()

    # -- construction ---------------------------------------------------------------------------
    def add(self, name: str, op: str, shape, inputs=(), attrs=None, params=None, origin=None) -> str:
        if name in self.g:
            raise ValueError(f"duplicate IR node {name!r}")
        self.g.add_node(
            name,
            op=op,
            shape=tuple(int(s) for s in shape),
            dtype="float32",
            attrs=dict(attrs or {}),
            params={k: _frozen(v) for k, v in (params or {}).items()},
            origin=name if origin is None else str(origin),
        )
        for slot, src in enumerate(inputs):
            self.g.add_edge(src, name, slot=slot)
        return name

    def copy(self) -> "IR":
        new = IR(self.name, self.source)
        new.g = nx.DiGraph()
        new.g.graph.update(copy.deepcopy(self.g.graph))  # graph-level results of passes (e.g. floorplan)
        for n, d in self.g.nodes(data=True):
            # arrays are read-only, so sharing them is safe; attrs are deep-copied
            new.g.add_node(n, **{**d, "attrs": copy.deepcopy(d["attrs"]), "params": dict(d["params"])})
        for u, v, d in self.g.edges(data=True):
            new.g.add_edge(u, v, **d)
        return new

    # -- queries --------------------------------------------------------------------------------
    def inputs(self, name: str) -> list[str]:
        preds = sorted(self.g.in_edges(name, data="slot"), key=lambda e: e[2])
        return [u for u, _, _ in preds]

    def consumers(self, name: str) -> list[str]:
        return sorted(self.g.successors(name))

    def topo(self) -> list[str]:
        """Deterministic topological order (lexicographic among ready nodes)."""
        return list(nx.lexicographical_topological_sort(self.g))

    def nodes_of(self, op: str) -> list[str]:
        return [n for n in self.topo() if self.g.nodes[n]["op"] == op]

    # -- rewriting ------------------------------------------------------------------------------
    def replace_uses(self, old: str, new: str) -> None:
        """Make every consumer of ``old`` read ``new`` instead (same slot)."""
        for _, dst, slot in list(self.g.out_edges(old, data="slot")):
            self.g.remove_edge(old, dst)
            self.g.add_edge(new, dst, slot=slot)

    def bypass(self, name: str) -> None:
        """Remove a single-operand node, wiring its operand to its consumers."""
        (src,) = self.inputs(name)
        self.replace_uses(name, src)
        self.g.remove_node(name)

    def set(self, name: str, **fields) -> None:
        d = self.g.nodes[name]
        for k, v in fields.items():
            if k == "params":
                v = {pk: _frozen(pv) for pk, pv in v.items()}
            elif k == "shape":
                v = tuple(int(s) for s in v)
            d[k] = v
