"""Constant folding of an ONNX graph with onnx's reference evaluator, before lowering.

Every node whose inputs are all constants (initializers, ``Constant`` nodes, or outputs of other
such nodes) is evaluated once at compile time by ``onnx.reference.ReferenceEvaluator`` and its
outputs become initializers. ``Shape`` (and ``Size``) of a runtime tensor is a constant too when
the tensor's shape is static once the batch dimension is fixed to 1: the IR is per sample, so the
folded value is the per-sample shape with a batch of 1. That is what turns PyTorch's
``Shape -> Gather -> Unsqueeze -> Concat -> Reshape`` chains into plain Reshapes. The lowerings
after this step only see nodes that depend on runtime data.

Models older than opset 7 are first upgraded by onnx's version converter. Random generators are
never folded. The graph is otherwise unchanged: node order, names and
graph inputs and outputs stay as they were.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

#: Default-domain opsets amsc reads (the range onnx's reference evaluator and the lowerings cover).
OPSET_MIN, OPSET_MAX = 7, 21
_NONDETERMINISTIC = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial",
                     "Bernoulli"}
_SHAPE_OPS = {"Shape", "Size"}


def default_opset(model) -> int:
    return max([o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] or [1])


def check_opset(model, where: str):
    """``model`` if its default-domain opset is in OPSET_MIN..OPSET_MAX. An older model (opset 1..6,
    as the PyTorch exports in onnx's own test data are) is upgraded to OPSET_MIN by onnx's version
    converter; a newer one, or one the converter cannot upgrade, is refused."""
    v = default_opset(model)
    if v > OPSET_MAX or v < 1:
        raise InputError(where, f"opset {v} of the default ONNX domain is outside the supported "
                                f"{OPSET_MIN}..{OPSET_MAX}; re-export the model with an opset in that range")
    if v < OPSET_MIN:
        from onnx import version_converter

        try:
            return version_converter.convert_version(model, OPSET_MIN)
        except Exception as e:  # noqa: BLE001 - the converter raises RuntimeError and friends
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise InputError(where, f"opset {v} of the default ONNX domain is older than the supported "
                                    f"{OPSET_MIN}..{OPSET_MAX}, and onnx's version converter cannot upgrade it "
                                    f"({first})") from None
    return model


def _static_shapes(model) -> dict[str, list[int]]:
    """Per-sample (batch 1) static shapes of every value onnx's shape inference can resolve."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = {i.name for i in m.graph.initializer}
    for vi in m.graph.input:
        if vi.name in inits or not vi.type.HasField("tensor_type"):
            continue
        for d in vi.type.tensor_type.shape.dim:
            if not (d.HasField("dim_value") and d.dim_value > 0):
                d.Clear()
                d.dim_value = 1   # the one symbolic dimension is the batch (the front end checks that)
    del m.graph.value_info[:]
    try:
        m = onnx.shape_inference.infer_shapes(m, strict_mode=False)
    except Exception:  # noqa: BLE001 - inference is best effort here; unresolved Shapes stay runtime
        return {}
    out = {}
    for vi in list(m.graph.input) + list(m.graph.value_info) + list(m.graph.output):
        t = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and t.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
            if all(x >= 0 for x in dims):
                out[vi.name] = dims
    return out


def fold_constants(model, where: str):
    """``model`` with every constant subgraph evaluated into initializers (a new ModelProto)."""
    import onnx
    from onnx import helper, numpy_helper

    model = check_opset(model, where)
    g = model.graph
    const = {i.name for i in g.initializer}
    shapes = None
    fold, keep = [], []
    for node in g.node:
        ins = [i for i in node.input if i]
        has_subgraph = any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)
        foldable = (node.domain in ("", "ai.onnx") and node.op_type not in _NONDETERMINISTIC and not has_subgraph
                    and all(i in const for i in ins))
        if not foldable and node.op_type in _SHAPE_OPS and node.domain in ("", "ai.onnx") and len(ins) == 1:
            shapes = _static_shapes(model) if shapes is None else shapes
            dims = shapes.get(ins[0])
            if dims is not None:
                fold.append(_shape_constant(node, dims))
                const.update(o for o in node.output if o)
                continue
        if foldable:
            fold.append(node)
            const.update(o for o in node.output if o)
        else:
            keep.append(node)
    if not fold:
        return model
    needed = {i for n in keep for i in n.input if i} | {o.name for o in g.output}
    folded_outs = [o for n in fold for o in n.output if o and o in needed]
    values = {}
    if folded_outs:
        fold_ins = {i for n in fold for i in n.input if i}
        sub = helper.make_graph(list(fold), "fold", [], [helper.make_tensor_value_info(o, 0, None) for o in folded_outs],
                                initializer=[i for i in g.initializer if i.name in fold_ins])
        sub_model = helper.make_model(sub, opset_imports=list(model.opset_import))
        sub_model.ir_version = model.ir_version
        try:
            from onnx.reference import ReferenceEvaluator

            results = ReferenceEvaluator(sub_model, new_ops=_experimental_ops()).run(None, {})
        except Exception as e:  # noqa: BLE001 - the evaluator raises many types for bad graphs
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise InputError(where, f"constant folding failed ({type(e).__name__}: {first})") from None
        values = dict(zip(folded_outs, results))
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:]
    out.graph.node.extend(keep)
    used = needed | {i for n in keep for i in n.input}
    kept_inits = [i for i in g.initializer if i.name in used and i.name not in values]
    del out.graph.initializer[:]
    out.graph.initializer.extend(kept_inits)
    for name in folded_outs:
        t = numpy_helper.from_array(np.asarray(values[name]), name)
        out.graph.initializer.append(t)
        if model.ir_version < 4:   # IR version 3 requires every initializer to be a graph input too
            out.graph.input.append(helper.make_tensor_value_info(name, t.data_type, list(t.dims)))
    # graph inputs that shadowed a folded or dropped initializer (opset < 9 exports list them) go too
    init_names = {i.name for i in out.graph.initializer}
    dropped = {i.name for i in g.initializer} - init_names
    inputs = [vi for vi in out.graph.input if vi.name not in dropped]
    del out.graph.input[:]
    out.graph.input.extend(inputs)
    del out.graph.value_info[:]
    return out


