"""Test helpers: build small ONNX models and run them in onnxruntime and in the IR interpreter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from compiler.frontend import load_model
from compiler.ir.interp import run_ir


def save_model(path: Path, nodes, inputs, outputs, inits=(), opset=13) -> Path:
    """inputs/outputs: [(name, dims)], dims may hold strings (symbolic)."""
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, d) for n, d in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, d) for n, d in outputs],
        initializer=[numpy_helper.from_array(np.asarray(a, dtype=np.float32), n) for n, a in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def ort_run(path: Path, feeds: dict) -> list[np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {k: np.asarray(v, dtype=np.float32) for k, v in feeds.items()})


def ir_run_onnx_layout(ir, feeds: dict) -> list[np.ndarray]:
    """Run the IR on ONNX-layout inputs (batch on each input's own axis); outputs in ONNX layout."""
    by_origin = {ir.g.nodes[n]["origin"]: n for n in ir.nodes_of("input")}
    ir_feeds = {}
    for name, x in feeds.items():
        n = by_origin[name]
        ax = ir.g.nodes[n]["attrs"]["batch_axis"]
        ir_feeds[n] = np.asarray(x, np.float64)[None] if ax is None else np.moveaxis(np.asarray(x, np.float64), ax, 0)
    outs = run_ir(ir, ir_feeds)
    res = []
    for n in ir.nodes_of("output"):
        ax = ir.g.nodes[n]["attrs"]["batch_axis"]
        y = outs[n]
        res.append(y[0] if ax is None else np.moveaxis(y, 0, ax))
    return res


def compare_with_ort(path: Path, feeds: dict, rtol=1e-5, atol=1e-5):
    ir, _ = load_model(path)
    want = ort_run(path, feeds)
    got = ir_run_onnx_layout(ir, feeds)
    assert len(want) == len(got)
    for w, g in zip(want, got):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
    return ir
