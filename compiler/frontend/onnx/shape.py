"""Shapes and data movement: Constant, Identity, Dropout, Transpose, Squeeze, Unsqueeze, Gather, Concat, Flatten,
Reshape, Slice, Split."""

from __future__ import annotations

import numpy as np

from ...errors import UnsupportedOpError
from ..common import check_weights
from .reader import Val
from .registry import lowers


@lowers("Constant")
def op_constant(cx, node, attrs):
    if "value" in attrs:
        return cx._tensor(attrs["value"].t, f"node '{cx.label(node)}' value")
    for key in ("value_float", "value_floats", "value_int", "value_ints"):
        if key in attrs:
            return np.asarray(cx._attr(attrs, key, None))
    raise cx.err(node, "needs a 'value' attribute (sparse/string constants are not supported)")


@lowers("Transpose")
def op_transpose(cx, node, attrs):
    """A transpose of the per-sample axes on the data-movement unit; the batch axis, wherever the
    permutation takes it, is bookkeeping (none moves no data)."""
    cx._nin(node, 1, 1)
    x = cx.get(node, node.input[0])
    perm = cx._attr(attrs, "perm", None)
    if not isinstance(x, Val):
        try:
            return np.transpose(x, None if perm is None else [int(p) for p in perm])
        except ValueError as e:
            raise cx.err(node, f"attribute perm={list(perm)} does not fit rank {x.ndim}: {e}") from None
    b = x.batch_axis
    rank = len(x.shape) + (b is not None)
    perm = list(range(rank))[::-1] if perm is None else [int(p) for p in perm]
    if sorted(perm) != list(range(rank)):
        raise cx.err(node, f"attribute perm={perm} is not a permutation of {rank} axes")
    if b is None:
        sp, nb = perm, None
    else:
        sp, nb = [p - (p > b) for p in perm if p != b], perm.index(b)
    if sp == sorted(sp):
        return Val(x.node, x.shape, nb)
    shape = tuple(x.shape[p] for p in sp)
    return Val(cx.emit(node, "transpose", shape, [x.node], attrs={"perm": sp}), shape, nb)


def _full_axes(cx, node, attrs, rank: int, what: str = "axes") -> list[int] | None:
    """A Squeeze/Unsqueeze's axes over the full shape (the batch included), normalized; None if absent."""
    if cx.opset >= 13:
        if len(node.input) < 2 or not node.input[1]:
            return None
        axes = [int(v) for v in cx.const(node, node.input[1], what).reshape(-1)]
    else:
        raw = cx._attr(attrs, "axes", None)
        if raw is None:
            return None
        axes = [int(v) for v in raw]
    out = sorted({a + rank if a < 0 else a for a in axes})
    if len(out) != len(axes) or any(not 0 <= a < rank for a in out):
        raise cx.err(node, f"{what} {axes} are repeated or out of range for rank {rank}")
    return out


def _view(cx, node, x: Val, full_out: list[int], out_b: int | None) -> Val:
    """``x`` as the full shape ``full_out`` whose batch axis is ``out_b`` (the same elements)."""
    shape = tuple(d for k, d in enumerate(full_out) if k != out_b)
    if shape == x.shape:
        return Val(x.node, x.shape, out_b)
    return Val(cx.emit(node, "reshape", shape, [x.node]), shape, out_b)


def _drops_batch(cx, node, b, axes) -> bool:
    """Whether removing ``axes`` removes batch axis ``b``: only a model defined at batch 1 can, and
    its result is per sample from there on."""
    if b is None or b not in axes:
        return False
    if not cx.batch_one:
        raise cx.err(node, f"removes the batch axis {b}", UnsupportedOpError)
    return True


@lowers("Identity")
def op_identity(cx, node, attrs):
    cx._nin(node, 1, 1)
    return cx._identity_of(node, node.input[0])


@lowers("Dropout")
def op_dropout(cx, node, attrs):
    # inference: the identity (a mask output, if any, runs on the host)
    if len(node.output) > 1 and node.output[1] in cx.used:
        raise cx.err(node, "the mask output is read", UnsupportedOpError)
    return cx._identity_of(node, node.input[0])


