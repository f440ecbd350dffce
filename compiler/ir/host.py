"""Host nodes: ONNX operators that neither a crossbar nor a digital unit computes.

A ``host`` IR node carries its original ONNX node (serialized), its constant operands as params,
and where each runtime operand sits. It is evaluated by onnxruntime, in the interpreter and in
``amsc run``, and written into the host segment files ``OUT/host/<segment>.onnx``.

Attributes of a ``host`` node:
``op_type``   the ONNX operator
``onnx``      the serialized NodeProto, hex
``operands``  one entry per ONNX input position: ``["x", slot]`` (the IR operand in that slot),
              ``["c", name]`` (params[name]) or ``["-"]`` (an omitted optional input)
``in_axes``   the batch axis of each IR operand in ONNX layout
``out_axis``  the batch axis of the result in ONNX layout
``output``    which output of the ONNX node this IR node is
``opset``     ``[[domain, version], ...]`` of the source model
``reason``    why the node runs on the host (shown in the partition table)
"""

from __future__ import annotations

import functools

import numpy as np


#: ONNX element types of runtime tensors between host nodes and the chip: float32 only.
_FLOAT = 1


def _onnx():
    import onnx

    return onnx


def node_proto(attrs: dict):
    onnx = _onnx()
    node = onnx.NodeProto()
    node.ParseFromString(bytes.fromhex(attrs["onnx"]))
    return node


def renamed_node(attrs: dict, inputs: list[str], output: str, prefix: str):
    """The host node's ONNX node with its inputs renamed to ``inputs`` (per ONNX position, "" for
    omitted) and its output ``attrs['output']`` named ``output``; other outputs get unique names."""
    node = node_proto(attrs)
    del node.input[:]
    node.input.extend(inputs)
    outs = [output if k == attrs["output"] else (f"{prefix}__unused{k}" if o else "")
            for k, o in enumerate(node_proto(attrs).output)]
    del node.output[:]
    node.output.extend(outs)
    node.name = prefix
    return node


def single_node_model(attrs: dict, params: dict, in_shapes: list[tuple]):
    """A one-node ONNX model of a host node: runtime inputs ``x<slot>`` with the given full shapes
    (ONNX layout), constants as initializers, output ``y``."""
    onnx = _onnx()
    from onnx import helper, numpy_helper

    names, inits = [], []
    for op in attrs["operands"]:
        if op[0] == "x":
            names.append(f"x{op[1]}")
        elif op[0] == "c":
            names.append(op[1])
            inits.append(numpy_helper.from_array(np.asarray(params[op[1]]), op[1]))
        else:
            names.append("")
    graph = helper.make_graph(
        [renamed_node(attrs, names, "y", "host")], "host",
        [helper.make_tensor_value_info(f"x{k}", _FLOAT, list(s)) for k, s in enumerate(in_shapes)],
        [helper.make_tensor_value_info("y", _FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in attrs["opset"]])
    model.ir_version = min(onnx.IR_VERSION, 10)
    return model


@functools.lru_cache(maxsize=256)
def session(model_bytes: bytes):
    """An onnxruntime session of a serialized model (cached: host nodes are run many times)."""
    return session_file(model_bytes)


def session_file(model: bytes | str):
    """An onnxruntime session of a serialized model, or of a model file (whose external data files
    onnxruntime then finds beside it); not cached."""
    import onnxruntime as ort

    ort.set_default_logger_severity(4)   # errors come back as exceptions; nothing on stderr
    so = ort.SessionOptions()
    so.log_severity_level = 4
    so.intra_op_num_threads = 1
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def run_model(model_bytes: bytes, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    sess = session(model_bytes)
    return sess.run(None, {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in feeds.items()})


def per_sample_feed(x: np.ndarray, i: int, ax) -> np.ndarray:
    """Sample ``i`` of a batch-first array in a one-sample ONNX layout: a batch of 1 on axis ``ax``,
    or the per-sample value as it is where the value has no batch axis."""
    return np.asarray(x[i]) if ax is None else np.moveaxis(np.asarray(x[i:i + 1]), 0, ax)


def run_host(attrs: dict, params: dict, xs: list[np.ndarray]) -> np.ndarray:
    """Evaluate a host node on batch-first operands; returns the batch-first result (float64). A
    ``per_sample`` node (of a model defined at batch 1 only) runs once per sample."""
    if attrs.get("per_sample"):
        feeds = [[per_sample_feed(x, i, ax) for x, ax in zip(xs, attrs["in_axes"])] for i in range(xs[0].shape[0])]
        model = single_node_model(attrs, params, [x.shape for x in feeds[0]]).SerializeToString()  # one per node
        return np.stack([_run_single(model, onx) for onx in feeds])
    onx = [np.moveaxis(np.asarray(x), 0, ax) for x, ax in zip(xs, attrs["in_axes"])]
    model = single_node_model(attrs, params, [x.shape for x in onx]).SerializeToString()
    return np.moveaxis(_run_single(model, onx), attrs["out_axis"], 0)


def _run_single(model_bytes: bytes, onx: list[np.ndarray]) -> np.ndarray:
    """The result of a one-node model (:func:`single_node_model`) on its ONNX-layout operands."""
    (y,) = run_model(model_bytes, {f"x{k}": x for k, x in enumerate(onx)})
    return np.asarray(y, dtype=np.float64)


def _result_shape(attrs: dict, params: dict, shapes: list[tuple]) -> tuple:
    """The shape of a host node's result on zeros of the given full shapes (float32 required)."""
    model = single_node_model(attrs, params, shapes)
    (y,) = run_model(model.SerializeToString(), {f"x{k}": np.zeros(s, np.float32) for k, s in enumerate(shapes)})
    if y.dtype != np.float32:
        raise ValueError(f"its result has element type {y.dtype}; tensors between nodes must be float32")
    return tuple(y.shape)


def infer_per_sample(attrs: dict, params: dict, in_full_shapes: list[tuple], in_axes: list) -> tuple:
    """The full shape of a host node's result at batch 1 (its per-sample shape when it runs one
    sample at a time)."""
    return _result_shape(attrs, params, _batched(in_full_shapes, in_axes, 1))


def _batched(in_full_shapes: list[tuple], in_axes: list, batch: int) -> list[tuple]:
    """The operands' full shapes with ``batch`` on each one's batch axis (if it has one)."""
    return [tuple(batch if k == ax else d for k, d in enumerate(s)) for s, ax in zip(in_full_shapes, in_axes)]


def infer_output(attrs: dict, params: dict, in_full_shapes: list[tuple], in_axes: list) -> tuple[tuple, int | None]:
    """(per-sample shape, batch axis) of a host node's result, found by running it on zeros at
    batch 1 and batch 2: the axis that grows with the batch is the batch axis."""
    a, b = (_result_shape(attrs, params, _batched(in_full_shapes, in_axes, batch)) for batch in (1, 2))
    diff = [k for k in range(len(a)) if len(a) == len(b) and a[k] != b[k]]
    if len(a) != len(b) or len(diff) != 1 or a[diff[0]] != 1 or b[diff[0]] != 2:
        raise ValueError(f"its result shape {list(a)} (batch 1) / {list(b)} (batch 2) does not keep one batch axis")
    ax = diff[0]
    return tuple(d for k, d in enumerate(a) if k != ax), ax
