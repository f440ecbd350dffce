"""IR verifier: run after the front end and (with verify_each) after every pass."""

from __future__ import annotations

import networkx as nx
import numpy as np

from ..errors import IRVerifyError
from .graph import ACTIVATIONS, IR, OPS


def _fail(ir: IR, node: str | None, what: str):
    where = f"{ir.source or ir.name}" + (f": node '{node}'" if node else "")
    raise IRVerifyError(where, what)


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
        if op not in OPS:
            _fail(ir, n, f"unknown op '{op}'")
        arity, attrs, params = OPS[op]
        if d["dtype"] != "float32":
            _fail(ir, n, f"dtype {d['dtype']!r}, expected 'float32'")
        if not all(isinstance(s, int) and s > 0 for s in d["shape"]):
            _fail(ir, n, f"bad shape {d['shape']}")
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


def _in_shape(ir: IR, n: str, k: int = 0) -> tuple[int, ...]:
    return ir.g.nodes[ir.inputs(n)[k]]["shape"]


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _check_op(ir: IR, n: str, d: dict) -> None:
    op, shape, attrs, params = d["op"], d["shape"], d["attrs"], d["params"]
    if op in ("output", "identity", "relu", "add_const"):
        if _in_shape(ir, n) != shape:
            _fail(ir, n, f"shape {shape} differs from operand shape {_in_shape(ir, n)}")
        if op == "add_const" and params["c"].shape != shape:
            _fail(ir, n, f"constant shape {params['c'].shape} differs from {shape}")
    elif op == "reshape":
        if _size(_in_shape(ir, n)) != _size(shape):
            _fail(ir, n, f"reshape {_in_shape(ir, n)} -> {shape} changes the element count")
    elif op == "dense":
        W, b = params["W"], params["b"]
        ins = _in_shape(ir, n)
        if len(ins) != 1 or W.ndim != 2 or W.shape[1] != ins[0]:
            _fail(ir, n, f"weight shape {W.shape} does not fit operand shape {ins}")
        if shape != (W.shape[0],) or b.shape != (W.shape[0],):
            _fail(ir, n, f"output shape {shape} / bias {b.shape} do not fit weight {W.shape}")
        if attrs["activation"] not in ACTIVATIONS:
            _fail(ir, n, f"activation {attrs['activation']!r} not in {ACTIVATIONS}")
        if "gpos" in params:
            for p in ("gpos", "gneg"):
                if params[p].shape != W.T.shape or np.any(params[p] <= 0):
                    _fail(ir, n, f"'{p}' must be positive with shape {W.T.shape}")
    elif op == "xbar_tile":
        rows, cols = attrs["row1"] - attrs["row0"], attrs["col1"] - attrs["col0"]
        if not (0 < rows <= attrs["tile_rows"] and 0 < 2 * cols <= attrs["tile_cols"]):
            _fail(ir, n, f"slice {rows}x{cols} (x2 bit lines) does not fit the "
                         f"{attrs['tile_rows']}x{attrs['tile_cols']} tile")
        for p in ("gpos", "gneg"):
            if params[p].shape != (rows, cols) or np.any(params[p] <= 0):
                _fail(ir, n, f"'{p}' must be positive with shape {(rows, cols)}")
        if shape != (cols,):
            _fail(ir, n, f"output shape {shape} differs from ({cols},)")
        if attrs["row1"] > _size(_in_shape(ir, n)):
            _fail(ir, n, "row slice exceeds the operand size")
    elif op == "accum":
        tiles = ir.inputs(n)
        width = 0
        for t in tiles:
            td = ir.g.nodes[t]
            if td["op"] != "xbar_tile" or td["attrs"]["layer"] != attrs["layer"]:
                _fail(ir, n, f"operand '{t}' is not a tile of layer {attrs['layer']}")
        if len(tiles) != attrs["row_splits"] * attrs["col_splits"]:
            _fail(ir, n, "operand count differs from row_splits x col_splits")
        for t in tiles[: attrs["col_splits"]]:
            width += ir.g.nodes[t]["shape"][0]
        if shape != (width,) or params["b"].shape != shape:
            _fail(ir, n, f"output shape {shape} / bias do not match the tiles' width {width}")
        if attrs["activation"] not in ACTIVATIONS:
            _fail(ir, n, f"activation {attrs['activation']!r} not in {ACTIVATIONS}")