@lowers("Squeeze")
def op_squeeze(cx, node, attrs):
    x = cx.get(node, node.input[0])
    if not isinstance(x, Val):
        raise cx.err(node, "squeezes a constant that constant folding left", UnsupportedOpError)
    b, full = x.batch_axis, list(x.full_shape(1))
    axes = _full_axes(cx, node, attrs, len(full))
    if axes is None:   # every axis of size 1; the batch too in a model defined at batch 1
        axes = [k for k, d in enumerate(full) if d == 1 and (k != b or cx.batch_one)]
    if any(full[a] != 1 for a in axes):
        raise cx.err(node, f"cannot squeeze axes {axes} of shape {full}: not of size 1")
    out_b = None if b is None or _drops_batch(cx, node, b, axes) else b - sum(a < b for a in axes)
    return _view(cx, node, x, [d for k, d in enumerate(full) if k not in axes], out_b)


@lowers("Unsqueeze")
def op_unsqueeze(cx, node, attrs):
    x = cx.get(node, node.input[0])
    if not isinstance(x, Val):
        raise cx.err(node, "unsqueezes a constant that constant folding left", UnsupportedOpError)
    b, full = x.batch_axis, list(x.full_shape(1))
    n_new = len(cx._attr(attrs, "axes", [])) if cx.opset < 13 else int(cx.const(node, node.input[1], "axes").size)
    axes = _full_axes(cx, node, attrs, len(full) + n_new) or []
    items = [("x", k) for k in range(len(full))]
    for a in axes:
        items.insert(a, ("new", a))
    out = [full[k] if kind == "x" else 1 for kind, k in items]
    return _view(cx, node, x, out, None if b is None else items.index(("x", b)))


@lowers("Gather")
def op_gather(cx, node, attrs):
    """A Gather of constant indices along a feature axis that picks one element (a slice of 1, the
    axis dropped) or an evenly spaced run (a slice): data movement. Other index sets run on the host."""
    cx._nin(node, 2, 2)
    x = cx.get(node, node.input[0])
    if not isinstance(x, Val):
        raise cx.err(node, "gathers from a constant that constant folding left", UnsupportedOpError)
    ind = np.asarray(cx.const(node, node.input[1], "indices")).astype(np.int64)
    b, full = x.batch_axis, list(x.full_shape(1))
    axis = _slice_axis(cx, node, x, int(cx._attr(attrs, "axis", 0)), "attribute axis")
    if axis == b:
        raise cx.err(node, f"gathers along the batch axis {axis}", UnsupportedOpError)
    dim = full[axis]
    ind = np.where(ind < 0, ind + dim, ind)
    if ind.size and (ind.min() < 0 or ind.max() >= dim):
        raise cx.err(node, f"indices {ind.reshape(-1).tolist()[:8]} are out of range for axis {axis} of size {dim}")
    if ind.ndim == 0:
        v = slice_of(cx, node, x, axis, int(ind), 1, 1)
        out_b = None if b is None else b - (axis < b)
        return _view(cx, node, v, [d for k, d in enumerate(full) if k != axis], out_b)
    steps = np.diff(ind) if ind.ndim == 1 else None
    if ind.ndim == 1 and ind.size and (ind.size == 1 or (steps.min() == steps.max() and steps[0] >= 1)):
        return slice_of(cx, node, x, axis, int(ind[0]), int(ind.size), int(steps[0]) if ind.size > 1 else 1)
    raise cx.err(node, f"indices of shape {list(ind.shape)} are not one element or an evenly spaced run",
                 UnsupportedOpError)


