"""ONNX front end.

Tensors are tracked with their full ONNX shape split into a per-sample shape and the position of
the batch axis, because the IR is per sample. A graph input's batch axis is its one symbolic
dimension (axis 0 when all dimensions are fixed, none for a rank-1 fixed input).
``Gemm``/``MatMul`` accept the runtime operand on either side, so ``transA``/``transB`` variants
that put the batch on axis 1 are lowered too; ``alpha``/``beta`` are folded into the weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, UnsupportedOpError
from ..ir import IR
from ..ir.names import Namer
from .common import check_weights

SUPPORTED_OPS = ("Add", "Constant", "Flatten", "Gemm", "Identity", "MatMul", "Relu", "Reshape",
                 "Transpose (of constants)")


@dataclass(frozen=True)
class Val:
    """A runtime tensor: the IR node producing it, per-sample shape, and batch axis (or None)."""

    node: str
    shape: tuple[int, ...]
    batch_axis: int | None

    def full_shape(self, batch: int = 1) -> tuple[int, ...]:
        s = list(self.shape)
        if self.batch_axis is not None:
            s.insert(self.batch_axis, batch)
        return tuple(s)


class _Lowering:
    def __init__(self, model, path: Path):
        import onnx.numpy_helper as nph

        self.nph = nph
        self.path = path
        self.where = str(path)
        self.model = model
        graph = model.graph
        self.ir = IR(graph.name or path.stem, source=str(path))
        self.namer = Namer()
        self.env: dict[str, object] = {}
        self.index = 0
        for init in graph.initializer:
            self.env[init.name] = self._tensor(init, f"initializer '{init.name}'")

    # -- helpers --------------------------------------------------------------------------------
    def _tensor(self, t, what: str) -> np.ndarray:
        try:
            return self.nph.to_array(t)
        except Exception as e:  # noqa: BLE001 - onnx raises many types for broken tensors
            raise InputError(self.where, f"{what}: unreadable tensor data ({type(e).__name__}: {e})") from None

    def label(self, node) -> str:
        out = node.output[0] if node.output else "?"
        return node.name or f"#{self.index} (unnamed, output '{out}')"

    def err(self, node, what: str, cls=InputError):
        return cls(self.where, f"node '{self.label(node)}' ({node.op_type}): {what}")

    def get(self, node, name: str):
        if name not in self.env:
            raise self.err(node, f"input '{name}' is not produced by any node, input or initializer")
        return self.env[name]

    def const(self, node, name: str, what: str) -> np.ndarray:
        v = self.get(node, name)
        if isinstance(v, Val):
            raise self.err(node, f"{what} '{name}' must be a constant (initializer), not a runtime tensor",
                           UnsupportedOpError)
        return v

    def per_sample(self, node, c: np.ndarray, val: Val, what: str) -> np.ndarray:
        """A constant combined elementwise with ``val``, reduced to one sample."""
        full = val.full_shape(1)
        try:
            out_shape = np.broadcast_shapes(c.shape, full)
        except ValueError:
            out_shape = None
        if out_shape != full:
            raise self.err(node, f"{what} of shape {list(c.shape)} does not broadcast to the "
                                 f"operand's per-sample shape {list(full)} (batch axis {val.batch_axis})")
        b = np.broadcast_to(c, full)
        return b if val.batch_axis is None else np.take(b, 0, axis=val.batch_axis)

    def emit(self, node, op, shape, inputs, attrs=None, params=None) -> str:
        origin = node.name or f"{node.op_type}_{self.index}"
        name = self.namer.fresh(origin)
        self.ir.add(name, op, shape, inputs=inputs, attrs=attrs, params=params, origin=origin)
        return name

    # -- graph ----------------------------------------------------------------------------------
    def run(self) -> IR:
        graph = self.model.graph
        inits = {i.name for i in graph.initializer}
        real_inputs = [i for i in graph.input if i.name not in inits]
        if not real_inputs:
            raise InputError(self.where, "graph has no runtime input")
        for vi in real_inputs:
            self._input(vi)
        for self.index, node in enumerate(graph.node):
            self._node(node)
        if not graph.output:
            raise InputError(self.where, "graph has no output")
        for vi in graph.output:
            v = self.env.get(vi.name)
            if not isinstance(v, Val):
                raise InputError(self.where, f"graph output '{vi.name}' is not computed from the input")
            name = self.namer.fresh(vi.name)
            self.ir.add(name, "output", v.shape, inputs=[v.node], attrs={"batch_axis": v.batch_axis},
                        origin=vi.name)
        return self.ir

    def _input(self, vi) -> None:
        t = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            raise InputError(self.where, f"input '{vi.name}': expected a tensor")
        if t.elem_type not in (1, 10, 11):  # FLOAT, FLOAT16, DOUBLE
            raise InputError(self.where, f"input '{vi.name}': element type {t.elem_type} is not floating point")
        if not t.HasField("shape"):
            raise InputError(self.where, f"input '{vi.name}': shape is not declared")
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim]
        symbolic = [i for i, d in enumerate(dims) if d is None]
        if len(symbolic) > 1:
            raise InputError(self.where, f"input '{vi.name}': several unknown dimensions {dims}; "
                                         "only the batch dimension may be symbolic")
        if symbolic:
            axis = symbolic[0]
        elif len(dims) >= 2:
            axis = 0
        else:
            axis = None
        shape = tuple(d for i, d in enumerate(dims) if i != axis)
        if not shape:
            raise InputError(self.where, f"input '{vi.name}': no feature dimensions in shape {dims}")
        name = self.namer.fresh(vi.name)
        self.ir.add(name, "input", shape, attrs={"batch_axis": axis}, origin=vi.name)
        self.env[vi.name] = Val(name, shape, axis)

    def _node(self, node) -> None:
        if node.domain not in ("", "ai.onnx"):
            raise self.err(node, f"operator domain '{node.domain}' is not supported", UnsupportedOpError)
        handler = getattr(self, f"_op_{node.op_type}", None)
        if handler is None:
            raise UnsupportedOpError(self.where, f"node '{self.label(node)}': unsupported op '{node.op_type}'; "
                                                 f"supported: {', '.join(SUPPORTED_OPS)}")
        attrs = {a.name: a for a in node.attribute}
        out = handler(node, attrs)
        if len(node.output) < 1 or not node.output[0]:
            raise self.err(node, "has no output")
        self.env[node.output[0]] = out

    def _attr(self, attrs, key, default):
        import onnx.helper as oh

        return oh.get_attribute_value(attrs[key]) if key in attrs else default

    def _nin(self, node, lo, hi):
        n = len([i for i in node.input if i])
        if not lo <= n <= hi:
            raise self.err(node, f"expected {lo}..{hi} inputs, got {n}")

    # -- operators ------------------------------------------------------------------------------
    def _op_Constant(self, node, attrs):
        if "value" in attrs:
            return self._tensor(attrs["value"].t, f"node '{self.label(node)}' value")
        for key in ("value_float", "value_floats", "value_int", "value_ints"):
            if key in attrs:
                return np.asarray(self._attr(attrs, key, None))
        raise self.err(node, "needs a 'value' attribute (sparse/string constants are not supported)")

    def _op_Transpose(self, node, attrs):
        self._nin(node, 1, 1)
        x = self.const(node, node.input[0], "operand")
        perm = self._attr(attrs, "perm", None)
        try:
            return np.transpose(x, None if perm is None else [int(p) for p in perm])
        except ValueError as e:
            raise self.err(node, f"attribute perm={list(perm)} does not fit rank {x.ndim}: {e}") from None

    def _op_Identity(self, node, attrs):
        self._nin(node, 1, 1)
        x = self.get(node, node.input[0])
        if not isinstance(x, Val):
            return x
        return Val(self.emit(node, "identity", x.shape, [x.node]), x.shape, x.batch_axis)

    def _op_Relu(self, node, attrs):
        self._nin(node, 1, 1)
        x = self.get(node, node.input[0])
        if not isinstance(x, Val):
            return np.maximum(x, 0)
        return Val(self.emit(node, "relu", x.shape, [x.node]), x.shape, x.batch_axis)

    def _op_Add(self, node, attrs):
        self._nin(node, 2, 2)
        a, b = (self.get(node, i) for i in node.input)
        if not isinstance(a, Val) and not isinstance(b, Val):
            return a + b
        if isinstance(a, Val) and isinstance(b, Val):
            raise self.err(node, "adding two runtime tensors (a residual connection) is not supported yet",
                           UnsupportedOpError)
        x, c = (a, b) if isinstance(a, Val) else (b, a)
        c = check_weights(self.where, self.label(node), "constant operand", c)
        c = self.per_sample(node, c, x, "constant operand")
        return Val(self.emit(node, "add_const", x.shape, [x.node], params={"c": c}), x.shape, x.batch_axis)

    def _weight(self, node, k: int, v) -> np.ndarray:
        """The constant operand ``k`` of a Gemm/MatMul, checked before any transposition."""
        return check_weights(self.where, self.label(node), f"weight '{node.input[k]}'", v)

    def _dense(self, node, x: Val, W: np.ndarray, bias, out_axis: int | None) -> Val:
        m = W.shape[0]
        out = Val("", (m,), out_axis)
        b = np.zeros(m) if bias is None else self.per_sample(node, bias, out, "bias C")
        name = self.emit(node, "dense", (m,), [x.node], attrs={"activation": "none"}, params={"W": W, "b": b})
        return Val(name, (m,), out_axis)

    def _need_vector(self, node, x: Val, batch_axis, role: str):
        if len(x.shape) != 1 or x.batch_axis != batch_axis:
            want = "[N, K]" if batch_axis == 0 else "[K, N]" if batch_axis == 1 else "[K]"
            raise self.err(node, f"{role} has per-sample shape {list(x.shape)} with batch axis "
                                 f"{x.batch_axis}; this form needs it laid out as {want} "
                                 "(declare the batch dimension symbolic to place it)", UnsupportedOpError)

    def _op_Gemm(self, node, attrs):
        self._nin(node, 2, 3)
        alpha = float(self._attr(attrs, "alpha", 1.0))
        beta = float(self._attr(attrs, "beta", 1.0))
        ta, tb = int(self._attr(attrs, "transA", 0)), int(self._attr(attrs, "transB", 0))
        A, B = self.get(node, node.input[0]), self.get(node, node.input[1])
        C = self.const(node, node.input[2], "bias C") if len(node.input) > 2 and node.input[2] else None
        bias = None if C is None else beta * check_weights(self.where, self.label(node), f"bias '{node.input[2]}'", C)
        if not isinstance(A, Val) and not isinstance(B, Val):
            A2, B2 = (A.T if ta else A), (B.T if tb else B)
            return alpha * (A2 @ B2) + (0 if bias is None else bias)
        if isinstance(A, Val) and isinstance(B, Val):
            raise self.err(node, "both operands are runtime tensors; one must be a weight initializer",
                           UnsupportedOpError)
        if isinstance(A, Val):
            # Y[N,M] = A'[N,K] B'[K,M]: per sample y = (alpha B')^T x
            self._need_vector(node, A, 1 if ta else 0, "operand A")
            B = self._weight(node, 1, B)
            Bp = B.T if tb else B
            if Bp.ndim != 2 or Bp.shape[0] != A.shape[0]:
                raise self.err(node, f"weight B{'^T' if tb else ''} has shape {list(Bp.shape)}, "
                                     f"expected [{A.shape[0]}, M] to match {A.shape[0]} input features")
            return self._dense(node, A, alpha * Bp.T, bias, 0)
        # Y[M,N] = A'[M,K] B'[K,N]: per sample (a column) y = alpha A' x
        self._need_vector(node, B, 0 if tb else 1, "operand B")
        A = self._weight(node, 0, A)
        Ap = A.T if ta else A
        if Ap.ndim != 2 or Ap.shape[1] != B.shape[0]:
            raise self.err(node, f"weight A{'^T' if ta else ''} has shape {list(Ap.shape)}, "
                                 f"expected [M, {B.shape[0]}] to match {B.shape[0]} input features")
        return self._dense(node, B, alpha * Ap, bias, 1)

    def _op_MatMul(self, node, attrs):
        self._nin(node, 2, 2)
        A, B = (self.get(node, i) for i in node.input)
        if not isinstance(A, Val) and not isinstance(B, Val):
            return np.matmul(A, B)
        if isinstance(A, Val) and isinstance(B, Val):
            raise self.err(node, "both operands are runtime tensors; one must be a weight initializer",
                           UnsupportedOpError)
        if isinstance(A, Val):
            self._need_vector(node, A, A.batch_axis if A.batch_axis in (0, None) else 0, "operand A")
            Bm = self._weight(node, 1, B)
            if Bm.ndim != 2 or Bm.shape[0] != A.shape[0]:
                raise self.err(node, f"weight B has shape {list(Bm.shape)}, expected [{A.shape[0]}, M]")
            return self._dense(node, A, Bm.T, None, A.batch_axis)
        self._need_vector(node, B, 1, "operand B")
        Am = self._weight(node, 0, A)
        if Am.ndim != 2 or Am.shape[1] != B.shape[0]:
            raise self.err(node, f"weight A has shape {list(Am.shape)}, expected [M, {B.shape[0]}]")
        return self._dense(node, B, Am, None, 1)

    def _shape_op(self, node, x: Val, full_out: tuple[int, ...], keeps_batch: bool) -> Val:
        if x.batch_axis is None:
            shape, axis = tuple(full_out), None
        else:
            shape, axis = tuple(full_out[1:]), 0
        if not shape or int(np.prod(shape)) != int(np.prod(x.shape)) or not keeps_batch:
            raise self.err(node, f"reshaping per-sample shape {list(x.shape)} to {list(full_out)} would mix "
                                 "the batch axis into the features; only per-sample reshapes are supported",
                           UnsupportedOpError)
        return Val(self.emit(node, "reshape", shape, [x.node]), shape, axis)

    def _op_Flatten(self, node, attrs):
        self._nin(node, 1, 1)
        x = self.get(node, node.input[0])
        full = x.full_shape(1) if isinstance(x, Val) else x.shape
        axis = int(self._attr(attrs, "axis", 1))
        if axis < 0:
            axis += len(full)
        if not 0 <= axis <= len(full):
            raise self.err(node, f"attribute axis={axis} is out of range for rank {len(full)}")
        out = (int(np.prod(full[:axis])), int(np.prod(full[axis:])))
        if not isinstance(x, Val):
            return x.reshape(out)
        if x.batch_axis not in (None, 0):
            raise self.err(node, f"the operand's batch is on axis {x.batch_axis}; Flatten needs it on axis 0",
                           UnsupportedOpError)
        keeps = x.batch_axis is None or axis == 1
        return self._shape_op(node, x, out if x.batch_axis is None else (1, out[1]), keeps)

    def _op_Reshape(self, node, attrs):
        self._nin(node, 2, 2)
        x = self.get(node, node.input[0])
        target = [int(t) for t in self.const(node, node.input[1], "shape").reshape(-1)]
        allowzero = int(self._attr(attrs, "allowzero", 0))
        if not isinstance(x, Val):
            return x.reshape([x.shape[i] if t == 0 and not allowzero else t for i, t in enumerate(target)])
        if x.batch_axis not in (None, 0):
            raise self.err(node, f"the operand's batch is on axis {x.batch_axis}; Reshape needs it on axis 0",
                           UnsupportedOpError)
        if x.batch_axis is None:
            src, tgt = list(x.shape), target
        else:
            src, tgt = list(x.shape), target[1:]
            if not target or (target[0] == 0 and allowzero) or (target[0] == -1 and -1 in tgt):
                return self._shape_op(node, x, tuple(target), False)
        resolved = []
        for i, t in enumerate(tgt):
            off = 0 if x.batch_axis is None else 1
            if t == 0 and not allowzero:
                if i + off >= len(x.full_shape(1)):
                    raise self.err(node, f"shape entry {i + off} is 0 but the input has no such axis")
                t = x.full_shape(1)[i + off]
            resolved.append(t)
        if resolved.count(-1) > 1 or any(t < -1 for t in resolved):
            raise self.err(node, f"invalid target shape {target}")
        if -1 in resolved:
            known = int(np.prod([t for t in resolved if t != -1]))
            if known == 0 or int(np.prod(src)) % known:
                raise self.err(node, f"cannot infer -1 in {target} from per-sample shape {src}")
            resolved[resolved.index(-1)] = int(np.prod(src)) // known
        full = tuple(resolved) if x.batch_axis is None else (1, *resolved)
        return self._shape_op(node, x, full, True)


def onnx_to_ir(data: bytes, path: Path) -> IR:
    import onnx
    from google.protobuf.message import DecodeError

    where = str(path)
    try:
        model = onnx.ModelProto.FromString(data)
    except (DecodeError, RuntimeWarning, ValueError) as e:
        raise InputError(where, f"not an ONNX model (protobuf decode failed: {e})") from None
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.node:
        raise InputError(where, "not an ONNX model (no ir_version or no graph nodes; truncated or another format?)")
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001 - ValidationError and friends
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(where, f"invalid ONNX model: {first}") from None
    return _Lowering(model, path).run()
