"""IR verifier: run after the front end and (with verify_each) after every pass."""

from __future__ import annotations

import networkx as nx
import numpy as np

from ..errors import IRVerifyError
from .graph import IR, OPS
from .kernels import ACT_KINDS, window_geometry


def _fail(ir: IR, node: str | None, what: str):
    where = f"{ir.source or ir.name}" + (f": node '{node}'" if node else "")
    raise IRVerifyError(where, what)


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
        if op not in OPS:
            _fail(ir, n, f"unknown op '{op}'")
        arity, attrs, params = OPS[op]
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


def _in_shape(ir: IR, n: str, k: int = 0) -> tuple[int, ...]:
    return ir.g.nodes[ir.inputs(n)[k]]["shape"]


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _check_act(ir: IR, n: str, act) -> None:
    if not isinstance(act, dict) or act.get("kind") not in ACT_KINDS:
        _fail(ir, n, f"activation {act!r} is not one of {ACT_KINDS}")
    need = {"leaky_relu": ("alpha",), "clip": ("lo", "hi")}.get(act["kind"], ())
    for k in need:
        if not isinstance(act.get(k), (int, float)):
            _fail(ir, n, f"activation {act['kind']} needs a number '{k}'")


def _check_window(ir: IR, n: str, a: dict, in_shape) -> tuple[int, int]:
    for key, ln in (("kernel", 2), ("stride", 2), ("pads", 4), ("dilation", 2)):
        v = a[key]
        if not (isinstance(v, list) and len(v) == ln and all(isinstance(x, int) for x in v)):
            _fail(ir, n, f"attribute '{key}' must be a list of {ln} integers, got {v!r}")
    if min(a["kernel"] + a["stride"] + a["dilation"]) < 1 or min(a["pads"]) < 0:
        _fail(ir, n, "kernel, stride and dilation must be >= 1 and pads >= 0")
    if len(in_shape) != 3:
        _fail(ir, n, f"operand shape {in_shape} is not (C, H, W)")
    ho, wo = window_geometry(in_shape, a["kernel"], a["stride"], a["pads"], a["dilation"])
    if ho < 1 or wo < 1:
        _fail(ir, n, f"kernel {a['kernel']} does not fit the padded input {in_shape}")
    return ho, wo


