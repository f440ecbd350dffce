"""Host segments as standalone ONNX models: what ``compile`` writes to ``host/<segment>.onnx`` for
onnxruntime to run between chip segments (the host nodes' own kernels are in ``ir/host.py``)."""

from __future__ import annotations

import numpy as np

from .graph import SWING_OPS
from .host import _FLOAT, _onnx, renamed_node
from .ops import REGISTRY


def _no_batch(ir, v: str) -> bool:
    """Whether value ``v`` has no batch axis in ONNX layout (a per-sample host result)."""
    d = ir.g.nodes[v]
    return d["op"] == "host" and d["attrs"].get("out_axis", 0) is None


def segment_model(ir, seg: dict):
    """A host segment as a standalone ONNX model that onnxruntime runs.

    Its inputs and outputs are named after the IR values at the segment's boundary and laid out as
    in the source model (the batch axis symbolic, ``N``). Host nodes keep their ONNX operator and
    attributes; a ``softmax`` node becomes an opset-13 Softmax."""
    onnx = _onnx()
    from onnx import helper, numpy_helper

    g = ir.g
    nodes, inits = [], []
    axis_of: dict[str, int] = {}      # value -> batch axis in ONNX layout
    opsets: dict[str, int] = {}
    for n in seg["nodes"]:
        d = g.nodes[n]
        a, ins = d["attrs"], ir.inputs(n)
        if d["op"] in SWING_OPS:
            # a digital node the partition moved to the host (its operand is batch first there)
            axis_of.setdefault(ins[0], 0)
            axis_of[n] = 0
            made, consts = REGISTRY[d["op"]].to_onnx(helper, numpy_helper, n, d, ins)
            nodes += made
            inits += consts
            continue
        if d["op"] == "softmax":
            # batch first; a positive axis. The front end makes a softmax node before opset 13 only for
            # the last axis, where the old flattening semantics agree with the new ones. An operand
            # without a batch axis (a per-sample host result) keeps its own axes.
            if axis_of.get(ins[0], None if _no_batch(ir, ins[0]) else 0) is None:
                axis_of[ins[0]] = axis_of[n] = None
                nodes.append(helper.make_node("Softmax", [ins[0]], [n], name=n, axis=a["axis"] % len(d["shape"])))
                continue
            axis_of.setdefault(ins[0], 0)
            axis_of[n] = 0
            rank = len(d["shape"]) + 1
            nodes.append(helper.make_node("Softmax", [ins[0]], [n], name=n, axis=(a["axis"] + 1) % rank))
            continue
        names = []
        for o in a["operands"]:
            if o[0] == "x":
                names.append(ins[o[1]])
                axis_of.setdefault(ins[o[1]], a["in_axes"][o[1]])
            elif o[0] == "c":
                names.append(f"{n}__{o[1]}")
                inits.append(numpy_helper.from_array(np.asarray(d["params"][o[1]]), names[-1]))
            else:
                names.append("")
        axis_of[n] = a["out_axis"]
        for dom, ver in a["opset"]:
            opsets[dom] = max(opsets.get(dom, 0), ver)
        nodes.append(renamed_node(a, names, n, n))

    def info(v):
        shape = list(g.nodes[v]["shape"])
        if axis_of[v] is not None:
            shape.insert(axis_of[v], "N")
        return helper.make_tensor_value_info(v, _FLOAT, shape)

    graph = helper.make_graph(nodes, seg["name"], [info(v) for v in seg["inputs"]], [info(v) for v in seg["outputs"]],
                              initializer=inits)
    opsets.setdefault("", 13)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(k, v) for k, v in sorted(opsets.items())])
    model.ir_version = min(onnx.IR_VERSION, 10)
    return model, axis_of
