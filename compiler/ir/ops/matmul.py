"""Matrix operators: dense and conv layers (before tiling), crossbar tiles and their accumulators."""

from __future__ import annotations

import numpy as np

from .. import kernels as K
from . import fail, register
from .elementwise import check_act
from .window import check_window


def _layer_check(ir, n, d, ins) -> None:
    op, shape, attrs, params = d["op"], d["shape"], d["attrs"], d["params"]
    W, b = params["W"], params["b"]
    check_act(ir, n, attrs["activation"])
    if op == "dense":   # over the last axis; leading axes are tokens
        if W.ndim != 2 or W.shape[1] != ins[0][-1]:
            fail(ir, n, f"weight shape {W.shape} does not fit operand shape {ins[0]}")
        if shape != tuple(ins[0][:-1]) + (W.shape[0],):
            fail(ir, n, f"output shape {shape} does not fit weight {W.shape} and operand {ins[0]}")
    else:
        ho, wo = check_window(ir, n, attrs, ins[0])
        group = attrs.get("group", 1)
        if not isinstance(group, int) or group < 1 or W.shape[0] % group:
            fail(ir, n, f"group {group!r} does not divide the {W.shape[0]} output channels")
        if W.ndim != 4 or W.shape[1] * group != ins[0][0] or list(W.shape[2:]) != attrs["kernel"]:
            fail(ir, n, f"weight shape {W.shape} does not fit operand {ins[0]} / kernel {attrs['kernel']}")
        if shape != (W.shape[0], ho, wo):
            fail(ir, n, f"output shape {shape} differs from {(W.shape[0], ho, wo)}")
    if b.shape != (W.shape[0],):
        fail(ir, n, f"bias shape {b.shape} does not fit weight {W.shape}")
    if "gpos" in params:
        if params.get("w_scale") is None or params["w_scale"].shape != (W.shape[0],):
            fail(ir, n, f"quantized layer needs 'w_scale' with one value per output ({W.shape[0]})")
        k = int(np.prod(W.shape[1:]))
        for p in ("gpos", "gneg"):
            if params[p].shape != (k, W.shape[0]) or np.any(params[p] <= 0):
                fail(ir, n, f"'{p}' must be positive with shape {(k, W.shape[0])}")


def _dense_eval(d, xs, **_):
    p = d["params"]
    return K.activation(xs[0] @ K.layer_matrix(p).T + p["b"], d["attrs"]["activation"])


def _conv_eval(d, xs, **_):
    a, p = d["attrs"], d["params"]
    cols = K.im2col(xs[0], a["kernel"], a["stride"], a["pads"], a["dilation"])
    z = K.grouped_matmul(cols, K.layer_matrix(p), a.get("group", 1)) + p["b"]   # [N, P, C_out]
    return K.activation(z.transpose(0, 2, 1).reshape((-1,) + d["shape"]), a["activation"])


register("dense", arity=1, attrs=("activation",), params=("W", "b"), home="crossbar", check=_layer_check,
         eval=_dense_eval,
         doc="y = act(W x + b) over the last axis, W: [out, in]; leading axes are tokens (an [N, T, K] MatMul), "
             "each read through the same crossbar. After `quantize` also gpos/gneg [in, out] in siemens")
register("conv", arity=1, attrs=("activation", "kernel", "stride", "pads", "dilation"), params=("W", "b"),
         home="crossbar", check=_layer_check, eval=_conv_eval,
         doc="2-D convolution: W [C_out, C_in/group, kh, kw] (attr group, default 1: output channel block k reads "
             "input channel block k); after `quantize` gpos/gneg of W.reshape(C_out, -1).T, [C_in/group*kh*kw, C_out]")


def _tile_check(ir, n, d, ins) -> None:
    a, params, shape = d["attrs"], d["params"], d["shape"]
    rows, cols = a["row1"] - a["row0"], a["col1"] - a["col0"]
    if not (0 < rows <= a["tile_rows"] and 0 < 2 * cols <= a["tile_cols"]):
        fail(ir, n, f"slice {rows}x{cols} (x2 bit lines) does not fit the {a['tile_rows']}x{a['tile_cols']} tile")
    for p in ("gpos", "gneg"):
        if params[p].shape != (rows, cols) or np.any(params[p] <= 0):
            fail(ir, n, f"'{p}' must be positive with shape {(rows, cols)}")
    if "stuck" in params and params["stuck"].shape != (2, rows, cols):
        fail(ir, n, f"'stuck' (a chip's stuck map) must have shape {(2, rows, cols)}")
    # a recurrent layer's tile reads [x_t, h_(t-1)] (attr recurrent: that width) at each time step,
    # inside its accumulator's time loop; its value in the graph is the sequence it reads
    width = a.get("recurrent") or ins[0][-1]
    want = ins[0] if a.get("recurrent") else ins[0][:-1] + (cols,)
    if shape != want:
        fail(ir, n, f"output shape {shape} differs from {want}")
    if a["row1"] > width:
        fail(ir, n, "row slice exceeds the operand size")


