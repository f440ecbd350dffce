"""ONNX front end: the reader (loading, external data, the environment of values, host nodes).

Each operator is lowered by a function of the registry (``registry.py``), one module per family.

Tensors are tracked with their full ONNX shape split into a per-sample shape and the position of
the batch axis, because the IR is per sample. A graph input's batch axis is its one symbolic
dimension (when all dimensions are fixed: axis 0, or axis 1 of a sequence-first [T, 1, D] input;
none for a rank-1 fixed input).
``Gemm``/``MatMul`` accept the runtime operand on either side, so ``transA``/``transB`` variants
that put the batch on axis 1 are lowered too; ``alpha``/``beta`` are folded into the weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import InputError, UnsupportedOpError
from ...ir import IR
from ...ir.names import Namer
from ..common import check_weights
from ..fold import default_opset, fold_constants
from .registry import lookup

class HostCutError(UnsupportedOpError):
    """A node that should run on the host, but onnxruntime cannot run it on operands laid out as
    the chip lowered them: ``onnx_to_ir`` grows the host segment back through its producers."""

    def __init__(self, where: str, what: str, index: int):
        super().__init__(where, what)
        self.index = index


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


class Lowering:
    """The reader of one model: its environment of values, the IR it builds, and the helpers the
    lowerings (``registry.LOWERINGS``) share."""

    def __init__(self, model, path: Path, forced: dict | None = None):
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
        self.forced = forced or {}   # ONNX node index -> why it joins a grown host segment
        self.batch_one = False
        self.symbolic_inputs: set[str] = set()   # IR inputs whose batch axis is a symbolic dimension
        self.opset = default_opset(model)
        for init in graph.initializer:
            self.env[init.name] = self._tensor(init, f"initializer '{init.name}'")

    # -- helpers --------------------------------------------------------------------------------
    def _tensor(self, t, what: str) -> np.ndarray:
        try:
            return self.nph.to_array(t)
        except Exception as e:  # noqa: BLE001 - onnx raises many types for broken tensors
            raise InputError(self.where, f"{what}: unreadable tensor data ({type(e).__name__}: {e})") from None

    def label(self, node) -> str:
        out = next((o for o in node.output if o), "?")
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
        self.used = {i for n in graph.node for i in n.input if i} | {o.name for o in graph.output}
        declared = [i for i in graph.input if i.name not in inits]
        # a declared input no node reads is left out of the chip (the float reference feeds it zeros)
        real_inputs = [i for i in declared if i.name in self.used]
        if not real_inputs:
            raise InputError(self.where, "graph has no runtime input" if not declared else
                             f"no node reads the graph input(s) {', '.join(repr(i.name) for i in declared)}")
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
        if any(d.HasField("dim_value") and d.dim_value <= 0 for d in t.shape.dim):
            raise InputError(self.where, f"input '{vi.name}': a dimension of size 0 in its shape "
                                         f"{[d.dim_value if d.HasField('dim_value') else d.dim_param for d in t.shape.dim]}; "
                                         "a tensor with no elements")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        symbolic = [i for i, d in enumerate(dims) if d is None]
        if len(symbolic) > 1:
            raise InputError(self.where, f"input '{vi.name}': several unknown dimensions {dims}; "
                                         "only the batch dimension may be symbolic")
        if symbolic:
            axis = symbolic[0]
        elif len(dims) >= 2:
            # all fixed: axis 0, except in a sequence-first [T, 1, D] export, whose batch of 1 is
            # axis 1 (the only axis of size 1, after a longer sequence axis)
            ones = [i for i, d in enumerate(dims) if d == 1]
            axis = 1 if len(dims) == 3 and ones == [1] else 0
        else:
            axis = None
        shape = tuple(d for i, d in enumerate(dims) if i != axis)
        if not shape:
            raise InputError(self.where, f"input '{vi.name}': no feature dimensions in shape {dims}")
        # exported with a fixed batch of 1 (torch.onnx.export's default): host nodes that embed it
        # (a reshape target, an initial state) may run one sample at a time
        self.batch_one = axis is not None and not symbolic and dims[axis] == 1
        name = self.namer.fresh(vi.name)
        if symbolic:
            self.symbolic_inputs.add(name)
        self.ir.add(name, "input", shape, attrs={"batch_axis": axis}, origin=vi.name)
        self.env[vi.name] = Val(name, shape, axis)

    def _node(self, node) -> None:
        if not any(node.output):   # an optional output may be left out (''), not all of them
            raise self.err(node, "has no output")
        if self.index in self.forced:
            self._host(node, self.forced[self.index])
            return
        handler = lookup(node.op_type, self.opset) if node.domain in ("", "ai.onnx") else None
        if handler is None:
            self._host(node, f"no crossbar or digital lowering for {node.domain + '.' if node.domain else ''}"
                             f"{node.op_type}")
            return
        attrs = {a.name: a for a in node.attribute}
        mark = self.ir.g.number_of_nodes()
        try:
            out = handler(self, node, attrs)
        except UnsupportedOpError as e:
            # this form of the operator has no lowering: the host runs it, unless the handler
            # already emitted part of it (then the message stands)
            if self.ir.g.number_of_nodes() != mark:
                raise
            self._host(node, e.what.split("): ", 1)[-1])
            return
        if node.output[0]:
            self.env[node.output[0]] = out

    def cut(self, node, what: str) -> HostCutError:
        return HostCutError(self.where, f"node '{self.label(node)}' ({node.op_type}): {what}", self.index)

    def _host(self, node, reason: str) -> None:
        """Lower ``node`` as host node(s): one per output that something reads."""
        from ...ir import host as H

        operands, xs, params, in_axes, in_full = [], [], {}, [], []
        for k, name in enumerate(node.input):
            if not name:
                operands.append(["-"])
                continue
            v = self.get(node, name)
            if isinstance(v, Val):
                if v.batch_axis is None and not self.batch_one:
                    raise self.cut(node, f"runs on the host ({reason}), but its operand '{name}' has no batch "
                                         "axis")
                operands.append(["x", len(xs)])
                xs.append(v.node)
                in_axes.append(v.batch_axis)
                in_full.append(v.full_shape(1))
            else:
                key = f"c{k}"
                params[key] = np.asarray(v)
                operands.append(["c", key])
        if not xs:
            raise self.err(node, f"has no runtime operand and could not be folded ({reason})", UnsupportedOpError)
        opset = sorted([o.domain, int(o.version)] for o in self.model.opset_import)
        for k, out in enumerate(node.output):
            if not out or out not in self.used:
                continue
            attrs = {"op_type": node.op_type, "onnx": node.SerializeToString().hex(), "operands": operands,
                     "in_axes": in_axes, "output": k, "opset": opset, "reason": reason, "out_axis": None}
            try:
                if None in in_axes:   # a per-sample operand (no batch axis): only one sample at a time
                    raise ValueError("an operand without a batch axis")
                shape, axis = H.infer_output(attrs, params, in_full, in_axes)
            except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for bad nodes
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                if not self.batch_one:
                    raise self.cut(node, f"runs on the host ({reason}), but onnxruntime cannot run it: {first}") \
                        from None
                # the model is defined at its exported batch of 1 only: the node runs one sample at a
                # time, and its result is per sample as it is (no batch axis of its own)
                try:
                    shape, axis = H.infer_per_sample(attrs, params, in_full, in_axes), None
                except Exception as e2:  # noqa: BLE001
                    first = (str(e2).strip().splitlines() or [type(e2).__name__])[0]
                    raise self.cut(node, f"runs on the host ({reason}), but onnxruntime cannot run it even one "
                                         f"sample at a time: {first}") from None
                attrs["per_sample"] = True
                attrs["reason"] = f"{reason}; one sample at a time (exported with batch 1)"
            attrs["out_axis"] = axis
            name = self.emit(node, "host", shape, xs, attrs=attrs, params=params)
            self.env[out] = Val(name, shape, axis)

    def _attr(self, attrs, key, default):
        import onnx.helper as oh

        return oh.get_attribute_value(attrs[key]) if key in attrs else default

    def _nin(self, node, lo, hi):
        n = len([i for i in node.input if i])
        if not lo <= n <= hi:
            raise self.err(node, f"expected {lo}..{hi} inputs, got {n}")

    # -- helpers the lowerings share ------------------------------------------------------------
    def _batch0(self, node, x, what="operand"):
        if not isinstance(x, Val) or x.batch_axis != 0:
            raise self.err(node, f"{what} must be a runtime tensor with the batch on axis 0", UnsupportedOpError)
        return x

    def _identity_of(self, node, name: str):
        x = self.get(node, name)
        if not isinstance(x, Val):
            return x
        return Val(self.emit(node, "identity", x.shape, [x.node]), x.shape, x.batch_axis)

    def _weight(self, node, k: int, v) -> np.ndarray:
        """The constant operand ``k`` of a Gemm/MatMul, checked before any transposition."""
        return check_weights(self.where, self.label(node), f"weight '{node.input[k]}'", v)


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
    external = load_external_data(model, path)
    if model.functions:
        # the dynamo exporter writes modules as local functions: onnx's inliner expands them
        import onnx.inliner

        try:
            model = onnx.inliner.inline_local_functions(model)
        except Exception as e:  # noqa: BLE001 - the inliner raises RuntimeError and friends
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise InputError(where, f"cannot inline the model's local functions: {first}") from None
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001 - ValidationError and friends
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(where, f"invalid ONNX model: {first}") from None
    _check_names_and_types(model, where)
    ir = _lower_growing_host_segments(fold_constants(model, where), path)
    if external:
        ir.g.graph["external_data"] = external
    return ir


def _lower_growing_host_segments(model, path: Path) -> IR:
    """Lower ``model``; where a host node cannot run on its operands as the chip lowered them, its
    producers join its host segment (as the ONNX nodes they are, in the source model's layout) and
    the model is lowered again, until onnxruntime runs every host node. The error stands only when
    the segment cannot grow any further (the node reads graph inputs alone)."""
    producer = {o: k for k, node in enumerate(model.graph.node) for o in node.output if o}
    forced: dict[int, str] = {}
    while True:
        try:
            return Lowering(model, path, forced).run()
        except HostCutError as e:
            node = model.graph.node[e.index]
            grow = sorted({producer[i] for i in node.input if i in producer} - set(forced))
            if not grow:
                raise UnsupportedOpError(e.where, e.what) from None
            label = node.name or f"#{e.index}"
            for k in grow:
                forced[k] = f"grown into the host segment of node '{label}' ({node.op_type}), which onnxruntime " \
                            "cannot run on the chip's layout of its operands"


_ELEM_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}


def _external_tensors(model):
    """Every tensor of the model (initializers, Constant attributes, also in subgraphs and functions)
    whose data lives in an external file."""
    import onnx

    def in_graph(g):
        for t in g.initializer:
            yield t
        for node in g.node:
            yield from in_nodes([node])

    def in_nodes(nodes):
        for node in nodes:
            for a in node.attribute:
                if a.type == onnx.AttributeProto.TENSOR:
                    yield a.t
                elif a.type == onnx.AttributeProto.TENSORS:
                    yield from a.tensors
                elif a.type == onnx.AttributeProto.GRAPH:
                    yield from in_graph(a.g)
                elif a.type == onnx.AttributeProto.GRAPHS:
                    for g in a.graphs:
                        yield from in_graph(g)

    tensors = list(in_graph(model.graph))
    for f in model.functions:
        tensors += list(in_nodes(f.node))
    return [t for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL]


def load_external_data(model, path: Path) -> list[str]:
    """Load the tensors a model keeps in external files (``torch.onnx.export(..., external_data=True)``
    and the dynamo exporter write ``model.onnx.data``), each checked first by
    :func:`check_external_data`. Returns the files' paths relative to the model's folder, sorted
    (the compiled design copies them next to its copy of the source)."""
    from onnx.external_data_helper import load_external_data_for_model

    files = check_external_data(model, path)
    if not files:
        return []
    try:
        load_external_data_for_model(model, str(path.parent))
    except (OSError, ValueError) as e:
        raise InputError(str(path), f"cannot read the model's external data: {e}") from None
    return files


def check_external_data(model, path: Path) -> list[str]:
    """Each external tensor's ``location`` must name a file inside the model's folder (a subfolder is
    fine), present, and long enough for ``offset + length`` (or for the tensor's own size); returns
    the files, relative to the model's folder."""
    where = str(path)
    tensors = _external_tensors(model)
    if not tensors:
        return []
    base = path.parent.resolve()
    files: dict[str, int] = {}
    for t in tensors:
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        what = f"tensor '{t.name}': external data file {loc!r}"
        target = (path.parent / loc).resolve() if loc and "\0" not in loc else None
        if target is None or Path(loc).is_absolute() or base not in target.parents:
            raise InputError(where, f"{what} is not a file inside the model's folder {path.parent}")
        if not target.is_file():
            raise InputError(where, f"{what} is missing (expected at {path.parent / loc}; keep the .onnx.data file "
                                    "next to the model, as the exporter wrote it)")
        try:
            offset = int(info.get("offset", 0))
            length = int(info["length"]) if "length" in info else \
                int(np.prod(list(t.dims), dtype=np.int64)) * _ELEM_BYTES.get(t.data_type, 1)
        except ValueError:
            raise InputError(where, f"{what}: offset or length is not an integer") from None
        size = files.setdefault(loc, target.stat().st_size)
        if offset < 0 or length < 0 or offset + length > size:
            raise InputError(where, f"{what} is truncated: the tensor needs bytes {offset}..{offset + length}, the "
                                    f"file has {size}")
    return sorted(files)


def _check_names_and_types(model, where: str) -> None:
    """What onnx's checker lets through and onnxruntime refuses: two nodes of one name, and a tensor
    of a type its operator does not take (an int64 or bool weight fed to Gemm). The latter comes from
    onnx's strict type inference; its other complaints (shapes it cannot resolve) are not refusals."""
    import onnx

    seen = set()
    for node in model.graph.node:
        if node.name and node.name in seen:
            raise InputError(where, f"node name '{node.name}' is used by two nodes; ONNX requires unique node names "
                                    "(onnxruntime refuses the model)")
        seen.add(node.name)
    try:
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as e:  # noqa: BLE001 - InferenceError and friends
        first = (str(e).strip().splitlines() or [""])[0]
        if " type" in first and "ShapeInferenceError" in first:
            raise InputError(where, f"a tensor has a type its operator does not take: {first}") from None