def _check_op(ir: IR, n: str, d: dict) -> None:
    op, shape, attrs, params = d["op"], d["shape"], d["attrs"], d["params"]
    ins = [ir.g.nodes[i]["shape"] for i in ir.inputs(n)]
    if op in ("output", "identity", "act", "add_const", "mul_const", "batchnorm", "softmax"):
        if ins[0] != shape:
            _fail(ir, n, f"shape {shape} differs from operand shape {ins[0]}")
        if op == "act":
            _check_act(ir, n, attrs["activation"])
        if op in ("add_const", "mul_const") and params["c"].shape != shape:
            _fail(ir, n, f"constant shape {params['c'].shape} differs from {shape}")
        if op == "batchnorm":
            for p in ("scale", "bias", "mean", "var"):
                if params[p].shape != (shape[0],):
                    _fail(ir, n, f"'{p}' must have one value per channel ({shape[0]})")
        if op == "softmax" and not -len(shape) <= attrs["axis"] < len(shape):
            _fail(ir, n, f"axis {attrs['axis']} out of range for shape {shape}")
    elif op == "host":
        xs = [o for o in attrs["operands"] if o[0] == "x"]
        if sorted(o[1] for o in xs) != list(range(len(ins))) or len(attrs["in_axes"]) != len(ins):
            _fail(ir, n, f"host operands {attrs['operands']} do not match its {len(ins)} IR operand(s)")
        for o in attrs["operands"]:
            if o[0] == "c" and o[1] not in params:
                _fail(ir, n, f"host constant '{o[1]}' is missing from params")
    elif op == "add":
        if ins[0] != shape or ins[1] != shape:
            _fail(ir, n, f"operand shapes {ins} differ from {shape}")
    elif op == "reshape":
        if _size(ins[0]) != _size(shape):
            _fail(ir, n, f"reshape {ins[0]} -> {shape} changes the element count")
    elif op == "transpose":
        perm = attrs["perm"]
        if sorted(perm) != list(range(len(ins[0]))) or tuple(ins[0][p] for p in perm) != shape:
            _fail(ir, n, f"perm {perm} does not map {ins[0]} to {shape}")
    elif op == "concat":
        ax = attrs["axis"]
        if not 0 <= ax < len(shape) or any(len(s) != len(shape) for s in ins):
            _fail(ir, n, f"axis {ax} / operand ranks do not fit {shape}")
        rest = [tuple(s[:ax] + s[ax + 1:]) for s in ins]
        if len(set(rest)) != 1 or rest[0] != tuple(shape[:ax] + shape[ax + 1:]) \
                or sum(s[ax] for s in ins) != shape[ax]:
            _fail(ir, n, f"operand shapes {ins} do not concatenate to {shape} on axis {ax}")
    elif op == "pool":
        ho, wo = _check_window(ir, n, attrs, ins[0])
        if attrs["kind"] not in ("max", "avg") or shape != (ins[0][0], ho, wo):
            _fail(ir, n, f"pool kind {attrs['kind']!r} / shape {shape} do not fit {ins[0]}")
    elif op == "pad":
        t, l_, b, r = attrs["pads"]
        if len(ins[0]) != 3 or min(attrs["pads"]) < 0 or shape != (ins[0][0], ins[0][1] + t + b, ins[0][2] + l_ + r):
            _fail(ir, n, f"pads {attrs['pads']} do not map {ins[0]} to {shape}")
    elif op == "global_avgpool":
        if len(ins[0]) != 3 or shape != (ins[0][0], 1, 1):
            _fail(ir, n, f"shape {shape} does not fit global pooling of {ins[0]}")
    elif op == "im2col":
        ho, wo = _check_window(ir, n, attrs, ins[0])
        c = ins[0][0]
        if shape != (ho * wo, c * attrs["kernel"][0] * attrs["kernel"][1]):
            _fail(ir, n, f"shape {shape} does not fit the patches of {ins[0]}")
    elif op in ("dense", "conv"):
        W, b = params["W"], params["b"]
        _check_act(ir, n, attrs["activation"])
        if op == "dense":   # over the last axis; leading axes are tokens
            if W.ndim != 2 or W.shape[1] != ins[0][-1]:
                _fail(ir, n, f"weight shape {W.shape} does not fit operand shape {ins[0]}")
            if shape != tuple(ins[0][:-1]) + (W.shape[0],):
                _fail(ir, n, f"output shape {shape} does not fit weight {W.shape} and operand {ins[0]}")
        else:
            ho, wo = _check_window(ir, n, attrs, ins[0])
            group = attrs.get("group", 1)
            if not isinstance(group, int) or group < 1 or W.shape[0] % group:
                _fail(ir, n, f"group {group!r} does not divide the {W.shape[0]} output channels")
            if W.ndim != 4 or W.shape[1] * group != ins[0][0] or list(W.shape[2:]) != attrs["kernel"]:
                _fail(ir, n, f"weight shape {W.shape} does not fit operand {ins[0]} / kernel {attrs['kernel']}")
            if shape != (W.shape[0], ho, wo):
                _fail(ir, n, f"output shape {shape} differs from {(W.shape[0], ho, wo)}")
        if b.shape != (W.shape[0],):
            _fail(ir, n, f"bias shape {b.shape} does not fit weight {W.shape}")
        if "gpos" in params:
            if params.get("w_scale") is None or params["w_scale"].shape != (W.shape[0],):
                _fail(ir, n, f"quantized layer needs 'w_scale' with one value per output ({W.shape[0]})")
            k = int(np.prod(W.shape[1:]))
            for p in ("gpos", "gneg"):
                if params[p].shape != (k, W.shape[0]) or np.any(params[p] <= 0):
                    _fail(ir, n, f"'{p}' must be positive with shape {(k, W.shape[0])}")
    elif op == "xbar_tile":
        rows, cols = attrs["row1"] - attrs["row0"], attrs["col1"] - attrs["col0"]
        if not (0 < rows <= attrs["tile_rows"] and 0 < 2 * cols <= attrs["tile_cols"]):
            _fail(ir, n, f"slice {rows}x{cols} (x2 bit lines) does not fit the "
                         f"{attrs['tile_rows']}x{attrs['tile_cols']} tile")
        for p in ("gpos", "gneg"):
            if params[p].shape != (rows, cols) or np.any(params[p] <= 0):
                _fail(ir, n, f"'{p}' must be positive with shape {(rows, cols)}")
        if shape != ins[0][:-1] + (cols,):
            _fail(ir, n, f"output shape {shape} differs from {ins[0][:-1] + (cols,)}")
        if attrs["row1"] > ins[0][-1]:
            _fail(ir, n, "row slice exceeds the operand size")
    elif op == "accum":
        tiles = ir.inputs(n)
        for t in tiles:
            td = ir.g.nodes[t]
            if td["op"] != "xbar_tile" or td["attrs"]["layer"] != attrs["layer"]:
                _fail(ir, n, f"operand '{t}' is not a tile of layer {attrs['layer']}")
        if len(tiles) != attrs["row_splits"] * attrs["col_splits"]:
            _fail(ir, n, "operand count differs from row_splits x col_splits")
        _check_act(ir, n, attrs["activation"])
        width = sum(ir.g.nodes[t]["shape"][-1] for t in tiles[: attrs["col_splits"]])
        tokens = tuple(ir.g.nodes[tiles[0]]["shape"][:-1]) if attrs["spatial"] is None else ()
        want = tokens + (width,) if attrs["spatial"] is None else (width, *attrs["spatial"])
        if shape != want or params["b"].shape != (width,) or params["w_scale"].shape != (width,):
            _fail(ir, n, f"output shape {shape} / bias do not match the tiles' width {width}")