@lowers("Concat")
def op_concat(cx, node, attrs):
    """Runtime operands sharing a batch axis (any), joined on a feature axis; in a model defined at
    batch 1, constants too (a ViT's class token), as parts of the same data-movement unit."""
    vals = [cx.get(node, i) for i in node.input if i]
    xs = [v for v in vals if isinstance(v, Val)]
    if not xs:
        raise cx.err(node, "joins constants that constant folding left", UnsupportedOpError)
    b = xs[0].batch_axis
    if any(x.batch_axis != b for x in xs):
        raise cx.err(node, "its runtime operands have their batch on different axes", UnsupportedOpError)
    rank = len(xs[0].shape) + (b is not None)
    axis = int(cx._attr(attrs, "axis", 1))
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank or axis == b:
        raise cx.err(node, f"attribute axis={axis} must be a feature axis of rank {rank} (batch axis {b})",
                     UnsupportedOpError)
    ax = axis - (b is not None and axis > b)
    parts, consts, params = [], [], {}
    for v in vals:
        if isinstance(v, Val):
            parts.append(v.shape)
            continue
        c = np.asarray(v, dtype=np.float64)
        if b is not None:
            if not cx.batch_one or c.ndim != rank or c.shape[b] != 1:
                raise cx.err(node, f"a constant operand of shape {list(c.shape)} next to a batch", UnsupportedOpError)
            c = np.take(c, 0, axis=b)
        key = f"c{len(consts)}"
        consts.append([len(parts), key])
        params[key] = check_weights(cx.where, cx.label(node), f"constant operand {len(parts)}", c)
        parts.append(c.shape)
    if any(len(p) != len(parts[0]) or p[:ax] + p[ax + 1:] != parts[0][:ax] + parts[0][ax + 1:] for p in parts):
        raise cx.err(node, f"operand shapes {[list(p) for p in parts]} do not concatenate on axis {axis}")
    shape = list(parts[0])
    shape[ax] = sum(p[ax] for p in parts)
    a = {"axis": ax, **({"consts": consts} if consts else {})}
    return Val(cx.emit(node, "concat", shape, [x.node for x in xs], attrs=a, params=params), tuple(shape), b)


def _shape_op(cx, node, x: Val, full_out: tuple[int, ...], keeps_batch: bool) -> Val:
    if x.batch_axis is None:
        shape, axis = tuple(full_out), None
    else:
        shape, axis = tuple(full_out[1:]), 0
    if not shape or int(np.prod(shape)) != int(np.prod(x.shape)) or not keeps_batch:
        raise cx.err(node, f"reshaping per-sample shape {list(x.shape)} to {list(full_out)} would mix "
                             "the batch axis into the features; only per-sample reshapes are supported",
                       UnsupportedOpError)
    return Val(cx.emit(node, "reshape", shape, [x.node]), shape, axis)


@lowers("Flatten")
def op_flatten(cx, node, attrs):
    cx._nin(node, 1, 1)
    x = cx.get(node, node.input[0])
    full = x.full_shape(1) if isinstance(x, Val) else x.shape
    axis = int(cx._attr(attrs, "axis", 1))
    if axis < 0:
        axis += len(full)
    if not 0 <= axis <= len(full):
        raise cx.err(node, f"attribute axis={axis} is out of range for rank {len(full)}")
    out = (int(np.prod(full[:axis])), int(np.prod(full[axis:])))
    if not isinstance(x, Val):
        return x.reshape(out)
    if x.batch_axis not in (None, 0):
        raise cx.err(node, f"the operand's batch is on axis {x.batch_axis}; Flatten needs it on axis 0",
                       UnsupportedOpError)
    keeps = x.batch_axis is None or axis == 1
    return _shape_op(cx, node, x, out if x.batch_axis is None else (1, out[1]), keeps)


def _batch_kept(x: Val, target: list[int], allowzero: int):
    """A Reshape of a tensor whose batch is on an inner axis b (a sequence-first [T, N, D, H]) that
    regroups the axes before the batch among themselves and those after it among themselves, with a 1
    at the batch's place (as exported at batch 1: [T, 1, D*H]): ``(full target shape, its batch
    axis)``, the same per sample for any batch; None for any other reshape."""
    b = x.batch_axis
    if b is None or b == 0 or not target:
        return None
    full = list(x.full_shape(1))
    tgt = [full[i] if t == 0 and not allowzero and i < len(full) else t for i, t in enumerate(target)]
    if tgt.count(-1) > 1 or any(t < -1 or t == 0 for t in tgt):
        return None
    if -1 in tgt:
        known = int(np.prod([t for t in tgt if t != -1]))
        if int(np.prod(full)) % known:
            return None
        tgt[tgt.index(-1)] = int(np.prod(full)) // known
    lead = int(np.prod(full[:b]))
    for nb in range(len(tgt)):
        if tgt[nb] == 1 and int(np.prod(tgt[:nb])) == lead and int(np.prod(tgt)) == int(np.prod(full)):
            return tgt, nb
    return None


