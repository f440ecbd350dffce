"""Canonical JSON form of the IR: sorted keys, topological node order, arrays by digest."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from .. import __version__
from .graph import IR


def array_digest(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a)
    out = {
        "dtype": str(a.dtype),
        "shape": list(a.shape),
        "sha256": hashlib.sha256(a.tobytes()).hexdigest(),
    }
    if a.size:
        out["min"] = float(a.min())
        out["max"] = float(a.max())
    return out


def ir_to_dict(ir: IR) -> dict:
    nodes = []
    for n in ir.topo():
        d = ir.g.nodes[n]
        nodes.append({
            "name": n,
            "op": d["op"],
            "origin": d["origin"],
            "shape": list(d["shape"]),
            "dtype": d["dtype"],
            "inputs": ir.inputs(n),
            "attrs": d["attrs"],
            "params": {k: array_digest(v) for k, v in sorted(d["params"].items())},
        })
    return {"amsc_ir": 1, "amsc_version": __version__, "name": ir.name, "nodes": nodes, "graph": dict(ir.g.graph)}


def canonical_json(obj) -> str:
    """The one JSON text form of amsc's outputs: sorted keys, no NaN, a trailing newline."""
    return json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n"


def ir_to_json(ir: IR) -> str:
    return canonical_json(ir_to_dict(ir))
