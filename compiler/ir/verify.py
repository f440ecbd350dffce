"""IR verifier: run after the front end and (with verify_each) after every pass."""

from __future__ import annotations

import networkx as nx
import numpy as np

from .graph import IR
from .ops import REGISTRY, fail as _fail


#: The largest tensor (per sample) amsc accepts: 32 Mi elements (VGG-19's first im2col patches are
#: 224*224 positions x 576 = 29 M). The calibration evaluates few enough samples at once that such a
#: tensor stays within RANGE_BYTES (ir/interp.py); a larger one is refused before any work.
MAX_TENSOR_ELEMENTS = 1 << 25


def verify_ir(ir: IR) -> None:
    g = ir.g
    if not nx.is_directed_acyclic_graph(g):
        _fail(ir, None, "graph has a cycle")
    if not ir.nodes_of("input"):
        _fail(ir, None, "graph has no input")
    if not ir.nodes_of("output"):
        _fail(ir, None, "graph has no output")
    for n in sorted(g.nodes):
        d = g.nodes[n]
        for key in ("op", "shape", "dtype", "attrs", "params", "origin"):
            if key not in d:
                _fail(ir, n, f"missing node field '{key}'")
        op = d["op"]
        if op not in REGISTRY:
            _fail(ir, n, f"unknown op '{op}'")
        arity, attrs, params = REGISTRY[op].arity, REGISTRY[op].attrs, REGISTRY[op].params
        if d["dtype"] != "float32":
            _fail(ir, n, f"dtype {d['dtype']!r}, expected 'float32'")
        if not all(isinstance(s, int) and s > 0 for s in d["shape"]):
            _fail(ir, n, f"bad shape {d['shape']}")
        if _size(d["shape"]) > MAX_TENSOR_ELEMENTS:
            _fail(ir, n, f"tensor of shape {list(d['shape'])} has {_size(d['shape'])} elements per sample; "
                         f"the limit is {MAX_TENSOR_ELEMENTS}")
        slots = sorted(s for _, _, s in g.in_edges(n, data="slot"))
        if slots != list(range(len(slots))):
            _fail(ir, n, f"operand slots {slots} are not 0..{len(slots) - 1}")
        if arity is None:
            if not slots:
                _fail(ir, n, f"op '{op}' needs at least one operand")
        elif len(slots) != arity:
            _fail(ir, n, f"op '{op}' needs {arity} operand(s), has {len(slots)}")
        for a in attrs:
            if a not in d["attrs"]:
                _fail(ir, n, f"op '{op}' is missing attribute '{a}'")
        for p in params:
            if p not in d["params"]:
                _fail(ir, n, f"op '{op}' is missing parameter '{p}'")
        for pname, arr in sorted(d["params"].items()):
            if not isinstance(arr, np.ndarray):
                _fail(ir, n, f"parameter '{pname}' is not an array")
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                _fail(ir, n, f"parameter '{pname}' has NaN or Inf values")
        if op != "output" and op != "input" and not list(g.successors(n)):
            _fail(ir, n, "result is never used (dangling node)")
        _check_op(ir, n, d)


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _check_op(ir: IR, n: str, d: dict) -> None:
    """The op's own shape rule and checks, from its registry entry."""
    REGISTRY[d["op"]].check(ir, n, d, [ir.g.nodes[i]["shape"] for i in ir.inputs(n)])