@lowers("Reshape")
def op_reshape(cx, node, attrs):
    cx._nin(node, 2, 2)
    x = cx.get(node, node.input[0])
    target = [int(t) for t in cx.const(node, node.input[1], "shape").reshape(-1)]
    allowzero = int(cx._attr(attrs, "allowzero", 0))
    if not isinstance(x, Val):
        return x.reshape([x.shape[i] if t == 0 and not allowzero else t for i, t in enumerate(target)])
    kept = _batch_kept(x, target, allowzero)
    if kept is not None:
        return _view(cx, node, x, kept[0], kept[1])
    if cx.batch_one and x.batch_axis is not None and (x.batch_axis != 0 or not target or target[0] not in (1, -1, 0)):
        # a model defined at batch 1 whose reshape moves or folds the batch (an attention's heads):
        # per sample, the tensor is its full shape at batch 1
        x = _view(cx, node, x, list(x.full_shape(1)), None)
    if x.batch_axis not in (None, 0):
        raise cx.err(node, f"the operand's batch is on axis {x.batch_axis}; Reshape needs it on axis 0",
                       UnsupportedOpError)
    if x.batch_axis is None:
        src, tgt = list(x.shape), target
    else:
        src, tgt = list(x.shape), target[1:]
        if not target or (target[0] == 0 and allowzero) or (target[0] == -1 and -1 in tgt):
            return _shape_op(cx, node, x, tuple(target), False)
    resolved = []
    for i, t in enumerate(tgt):
        off = 0 if x.batch_axis is None else 1
        if t == 0 and not allowzero:
            if i + off >= len(x.full_shape(1)):
                raise cx.err(node, f"shape entry {i + off} is 0 but the input has no such axis")
            t = x.full_shape(1)[i + off]
        resolved.append(t)
    if resolved.count(-1) > 1 or any(t < -1 for t in resolved):
        raise cx.err(node, f"invalid target shape {target}")
    if -1 in resolved:
        known = int(np.prod([t for t in resolved if t != -1]))
        if known == 0 or int(np.prod(src)) % known:
            raise cx.err(node, f"cannot infer -1 in {target} from per-sample shape {src}")
        resolved[resolved.index(-1)] = int(np.prod(src)) // known
    full = tuple(resolved) if x.batch_axis is None else (1, *resolved)
    return _shape_op(cx, node, x, full, True)


def slice_of(cx, node, x: Val, axis: int, start: int, count: int, step: int) -> Val:
    """``x`` sliced on full-shape axis ``axis`` (not its batch axis): ``count`` elements from
    ``start`` by ``step``, as one IR slice node (none for the whole axis)."""
    ax = axis - (x.batch_axis is not None and axis > x.batch_axis)
    if start == 0 and step == 1 and count == x.shape[ax]:
        return x
    shape = x.shape[:ax] + (count,) + x.shape[ax + 1:]
    attrs = {"axis": int(ax), "start": int(start), "step": int(step)}
    return Val(cx.emit(node, "slice", shape, [x.node], attrs=attrs), shape, x.batch_axis)


def _slice_axis(cx, node, x: Val, axis: int, what: str) -> int:
    rank = len(x.shape) + (x.batch_axis is not None)
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank:
        raise cx.err(node, f"{what} {axis} is out of range for rank {rank}")
    return axis