def _experimental_ops() -> list:
    """Kernels for the experimental operators the classic PyTorch exporter still writes below opset 9
    (an RNN's zero initial state is a ``ConstantFill``), which onnx's reference evaluator no longer
    has. Attributes as in onnx 1.4's ``ConstantFill``: the output has ``shape`` (or the input's
    values as its shape with ``input_as_shape``, or the input's shape), then ``extra_shape``, and
    every element is ``value`` of type ``dtype``."""
    from onnx.helper import tensor_dtype_to_np_dtype
    from onnx.reference.op_run import OpRun

    class ConstantFill(OpRun):
        op_domain = ""

        def _run(self, x=None, dtype=None, extra_shape=None, input_as_shape=None, shape=None, value=None):
            if x is None:
                dims = list(shape or [])
            elif input_as_shape:
                dims = [int(v) for v in np.asarray(x).reshape(-1)]
            else:
                dims = list(np.asarray(x).shape)
            dims += list(extra_shape or [])
            np_type = tensor_dtype_to_np_dtype(int(dtype if dtype is not None else 1))
            return (np.full(dims, 0.0 if value is None else value, dtype=np_type),)

    return [ConstantFill]


def _shape_constant(node, dims: list[int]):
    """A ``Constant`` node that yields what ``Shape``/``Size`` would on a tensor of shape ``dims``."""
    from onnx import helper, numpy_helper

    if node.op_type == "Size":
        value = np.asarray(int(np.prod(dims, dtype=np.int64)), dtype=np.int64)
    else:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        r = len(dims)
        start = attrs.get("start", 0)
        end = attrs.get("end", r)
        start = min(max(start + r if start < 0 else start, 0), r)
        end = min(max(end + r if end < 0 else end, 0), r)
        value = np.asarray(dims[start:end], dtype=np.int64)
    return helper.make_node("Constant", [], [node.output[0]], name=node.name,
                            value=numpy_helper.from_array(value, node.output[0]))