def tile_read(d, x, tile_fn=None, name=None):
    """A tile's column results ``x[..., row0:row1] @ (G+ - G-)`` (or ``tile_fn``'s, a circuit engine)."""
    a, p = d["attrs"], d["params"]
    x = x[..., a["row0"]:a["row1"]]
    return x @ (p["gpos"] - p["gneg"]) if tile_fn is None else tile_fn(name, x)


def _tile_eval(d, xs, tile_fn=None, name=None, **_):
    if d["attrs"].get("recurrent"):
        return xs[0]   # read by the accumulator's time loop (ops/recurrent.py)
    return tile_read(d, xs[0], tile_fn, name)


register("xbar_tile", arity=1, attrs=("layer", "row0", "row1", "col0", "col1", "tile_rows", "tile_cols",
                                      "adc_full_scale_a", "rf_ohm"),
         params=("gpos", "gneg"), home="crossbar", check=_tile_check, eval=_tile_eval, unit="fused",
         doc="one crossbar tile: rows [row0,row1) of the layer's inputs (last axis), outputs [col0,col1). A tile "
             "of a grouped convolution holds several groups block-diagonally; attr blocks then lists the "
             "programmed [r0, r1, c0, c1] blocks (tile-local), and the cells between them sit at G_min. Compiled for "
             "one chip (passes/fault_map.py): attr placement {rows, cols} (the physical word line of each row and "
             "bit-line pair of each column), param stuck [2, rows, cols] (0 healthy, 1 stuck at HRS, 2 at LRS)")


def _accum_check(ir, n, d, ins) -> None:
    attrs, params, shape = d["attrs"], d["params"], d["shape"]
    tiles = ir.inputs(n)
    for t in tiles:
        td = ir.g.nodes[t]
        if td["op"] != "xbar_tile" or td["attrs"]["layer"] != attrs["layer"]:
            fail(ir, n, f"operand '{t}' is not a tile of layer {attrs['layer']}")
    if len(tiles) != attrs["row_splits"] * attrs["col_splits"]:
        fail(ir, n, "operand count differs from row_splits x col_splits")
    check_act(ir, n, attrs["activation"])
    width = sum(ir.g.nodes[t]["attrs"]["col1"] - ir.g.nodes[t]["attrs"]["col0"] for t in tiles[: attrs["col_splits"]])
    if attrs.get("recurrent"):
        from .recurrent import check_recurrent

        check_recurrent(ir, n, d, attrs["recurrent"], width)
        if params["b"].shape != (width,) or params["w_scale"].shape != (width,):
            fail(ir, n, f"bias / w_scale do not match the tiles' width {width}")
        return
    tokens = tuple(ir.g.nodes[tiles[0]]["shape"][:-1]) if attrs["spatial"] is None else ()
    want = tokens + (width,) if attrs["spatial"] is None else (width, *attrs["spatial"])
    if shape != want or params["b"].shape != (width,) or params["w_scale"].shape != (width,):
        fail(ir, n, f"output shape {shape} / bias do not match the tiles' width {width}")


def _accum_eval(d, xs, pre_activation=False, ir=None, name=None, tile_fn=None, **_):
    a, p = d["attrs"], d["params"]
    if a.get("recurrent"):
        from .recurrent import recurrent_accum_eval

        tiles = [(t, ir.g.nodes[t]) for t in ir.inputs(name)]
        return recurrent_accum_eval(d, xs, [t for _, t in tiles],
                                    lambda k, v: tile_read(tiles[k][1], v, tile_fn, tiles[k][0]))
    rs, cs = a["row_splits"], a["col_splits"]
    cols = [sum(xs[r * cs + c] for r in range(rs)) for c in range(cs)]
    z = np.concatenate(cols, axis=-1) * p["w_scale"] + p["b"]   # [N, (P,) C_out]
    if a["spatial"] is not None:
        z = z.transpose(0, 2, 1).reshape((-1,) + d["shape"])
    return z if pre_activation else K.activation(z, a["activation"])


register("accum", arity=None, attrs=("layer", "activation", "row_splits", "col_splits", "spatial"),
         params=("b", "w_scale"), check=_accum_check, eval=_accum_eval, unit="layer",
         doc="digital accumulator: sums row-split partial sums, concatenates column splits, rescales to weight "
             "units (w_scale [C_out]: weight units per siemens of each column), adds the bias, applies the "
             "activation; for a convolution it lays the (Ho*Wo, C_out) results out as (C_out, Ho, Wo) "
             "(attr spatial = [Ho, Wo])")