def _slice(cx, node, starts, ends, axes, steps):
    x = cx.get(node, node.input[0])
    if not isinstance(x, Val):
        raise cx.err(node, "slices a constant that constant folding left", UnsupportedOpError)
    full = x.full_shape(1)
    axes = list(range(len(starts))) if axes is None else [int(a) for a in axes]
    steps = [1] * len(starts) if steps is None else [int(s) for s in steps]
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise cx.err(node, f"starts, ends, axes and steps differ in length ({len(starts)}, {len(ends)}, "
                           f"{len(axes)}, {len(steps)})")
    axes = [_slice_axis(cx, node, x, a, "axis") for a in axes]
    if len(set(axes)) != len(axes):
        raise cx.err(node, f"axes {axes} repeat an axis")
    for a, s, e, st in sorted(zip(axes, starts, ends, steps)):
        dim = full[a]
        if st == 0:
            raise cx.err(node, "a step of 0")
        if st < 0:
            raise cx.err(node, f"step {st} on axis {a}: only forward slices are lowered", UnsupportedOpError)
        s, e = int(s), int(e)
        if a == x.batch_axis:
            if s == 0 and st == 1 and e >= 2 ** 31 - 1:   # the whole batch axis (an exporter's [0:INT_MAX])
                continue
            raise cx.err(node, f"slices the batch axis {a}", UnsupportedOpError)
        s = min(max(s + dim if s < 0 else s, 0), dim)
        e = min(max(e + dim if e < 0 else e, 0), dim)
        count = max(0, -(-(e - s) // st))
        if count == 0:
            raise cx.err(node, f"slice {s}:{e}:{st} of axis {a} (size {dim}) is empty")
        x = slice_of(cx, node, x, a, s, count, st)
    return x


@lowers("Slice", until=10)
def op_slice_attrs(cx, node, attrs):
    cx._nin(node, 1, 1)
    starts, ends = cx._attr(attrs, "starts", None), cx._attr(attrs, "ends", None)
    if starts is None or ends is None:
        raise cx.err(node, "needs the attributes starts and ends")
    return _slice(cx, node, list(starts), list(ends), cx._attr(attrs, "axes", None), None)


@lowers("Slice", since=10)
def op_slice(cx, node, attrs):
    cx._nin(node, 3, 5)

    def ints(k, what):
        if len(node.input) <= k or not node.input[k]:
            return None
        return [int(v) for v in cx.const(node, node.input[k], what).reshape(-1)]
    return _slice(cx, node, ints(1, "starts"), ints(2, "ends"), ints(3, "axes"), ints(4, "steps"))


@lowers("Split")
def op_split(cx, node, attrs):
    """Split into consecutive parts along one axis: a slice per output that something reads."""
    x = cx.get(node, node.input[0])
    if not isinstance(x, Val):
        raise cx.err(node, "splits a constant that constant folding left", UnsupportedOpError)
    axis = _slice_axis(cx, node, x, int(cx._attr(attrs, "axis", 0)), "attribute axis")
    if axis == x.batch_axis:
        raise cx.err(node, f"splits the batch axis {axis}", UnsupportedOpError)
    dim, n_out = x.full_shape(1)[axis], len(node.output)
    if len(node.input) > 1 and node.input[1]:
        sizes = [int(v) for v in cx.const(node, node.input[1], "split").reshape(-1)]
    elif "split" in attrs:
        sizes = [int(v) for v in cx._attr(attrs, "split", [])]
    else:   # equal parts; from opset 18 num_outputs, the last part smaller when it does not divide
        n = int(cx._attr(attrs, "num_outputs", n_out))
        chunk = -(-dim // n)
        sizes = [min(chunk, dim - k * chunk) for k in range(n)]
    if len(sizes) != n_out or sum(sizes) != dim or min(sizes) < 0:
        raise cx.err(node, f"parts {sizes} do not split axis {axis} of size {dim} into {n_out} outputs")
    first, at = None, 0
    for k, (out, size) in enumerate(zip(node.output, sizes)):
        if out and out in cx.used:
            if size == 0:
                raise cx.err(node, f"output '{out}' is empty")
            v = slice_of(cx, node, x, axis, at, size, 1)
            cx.env[out] = v
            first = v if k == 0 else first
        at += size
    return first
